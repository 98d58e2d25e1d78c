"""Failover benchmark: how long a SIGKILLed leader takes to be replaced, per coordination
backend, and whether any fire is doubled or lost on the way (issue 7).

    python bench/failover.py [--backends zookeeper,redis,postgresql] [--rounds 3]
                             [--lease 5] [--steady 10] [--jobs 3] [--keep]

Per backend: 3 replicas (`scheduler-service run`, tests/replicas.py's Cluster) on one fresh
PostgreSQL database (job store and run history), a few jobs firing every second
(`jobs.examples:record`, coalesce off, misfire grace 120 s). After --steady seconds the
leader is SIGKILLed, --rounds times; after each kill a fresh replica is started so that 3 stay
up, then the cluster runs --steady seconds again. Each kill also waits a random 0 to --lease
seconds, so that it does not fall at the same point of the replicas' renewal cycles every
time (the script's own timing is regular). Measured per round:

- failover to leader: from the kill until a surviving replica answers role "leader" on
  GET /scheduler (each survivor polled every 50 ms);
- failover to first fire: from the kill until the ``submitted_at`` of the first run the new
  leader fired that succeeded.

Over the whole window (first to last fire; the jobs are paused at the end and their runs left
to finish): duplicates (a scheduled time claimed by more than one run in the run history;
job-log lines beyond one per claimed fire), skipped_duplicate rows, fires claimed but refused
by max_instances (state skipped: never run), lost fires (a scheduled second between the first
and last fire that no run claimed) and the worst lateness (submitted_at - scheduled_run_time).

Needs TEST_POSTGRES_URL and, per backend, TEST_ZOOKEEPER_HOSTS / TEST_REDIS_URL (the same
variables as `make test`; `make bench-failover` sets them with scripts/services.sh). The
tables (markdown) go to stdout, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/failover.py`: tests/ is a package of the repo
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402 - tests.* report failures with pytest's outcome exceptions
from run import machine as run_machine  # noqa: E402  (bench/run.py, beside this script)

from tests.support.replicas import (  # noqa: E402
    COORDINATION,
    Cluster,
    fire_times,
    fresh_postgres_database,
)
from tests.support.server import Server  # noqa: E402

BACKENDS = ("zookeeper", "redis", "postgresql")
REPLICAS = 3
POLL = 0.05  # seconds between two GET /scheduler polls of the survivors
TAKEOVER_TIMEOUT = 60.0  # give up on a round when no survivor leads by then
FIRE_TIMEOUT = 30.0  # ... or when the new leader has not fired successfully by then
# pytest.fail / pytest.skip raise these (BaseException subclasses, not Exception)
OUTCOMES = (pytest.fail.Exception, pytest.skip.Exception)
T = TypeVar("T")


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while cleaning up (delivered when the block ends)."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def poll(condition: Callable[[], T | None], timeout: float, interval: float) -> T | None:
    """Call ``condition`` every ``interval`` s until it returns non-None; None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def parse_time(value: str) -> datetime:
    """An ISO time of the API as an aware UTC datetime."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- one round ----------------------------------------------------------------------------------


@dataclass
class Round:
    """What one SIGKILL of the leader gave."""

    killed_pid: int
    killed_at: datetime
    to_leader: float | None = None  # s from the kill to a survivor answering role "leader"
    to_fire: float | None = None  # s from the kill to the new leader's first succeeded fire
    new_pid: int | None = None


@dataclass
class Outcome:
    """Everything measured on one backend."""

    backend: str
    lease: float
    rounds: list[Round] = field(default_factory=list)
    jobs: int = 0
    window_s: float = 0.0
    expected: int = 0  # scheduled seconds in the window, all jobs
    claimed: int = 0  # of which claimed by a run
    dup_history: list[str] = field(default_factory=list)  # "job@time xN"
    dup_log: int = 0
    unrun: int = 0  # claimed by a live replica, succeeded, but no log line
    skipped_duplicate: int = 0
    skipped: list[str] = field(default_factory=list)  # refused by max_instances: not run
    lost: list[str] = field(default_factory=list)  # "job@time"
    worst_late_s: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def info(server: Server) -> dict[str, Any] | None:
    """GET /scheduler of one replica, None when it does not answer 200."""
    try:
        answer = server.request("GET", "/scheduler")
    except OSError:
        return None
    return answer.json() if answer.status == 200 else None


def all_runs(server: Server, job_id: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every run of ``job_id`` in the history (paged by 1000), or those scheduled ``since``."""
    runs: list[dict[str, Any]] = []
    query = f"&since={since.isoformat().replace('+00:00', 'Z')}" if since else ""
    while True:
        path = f"/scheduler/jobs/{job_id}/runs?limit=1000&offset={len(runs)}{query}"
        answer = server.request("GET", path)
        if answer.status != 200:
            raise RuntimeError(f"GET {path}: {answer.status} {answer.body[:300]!r}")
        page = answer.json()
        runs += page
        if len(page) < 1000:
            return runs


def kill_leader(cluster: Cluster, job_ids: list[str], lease: float) -> Round:
    """SIGKILL the agreed leader; time the takeover and the new leader's first fire."""
    leader = cluster.leader(timeout=TAKEOVER_TIMEOUT)
    survivors = [s for s in cluster.alive() if s is not leader]
    killed_wall = datetime.now(UTC)
    killed_at = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=10)
    result = Round(killed_pid=leader.pid, killed_at=killed_wall)

    def new_leader() -> Server | None:
        for server in survivors:
            answer = info(server)
            if answer is not None and answer.get("role") == "leader":
                return server
        return None

    elected = poll(new_leader, TAKEOVER_TIMEOUT, POLL)
    if elected is None:
        log(f"  no survivor leads {TAKEOVER_TIMEOUT:.0f} s after the kill")
        return result
    result.to_leader = time.monotonic() - killed_at
    result.new_pid = elected.pid

    def first_fire() -> float | None:
        since = killed_wall - timedelta(seconds=2 * lease + 5)  # missed fires are caught up
        fired = [
            parse_time(r["submitted_at"])
            for job_id in job_ids
            for r in all_runs(elected, job_id, since)
            if r["pid"] == elected.pid and r["state"] == "succeeded" and r["submitted_at"]
        ]
        fired = [t for t in fired if t >= killed_wall]
        return (min(fired) - killed_wall).total_seconds() if fired else None

    result.to_fire = poll(first_fire, FIRE_TIMEOUT, 0.2)
    if result.to_fire is None:
        log(f"  the new leader (pid {elected.pid}) fired nothing within {FIRE_TIMEOUT:.0f} s")
    return result


# -- one backend --------------------------------------------------------------------------------


def add_jobs(via: Server, log_file: Path, count: int) -> list[str]:
    """``count`` jobs recording each run every second from 2 s from now; their ids."""
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    ids = [f"tick{i}" for i in range(1, count + 1)]
    for job_id in ids:
        answer = via.request(
            "POST",
            "/scheduler/jobs",
            {
                "id": job_id,
                "func": "jobs.examples:record",
                "args": [str(log_file), job_id],
                "trigger": "interval",
                "seconds": 1,
                "start_date": start.isoformat(),
                "coalesce": False,
                "misfire_grace_time": 120,
            },
        )
        if answer.status != 200:
            raise RuntimeError(f"adding job {job_id}: {answer.status} {answer.body[:300]!r}")
    return ids


def log_lines(log_file: Path) -> Counter[tuple[str, int]]:
    """(job id, pid) -> executions the job itself wrote down."""
    if not log_file.exists():
        return Counter()
    rows = (line.split() for line in log_file.read_text().splitlines() if line.strip())
    return Counter((value, int(pid)) for _, pid, value in rows)


def settle(cluster: Cluster, job_ids: list[str], via: Server) -> None:
    """Pause the jobs, then wait until no run of a live replica is still under way."""
    for job_id in job_ids:
        answer = via.request("POST", f"/scheduler/jobs/{job_id}/pause")
        if answer.status != 200:
            raise RuntimeError(f"pausing {job_id}: {answer.status} {answer.body[:300]!r}")
    time.sleep(1.5)
    live = {s.pid for s in cluster.alive()}

    def quiet() -> bool | None:
        busy = [
            r
            for job_id in job_ids
            for r in all_runs(via, job_id)
            if r["pid"] in live and r["state"] in ("submitted", "running")
        ]
        return True if not busy else None

    if poll(quiet, 15.0, 0.5) is None:
        log("  warning: runs still under way 15 s after pausing the jobs")


def tally(outcome: Outcome, job_ids: list[str], via: Server, log_file: Path) -> None:
    """Fill the whole-window counts of ``outcome`` from the run history and the job log."""
    killed = {r.killed_pid for r in outcome.rounds}
    lines = log_lines(log_file)
    firsts, lasts = [], []
    for job_id in job_ids:
        runs = all_runs(via, job_id)
        outcome.states.update(r["state"] for r in runs)
        outcome.skipped_duplicate += sum(r["state"] == "skipped_duplicate" for r in runs)
        outcome.skipped += [
            f"{job_id}@{parse_time(r['scheduled_run_time']):%H:%M:%S} by pid {r['pid']}"
            for r in sorted(runs, key=lambda r: r["scheduled_run_time"])
            if r["state"] == "skipped"
        ]
        claims = fire_times(runs)
        if not claims:
            outcome.lost.append(f"{job_id}: never fired")
            continue
        first, last = min(claims), max(claims)
        firsts.append(first)
        lasts.append(last)
        seconds = int((last - first).total_seconds())
        expected = {first + timedelta(seconds=i) for i in range(seconds + 1)}
        outcome.expected += len(expected)
        outcome.claimed += len(set(claims) & expected)
        outcome.lost += [f"{job_id}@{t:%H:%M:%S}" for t in sorted(expected - set(claims))]
        outcome.dup_history += [
            f"{job_id}@{t:%H:%M:%S} x{n}" for t, n in sorted(claims.items()) if n > 1
        ]
        # Log lines against claims, per process: a live replica writes exactly one line per
        # claim it ran (all finished after settle); a killed one at most one (it may die
        # mid-run). A claim refused by max_instances (skipped) never runs.
        mine = [
            r
            for r in runs
            if r["attempt"] == 1
            and r["trigger"] == "schedule"
            and r["state"] not in ("skipped_duplicate", "skipped")
        ]
        per_pid = Counter(r["pid"] for r in mine)
        for pid in set(per_pid) | {p for (j, p) in lines if j == job_id}:
            written, claimed = lines[(job_id, pid)], per_pid[pid]
            outcome.dup_log += max(0, written - claimed)
            if pid not in killed:
                outcome.unrun += max(0, claimed - written)
        for r in mine:
            if r["submitted_at"]:
                late = parse_time(r["submitted_at"]) - parse_time(r["scheduled_run_time"])
                outcome.worst_late_s = max(outcome.worst_late_s, late.total_seconds())
    if firsts:
        outcome.window_s = (max(lasts) - min(firsts)).total_seconds() + 1


def zookeeper_cleanup(cluster: Cluster) -> None:
    """Delete the coordination group's znodes (a ZooKeeper path outlives its replicas)."""
    url = cluster.env.get("SCHEDULER_COORDINATION", "")
    if not url.startswith("zookeeper://"):
        return
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return
    from kazoo.client import KazooClient

    client = KazooClient(hosts=parts.netloc, timeout=5)
    try:
        client.start(timeout=5)
        client.delete(parts.path, recursive=True)
    except Exception as exc:
        log(f"  could not delete the ZooKeeper path {parts.path}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            client.stop()
            client.close()


def run_backend(outcome: Outcome, cfg: argparse.Namespace, work: Path) -> None:
    """Start the cluster, kill its leader ``cfg.rounds`` times, count into ``outcome`` (so
    that a failure keeps the rounds done); always clean up."""
    backend = outcome.backend
    log_dir = work / backend
    log_dir.mkdir()
    log_file = log_dir / "runs.log"
    with fresh_postgres_database() as database:
        cluster = Cluster(
            backend,
            database,
            log_dir,
            SCHEDULER_COORDINATION_LEASE=f"{cfg.lease:g}",
        )
        try:
            log(f"[{backend}] starting {REPLICAS} replicas (lease {cfg.lease:g} s)...")
            cluster.start(REPLICAS)
            leader = cluster.leader(timeout=TAKEOVER_TIMEOUT)
            via = next(s for s in cluster.alive() if s is not leader)
            job_ids = add_jobs(via, log_file, cfg.jobs)
            outcome.jobs = len(job_ids)
            log(f"[{backend}] {len(job_ids)} jobs every 1 s; steady state {cfg.steady:g} s")
            time.sleep(2 + cfg.steady)
            for number in range(1, cfg.rounds + 1):
                time.sleep(random.uniform(0, cfg.lease))  # a random point of the lease cycles
                result = kill_leader(cluster, job_ids, cfg.lease)
                outcome.rounds.append(result)
                at = result.killed_at.strftime("%H:%M:%S.%f")[:-3]
                log(
                    f"[{backend}] round {number}/{cfg.rounds}: killed pid {result.killed_pid}"
                    f" at {at}; leader after {fmt(result.to_leader)} s (pid {result.new_pid}),"
                    f" first fire after {fmt(result.to_fire)} s"
                )
                if result.to_leader is None:
                    raise RuntimeError(f"round {number}: no new leader")
                cluster.start(1)  # 3 replicas up again
                time.sleep(cfg.steady)
            via = cluster.alive()[0]
            settle(cluster, job_ids, via)
            tally(outcome, job_ids, via, log_file)
        finally:
            with shielded():
                cluster.close()
                if backend == "zookeeper":
                    zookeeper_cleanup(cluster)


# -- report -------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure, or "n/a"."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def spread(values: list[float | None]) -> str:
    """The median and min-max of the figures taken (n/a ones are counted apart)."""
    taken = [v for v in values if v is not None]
    if not taken:
        return "n/a"
    text = fmt(statistics.median(taken))
    if len(taken) > 1:
        text += f" ({fmt(min(taken))}-{fmt(max(taken))})"
    missing = len(values) - len(taken)
    return text + (f", {missing} n/a" if missing else "")


def listed(items: list[str], limit: int = 8) -> str:
    """A count, with the first few items named."""
    if not items:
        return "0"
    more = f", ... {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} ({', '.join(items[:limit])}{more})"


def table(outcome: Outcome, cfg: argparse.Namespace) -> list[str]:
    """The markdown section of one backend."""
    rounds = outcome.rounds
    lines = [
        f"### {outcome.backend} (lease {outcome.lease:g} s, {len(rounds)} leader kill(s), "
        f"{REPLICAS} replicas, {outcome.jobs} jobs every 1 s)",
        "",
    ]
    if outcome.error:
        lines += [f"FAILED: {outcome.error}", ""]
        if not rounds:
            return lines
    per_round = ", ".join(
        f"{r.killed_at:%H:%M:%S} pid {r.killed_pid}: {fmt(r.to_leader)}/{fmt(r.to_fire)}"
        for r in rounds
    )
    lines += [
        "| figure | value |",
        "|---|---|",
        f"| failover to leader (s), median (min-max) | {spread([r.to_leader for r in rounds])} |",
        f"| failover to first fire (s), median (min-max) | {spread([r.to_fire for r in rounds])} |",
        f"| per kill (UTC, pid): to leader / to first fire (s) | {per_round} |",
        f"| fires in the window ({outcome.window_s:.0f} s x {outcome.jobs} jobs) | "
        f"{outcome.expected} scheduled, {outcome.claimed} claimed |",
        f"| duplicates, run history (fires claimed twice) | {listed(outcome.dup_history)} |",
        f"| duplicates, job log (lines beyond one per claim) | {outcome.dup_log} |",
        f"| skipped_duplicate rows | {outcome.skipped_duplicate} |",
        f"| claimed but refused by max_instances (state skipped) | {listed(outcome.skipped)} |",
        f"| lost fires (no claim) | {listed(outcome.lost)} |",
        f"| worst lateness, submitted - scheduled (s) | {fmt(outcome.worst_late_s)} |",
        "",
        "Run states: "
        + ", ".join(f"{state} {n}" for state, n in sorted(outcome.states.items()))
        + (
            f"; claimed by a live replica but no log line: {outcome.unrun}" if outcome.unrun else ""
        ),
        "",
    ]
    return lines


def server_versions() -> str:
    """The versions of the PostgreSQL, Redis and ZooKeeper servers the variables name."""
    found = []
    with contextlib.suppress(Exception):
        import psycopg

        url = urlsplit(os.environ["TEST_POSTGRES_URL"])
        with psycopg.connect(f"postgresql://{url.netloc}{url.path}", connect_timeout=3) as conn:
            found.append(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}")
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_timeout=3)
        found.append(f"Redis {client.info('server')['redis_version']}")
        client.close()
    with contextlib.suppress(Exception):
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=os.environ["TEST_ZOOKEEPER_HOSTS"], timeout=3)
        zk.start(timeout=3)
        try:
            words = zk.command(b"srvr").split()  # "Zookeeper version: 3.8.0-..., built on"
            found.append("ZooKeeper " + words[2].split("-")[0].rstrip(","))
        finally:
            zk.stop()
            zk.close()
    return ", ".join(found) or "?"


def machine() -> list[str]:
    """Lines naming the machine, Python and the drivers, as bench/run.py prints them."""
    packages = ("scheduler-service", "apscheduler", "flask-apscheduler", "kazoo", "redis")
    return [*run_machine((*packages, "psycopg")), f"- servers: {server_versions()}"]


# -- main ---------------------------------------------------------------------------------------


def missing_variables(backend: str) -> list[str]:
    """The TEST_* variables ``backend`` needs that are not set."""
    needed = ["TEST_POSTGRES_URL", COORDINATION[backend][0]]
    return [v for v in dict.fromkeys(needed) if not os.environ.get(v)]


def main() -> int:
    """Parse the flags, run every backend, print the tables; 1 when a backend failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset")
    parser.add_argument("--rounds", type=int, default=3, help="leader kills per backend")
    parser.add_argument("--lease", type=float, default=5.0, help="SCHEDULER_COORDINATION_LEASE")
    parser.add_argument("--steady", type=float, default=10.0, help="seconds before each kill")
    parser.add_argument("--jobs", type=int, default=3, help="jobs firing every second")
    parser.add_argument(
        "--keep", action="store_true", help="keep the replicas' logs and the job log (tmp dir)"
    )
    cfg = parser.parse_args()
    backends = [b.strip() for b in cfg.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in COORDINATION:
            parser.error(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if cfg.rounds < 1 or cfg.jobs < 1 or cfg.steady < 0 or not 1 <= cfg.lease <= 600:
        parser.error("need --rounds >= 1, --jobs >= 1, --steady >= 0, 1 <= --lease <= 600")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the clean-ups

    started = datetime.now(UTC)
    outcomes: list[Outcome] = []
    failed = False
    skipped: list[str] = []
    tmp = tempfile.mkdtemp(prefix="ss-failover-")
    try:
        for backend in backends:
            missing = missing_variables(backend)
            if missing:
                why = f"{', '.join(missing)} not set"
                log(
                    f"[{backend}] skipped: {why} "
                    '(run: eval "$(bash scripts/services.sh up)", or use make bench-failover)'
                )
                skipped.append(f"- skipped {backend}: {why}")
                failed = True
                continue
            outcome = Outcome(backend=backend, lease=cfg.lease)
            outcomes.append(outcome)
            try:
                run_backend(outcome, cfg, Path(tmp))
            except (Exception, *OUTCOMES) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                reason = f"{type(exc).__name__}: {reason}"[:300]
                log(f"[{backend}] FAILED: {reason}")
                for name in sorted((Path(tmp) / backend).glob("*.stderr")):
                    tail = name.read_text(errors="replace").strip().splitlines()[-5:]
                    log(f"  {name.name}: " + " | ".join(tail))
                outcome.error = reason
                failed = True
    finally:
        if cfg.keep:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    took = int((datetime.now(UTC) - started).total_seconds())
    command = " ".join(["python bench/failover.py", *sys.argv[1:]])
    out = [
        f"- date: {started:%Y-%m-%d %H:%M} UTC, took {took // 60} min {took % 60} s",
        f"- command: `{command}`",
        *machine(),
        f"- per backend: {REPLICAS} replicas on one fresh PostgreSQL database, {cfg.jobs} jobs"
        f" every 1 s (coalesce off, misfire grace 120 s), {cfg.steady:g} s steady state plus a"
        f" random 0-{cfg.lease:g} s before each of {cfg.rounds} SIGKILLs of the leader, a fresh"
        " replica started after each;"
        f" survivors polled every {POLL * 1000:.0f} ms",
        *skipped,
        "",
    ]
    for outcome in outcomes:
        out += table(outcome, cfg)
    print("\n".join(out).rstrip(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the clean-ups ran on the way out
        log("interrupted; the replicas were stopped and the databases dropped")
        sys.exit(130)
