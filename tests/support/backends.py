"""Where a live backend answers: its TEST_* variable, else a testcontainers container (when a
Docker daemon answers), else the test is skipped (or fails with REQUIRE_SERVICES=1)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

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
