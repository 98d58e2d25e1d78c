"""A real `scheduler-service run` process for end-to-end tests, and an HTTP client for it."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-Strong-pass-4711"
STARTUP_TIMEOUT = 20.0
FIRE_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

DECLARED_JOB = """
[[jobs]]
id = "declared"
func = "jobs.examples:record"
args = [{log!r}, "declared"]
trigger = "interval"
seconds = 1
"""


def console_script() -> list[str]:
    """The installed `scheduler-service` next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "scheduler-service"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("scheduler-service")
    if found is None:
        pytest.fail("the scheduler-service console script is not installed")
    return [found]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# urllib without any proxy from the environment: the server is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_AUTH = "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self.body
        return json.loads(self.body)


class Server:
    """One `scheduler-service run` subprocess, its stderr in a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self._stdout = (log_dir / f"{name}.stdout").open("wb")
        self.proc = subprocess.Popen(
            [*console_script(), "run", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def diagnose(self) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        return f"server pid {self.pid} ({state}); its stderr:\n{self.stderr()[-6000:]}"

    def auth_header(self) -> str:
        """The Authorization header value of the admin."""
        return _AUTH

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Answer:
        headers = {"Authorization": _AUTH} if auth else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
            self.base + path, data=data, headers=headers, method=method
        )
        try:
            with _OPENER.open(request, timeout=10) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, error.headers, error.read())

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll ``condition`` until truthy; fail naming ``what``, with the server's stderr."""
        return wait_for(condition, timeout=timeout, interval=0.05, what=what, details=self.diagnose)

    def wait_healthy(self) -> None:
        def answers() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited before answering /healthz\n{self.diagnose()}")
            try:
                return self.request("GET", "/healthz", auth=False).status == 200
            except OSError:  # not listening yet
                return False

        self.wait_until(answers, "/healthz answers 200", STARTUP_TIMEOUT)

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; return the exit status, failing if it does not exit in time."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the server did not exit within {STOP_TIMEOUT}s of {sig!r}\n{self.diagnose()}"
            )

    def assert_no_secret_in_stderr(self) -> None:
        text = self.stderr()
        assert ADMIN_PASSWORD not in text, "the admin password is in the server's stderr"
        assert base64.b64encode(ADMIN_PASSWORD.encode()).decode() not in text

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)
        self._stderr.close()
        self._stdout.close()


def servers(
    env: dict[str, str], log_dir: Path, *, kind: type[Server] = Server, prefix: str = "server"
) -> Iterator[Callable[..., Server]]:
    """For a fixture to ``yield from``: a function that starts servers of ``kind`` on ``env``
    (plus its keyword arguments; a restart is a second call), each killed at the end."""
    started: list[Server] = []

    def start(**extra_env: str) -> Server:
        server = kind({**env, **extra_env}, log_dir, f"{prefix}{len(started)}")
        started.append(server)
        server.wait_healthy()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.close()
