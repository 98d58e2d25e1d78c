"""Fixtures in flaskr's style: app, client, and credentials for each role."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service import create_app
from tests.helpers import base_config, stop_containers


@pytest.fixture(scope="session", autouse=True)
def _containers() -> Iterator[None]:
    """Stop the testcontainers containers the session started, if any."""
    yield
    stop_containers()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's SCHEDULER_* variables out of the tests."""
    for key in list(os.environ):
        if key.startswith("SCHEDULER_"):
            monkeypatch.delenv(key)


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on one instance folder (a restart is a second call); shut them all down."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app({**base_config(tmp_path / "instance"), **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        extension = app.extensions["scheduler_service"]
        if extension.running:
            extension.shutdown(wait=True)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
