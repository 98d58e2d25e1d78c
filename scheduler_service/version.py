"""The service's version, as installed (shown by GET /scheduler, the OpenAPI document and the
replica registry)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def service_version() -> str:
    """Return this package's installed version ("unknown" when run from a bare source tree)."""
    try:
        return version("scheduler-service")
    except PackageNotFoundError:
        return "unknown"
