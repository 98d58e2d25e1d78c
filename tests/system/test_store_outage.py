"""A job store that goes down under a running service: 503 JSON, /readyz fails, and the
service heals by itself when the store returns, with every job still there.

The outage is played on a private redis-server on a spare port, never on the shared one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests.support.credentials import ADMIN
from tests.support.waiting import wait_for

# The redis extra is optional: without it this module is skipped, the rest still collects.
redis = pytest.importorskip("redis")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, persisting to an append-only file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed"
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            wait_for(lambda: self._pong(client), timeout=10)
        finally:
            client.close()

    @staticmethod
    def _pong(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def status(client, path: str) -> int:
    return client.get(path, headers=ADMIN).status_code


def test_store_outage_is_503_and_heals(
    private_redis: PrivateRedis, make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(
        SCHEDULER_JOBSTORE_URL=f"redis://127.0.0.1:{private_redis.port}/0",
        SCHEDULER_JOBSTORE_RETRY_INTERVAL=0.5,
        SCHEDULER_STORE_TIMEOUT=1,
        SCHEDULER_START_PAUSED=False,
    )
    client = app.test_client()
    log = tmp_path / "fires.log"
    jobs = [
        {
            "id": "tick",
            "func": "jobs.examples:record",
            "args": [str(log), "tick"],
            "trigger": "interval",
            "seconds": 1,
        }
    ]
    jobs += [
        {
            "id": f"cron{i}",
            "func": "jobs.examples:print_test",
            "args": [str(i)],
            "trigger": "cron",
            "hour": str(i),
        }
        for i in range(3)
    ]
    for job in jobs:
        assert client.post("/scheduler/jobs", json=job, headers=ADMIN).status_code == 200
    wait_for(lambda: log.exists() and log.read_text().count("tick") >= 1)

    private_redis.stop()
    listing = client.get("/scheduler/jobs", headers=ADMIN)
    assert listing.status_code == 503
    assert listing.get_json()["code"] == 503
    assert "job store" in listing.get_json()["error_message"]
    added = client.post("/scheduler/jobs", json={**jobs[1], "id": "new"}, headers=ADMIN)
    assert added.status_code == 503
    assert status(client, "/scheduler/jobs/tick") == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["jobstore:default"] != "ok"
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    metrics = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    errors = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "scheduler_store_errors"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert errors["api"] >= 3 and errors["probe"] >= 1

    private_redis.start()  # same port, same append-only file
    wait_for(lambda: status(client, "/scheduler/jobs") == 200)
    ids = sorted(j["id"] for j in client.get("/scheduler/jobs", headers=ADMIN).get_json())
    assert ids == ["cron0", "cron1", "cron2", "tick"]  # nothing lost, nothing added
    assert client.get("/readyz").status_code == 200
    healed = time.time()
    # The scheduler thread retries the store by itself: the job fires again.
    wait_for(
        lambda: any(float(line.split()[0]) > healed for line in log.read_text().splitlines()),
        timeout=15,
    )
