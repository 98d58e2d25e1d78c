"""The console script `scheduler-service`: check-config, jobs, hash-password, new-token, and the
generated development admin, as an operator meets them."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy.pool import NullPool
from werkzeug.security import check_password_hash, generate_password_hash

from scheduler_service import create_app
from scheduler_service.cli import main
from tests.support.api import SEED
from tests.support.credentials import basic
from tests.support.databases import dispose, fresh_database

STRONG_PASSWORD = "cli-Test-pass-9"
# A cheap hash keeps the suite fast; the service's default (scrypt) costs tens of milliseconds.
ADMIN_HASH = generate_password_hash(STRONG_PASSWORD, method="pbkdf2:sha256:1000")
ADMIN = basic("admin", STRONG_PASSWORD)

TWO_JOBS = """
[[jobs]]
id = "first"
func = "jobs.examples:print_test"
args = ["one"]
trigger = "interval"
seconds = 30

[[jobs]]
id = "second"
func = "jobs.examples:print_test"
args = ["two"]
trigger = "cron"
crontab = "*/15 * * * *"
"""

EVIL_JOB = """
[[jobs]]
id = "evil"
func = "os:system"
args = ["id"]
trigger = "interval"
seconds = 5
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def env(instance: Path) -> dict[str, str]:
    """A valid operator environment: its own instance folder and an admin password hash."""
    return {
        "SCHEDULER_INSTANCE_PATH": str(instance),
        "SCHEDULER_ADMIN_PASSWORD_HASH": ADMIN_HASH,
    }


@pytest.fixture
def jobs_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.toml"
    path.write_text(TWO_JOBS)
    return path


@pytest.fixture
def build_app() -> Iterator[Callable[..., Flask]]:
    """create_app from the (monkeypatched) environment; shut every scheduler down afterwards."""
    apps: list[Flask] = []

    def build(**overrides: object) -> Flask:
        app = create_app({"SCHEDULER_START_PAUSED": True, **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build
    for app in apps:
        extension = app.extensions["scheduler_service"]
        if extension.running:
            extension.shutdown(wait=True)
        dispose(app)


def stored_job_ids(instance: Path) -> list[str]:
    """The job ids in the default SQLite job store, read underneath the service."""
    database = instance / "jobs.sqlite"
    if not database.exists():
        return []
    connection = sqlite3.connect(database)
    try:
        tables = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'apscheduler_jobs'"
        ).fetchall()
        if not tables:
            return []
        return sorted(row[0] for row in connection.execute("SELECT id FROM apscheduler_jobs"))
    finally:
        connection.close()


def assert_one_line_error(result: Result, *expected: str) -> str:
    """Exit 2, one line on stderr naming ``expected``, no traceback, nothing on stdout."""
    shown = f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert result.exit_code == 2, shown
    assert isinstance(result.exception, SystemExit), shown  # not an unexpected exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    line = lines[0]
    assert line.startswith("scheduler-service: configuration error: "), shown
    for text in expected:
        assert text in line, shown
    assert "Traceback" not in result.output, shown
    assert result.stdout == "", shown
    return line


# -- check-config ----------------------------------------------------------------------------


def test_check_config_ok_and_changes_no_store(
    runner: CliRunner, env: dict[str, str], jobs_file: Path, instance: Path
) -> None:
    result = runner.invoke(
        main, ["check-config"], env={**env, "SCHEDULER_JOBS_FILE": str(jobs_file)}
    )
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.stdout
    assert "2 declared job(s)" in result.stdout
    assert "Traceback" not in result.output
    # Validated, but not upserted: the store holds no job.
    assert stored_job_ids(instance) == []


def test_check_config_accepts_a_weak_password_in_dev_mode(
    runner: CliRunner, instance: Path
) -> None:
    result = runner.invoke(
        main,
        ["check-config"],
        env={
            "SCHEDULER_INSTANCE_PATH": str(instance),
            "SCHEDULER_ADMIN_PASSWORD": "admin",
            "SCHEDULER_DEV_MODE": "1",
        },
    )
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.stdout


def _config_file(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("make_env", "expected", "secret"),
    [
        pytest.param(
            lambda tmp: {
                "SCHEDULER_CONFIG_FILE": _config_file(
                    tmp, 'SCHEDULER_JOBSTORE = "memory://"\n', "settings.toml"
                )
            },
            ["SCHEDULER_JOBSTORE: unknown setting", "settings.toml", "SCHEDULER_JOBSTORES?"],
            None,
            id="unknown-key-in-toml-config-file",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_API_ENABLED": "maybe"},
            ["SCHEDULER_API_ENABLED", "'maybe'", "boolean"],
            None,
            id="bad-bool-in-env",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_JOBS_FILE": _config_file(tmp, EVIL_JOB, "jobs.toml")},
            ["job 'evil'", "'func'", "os:system"],
            None,
            id="declared-job-outside-allowed-modules",
        ),
        pytest.param(
            lambda tmp: {
                "SCHEDULER_JOBS": json.dumps(
                    [{**SEED, "id": "typo", "seconds": "five"}]  # a job in the env, not a file
                )
            },
            ["SCHEDULER_JOBS", "job 'typo'", "'seconds'"],
            None,
            id="declared-job-bad-field-in-env",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_JOBSTORE_URL": "redis://:s3cret@127.0.0.1:1/0"},
            ["'default'", "redis", "unreachable"],
            "s3cret",
            id="unreachable-redis-store",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_JOBSTORE_URL": "redis://:s3cret@127.0.0.1:1/0?bogus=1"},
            ["SCHEDULER_JOBSTORES['default']", "bogus"],
            "s3cret",
            id="bad-store-url-option",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_JOBSTORE_URL": "foo://user:s3cret@host/db"},
            ["SCHEDULER_JOBSTORES['default']", "unknown scheme 'foo'"],
            "s3cret",
            id="unknown-store-scheme",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_DATABASE_URL": "user:s3cret@db.example/scheduler"},
            ["SCHEDULER_DATABASE_URL", "not a URL"],
            "s3cret",
            id="database-url-not-a-url",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_DATABASE_URL": "postgress://u:s3cret@127.0.0.1/db"},
            ["SCHEDULER_DATABASE_URL", "unknown database 'postgress'"],
            "s3cret",
            id="database-url-unknown-dialect",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_DATABASE_URL": "mysql+mysqldb://u:s3cret@127.0.0.1/db"},
            ["SCHEDULER_DATABASE_URL", "'MySQLdb' package"],
            "s3cret",
            id="database-url-driver-not-installed",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_DATABASE_URL": "postgresql://u:s3cret@127.0.0.1:1/db"},
            ["SCHEDULER_DATABASE_URL", "cannot reach", "postgresql+psycopg://u:***@"],
            "s3cret",
            id="database-unreachable",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_TIMEZON": "Europe/Paris"},
            ["SCHEDULER_TIMEZON: unknown setting in the environment", "SCHEDULER_TIMEZONE?"],
            None,
            id="misspelled-environment-variable",
        ),
        pytest.param(
            lambda tmp: {
                "SCHEDULER_ADMIN_PASSWORD_HASH": None,
                "SCHEDULER_ADMIN_PASSWORD": "admin",
            },
            ["SCHEDULER_ADMIN_PASSWORD", "SCHEDULER_DEV_MODE"],
            None,
            id="weak-admin-password",
        ),
        pytest.param(
            lambda tmp: {
                "SCHEDULER_ADMIN_PASSWORD_HASH": None,
                "SCHEDULER_ADMIN_PASSWORD": "changeme",
            },
            ["SCHEDULER_ADMIN_PASSWORD"],
            "changeme",
            id="default-admin-password-not-echoed",
        ),
        pytest.param(
            lambda tmp: {"SCHEDULER_ADMIN_PASSWORD_HASH": None},
            ["SCHEDULER_ADMIN_PASSWORD", "no user can log in"],
            None,
            id="no-credentials",
        ),
    ],
)
def test_check_config_bad_setting_is_one_line_exit_2(
    runner: CliRunner,
    env: dict[str, str],
    tmp_path: Path,
    instance: Path,
    make_env: Callable[[Path], dict[str, str | None]],
    expected: list[str],
    secret: str | None,
) -> None:
    result = runner.invoke(main, ["check-config"], env={**env, **make_env(tmp_path)})
    assert_one_line_error(result, *expected)
    if secret is not None:
        assert secret not in result.output
    assert stored_job_ids(instance) == []


def test_check_config_changes_nothing(
    runner: CliRunner, tmp_path: Path, instance: Path, jobs_file: Path
) -> None:
    """No folder, file, generated password or migration: a dry look at a fresh machine."""
    with fresh_database("TEST_POSTGRES_URL") as url:
        result = runner.invoke(
            main,
            ["check-config"],
            env={
                "SCHEDULER_INSTANCE_PATH": str(instance),
                "SCHEDULER_DEV_MODE": "1",  # no credentials: start-up would generate some
                "SCHEDULER_JOBS_FILE": str(jobs_file),
                "SCHEDULER_JOBSTORES": json.dumps(
                    {"default": None, "other": f"sqlite:///{tmp_path}/stores/other.sqlite"}
                ),
                "SCHEDULER_DATABASE_URL": url,
            },
        )
        engine = sa.create_engine(url, poolclass=NullPool)
        try:
            tables = sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.stdout
    assert "service database to be migrated at start" in result.stdout
    assert f"{instance / 'jobs.sqlite'} will be created at start" in result.stderr
    assert f"{tmp_path / 'stores' / 'other.sqlite'} will be created at start" in result.stderr
    assert "password" not in result.output  # none generated, so none printed and lost
    assert tables == []  # not migrated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.toml"]  # no folder, no file


def test_check_config_reads_an_existing_sqlite_database_without_changing_it(
    runner: CliRunner, env: dict[str, str], build_app: Callable[..., Flask], instance: Path
) -> None:
    app = build_app(SCHEDULER_INSTANCE_PATH=str(instance), SCHEDULER_ADMIN_PASSWORD_HASH=ADMIN_HASH)
    app.extensions["scheduler_service"].shutdown(wait=True)  # no heartbeat writes meanwhile
    before = {p.name: p.stat().st_mtime_ns for p in instance.iterdir() if p.suffix == ".sqlite"}
    assert set(before) == {"jobs.sqlite", "scheduler.sqlite"}
    result = runner.invoke(main, ["check-config"], env=env)
    assert result.exit_code == 0, result.output
    assert "service database up to date" in result.stdout
    after = {p.name: p.stat().st_mtime_ns for p in instance.iterdir() if p.suffix == ".sqlite"}
    assert after == before


# -- jobs ------------------------------------------------------------------------------------


def test_jobs_lists_the_declared_jobs_once(
    runner: CliRunner, env: dict[str, str], jobs_file: Path, instance: Path
) -> None:
    env = {**env, "SCHEDULER_JOBS_FILE": str(jobs_file)}
    for _ in range(2):  # a second run upserts: no duplicate, no conflict
        result = runner.invoke(main, ["jobs"], env=env)
        assert result.exit_code == 0, result.output
        rows = result.stdout.strip().splitlines()
        assert rows[0].split()[:3] == ["ID", "STORE", "NEXT"]
        ids = sorted(row.split()[0] for row in rows[1:])
        assert ids == ["first", "second"], result.stdout
        assert all("jobs.examples:print_test" in row for row in rows[1:])
        assert "2 job(s)" in result.stderr
        assert "Traceback" not in result.output
    assert stored_job_ids(instance) == ["first", "second"]


def test_jobs_with_bad_configuration_is_one_line_exit_2(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    result = runner.invoke(
        main,
        ["jobs"],
        env={**env, "SCHEDULER_JOBS_FILE": _config_file(tmp_path, EVIL_JOB, "jobs.toml")},
    )
    assert_one_line_error(result, "job 'evil'", "'func'")


# -- hash-password ---------------------------------------------------------------------------


def test_hash_password_from_stdin(
    runner: CliRunner,
    instance: Path,
    build_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = runner.invoke(main, ["hash-password"], input="pw-from-stdin\n")
    assert result.exit_code == 0, result.output
    password_hash = result.stdout.strip()
    assert "\n" not in password_hash
    assert "pw-from-stdin" not in password_hash
    assert check_password_hash(password_hash, "pw-from-stdin")
    assert not check_password_hash(password_hash, "pw-from-stdin\n")
    # The hash is what SCHEDULER_ADMIN_PASSWORD_HASH takes.
    monkeypatch.setenv("SCHEDULER_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SCHEDULER_ADMIN_PASSWORD_HASH", password_hash)
    client = build_app().test_client()
    assert client.get("/scheduler/jobs", headers=basic("admin", "pw-from-stdin")).status_code == 200
    assert client.get("/scheduler/jobs", headers=basic("admin", "pw")).status_code == 401


def test_hash_password_refuses_an_empty_password(runner: CliRunner) -> None:
    result = runner.invoke(main, ["hash-password"], input="\n")
    assert result.exit_code == 1
    assert "empty password" in result.stderr
    assert result.stdout == ""


# -- new-token -------------------------------------------------------------------------------


def _new_token(runner: CliRunner, *args: str) -> tuple[str, dict]:
    result = runner.invoke(main, ["new-token", *args])
    assert result.exit_code == 0, result.output
    token = re.search(r"^token \(shown once\): (\S+)$", result.stdout, re.M)
    entry = re.search(r"^SCHEDULER_API_TOKENS entry: (\{.*\})$", result.stdout, re.M)
    assert token and entry, result.stdout
    return token[1], json.loads(entry[1])


@pytest.mark.parametrize(
    ("role", "can_add"),
    [("viewer", False), ("operator", False), ("admin", True)],
)
def test_new_token_authenticates_with_its_role(
    runner: CliRunner,
    instance: Path,
    build_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    can_add: bool,
) -> None:
    token, entry = _new_token(runner, "--name", "ci-bot", "--role", role)
    assert entry["name"] == "ci-bot" and entry["role"] == role
    assert hashlib.sha256(token.encode()).hexdigest() == entry["token_sha256"]
    monkeypatch.setenv("SCHEDULER_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SCHEDULER_API_TOKENS", json.dumps([entry]))  # as an operator sets it
    client = build_app().test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    listing = client.get("/scheduler/jobs", headers=bearer)
    assert listing.status_code == 200, listing.get_json()
    assert listing.get_json() == []
    added = client.post("/scheduler/jobs", json=SEED, headers=bearer)
    assert added.status_code == (200 if can_add else 403), added.get_json()
    assert (
        client.get("/scheduler/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.get("/scheduler/jobs").status_code == 401


def test_new_token_defaults_to_viewer_and_differs_each_time(runner: CliRunner) -> None:
    first, entry = _new_token(runner, "--name", "a")
    second, _ = _new_token(runner, "--name", "a")
    assert entry["role"] == "viewer"
    assert first != second
    assert len(first) >= 40


def test_new_token_entry_is_json_for_any_name(runner: CliRunner) -> None:
    _, entry = _new_token(runner, "--name", 'deploy "blue" \\ green')
    assert entry["name"] == 'deploy "blue" \\ green'


# -- the generated development admin ---------------------------------------------------------

_GENERATED = re.compile(r"generated admin login\s+(\S+) / (\S+)")


def test_dev_mode_generates_one_admin_password_once(
    instance: Path,
    build_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SCHEDULER_DEV_MODE", "1")
    monkeypatch.setenv("SCHEDULER_INSTANCE_PATH", str(instance))

    first = build_app().test_client()
    printed = capsys.readouterr()
    found = _GENERATED.findall(printed.err)
    assert len(found) == 1, printed.err
    user, password = found[0]
    assert user == "admin"
    assert len(password) >= 12
    assert password not in printed.out
    assert password not in caplog.text  # printed once, never logged
    assert first.get("/scheduler/jobs", headers=basic(user, password)).status_code == 200
    assert first.get("/scheduler/jobs", headers=basic(user, password + "x")).status_code == 401

    second = build_app().test_client()
    again = capsys.readouterr()
    assert "generated" not in again.err and password not in again.err + again.out
    assert second.get("/scheduler/jobs", headers=basic(user, password)).status_code == 200
    added = second.post("/scheduler/jobs", json=SEED, headers=basic(user, password))
    assert added.status_code == 200  # the generated login is an admin

    saved_files = list(instance.iterdir())
    dev_admin = instance / "dev-admin.json"
    assert dev_admin in saved_files
    assert stat.S_IMODE(dev_admin.stat().st_mode) == 0o600
    saved = json.loads(dev_admin.read_text())
    assert check_password_hash(saved["password_hash"], password)
    for file in saved_files:
        assert password.encode() not in file.read_bytes(), file


def test_dev_mode_with_credentials_generates_nothing(
    instance: Path,
    build_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCHEDULER_DEV_MODE", "1")
    monkeypatch.setenv("SCHEDULER_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SCHEDULER_ADMIN_PASSWORD_HASH", ADMIN_HASH)
    client = build_app().test_client()
    assert "generated" not in capsys.readouterr().err
    assert not (instance / "dev-admin.json").exists()
    assert client.get("/scheduler/jobs", headers=ADMIN).status_code == 200


def test_no_dev_mode_and_no_credentials_refuses_to_start(
    instance: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scheduler_service import ConfigError

    monkeypatch.setenv("SCHEDULER_INSTANCE_PATH", str(instance))
    with pytest.raises(ConfigError, match="SCHEDULER_ADMIN_PASSWORD"):
        create_app()
    assert "generated" not in capsys.readouterr().err
    assert not (instance / "dev-admin.json").exists()


# -- run: one malloc arena and frozen start-up objects (tuning.py) --------------------------


@pytest.fixture
def mallopt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record the mallopt() calls made through ctypes.CDLL(None) (the C library)."""
    import ctypes

    calls: list[tuple[int, int]] = []
    real_cdll = ctypes.CDLL

    class _Libc:
        def mallopt(self, parameter: int, value: int) -> int:
            calls.append((parameter, value))
            return 1

    def cdll(name: str | None, *args: object, **kwargs: object) -> object:
        return _Libc() if name is None else real_cdll(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    return calls


def _run_until_bind(
    runner: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Result:
    """Invoke ``run``, which stops at its bind: after the app is built, before any thread."""
    import waitress

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("address in use")

    monkeypatch.setattr(waitress, "create_server", refuse)
    return runner.invoke(main, ["run", "--port", "5000"], env=env)


def test_run_allocates_from_one_malloc_arena(
    runner: CliRunner,
    env: dict[str, str],
    mallopt_calls: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _run_until_bind(runner, env, monkeypatch)
    assert result.exit_code == 2 and "cannot listen" in result.stderr, result.output
    assert mallopt_calls == [(-8, 1)]  # M_ARENA_MAX = 1


def test_run_leaves_an_operators_malloc_arena_max(
    runner: CliRunner,
    env: dict[str, str],
    mallopt_calls: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _run_until_bind(runner, {**env, "MALLOC_ARENA_MAX": "4"}, monkeypatch)
    assert result.exit_code == 2, result.output
    assert mallopt_calls == []


def test_startup_objects_are_frozen_out_of_the_collector() -> None:
    import gc

    from scheduler_service.tuning import freeze_startup_objects

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000  # the interpreter's and the test's own objects
    finally:
        gc.unfreeze()


def test_version_names_the_installed_package(runner: CliRunner) -> None:
    from importlib.metadata import version

    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"scheduler-service, version {version('scheduler-service')}"
