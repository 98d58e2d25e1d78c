"""What a start costs: no Alembic on a database already at the head, no blog models until a blog
request, declared jobs kept compact; and the behaviour those savings must not change."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask

from scheduler_service.errors import ConfigError
from scheduler_service.extensions import db
from scheduler_service.migrate_lock import VERSIONS, at_head, script_heads
from scheduler_service.scheduler.declared import DeclaredJobs, load_declared_jobs
from scheduler_service.scheduler.specs import JobContext, parse_spec
from tests.support.credentials import ADMIN
from tests.support.settings import base_config

ROOT = Path(__file__).resolve().parent.parent


# -- the head check ----------------------------------------------------------------------------


def _revision(folder: Path, name: str, down: object, *, annotated: bool = False) -> None:
    hint = ": str | None" if annotated else ""
    (folder / f"{name}.py").write_text(
        f'"""{name}"""\nrevision{hint} = {name!r}\ndown_revision{hint} = {down!r}\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )


def test_the_heads_are_alembics() -> None:
    assert script_heads() == set(ScriptDirectory(str(VERSIONS.parent)).get_heads())


@pytest.mark.parametrize(
    ("revisions", "heads"),
    [
        ([("a", None), ("b", "a")], {"b"}),
        ([("a", None), ("b", "a"), ("c", "a")], {"b", "c"}),  # two branches
        ([("a", None), ("b", "a"), ("c", "a"), ("d", ("b", "c"))], {"d"}),  # merged
    ],
)
def test_heads_of_branches_and_merges(
    tmp_path: Path, revisions: list[tuple[str, object]], heads: set[str]
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for i, (name, down) in enumerate(revisions):
        _revision(versions, name, down, annotated=bool(i % 2))  # both spellings
    (versions / "__init__.py").write_text("")
    assert script_heads(versions) == heads == set(ScriptDirectory(str(tmp_path)).get_heads())


def test_a_script_not_read_as_literals_is_left_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    _revision(versions, "a", None)
    (versions / "b.py").write_text("revision = 'b'\ndown_revision = 'a' if True else None\n")
    assert script_heads(versions) is None
    (versions / "b.py").unlink()
    (versions / "helpers.py").write_text("HELPER = 1\n")  # Alembic refuses such a file: so do we
    script_heads.cache_clear()
    assert script_heads(versions) is None
    with pytest.raises(CommandError):
        ScriptDirectory(str(tmp_path)).get_heads()


def test_at_head_reads_the_version_table() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        assert not at_head(connection)  # no version table: a fresh database
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        assert not at_head(connection)  # no version: nothing applied
        insert = sa.text("INSERT INTO alembic_version VALUES (:head)")
        connection.execute(insert, [{"head": head} for head in script_heads() or ()])
        assert at_head(connection)
        connection.execute(insert, {"head": "elsewhere"})
        assert not at_head(connection)  # a revision the scripts do not know: Alembic decides


def _revisions(app: Flask) -> set[str]:
    with app.app_context(), db.engine.connect() as connection:
        return set(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


def test_a_database_behind_the_head_is_upgraded(make_app: Callable[..., Flask]) -> None:
    first = make_app()
    with first.app_context():
        flask_migrate.downgrade(revision="0002_runs")
    assert _revisions(first) == {"0002_runs"}

    second = make_app()
    assert _revisions(second) == set(script_heads())
    with second.app_context():
        indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("scheduler_runs")}
    assert "uq_scheduler_runs_claim" in indexes  # 0003's change is back


def test_flask_db_commands_load_flask_migrate(make_app: Callable[..., Flask]) -> None:
    make_app()
    app = make_app()  # at the head: Flask-Migrate was not needed to start
    runner = app.test_cli_runner()
    assert "downgrade" in runner.invoke(args=["db", "--help"]).output
    result = runner.invoke(args=["db", "downgrade", "0002_runs"])
    assert result.exit_code == 0, result.output
    assert _revisions(app) == {"0002_runs"}


_PROBE = """
import json, sys
from scheduler_service import create_app
app = create_app(json.loads(sys.argv[1]))
watched = ("alembic", "flask_migrate", "scheduler_service.blog.models")
loaded = [name for name in watched if name in sys.modules]
response = app.test_client().get("/api/v1/users", headers=json.loads(sys.argv[2]))
print(json.dumps({"loaded": loaded, "status": response.status_code}))
"""


def _start_in_a_new_process(tmp_path: Path) -> dict[str, object]:
    config = {**base_config(tmp_path / "instance"), "SCHEDULER_AUTOSTART": False}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROBE), json.dumps(config), json.dumps(ADMIN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_start_at_the_head_loads_no_alembic_and_no_blog_models(tmp_path: Path) -> None:
    fresh = _start_in_a_new_process(tmp_path)
    assert {"alembic", "flask_migrate"} <= set(fresh["loaded"])  # it migrated
    again = _start_in_a_new_process(tmp_path)
    assert again == {"loaded": [], "status": 200}  # the blog's models load with its requests


# -- declared jobs, kept compact ---------------------------------------------------------------

CONTEXT = JobContext(("jobs",), ("default",), ("default",), ZoneInfo("UTC"))
DECLARED = [
    {"id": "i", "func": "jobs.examples:print_test", "args": ["x"], "trigger": "interval",
     "minutes": 5, "start_date": "2030-01-01 00:00:00", "retries": 2, "timeout": 30},
    {"id": "c", "func": "jobs.ops:disk_usage", "kwargs": {"path": "/"}, "trigger": "cron",
     "crontab": "0 3 * * 1-5", "max_instances": 2, "coalesce": False, "executor": "default"},
    {"id": "d", "func": "jobs.examples:print_test", "args": ["y"], "trigger": "date",
     "run_date": "2099-01-01T00:00:00+00:00", "name": "once", "replace_existing": True},
    {"id": "legacy", "func": "jobs.examples:print_test", "args": ["z"],
     "trigger": {"type": "interval", "seconds": 30}},
]  # fmt: skip


def _settings(jobs: list[dict]) -> dict[str, object]:
    return {"SCHEDULER_JOBS": jobs, "SCHEDULER_JOBS_FILE": None}


def test_declared_jobs_read_back_as_validated() -> None:
    declared = load_declared_jobs(_settings(DECLARED), CONTEXT)
    validated = [parse_spec(job, CONTEXT) for job in DECLARED]
    assert isinstance(declared, DeclaredJobs) and len(declared) == len(DECLARED)
    assert list(declared) == validated
    assert [s.model_fields_set for s in declared] == [s.model_fields_set for s in validated]
    assert declared[1] == validated[1] and declared[-1] == validated[-1]
    assert declared[1:3] == validated[1:3]


def test_declared_jobs_are_kept_small() -> None:
    jobs = [
        {"id": f"j{i}", "func": "jobs.examples:print_test", "args": [f"n{i}"],
         "trigger": "interval", "hours": 1}
        for i in range(2000)
    ]  # fmt: skip
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        declared = load_declared_jobs(_settings(jobs), CONTEXT)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(declared) == 2000
    # The set fields only (about 400 bytes a job), not a JobSpec of every field (about 2 KB).
    assert kept / len(jobs) < 1000


def test_a_declared_id_of_the_wrong_type_is_a_one_line_error() -> None:
    job = {"id": ["x"], "func": "jobs.examples:print_test", "trigger": "interval", "seconds": 5}
    with pytest.raises(ConfigError, match=r"^SCHEDULER_JOBS: job \['x'\]: field 'id': "):
        load_declared_jobs(_settings([job]), CONTEXT)
