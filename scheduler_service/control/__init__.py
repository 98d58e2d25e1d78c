"""The scheduler extension: built from settings (build), started once its stores answer
(startup), shown by GET /scheduler (info); the web layer reaches it through the getters here."""

from __future__ import annotations

from flask import current_app

from ..scheduler.service import JobService
from .extension import EXTENSION_KEY, ServiceScheduler

__all__ = ["EXTENSION_KEY", "ServiceScheduler", "get_job_service", "get_scheduler"]


def get_scheduler() -> ServiceScheduler:
    """Return the current app's scheduler extension."""
    return current_app.extensions[EXTENSION_KEY]


def get_job_service() -> JobService:
    """Return the current app's job service."""
    return get_scheduler().service
