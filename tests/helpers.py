"""Credentials, settings and waiting helpers shared by the tests."""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

# The seed documentation's example job (SPEC §3), which must work as written.
SEED = {
    "id": "job2",
    "func": "jobs.examples:print_test",
    "args": ["linda"],
    "trigger": "interval",
    "seconds": 5,
}

# A plain interval job for tests that need any job.
JOB = {
    "id": "a",
    "func": "jobs.examples:print_test",
    "args": ["x"],
    "trigger": "interval",
    "seconds": 30,
}

PASSWORDS = {"admin": "admin-pass-1", "operator": "operator-pass-1", "viewer": "viewer-pass-1"}
# A cheap hash method keeps the suite fast; the service's default is scrypt.
_HASHES = {
    role: generate_password_hash(pw, method="pbkdf2:sha256:1000") for role, pw in PASSWORDS.items()
}


def basic(user: str, password: str) -> dict[str, str]:
    """Return an Authorization header for HTTP Basic."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", PASSWORDS["admin"])
OPERATOR = basic("operator", PASSWORDS["operator"])
VIEWER = basic("viewer", PASSWORDS["viewer"])


def base_config(instance: Path) -> dict[str, Any]:
    """Settings for a test app on a SQLite file store in ``instance``."""
    return {
        "SCHEDULER_INSTANCE_PATH": str(instance),
        "SCHEDULER_ADMIN_PASSWORD_HASH": _HASHES["admin"],
        "SCHEDULER_USERS": [
            {"name": "operator", "password_hash": _HASHES["operator"], "role": "operator"},
            {"name": "viewer", "password_hash": _HASHES["viewer"], "role": "viewer"},
        ],
        "SCHEDULER_EXECUTORS": {
            "default": {"type": "threadpool", "max_workers": 4},
            "process": {"type": "processpool", "max_workers": 1},
        },
        # Tests that want jobs to fire resume the scheduler themselves.
        "SCHEDULER_START_PAUSED": True,
        # File jobs write into the test's own folder (the instance folder stays refused).
        "SCHEDULER_JOB_FILE_ROOTS": [str(instance.parent)],
    }


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    details: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds,
    naming ``what`` and adding ``details()`` (e.g. a server's stderr)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{details()}" if details is not None else ""
            pytest.fail(f"{what}: not met within {timeout}s{extra}")
        time.sleep(interval)


# -- live backends: TEST_* variable, else a testcontainers container, else skip ----------------

_started: dict[str, Any] = {}  # variable -> (container, value); stopped by conftest at the end


def _wait_until(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check() is not False:
                return
        except Exception:  # the server is still starting
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {timeout:.0f}s")
        time.sleep(0.5)


def _host_port(container: Any, port: int) -> str:
    return f"{container.get_container_host_ip()}:{container.get_exposed_port(port)}"


def _zookeeper(container: Any) -> str:
    from kazoo.client import KazooClient

    hosts = _host_port(container, 2181)

    def answers() -> None:
        client = KazooClient(hosts=hosts, timeout=2)
        client.start(timeout=2)
        client.stop()
        client.close()

    _wait_until(answers, "zookeeper container")
    return hosts


def _rethinkdb(container: Any) -> str:
    from rethinkdb import r

    host, port = _host_port(container, 28015).rsplit(":", 1)
    _wait_until(lambda: r.connect(host=host, port=int(port), timeout=2).close(), "rethinkdb")
    return f"rethinkdb://{host}:{port}/scheduler_test"


def _containers() -> dict[str, Callable[[], tuple[Any, str]]]:
    """How to start each backend in Docker and the TEST_* value that reaches it."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.mysql import MySqlContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    def postgres() -> tuple[Any, str]:
        c = PostgresContainer("postgres:16", driver="psycopg").start()
        return c, c.get_connection_url()

    def mysql() -> tuple[Any, str]:
        c = MySqlContainer("mariadb:11", dialect="pymysql").start()
        return c, c.get_connection_url()

    def redis() -> tuple[Any, str]:
        c = RedisContainer("redis:7").start()
        return c, f"redis://{_host_port(c, 6379)}/15"

    def mongodb() -> tuple[Any, str]:
        c = MongoDbContainer("mongo:7").start()
        return c, f"{c.get_connection_url()}/scheduler_test?authSource=admin"

    def zookeeper() -> tuple[Any, str]:
        c = DockerContainer("zookeeper:3.8").with_exposed_ports(2181).start()
        return c, _zookeeper(c)

    def rethinkdb() -> tuple[Any, str]:
        c = DockerContainer("rethinkdb:2.4").with_exposed_ports(28015).start()
        return c, _rethinkdb(c)

    return {
        "TEST_POSTGRES_URL": postgres,
        "TEST_MYSQL_URL": mysql,
        "TEST_REDIS_URL": redis,
        "TEST_MONGODB_URL": mongodb,
        "TEST_ZOOKEEPER_HOSTS": zookeeper,
        "TEST_RETHINKDB_URL": rethinkdb,
    }


@functools.cache
def _docker_answers() -> bool:
    """Tell, once per session, whether a Docker daemon answers GET /_ping."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(3)
            with contextlib.closing(sock):
                sock.connect(host[len("unix://") :])
                return _pong(sock)
        if host.startswith("tcp://"):
            address, _, port = host[len("tcp://") :].partition(":")
            with socket.create_connection((address, int(port or 2375)), timeout=3) as sock:
                return _pong(sock)
    except (OSError, ValueError):
        return False
    return False


def _pong(sock: socket.socket) -> bool:
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    return sock.recv(64).split(b" ")[1:2] == [b"200"]


def service_url(variable: str) -> str:
    """Return where a live backend answers: the TEST_* variable, else a testcontainers
    container when a Docker daemon answers; else skip, or fail when REQUIRE_SERVICES=1."""
    value = os.environ.get(variable)
    if value:
        return value
    if variable in _started:
        return _started[variable][1]
    if _docker_answers():
        container, value = _containers()[variable]()
        _started[variable] = (container, value)
        return value
    reason = (
        f"{variable} is not set and no Docker daemon answers "
        '(run: make services, or eval "$(bash scripts/services.sh up)")'
    )
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def stop_containers() -> None:
    """Stop every container service_url started."""
    while _started:
        _, (container, _) = _started.popitem()
        container.stop()


def assert_error(response, code: int, *fields: str) -> dict:
    """Check the SPEC §3 error body, and that ``fields`` are named in ``errors``."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["code"] == code
    assert body["error_message"]
    assert body["status"]
    for field in fields:
        assert field in body.get("errors", {}), body
    return body


def add_job(client: Any, body: dict) -> dict:
    """POST ``body`` as admin; it must be accepted (200): return the job."""
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def get_job(client: Any, job_id: str) -> dict:
    """GET the job as admin; it must exist: return it."""
    response = client.get(f"/scheduler/jobs/{job_id}", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def stand_in_job(job_id: str) -> Any:
    """What the run recorder reads of an APScheduler job, for recording runs without one."""
    return SimpleNamespace(
        id=job_id, name=job_id, func_ref="jobs.examples:print_test", executor="default"
    )
