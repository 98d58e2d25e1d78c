"""Replicas that start at the same instant on one fresh database and one shared job store.

Each test runs one start-up step in N real processes (spawned), released together by a barrier:
the Alembic upgrade (PostgreSQL, MariaDB, SQLite), the creation of the SQLAlchemy job store's
table, and the upsert of a declared job. Every process must succeed, leaving one result.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.live_stores import Live, sql_live
from tests.support.api import JOB
from tests.support.backends import service_url

pytestmark = pytest.mark.slow

N = 4  # processes per race
ROUNDS = 10  # upsert races, one job id each: the first (cold) one seldom collides
TIMEOUT = 60.0  # seconds for a whole race, spawning included
SPAWN = multiprocessing.get_context("spawn")
MIGRATIONS = Path(__file__).resolve().parents[2] / "scheduler_service" / "migrations"
TABLES = {"blog_users", "blog_tags", "blog_posts", "blog_post_tags", "scheduler_runs"}

Step = Callable[[Any], Any]  # run when the barrier opens; gets the barrier to meet again


# --- N processes, one instant ---------------------------------------------------------------------
def _worker(prepare: Callable[..., Step], args: tuple, barrier: Any, results: Any, i: int) -> None:
    """In a child: prepare (imports, app, engine), wait for the others, run the step, report."""
    try:
        step = prepare(*args)
        barrier.wait(TIMEOUT)
        results.put((i, True, step(barrier)))
    except BaseException:
        barrier.abort()  # nobody waits for a process that is gone
        results.put((i, False, traceback.format_exc()))


def run_at_once(prepare: Callable[..., Step], *args: Any) -> list[Any]:
    """Run ``prepare(*args)`` in N spawned processes, then the step it returns in all of them at
    once; return each step's result, or fail the test with every process's traceback."""
    barrier, results = SPAWN.Barrier(N), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_worker, args=(prepare, args, barrier, results, i), daemon=True)
        for i in range(N)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, tuple[bool, Any]] = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(outcomes) < N:
            # Exited before this get(): had it reported, get() would have returned its report.
            gone = [i for i, p in enumerate(processes) if p.exitcode is not None]
            try:
                index, ok, value = results.get(timeout=0.1)
            except queue.Empty:
                for i in set(gone) - set(outcomes):
                    outcomes[i] = (False, f"exited with code {processes[i].exitcode}, no report")
                if time.monotonic() > deadline:
                    pytest.fail(f"only {len(outcomes)} of {N} processes reported in {TIMEOUT}s")
                continue
            outcomes[index] = (ok, value)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    failed = [f"process {i}:\n{value}" for i, (ok, value) in sorted(outcomes.items()) if not ok]
    if failed:
        pytest.fail(f"{len(failed)} of {N} processes failed:\n" + "\n".join(failed))
    return [value for _, (_, value) in sorted(outcomes.items())]


# --- the steps, as each process runs them ---------------------------------------------------------
def _migrate(url: str, instance: str) -> Step:
    from scheduler_service import create_job_app, upgrade_database

    app = create_job_app({"SCHEDULER_DATABASE_URL": url, "SCHEDULER_INSTANCE_PATH": instance})
    return lambda barrier: upgrade_database(app)


def _start_store(url: str) -> Step:
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler_service.stores import build_jobstore

    store = build_jobstore("default", url)
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")

    def step(barrier: Any) -> tuple[str, list[str]]:
        scheduler.start(paused=True)  # the race: every process creates the table
        try:
            own = f"pid-{os.getpid()}"
            scheduler.add_job("jobs.examples:print_test", "interval", ["x"], minutes=5, id=own)
            barrier.wait(TIMEOUT)  # every process has added its job
            return own, sorted(job.id for job in scheduler.get_jobs())
        finally:
            scheduler.shutdown()

    return step


def _upsert_ids() -> list[str]:
    return [f"{JOB['id']}-{n}" for n in range(ROUNDS)]


def _upsert(url: str) -> Step:
    from zoneinfo import ZoneInfo

    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler_service.scheduler.service import JobService
    from scheduler_service.scheduler.specs import JobContext, parse_spec
    from scheduler_service.stores import build_jobstore

    store = build_jobstore("default", url)
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
    context = JobContext(("jobs",), ("default",), ("default",), ZoneInfo("UTC"))
    service = JobService(scheduler, context)
    specs = [parse_spec({**JOB, "id": job_id}, context) for job_id in _upsert_ids()]
    scheduler.start(paused=True)

    def step(barrier: Any) -> list[str]:
        outcomes = []
        try:
            for spec in specs:
                barrier.wait(TIMEOUT)  # a race per job: each process finds no job, adds it
                outcomes.append(service.upsert_job(spec))
            return outcomes
        finally:
            scheduler.shutdown()

    return step


# --- fixtures -------------------------------------------------------------------------------------
_SERVERS = {"postgresql": "TEST_POSTGRES_URL", "mariadb": "TEST_MYSQL_URL"}


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of this test's own, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.sqlite'}"
        return
    base = sa.make_url(service_url(_SERVERS[request.param]))
    name = f"scheduler_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")
        admin.dispose()


@pytest.fixture
def live_table() -> Iterator[Live]:
    """A job store URL on the PostgreSQL server with a table name of its own, dropped after."""
    live = sql_live(service_url("TEST_POSTGRES_URL"), f"ss_race_{uuid.uuid4().hex[:12]}")
    yield live
    live.drop()


# --- the races ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fresh_database",
    [
        pytest.param("postgresql", marks=pytest.mark.services),
        pytest.param("mariadb", marks=pytest.mark.services),
        "sqlite",
    ],
    indirect=True,
)
def test_replicas_migrate_a_fresh_database_at_once(fresh_database: str, tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    run_at_once(_migrate, fresh_database, str(tmp_path / "instance"))

    engine = sa.create_engine(fresh_database)
    try:
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert sorted(versions.scalars()) == sorted(heads)
        assert set(sa.inspect(engine).get_table_names()) >= TABLES | {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.services
def test_replicas_create_the_job_store_table_at_once(live_table: Live) -> None:
    seen = run_at_once(_start_store, live_table.url)

    added = sorted(own for own, _ in seen)
    assert len(set(added)) == N
    assert all(ids == added for _, ids in seen)  # each process sees every other's job


@pytest.mark.services
def test_replicas_upsert_one_declared_job_at_once(live_table: Live) -> None:
    from scheduler_service.stores import build_jobstore

    store = build_jobstore("default", live_table.url)
    store.jobs_t.create(store.engine)  # the table exists: this race is about the job
    try:
        per_process = run_at_once(_upsert, live_table.url)

        for outcomes in zip(*per_process, strict=True):  # one race: one adds, the others agree
            assert sorted(outcomes) == ["added"] + ["unchanged"] * (N - 1)
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(store.jobs_t.c.id)).scalars().all()
        assert sorted(rows) == sorted(_upsert_ids())  # each job stored once
    finally:
        store.engine.dispose()
