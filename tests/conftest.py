"""Fixtures in flaskr's style: app, client, and credentials for each role."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jobs import JobLimits
from scheduler_service import create_app, create_job_app, upgrade_database
from scheduler_service.errors import ConfigError
from scheduler_service.extensions import db
from scheduler_service.settings import load_settings
from tests.live_stores import LIVE, Live, release_connections, stop
from tests.support.backends import service_url, stop_containers
from tests.support.databases import dispose, fresh_database
from tests.support.server import ADMIN_PASSWORD, DECLARED_JOB, Server, servers
from tests.support.settings import base_config


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


@pytest.fixture(autouse=True)
def _default_job_limits() -> Iterator[None]:
    """Leave no test's job limits (installed by create_app) to the next test."""
    yield
    JobLimits().install()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty service database at the newest schema, made once by the service's own
    migrations; see make_app."""
    instance = tmp_path_factory.mktemp("migrated") / "instance"
    app = create_job_app(base_config(instance))
    upgrade_database(app)
    with app.app_context():
        db.engine.dispose()
    return instance / "scheduler.sqlite"


def _start_at_the_head(config: dict[str, Any], migrated: Path) -> None:
    """Give a first start on the default SQLite database a copy of ``migrated``: it then finds
    its database at the head, as every restart does, instead of running each migration on a
    fresh file (about 40 % of building an app). Other databases, a start that must not
    migrate, and settings the service refuses are left as they are."""
    try:
        settings = load_settings(config)
    except ConfigError:
        return
    if settings["SCHEDULER_DATABASE_URL"] or not settings["SCHEDULER_DATABASE_MIGRATE"]:
        return
    target = Path(settings["SCHEDULER_INSTANCE_PATH"]).resolve() / "scheduler.sqlite"
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(migrated)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


@pytest.fixture
def make_app(tmp_path: Path, migrated_database: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on one instance folder (a restart is a second call); shut them all down."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        config = {**base_config(tmp_path / "instance"), **overrides}
        _start_at_the_head(config, migrated_database)
        app = create_app(config)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        extension = app.extensions["scheduler_service"]
        if extension.running:
            extension.shutdown(wait=True)
        dispose(app)  # close its database connections now, not when the collector frees it


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- job stores: every backend the service supports, one namespace per test --------------------


@pytest.fixture(params=list(LIVE))
def backend(request: pytest.FixtureRequest) -> str:
    """A live job-store backend id (SQLite, the servers of TEST_*, the emulators)."""
    return request.param


@pytest.fixture
def live_store(backend: str, tmp_path: Path) -> Iterator[Live]:
    """This test's own namespace on ``backend``: its URL, a raw look, dropped after the test."""
    variable, make = LIVE[backend]
    base = f"sqlite:///{tmp_path}/store/jobs.db" if variable is None else service_url(variable)
    live = make(base, f"suite_{uuid.uuid4().hex[:12]}")
    yield live
    live.drop()


@pytest.fixture
def store_url(live_store: Live) -> str:
    """A job-store URL with this test's own namespace; dropped after the test.

    Only ``store_app`` builds apps on it, and ``store_app`` depends on this fixture, so pytest
    tears it down (shutting its schedulers down) before ``live_store`` drops the namespace.
    """
    return live_store.url


@pytest.fixture
def store_app(store_url: str, make_app: Callable[..., Flask]) -> Iterator[Callable[..., Flask]]:
    """Build apps on ``store_url`` (a second call is a restart); stop their schedulers after."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = make_app(SCHEDULER_JOBSTORE_URL=store_url, **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        stop(app)
        release_connections(app)


# -- the run-history database: SQLite, PostgreSQL, MariaDB -----------------------------------


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def claims_app(request: pytest.FixtureRequest, make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """An app whose run history is in SQLite (its instance folder) or a fresh database on
    the PostgreSQL or MariaDB server."""
    if request.param == "sqlite":
        yield make_app()
        return
    variable = {"postgres": "TEST_POSTGRES_URL", "mariadb": "TEST_MYSQL_URL"}[request.param]
    with fresh_database(variable) as url:
        app = make_app(SCHEDULER_DATABASE_URL=url)
        yield app
        dispose(app)


# -- a real `scheduler-service run` process (tests/server.py) ----------------------------------


@pytest.fixture
def declared_log(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "declared.log"


@pytest.fixture
def server_env(tmp_path: Path, declared_log: Path) -> dict[str, str]:
    """The operator's environment: an instance folder, a strong admin password, a jobs file."""
    jobs_file = tmp_path / "jobs.toml"
    jobs_file.write_text(DECLARED_JOB.format(log=str(declared_log)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(tmp_path / "instance"),
        SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SCHEDULER_JOBS_FILE=str(jobs_file),
        # The jobs' logs are written in the test's folder (the instance folder is refused).
        SCHEDULER_JOB_FILE_ROOTS=json.dumps([str(tmp_path)]),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def start_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers (a restart is a second call on the same instance folder); kill them all."""
    yield from servers(server_env, tmp_path)
