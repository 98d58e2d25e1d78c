"""End to end over HTTP: the real console script `scheduler-service run`, as an operator runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import (
    ADMIN_PASSWORD,
    FIRE_TIMEOUT,
    REPO_ROOT,
    STARTUP_TIMEOUT,
    Server,
    console_script,
    free_port,
)

pytestmark = pytest.mark.slow


def lines_of(log: Path) -> list[list[str]]:
    """The "<time> <pid> <value>" lines jobs.examples:record appended to ``log``."""
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines()]


def fired_in(log: Path, pid: int, value: str, times: int = 1) -> bool:
    return sum(1 for line in lines_of(log) if line[1:] == [str(pid), value]) >= times


def job_json(log: Path, *, id: str = "job2", executor: str | None = None) -> dict[str, Any]:
    """The seed example of POST /scheduler/jobs, recording its runs to ``log``."""
    body: dict[str, Any] = {
        "id": id,
        "func": "jobs.examples:record",
        "args": [str(log), id],
        "trigger": "interval",
        "seconds": 1,
    }
    if executor:
        body["executor"] = executor
    return body


def job_ids(server: Server) -> list[str]:
    answer = server.request("GET", "/scheduler/jobs")
    assert answer.status == 200, f"{answer.body!r}\n{server.diagnose()}"
    return [job["id"] for job in answer.json()]


# -- the API over HTTP -----------------------------------------------------------------------


def test_post_job_over_http_and_it_fires(
    start_server: Callable[..., Server], tmp_path: Path, declared_log: Path
) -> None:
    server = start_server()
    log = tmp_path / "logs" / "job2.log"
    answer = server.request("POST", "/scheduler/jobs", job_json(log))
    assert answer.status == 200, f"{answer.body!r}\n{server.diagnose()}"
    job = answer.json()
    assert job["id"] == "job2"
    assert job["func"] == "jobs.examples:record"
    assert job["args"] == [str(log), "job2"]
    assert job["trigger"] == "interval" and job["seconds"] == 1
    assert job["next_run_time"] is not None
    # It fires in the server process (the default thread-pool executor), more than once.
    server.wait_until(
        lambda: fired_in(log, server.pid, "job2", times=2), "job2 fires twice", FIRE_TIMEOUT
    )
    server.wait_until(
        lambda: fired_in(declared_log, server.pid, "declared"),
        "the declared job fires",
        FIRE_TIMEOUT,
    )
    server.assert_no_secret_in_stderr()


def test_list_auth_and_validation_over_http(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server()
    added = server.request("POST", "/scheduler/jobs", job_json(tmp_path / "job2.log"))
    assert added.status == 200, added.body
    listing = server.request("GET", "/scheduler/jobs")
    assert listing.status == 200
    assert sorted(job["id"] for job in listing.json()) == ["declared", "job2"]
    assert listing.headers["X-Total-Count"] == "2"

    anonymous = server.request("GET", "/scheduler/jobs", auth=False)
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert anonymous.json()["code"] == 401

    wrong = server.request(
        "POST", "/scheduler/jobs", job_json(tmp_path / "x.log", id="x"), auth=False
    )
    assert wrong.status == 401
    evil = server.request(
        "POST",
        "/scheduler/jobs",
        {"id": "x", "func": "os:system", "args": ["id"], "trigger": "interval", "seconds": 5},
    )
    assert evil.status == 400, evil.body
    body = evil.json()
    assert body["code"] == 400 and "func" in body["errors"]
    assert sorted(job_ids(server)) == ["declared", "job2"]  # nothing was added
    server.assert_no_secret_in_stderr()


def test_health_and_readiness_need_no_login(start_server: Callable[..., Server]) -> None:
    server = start_server()
    health = server.request("GET", "/healthz", auth=False)
    assert health.status == 200
    assert health.json()["status"] == "ok"
    ready = server.request("GET", "/readyz", auth=False)
    assert ready.status == 200, ready.body
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"jobstore:default": "ok", "database": "ok"}
    server.assert_no_secret_in_stderr()


def _open_stream(server: Server) -> socket.socket:
    """Open GET /scheduler/events on a raw socket and read its first bytes (the headers)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    auth = server.auth_header()
    head = f"GET /scheduler/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n"
    sock.sendall(head.encode())
    if not sock.recv(4096).startswith(b"HTTP/1.1 200"):
        sock.close()
        raise AssertionError("the stream was not opened")
    return sock


def test_a_dropped_stream_client_frees_its_slot_within_seconds(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(SCHEDULER_EVENT_STREAMS_PER_USER="5")  # the total is reached first
    streams = [_open_stream(server) for _ in range(4)]
    assert server.request("GET", "/scheduler/events").status == 503  # every slot taken
    for sock in streams:  # the clients go away without a word
        sock.close()
    # The server notices at its next keepalive write (2 s), not 15 s later.
    server.wait_until(
        lambda: (s := _open_stream_or_none(server)) is not None and (s.close() or True),
        "a stream slot is free again",
        timeout=8,
    )


def _open_stream_or_none(server: Server) -> socket.socket | None:
    try:
        return _open_stream(server)
    except AssertionError:
        return None


# -- restarts --------------------------------------------------------------------------------


def test_restart_keeps_every_job_once_and_firing(
    start_server: Callable[..., Server], tmp_path: Path, declared_log: Path
) -> None:
    log = tmp_path / "logs" / "job2.log"
    first = start_server()
    assert first.request("POST", "/scheduler/jobs", job_json(log)).status == 200
    first.wait_until(lambda: fired_in(log, first.pid, "job2"), "job2 fires", FIRE_TIMEOUT)

    first.terminate(signal.SIGTERM)
    first.assert_no_secret_in_stderr()

    second = start_server()
    ids = Counter(job_ids(second))
    assert ids == Counter({"declared": 1, "job2": 1}), second.diagnose()
    # The API still refuses a second job2: the stored one is the only one.
    again = second.request("POST", "/scheduler/jobs", job_json(log))
    assert again.status == 409, again.body
    second.wait_until(
        lambda: fired_in(log, second.pid, "job2", times=2),
        "job2 fires after the restart",
        FIRE_TIMEOUT,
    )
    second.wait_until(
        lambda: fired_in(declared_log, second.pid, "declared"),
        "the declared job fires after the restart",
        FIRE_TIMEOUT,
    )
    assert Counter(job_ids(second)) == Counter({"declared": 1, "job2": 1})
    text = second.stderr()
    assert "Traceback" not in text, second.diagnose()
    assert "onflict" not in text, second.diagnose()  # no ConflictingIdError, no "conflict"
    second.assert_no_secret_in_stderr()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture
def stray_pids() -> Iterator[list[int]]:
    """Process-pool workers a test found: killed afterwards if they outlived their server."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline")
        if _alive(pid) and cmdline.exists() and b"multiprocessing" in cmdline.read_bytes():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sigterm_shuts_the_scheduler_down(
    start_server: Callable[..., Server], tmp_path: Path, stray_pids: list[int]
) -> None:
    server = start_server()
    log = tmp_path / "logs" / "p.log"
    added = server.request("POST", "/scheduler/jobs", job_json(log, id="p", executor="process"))
    assert added.status == 200, added.body
    lines = server.wait_until(lambda: lines_of(log), "the process-pool job fires", FIRE_TIMEOUT)
    worker = int(lines[0][1])
    assert worker != server.pid
    stray_pids.append(worker)

    server.terminate(signal.SIGTERM)
    assert "Scheduler has been shut down" in server.stderr(), server.diagnose()
    server.wait_until(lambda: not _alive(worker), "the process-pool worker exits", 3.0)


# -- start-up failures -----------------------------------------------------------------------


def test_run_with_bad_configuration_exits_2_with_one_line(server_env: dict[str, str]) -> None:
    env = {**server_env, "SCHEDULER_ADMIN_PASSWORD": "admin"}  # weak, and no dev mode
    done = subprocess.run(
        [*console_script(), "run", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "SCHEDULER_ADMIN_PASSWORD" in lines[0]
    assert "Traceback" not in done.stderr


def test_run_on_a_busy_port_fails_in_one_line(server_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*console_script(), "run", "--port", str(port)],
            cwd=REPO_ROOT,
            env=server_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
    assert ADMIN_PASSWORD not in done.stderr
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert str(port) in done.stderr.strip().splitlines()[-1], done.stderr
