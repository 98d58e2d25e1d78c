"""Tests for the schedulable job functions in the jobs package."""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from jobs import JobLimits, examples, ops

DAY = 86400


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def limits(tmp_path: os.PathLike[str]) -> JobLimits:
    """File jobs may use the test's folder; the HTTP checks may reach loopback."""
    limits = JobLimits(file_roots=(str(tmp_path),), networks=("127.0.0.0/8",))
    limits.install()
    return limits


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answer /ok with 200, /redirect with a 302 to /ok, anything else with 404."""

    def do_GET(self) -> None:
        if self.path == "/ok":
            self._reply(200, b"ok")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(404, b"not found")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure urllib talks to 127.0.0.1 directly, whatever proxy the environment sets."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def http_server(no_proxy_env: None) -> Iterator[str]:
    """Serve _Handler on 127.0.0.1 on an ephemeral port in a thread; yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.01},  # so shutdown() returns promptly
        name="test-http-server",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_file(path: os.PathLike[str] | str, size: int, age_days: float) -> None:
    with open(path, "wb") as fh:
        fh.write(b"x" * size)
    mtime = time.time() - age_days * DAY
    os.utime(path, (mtime, mtime))


# --- jobs.examples --------------------------------------------------------------------------


def test_print_test_prints_logs_and_returns_greeting(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.examples"):
        result = examples.print_test(name="Ada")
    assert result == "Hello, Ada"
    assert capsys.readouterr().out == "Hello, Ada\n"
    assert any(r.name == "jobs.examples" and "Hello, Ada" in r.getMessage() for r in caplog.records)


def test_fail_raises_with_message() -> None:
    with pytest.raises(RuntimeError, match=r"^boom now$"):
        examples.fail(message="boom now")
    with pytest.raises(RuntimeError, match=r"^this job always fails$"):
        examples.fail()


def test_sleep_returns_measured_seconds() -> None:
    slept = examples.sleep(seconds=0.05)
    assert isinstance(slept, float)
    assert 0.05 <= slept < 5
    assert examples.sleep(0) >= 0


@pytest.mark.parametrize("bad", [-1, -0.001, 86400.5, float("nan"), float("inf"), "1", None, True])
def test_sleep_rejects_bad_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="seconds"):
        examples.sleep(bad)  # type: ignore[arg-type]


def test_record_appends_line_with_time_pid_and_value(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "nested", "deeper", "fired.log")
    before = time.time()
    result = examples.record(path=target, value="first")
    examples.record(target, "second run")
    after = time.time()

    assert result == {"path": target, "pid": os.getpid(), "value": "first"}
    json.dumps(result)
    with open(target) as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 2
    stamp, pid, value = lines[0].split(" ", 2)
    assert before <= float(stamp) <= after
    assert int(pid) == os.getpid()
    assert value == "first"
    assert lines[1].split(" ", 2)[1:] == [str(os.getpid()), "second run"]


def test_record_default_value_and_rejects_bad_input(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "r.log")
    examples.record(target)
    with open(target) as fh:
        assert fh.read().endswith(f" {os.getpid()} \n")
    with pytest.raises(ValueError, match="path"):
        examples.record("")
    with pytest.raises(ValueError, match="value"):
        examples.record(target, "two\nlines")


def test_record_concurrent_appends_do_not_interleave(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "concurrent.log")
    values = [f"t{i}-" + "v" * 200 for i in range(8)]

    def work(value: str) -> None:
        for _ in range(25):
            examples.record(target, value)

    threads = [threading.Thread(target=work, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(target) as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 8 * 25
    assert {line.split(" ", 2)[2] for line in lines} == set(values)


# --- jobs.ops: http_check -------------------------------------------------------------------


def test_http_check_ok(http_server: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.ops"):
        result = ops.http_check(url=f"{http_server}/ok")
    assert result["url"] == f"{http_server}/ok"
    assert result["status"] == 200
    assert isinstance(result["elapsed_ms"], float) and result["elapsed_ms"] >= 0
    json.dumps(result)
    assert any(r.name == "jobs.ops" and "/ok" in r.getMessage() for r in caplog.records)


def test_http_check_follows_redirect(http_server: str) -> None:
    assert ops.http_check(f"{http_server}/redirect")["status"] == 200


def test_http_check_expected_404_passes(http_server: str) -> None:
    result = ops.http_check(f"{http_server}/missing", expect_status=404, timeout=5)
    assert result["status"] == 404


def test_http_check_status_mismatch_raises(http_server: str) -> None:
    url = f"{http_server}/missing"
    with pytest.raises(RuntimeError, match=r"404.*expected 200") as info:
        ops.http_check(url)
    assert url in str(info.value)
    with pytest.raises(RuntimeError, match=r"200.*expected 404"):
        ops.http_check(f"{http_server}/ok", expect_status=404)


def test_http_check_connection_error_raises(no_proxy_env: None, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/ok"
    with pytest.raises(RuntimeError, match="connection failed") as info:
        ops.http_check(url, timeout=5)
    assert url in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "127.0.0.1/ok"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "http://127.0.0.1/", "expect_status": 99}, "expect_status"),
        ({"url": "http://127.0.0.1/", "expect_status": "200"}, "expect_status"),
        ({"url": "http://127.0.0.1/", "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1/", "timeout": -1}, "timeout"),
    ],
)
def test_http_check_rejects_bad_input(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        ops.http_check(**kwargs)


# --- jobs.ops: disk_usage -------------------------------------------------------------------


def test_disk_usage_returns_consistent_numbers(tmp_path: os.PathLike[str]) -> None:
    result = ops.disk_usage(path=str(tmp_path))
    assert set(result) == {"path", "total", "used", "free", "percent"}
    assert result["path"] == str(tmp_path)
    assert result["total"] > 0
    assert 0 <= result["used"] <= result["total"]
    assert 0 <= result["free"] <= result["total"]
    assert 0 <= result["percent"] <= 100
    expected = result["used"] / (result["used"] + result["free"]) * 100
    assert result["percent"] == pytest.approx(expected, abs=0.01)
    json.dumps(result)
    # A limit of 100% can never be exceeded.
    assert ops.disk_usage(str(tmp_path), max_percent=100)["total"] == result["total"]


def test_disk_usage_over_limit_raises(tmp_path: os.PathLike[str]) -> None:
    _make_file(os.path.join(tmp_path, "data.bin"), 64 * 1024, 0)  # make sure something is used
    with pytest.raises(RuntimeError, match="max_percent"):
        ops.disk_usage(str(tmp_path), max_percent=0)


def test_disk_usage_rejects_bad_input(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ValueError, match="path"):
        ops.disk_usage(os.path.join(tmp_path, "does-not-exist"))
    with pytest.raises(ValueError, match="max_percent"):
        ops.disk_usage(str(tmp_path), max_percent=101)
    with pytest.raises(ValueError, match="max_percent"):
        ops.disk_usage(str(tmp_path), max_percent=-1)


# --- jobs.ops: cleanup_old_files ------------------------------------------------------------


@pytest.fixture
def old_and_new(tmp_path: os.PathLike[str]) -> str:
    """A folder with old/new .log and .txt files, an old subdirectory holding an old file."""
    folder = os.path.join(tmp_path, "logs")
    os.mkdir(folder)
    _make_file(os.path.join(folder, "old1.log"), 100, 10)
    _make_file(os.path.join(folder, "old2.log"), 50, 8)
    _make_file(os.path.join(folder, "old.txt"), 7, 10)
    _make_file(os.path.join(folder, "new.log"), 30, 1)
    sub = os.path.join(folder, "sub.log")  # a directory whose name matches "*.log"
    os.mkdir(sub)
    _make_file(os.path.join(sub, "inner.log"), 10, 30)
    old = time.time() - 30 * DAY
    os.utime(sub, (old, old))
    return folder


def test_cleanup_deletes_old_files_only(old_and_new: str) -> None:
    folder = old_and_new
    result = ops.cleanup_old_files(folder=folder, older_than_days=5)
    assert result == {
        "folder": folder,
        "deleted": ["old.txt", "old1.log", "old2.log"],
        "kept": 2,  # new.log and the sub.log directory
        "dry_run": False,
        "freed_bytes": 157,
    }
    assert sorted(os.listdir(folder)) == ["new.log", "sub.log"]
    assert os.listdir(os.path.join(folder, "sub.log")) == ["inner.log"]  # not recursive


def test_cleanup_pattern_filters(old_and_new: str) -> None:
    folder = old_and_new
    result = ops.cleanup_old_files(folder, older_than_days=5, pattern="*.log")
    assert result["deleted"] == ["old1.log", "old2.log"]
    assert result["freed_bytes"] == 150
    assert result["kept"] == 3
    assert sorted(os.listdir(folder)) == ["new.log", "old.txt", "sub.log"]
    assert os.path.isdir(os.path.join(folder, "sub.log"))


def test_cleanup_age_threshold(old_and_new: str) -> None:
    result = ops.cleanup_old_files(old_and_new, older_than_days=9)
    assert result["deleted"] == ["old.txt", "old1.log"]
    assert os.path.exists(os.path.join(old_and_new, "old2.log"))
    # 0 days: everything not in the future goes, still never the directory.
    result = ops.cleanup_old_files(old_and_new, older_than_days=0)
    assert result["deleted"] == ["new.log", "old2.log"]
    assert os.listdir(old_and_new) == ["sub.log"]


def test_cleanup_dry_run_leaves_files(old_and_new: str) -> None:
    before = sorted(os.listdir(old_and_new))
    result = ops.cleanup_old_files(old_and_new, older_than_days=5, dry_run=True)
    assert result["dry_run"] is True
    assert result["deleted"] == ["old.txt", "old1.log", "old2.log"]
    assert result["freed_bytes"] == 157
    assert sorted(os.listdir(old_and_new)) == before


def test_cleanup_removes_symlink_never_its_target(tmp_path: os.PathLike[str]) -> None:
    outside = os.path.join(tmp_path, "outside")
    os.mkdir(outside)
    target = os.path.join(outside, "precious.log")
    _make_file(target, 10, 100)
    target_dir = os.path.join(outside, "dir")
    os.mkdir(target_dir)
    folder = os.path.join(tmp_path, "folder")
    os.mkdir(folder)
    old = time.time() - 100 * DAY
    for name, dest in (("link.log", target), ("dirlink.log", target_dir)):
        link = os.path.join(folder, name)
        os.symlink(dest, link)
        os.utime(link, (old, old), follow_symlinks=False)

    result = ops.cleanup_old_files(folder, older_than_days=1, pattern="*.log")
    assert result["deleted"] == ["dirlink.log", "link.log"]
    assert os.listdir(folder) == []
    assert os.path.isfile(target)
    assert os.path.isdir(target_dir)


def test_cleanup_keeps_recent_symlink_to_old_file(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "old-target.log")
    _make_file(target, 10, 100)
    folder = os.path.join(tmp_path, "folder")
    os.mkdir(folder)
    os.symlink(target, os.path.join(folder, "fresh-link.log"))  # link itself is new
    result = ops.cleanup_old_files(folder, older_than_days=1)
    assert result["deleted"] == []
    assert result["kept"] == 1
    assert os.path.islink(os.path.join(folder, "fresh-link.log"))


def test_cleanup_refuses_root_missing_and_bad_args(tmp_path: os.PathLike[str]) -> None:
    for root in ("/", "//", "/.", "/tmp/.."):
        with pytest.raises(ValueError, match="folder"):
            ops.cleanup_old_files(root, older_than_days=1000, dry_run=True)
    with pytest.raises(ValueError, match="folder"):
        ops.cleanup_old_files(os.path.join(tmp_path, "missing"), older_than_days=1)
    a_file = os.path.join(tmp_path, "file.txt")
    _make_file(a_file, 1, 10)
    with pytest.raises(ValueError, match="folder"):
        ops.cleanup_old_files(a_file, older_than_days=1)
    with pytest.raises(ValueError, match="older_than_days"):
        ops.cleanup_old_files(str(tmp_path), older_than_days=-1)
    with pytest.raises(ValueError, match="pattern"):
        ops.cleanup_old_files(str(tmp_path), older_than_days=1, pattern="../*")
    assert os.path.exists(a_file)


# --- what a job may reach and touch (jobs._limits, jobs._http) -----------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A 127.0.0.1 port that accepts connections and closes them without a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_http_check_says_the_same_for_a_closed_and_an_open_port(
    no_proxy_env: None, closed_port: int, silent_port: int
) -> None:
    messages = []
    for port in (closed_port, silent_port):
        with pytest.raises(RuntimeError) as info:
            ops.http_check(f"http://127.0.0.1:{port}/", timeout=5)
        messages.append(str(info.value).replace(str(port), "PORT"))
    assert messages[0] == messages[1] == "http_check http://127.0.0.1:PORT/: connection failed"


class _AuthHandler(_Handler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self._reply(200, b"ok")


def test_http_check_sends_url_credentials_and_never_shows_them(
    no_proxy_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        url = f"http://ops:pa%20ss@127.0.0.1:{server.server_address[1]}/ok?token=t0k"
        with caplog.at_level(logging.DEBUG, logger="jobs"):
            result = ops.http_check(url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert _AuthHandler.seen == ["Basic b3BzOnBhIHNz"]  # ops:pa ss
    assert result["url"] == f"http://ops:***@127.0.0.1:{server.server_address[1]}/ok?***"
    assert "pa%20ss" not in caplog.text and "t0k" not in caplog.text
    assert "ops:***@" in caplog.text


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("168.63.129.16", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("ff02::1", False),
    ],
)
def test_which_addresses_a_job_may_reach(address: str, allowed: bool) -> None:
    assert JobLimits().address_allowed(ipaddress.ip_address(address)) is allowed


def test_allowed_networks_open_exactly_themselves() -> None:
    limits = JobLimits(networks=("10.20.0.0/16", "fd00::/8"))
    assert limits.address_allowed(ipaddress.ip_address("10.20.3.4"))
    assert limits.address_allowed(ipaddress.ip_address("fd00::5"))
    assert not limits.address_allowed(ipaddress.ip_address("10.21.3.4"))
    assert not limits.address_allowed(ipaddress.ip_address("127.0.0.1"))


def test_without_installed_limits_no_file_may_be_touched(tmp_path: os.PathLike[str]) -> None:
    JobLimits().install()
    with pytest.raises(ValueError, match="no job file roots are configured"):
        examples.record(os.path.join(tmp_path, "x.log"))
    assert os.listdir(tmp_path) == []


def test_a_root_inside_a_protected_folder_is_the_jobs(tmp_path: os.PathLike[str]) -> None:
    instance = os.path.join(tmp_path, "instance")
    root = os.path.join(instance, "job-files")
    JobLimits(file_roots=(root,), protected=(instance,)).install()
    assert examples.record("a.log")["path"] == os.path.join(root, "a.log")
    with pytest.raises(ValueError, match="service's own files"):
        JobLimits(file_roots=(instance,), protected=(instance,)).resolve_path("db.sqlite")
