"""Issue 14 across real replicas on one PostgreSQL store (SPEC §6, §8): the fire ledger has no
gap across the kill -9 of the leader and nothing runs twice; max_instances and pause hold for
the whole cluster; retries are durable work that only the leader runs; GET /scheduler/cluster
tells who is there and who died."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.replicas import (
    COORDINATION,
    Cluster,
    cluster_view,
    executions,
    fires,
    fresh_postgres_database,
    recording_job,
    run_record,
    stderr_tails,
    utc,
)
from tests.support.server import Answer, Server
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]

TAKEOVER = 10.0  # a dead leader is replaced within the lease (5 s) plus one renewal
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
SETTINGS = {
    "SCHEDULER_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
    "SCHEDULER_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
}
# A dead process's runs are closed by the leader's sweep once its heartbeat is older than the
# timeout: a few more heartbeat intervals for the sweep itself.
SWEEP = HEARTBEAT_TIMEOUT + 4 * HEARTBEAT_INTERVAL + 2.0
PAUSE_SEEN = 3.0  # every replica sees a pause at once (a notice), at worst in one heartbeat
OPEN = frozenset({"submitted", "running"})
UNSETTLED = OPEN | {"pending"}
DECIDED = frozenset({"run", "coalesced", "missed", "skipped"})  # exactly one per due instant
ONE_BACKEND = ["postgresql"]  # the tests that are not about the election itself


@pytest.fixture
def cluster(coordination: str, tmp_path: Path) -> Iterator[Cluster]:
    """A cluster on ``coordination`` with short heartbeats; its replicas' stderr tails are
    printed at teardown (pytest shows them with a failure)."""
    with fresh_postgres_database() as database:
        cluster = Cluster(coordination, database, tmp_path, **SETTINGS)
        try:
            yield cluster
        finally:
            print(stderr_tails(cluster, lines=60))
            cluster.close()


# -- helpers --------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def whole_second(moment: datetime, up: bool = False) -> datetime:
    floor = moment.replace(microsecond=0)
    return floor + timedelta(seconds=1) if up and floor != moment else floor


def add_job(via: Server, body: dict[str, Any]) -> dict[str, Any]:
    answer = via.request("POST", "/scheduler/jobs", body)
    assert answer.status == 200, answer.body
    return answer.json()


def ticking_job(job_id: str, log: Path, start: datetime) -> dict[str, Any]:
    """``recording_job`` with coalescing left at its default (a failover's late fires become
    one run) and 30 s of grace, enough that they still run."""
    body = recording_job(job_id, log, start)
    for option in ("coalesce", "max_instances"):
        del body[option]
    return {**body, "misfire_grace_time": 30}


def failing_job(job_id: str, start: datetime) -> dict[str, Any]:
    """One fire at ``start`` (the next is an hour later) that always fails: 2 retries, the
    first 2 s after the failure, the second 4 s after the next. Its fire is ``start`` even when
    the POST lands after it."""
    return {
        "id": job_id,
        "func": "jobs.examples:fail",
        "args": ["on purpose"],
        "trigger": "interval",
        "hours": 1,
        "start_date": start.isoformat(),
        "next_run_time": start.isoformat(),
        "retries": 2,
        "retry_delay": 2,
    }


def replica_rows(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["replica_id"]: row for row in view["replicas"]}


def identities(cluster: Cluster) -> dict[int, dict[str, Any]]:
    """pid -> the replica's row in GET /scheduler/cluster (replica_id, boot...), for every
    live replica, once every one of them has a heartbeat row."""
    servers = cluster.alive()
    ids = {cluster.info(s)["replica_id"]: s.pid for s in servers}

    def complete() -> dict[int, dict[str, Any]] | None:
        rows = replica_rows(cluster_view(servers[0]))
        if not ids.keys() <= rows.keys():
            return None
        return {pid: rows[replica_id] for replica_id, pid in ids.items()}

    return wait_for(
        complete, timeout=5, interval=0.1, what="a heartbeat row for every replica",
        details=lambda: stderr_tails(cluster),
    )  # fmt: skip


def shown_alive(server: Server, replica_id: str) -> bool:
    """Whether ``server``'s GET /scheduler/cluster lists ``replica_id`` as alive."""
    row = replica_rows(cluster_view(server)).get(replica_id)
    return row is not None and row["alive"] is True


def all_paused(cluster: Cluster, paused: bool) -> bool:
    """Whether every live replica says the scheduler is paused (or running), in GET /scheduler
    and in the cluster's flag."""
    state = "paused" if paused else "running"
    return all(
        cluster.info(s)["state"] == state and cluster_view(s)["paused"] is paused
        for s in cluster.alive()
    )


def await_takeover(
    cluster: Cluster, candidates: list[Server], killed_at: datetime
) -> tuple[Server, datetime, datetime]:
    """Wait until exactly one of ``candidates`` leads and fires and all agree; return it, the
    last moment at which none of them fired yet (a due instant before it fell while no replica
    fired), and the moment it was seen firing."""
    leaderless_until = killed_at

    def firing() -> Server | None:
        nonlocal leaderless_until
        asked = now()
        infos = [cluster.info(s) for s in candidates]
        pairs = zip(candidates, infos, strict=True)
        leaders = [s for s, i in pairs if i["role"] == "leader" and i["firing"]]
        if not leaders:
            leaderless_until = asked
            return None
        leader_id = infos[candidates.index(leaders[0])]["replica_id"]
        if len(leaders) == 1 and all(i["leader_id"] == leader_id for i in infos):
            return leaders[0]
        return None

    new = wait_for(
        firing, timeout=TAKEOVER, interval=0.05, what="a follower leads and fires",
        details=lambda: stderr_tails(cluster),
    )  # fmt: skip
    return new, leaderless_until, now()


def check_ledger(
    ledger: list[dict[str, Any]],
    first: datetime,
    last: datetime,
    *,
    old_id: str,
    new_id: str,
    killed_at: datetime,
    leaderless_until: datetime,
    took_over_at: datetime,
) -> dict[datetime, dict[str, Any]]:
    """Every whole second from ``first`` to ``last`` has exactly one decided item; the items
    tell who decided and whether a leader fired; return the decided items by instant."""
    ledger = [i for i in ledger if first <= utc(i["scheduled_run_time"]) <= last]
    by_instant: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for item in ledger:
        by_instant[utc(item["scheduled_run_time"])].append(item)
    strange = [i for i in ledger if i["outcome"] not in DECIDED | {"skipped_duplicate"}]
    assert not strange, f"ledger items with an unknown outcome: {strange}"
    span = int((last - first).total_seconds())
    instants = [first + timedelta(seconds=n) for n in range(span + 1)]
    decided: dict[datetime, dict[str, Any]] = {}
    gaps, doubles = [], []
    for instant in instants:
        items = [i for i in by_instant[instant] if i["outcome"] in DECIDED]
        if not items:
            gaps.append(instant.isoformat())
        elif len(items) > 1:
            doubles.append(items)
        else:
            decided[instant] = items[0]
    assert not gaps, f"due instants with no ledger item: {gaps}"
    assert not doubles, f"due instants decided twice: {doubles}"
    grid = set(instants)
    off_grid = sorted(i.isoformat() for i in by_instant if i not in grid)
    assert not off_grid, f"ledger items off the 1 s grid: {off_grid}"

    for instant, item in decided.items():
        where = f"{instant.isoformat()}: {item}"
        assert item["decided_by"] in (old_id, new_id), where
        if instant < killed_at - timedelta(seconds=1):
            # The old leader was firing then.
            assert item["no_leader"] is False and item["decided_by"] == old_id, where
        elif (
            killed_at + timedelta(seconds=0.1) < instant < leaderless_until - timedelta(seconds=0.3)
        ):
            # Dead leader, new one not firing yet: found and recorded by the new leader.
            assert item["no_leader"] is True and item["decided_by"] == new_id, where
        elif instant > took_over_at + timedelta(seconds=1):
            assert item["no_leader"] is False and item["decided_by"] == new_id, where
            assert item["outcome"] == "run", where

    runs = [i for i in ledger if i["outcome"] == "run"]
    twice = [n for n, c in Counter(i["run_id"] for i in runs).items() if c > 1]
    assert not twice, f"runs that stand for two instants: {twice}"
    # A second claim of an instant only where the killed leader had claimed it first.
    for item in ledger:
        if item["outcome"] == "skipped_duplicate":
            holder = decided.get(utc(item["scheduled_run_time"]))
            assert holder is not None and holder["decided_by"] == old_id, (item, holder)
    return decided


def check_coalesced(via: Server, job_id: str, decided: dict[datetime, dict[str, Any]]) -> int:
    """Each coalesced item points at a run of the job, at or after its instant, that ran (or
    was meant to); return how many there are."""
    coalesced = [(t, i) for t, i in decided.items() if i["outcome"] == "coalesced"]
    run_ids = {i["run_id"] for i in decided.values() if i["outcome"] == "run"}
    for instant, item in coalesced:
        target_id = item["coalesced_into"]
        assert isinstance(target_id, int), item
        target = run_record(via, target_id)
        assert target["job_id"] == job_id, (item, target)
        assert utc(target["scheduled_run_time"]) >= instant, (item, target)
        assert target["state"] in {"submitted", "running", "succeeded", "unknown"}, (item, target)
        if utc(target["scheduled_run_time"]) <= max(decided):
            assert target_id in run_ids, f"{item} points at a run the ledger does not list"
    return len(coalesced)


def check_executions(
    lines: list[tuple[float, int]], runs: list[dict[str, Any]], cutoff: float, killed_pid: int
) -> None:
    """Each execution the job wrote down belongs to exactly one started run of its process,
    and no run executed twice; an execution no run accounts for is only the killed process's,
    at most one per run of it whose outcome is unknown; each succeeded run wrote its line."""
    started = [r for r in runs if r["started_at"] and r["state"] != "skipped_duplicate"]
    per_run: Counter[int] = Counter()
    orphans, ambiguous = [], []

    def owners_within(at: float, pid: int, tolerance: float) -> list[dict[str, Any]]:
        return [
            r
            for r in started
            if r["pid"] == pid
            and utc(r["started_at"]).timestamp() - tolerance <= at
            and (r["finished_at"] is None or at <= utc(r["finished_at"]).timestamp() + tolerance)
        ]

    for at, pid in lines:
        # The run whose recorded start and finish hold the line (one clock, one process);
        # a wider margin only when none does (a catch-up run and the next fire can start
        # a few milliseconds apart, so a wide margin alone would make both owners).
        owners = owners_within(at, pid, 0.002) or owners_within(at, pid, 0.25)
        if not owners:
            orphans.append((at, pid))
        elif len(owners) > 1:
            ambiguous.append(((at, pid), owners))
        else:
            per_run[owners[0]["id"]] += 1
    assert not ambiguous, f"executions inside two runs at once: {ambiguous}"
    twice = {run_id: n for run_id, n in per_run.items() if n > 1}
    assert not twice, f"runs that executed more than once (run id: times): {twice}"
    stray = [o for o in orphans if o[1] != killed_pid]
    assert not stray, f"executions that no run of their process accounts for: {stray}"
    lost = [
        r
        for r in runs
        if r["pid"] == killed_pid and r["state"] == "unknown" and r["id"] not in per_run
    ]
    assert len(orphans) <= len(lost), (orphans, lost)
    silent = [
        r
        for r in runs
        if r["state"] == "succeeded"
        and utc(r["finished_at"]).timestamp() < cutoff
        and r["id"] not in per_run
    ]
    assert not silent, f"runs recorded succeeded that never wrote their line: {silent}"


# -- 1. the ledger across a failover ---------------------------------------------------------


@pytest.mark.parametrize("coordination", sorted(COORDINATION))
def test_fire_ledger_has_no_gap_and_nothing_runs_twice_across_a_leader_kill(
    cluster: Cluster, tmp_path: Path
) -> None:
    log = tmp_path / "ticks.log"
    cluster.start(3)
    old = cluster.leader()
    followers = [s for s in cluster.servers if s is not old]
    who = identities(cluster)
    old_id, old_boot = who[old.pid]["replica_id"], who[old.pid]["boot"]
    assert old_boot, who

    start = whole_second(now() + timedelta(seconds=2), up=True)
    job = add_job(followers[0], ticking_job("tick", log, start))
    assert job["coalesce"] is True, job  # the default
    old.wait_until(
        lambda: sum(pid == old.pid for _, pid in executions(log, "tick")) >= 4,
        "four fires on the leader",
        timeout=15,
    )

    killed_at = now()
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait(timeout=10)
    new, leaderless_until, took_over_at = await_takeover(cluster, followers, killed_at)
    new_id = who[new.pid]["replica_id"]
    first = max(start, whole_second(killed_at) - timedelta(seconds=3))
    last = whole_second(took_over_at, up=True) + timedelta(seconds=3)

    # The ledger is complete up to ``last`` once a later fire has run.
    def ran_after_last() -> bool:
        return any(
            i["outcome"] == "run" and i["state"] == "succeeded"
            for i in fires(new, "tick", since=last + timedelta(seconds=1))
        )

    new.wait_until(ran_after_last, f"a fire after {last.isoformat()} succeeded", timeout=15)

    # The killed process's open runs are closed (unknown) once its heartbeat expires.
    def still_open() -> list[dict[str, Any]]:
        return [
            r
            for r in cluster.runs(new, "tick")
            if (r["boot"] == old_boot or r["pid"] == old.pid) and r["state"] in OPEN
        ]

    left = (killed_at + timedelta(seconds=SWEEP) - now()).total_seconds()
    new.wait_until(
        lambda: not still_open(), "no open run of the killed process", timeout=max(left, 0.5)
    )
    assert not still_open()
    new.wait_until(
        lambda: not shown_alive(new, old_id),
        "the killed leader no longer shown alive in GET /scheduler/cluster",
        timeout=max((killed_at + timedelta(seconds=SWEEP) - now()).total_seconds(), 0.5),
    )

    lines = executions(log, "tick")  # before the runs: every line's run has started by then
    cutoff = time.time() - 1.0
    runs = cluster.runs(new, "tick")
    # Read on the replica that never led (any replica shows the ledger); a second either
    # side: whether since and until include their instant does not matter.
    bystander = next(s for s in followers if s is not new)
    ledger = fires(
        bystander, "tick", since=start - timedelta(seconds=1), until=last + timedelta(seconds=1)
    )
    decided = check_ledger(
        ledger,
        start,
        last,
        old_id=old_id,
        new_id=new_id,
        killed_at=killed_at,
        leaderless_until=leaderless_until,
        took_over_at=took_over_at,
    )
    check_coalesced(new, "tick", decided)

    # The runs: one per due instant (a second claim is only ever skipped_duplicate), each
    # held by the boot of the process that ran it, the killed one's closed.
    scheduled = [r for r in runs if r["trigger"] == "schedule" and r["attempt"] == 1]
    claims = Counter(
        r["scheduled_run_time"] for r in scheduled if r["state"] != "skipped_duplicate"
    )
    twice = sorted(t for t, n in claims.items() if n > 1)
    assert not twice, f"instants with more than one run: {twice}"
    boots = {old.pid: old_boot, **{s.pid: who[s.pid]["boot"] for s in followers}}
    wrong_boot = [r for r in runs if r["pid"] in boots and r["boot"] != boots[r["pid"]]]
    assert not wrong_boot, wrong_boot
    killed_runs = [r for r in runs if r["boot"] == old_boot]
    assert killed_runs and all(r["state"] not in UNSETTLED for r in killed_runs), killed_runs
    check_executions(lines, runs, cutoff, old.pid)
    print(
        f"{cluster.backend}: {len(decided)} instants, window {first.isoformat()}.."
        f"{last.isoformat()}, no_leader {sum(i['no_leader'] for i in decided.values())}, "
        f"outcomes {Counter(i['outcome'] for i in decided.values())}, "
        f"takeover {(took_over_at - killed_at).total_seconds():.1f}s, killed runs "
        f"{Counter(r['state'] for r in killed_runs)}"
    )


# -- 2. max_instances across replicas ---------------------------------------------------------


def burst(servers: list[Server], job_id: str, per_server: int) -> list[Answer]:
    """POST /scheduler/jobs/<id>/run ``per_server`` times on each server, all at once."""
    targets = [s for s in servers for _ in range(per_server)]
    barrier = threading.Barrier(len(targets))
    answers: list[Answer | None] = [None] * len(targets)

    def post(index: int, server: Server) -> None:
        barrier.wait(timeout=10)
        answers[index] = server.request("POST", f"/scheduler/jobs/{job_id}/run")

    threads = [threading.Thread(target=post, args=(n, s)) for n, s in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(a is not None for a in answers), "a POST /run never answered"
    return answers  # type: ignore[return-value]


def settled(server: Server, cluster: Cluster, job_id: str) -> list[dict[str, Any]] | None:
    runs = cluster.runs(server, job_id)
    return None if any(r["state"] in UNSETTLED for r in runs) else runs


@pytest.mark.parametrize("coordination", ONE_BACKEND)
def test_max_instances_holds_across_replicas_for_concurrent_manual_runs(cluster: Cluster) -> None:
    servers = cluster.start(2)
    leader = cluster.leader()
    add_job(
        servers[0],
        {
            "id": "nap",
            "func": "jobs.examples:sleep",
            "args": [3],
            "trigger": "interval",
            "hours": 1,
            "start_date": (now() + timedelta(days=1)).isoformat(),
            "max_instances": 1,
        },
    )

    # Watch both replicas' view of the running runs all along.
    most_running: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for server in servers:
                answer = server.request("GET", "/scheduler/runs?job_id=nap&state=running")
                if answer.status == 200:
                    most_running.append(len(answer.json()))
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        first = burst(servers, "nap", per_server=2)  # nothing open: one of them runs
        running = leader.wait_until(
            lambda: [r for r in cluster.runs(leader, "nap") if r["state"] == "running"],
            "a run of nap running",
            timeout=10,
        )
        during_from = time.time()
        during = burst(servers, "nap", per_server=2)  # one is running: all refused
        during_to = time.time()
        leader.wait_until(lambda: settled(leader, cluster, "nap"), "nap's runs settle", timeout=30)
        after = burst(servers, "nap", per_server=1)  # nothing open again: one runs
        runs = leader.wait_until(
            lambda: settled(leader, cluster, "nap"), "nap's runs settle", timeout=20
        )
    finally:
        stop.set()
        watcher.join(timeout=10)

    answers = first + during + after
    assert {a.status for a in answers} <= {202, 409}, [(a.status, a.body) for a in answers]
    for answer in answers:
        if answer.status == 409:
            assert answer.json()["code"] == 409, answer.body
    by_id = {r["id"]: r for r in runs}
    final = {a.json()["id"]: by_id[a.json()["id"]]["state"] for a in answers if a.status == 202}
    assert set(final.values()) <= {"succeeded", "skipped"}, final

    # The burst during a run was refused: 409, or recorded skipped. (It was during the run.)
    holder = by_id[running[0]["id"]]
    assert utc(holder["started_at"]).timestamp() < during_from
    assert during_to < utc(holder["finished_at"]).timestamp(), "the burst came too late"
    accepted = [final[a.json()["id"]] for a in during if a.status == 202]
    assert all(state == "skipped" for state in accepted), [(a.status, a.body) for a in during]

    for batch, name in ((first, "first"), (after, "after")):
        ran = [final[a.json()["id"]] for a in batch if a.status == 202]
        assert "succeeded" in ran, f"the {name} burst ran nothing: {[a.body for a in batch]}"

    # No two runs ever overlapped, and only the leader ran any.
    started = sorted(
        (utc(r["started_at"]), utc(r["finished_at"]), r["id"], r["pid"])
        for r in runs
        if r["started_at"]
    )
    assert {pid for *_, pid in started} == {leader.pid}, started
    overlaps = [(a[2], b[2]) for a, b in itertools.pairwise(started) if b[0] < a[1]]
    assert not overlaps, f"runs of a max_instances 1 job that overlapped: {overlaps}"
    assert most_running and max(most_running) <= 1, most_running
    print(
        f"answers {Counter(a.status for a in answers)}, runs {Counter(final.values())}, "
        f"{len(started)} started"
    )


# -- 3. pause on a follower ---------------------------------------------------------------------


@pytest.mark.parametrize("coordination", ONE_BACKEND)
def test_pause_on_a_follower_stops_firing_everywhere_and_resume_on_another_restarts_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    log = tmp_path / "ticks.log"
    cluster.start(3)
    leader = cluster.leader()
    leader_id = cluster.info(leader)["replica_id"]
    pauser, resumer = [s for s in cluster.servers if s is not leader]
    start = whole_second(now() + timedelta(seconds=2), up=True)
    add_job(pauser, ticking_job("tick", log, start))
    leader.wait_until(lambda: len(executions(log, "tick")) >= 2, "two fires", timeout=10)

    def leads_still() -> None:
        assert cluster.info(leader)["role"] == "leader"
        for server in cluster.servers:
            assert cluster_view(server)["leader_id"] == leader_id

    answer = pauser.request("POST", "/scheduler/pause")
    assert answer.status == 204, answer.body
    asked = time.monotonic()
    pauser.wait_until(lambda: all_paused(cluster, True), "paused everywhere", timeout=PAUSE_SEEN)
    paused_at = now()
    print(f"paused everywhere {time.monotonic() - asked:.2f}s after the answer")
    leads_still()

    # Nothing is submitted from a second after the pause took effect, for four seconds.
    grace = paused_at + timedelta(seconds=1)

    def late() -> list[Any]:
        runs = [
            r
            for r in cluster.runs(resumer, "tick")
            if r["submitted_at"] and utc(r["submitted_at"]) > grace
        ]
        lines = [(t, pid) for t, pid in executions(log, "tick") if t > grace.timestamp()]
        return runs + lines

    quiet_until = time.monotonic() + 4
    while time.monotonic() < quiet_until:
        assert not late(), f"fired while paused:\n{late()}\n{stderr_tails(cluster)}"
        time.sleep(0.25)
    assert all_paused(cluster, True)
    leads_still()

    resumed_at = now()
    answer = resumer.request("POST", "/scheduler/resume")
    assert answer.status == 204, answer.body
    resumer.wait_until(lambda: all_paused(cluster, False), "running everywhere", timeout=PAUSE_SEEN)

    def fired_again() -> bool:
        runs = cluster.runs(resumer, "tick")
        ran = any(
            (r["state"], r["pid"]) == ("succeeded", leader.pid)
            and utc(r["submitted_at"]) > resumed_at
            for r in runs
        )
        return ran and any(t > resumed_at.timestamp() for t, _ in executions(log, "tick"))

    leader.wait_until(fired_again, "a fire after the resume", timeout=5)
    leads_still()


# -- 4. durable, fenced retries ---------------------------------------------------------------


def attempt(cluster: Cluster, via: Server, job_id: str, number: int) -> dict[str, Any] | None:
    rows = [r for r in cluster.runs(via, job_id) if r["attempt"] == number]
    assert len(rows) <= 1, f"{job_id}: two runs of attempt {number}: {rows}"
    return rows[0] if rows else None


def finished(via: Server, run_id: int) -> dict[str, Any] | None:
    run = run_record(via, run_id)
    return None if run["state"] in UNSETTLED else run


@pytest.mark.parametrize("coordination", ONE_BACKEND)
def test_retries_are_pending_runs_of_the_leader_that_survive_its_kill_and_wait_while_paused(
    cluster: Cluster,
) -> None:
    cluster.start(3)
    first = cluster.leader()
    followers = [s for s in cluster.servers if s is not first]
    who = identities(cluster)

    # (a) A failed fire with retries left leaves a pending run, listed in the fire's attempts.
    start = whole_second(now() + timedelta(seconds=2), up=True)
    add_job(followers[0], failing_job("flop", start))
    retry = first.wait_until(lambda: attempt(cluster, first, "flop", 2), "a retry of flop", 10)
    seen = now()
    one = attempt(cluster, first, "flop", 1)
    assert one is not None and one["state"] == "failed", one
    assert retry["state"] == "pending", retry
    assert utc(retry["scheduled_run_time"]) == utc(one["scheduled_run_time"]) == start, retry
    not_before = utc(retry["not_before"])
    delay = (not_before - utc(one["finished_at"])).total_seconds()
    assert 1.5 <= delay <= 3.5, f"retry_delay 2 gave not_before {delay:.2f}s after the failure"
    (item,) = [i for i in fires(first, "flop") if utc(i["scheduled_run_time"]) == start]
    assert item["outcome"] == "run" and item["run_id"] == one["id"], item
    listed = {a["run_id"]: a for a in item["attempts"]}
    assert retry["id"] in listed and listed[retry["id"]]["attempt"] == 2, item
    if now() < not_before - timedelta(seconds=0.3):  # still pending for sure when it was read
        assert listed[retry["id"]]["state"] == "pending", (seen, item)

    # (b) Kill -9 the leader while the second retry is pending: the new leader runs it.
    done = first.wait_until(lambda: finished(first, retry["id"]), "the first retry ran", 10)
    assert done["state"] == "failed" and done["pid"] == first.pid, done
    assert utc(done["started_at"]) >= not_before, done
    last_try = first.wait_until(lambda: attempt(cluster, first, "flop", 3), "a second retry", 10)
    assert last_try["state"] == "pending" and utc(last_try["not_before"]) > now(), last_try
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    new = cluster.leader(among=followers, timeout=TAKEOVER)
    other = next(s for s in followers if s is not new)
    done = new.wait_until(
        lambda: finished(new, last_try["id"]), "the new leader ran the retry", TAKEOVER + 10
    )
    assert done["state"] == "failed", done
    assert (done["pid"], done["boot"]) == (new.pid, who[new.pid]["boot"]), (done, who)
    assert done["replica"] == who[new.pid]["replica_id"], (done, who)
    assert utc(done["started_at"]) >= utc(last_try["not_before"]), done

    # (c) Only leaders ever ran an attempt, and retries=2 means three attempts in all.
    flop = cluster.runs(new, "flop")
    by_attempt = {r["attempt"]: r for r in flop}
    assert sorted(by_attempt) == [1, 2, 3] and len(flop) == 3, flop
    assert [by_attempt[n]["pid"] for n in (1, 2, 3)] == [first.pid, first.pid, new.pid], flop
    assert other.pid not in {r["pid"] for r in flop}, flop
    (item,) = [i for i in fires(new, "flop") if utc(i["scheduled_run_time"]) == start]
    listed = {a["attempt"]: a for a in item["attempts"]}
    assert {listed[n]["run_id"] for n in (2, 3)} == {by_attempt[2]["id"], by_attempt[3]["id"]}
    assert all(listed[n]["state"] == "failed" for n in (2, 3)), item

    # (d) While the cluster is paused a due retry stays pending; it runs after the resume.
    start = whole_second(now() + timedelta(seconds=2), up=True)
    add_job(other, failing_job("flop2", start))
    retry = new.wait_until(lambda: attempt(cluster, new, "flop2", 2), "a retry of flop2", 10)
    assert retry["state"] == "pending", retry
    answer = other.request("POST", "/scheduler/pause")
    assert answer.status == 204, answer.body
    new.wait_until(lambda: all_paused(cluster, True), "paused everywhere", timeout=PAUSE_SEEN)
    not_before = utc(retry["not_before"])
    assert now() < not_before, "the pause took effect only after the retry came due"
    while now() < not_before + timedelta(seconds=2):
        held = run_record(new, retry["id"])
        assert held["state"] == "pending", f"a retry moved while paused: {held}"
        time.sleep(0.2)
    assert cluster.info(new)["role"] == "leader"
    resumed_at = now()
    answer = other.request("POST", "/scheduler/resume")
    assert answer.status == 204, answer.body
    done = new.wait_until(lambda: finished(new, retry["id"]), "the retry ran after resume", 8)
    assert done["state"] == "failed" and done["pid"] == new.pid, done
    assert utc(done["started_at"]) >= resumed_at, done


# -- 5. the cluster view ----------------------------------------------------------------------


@pytest.mark.parametrize("coordination", ONE_BACKEND)
def test_cluster_view_lists_roles_and_heartbeats_and_shows_a_killed_replica_dead(
    cluster: Cluster,
) -> None:
    cluster.start(3)
    leader = cluster.leader()
    who = identities(cluster)
    ids = {pid: row["replica_id"] for pid, row in who.items()}
    version = cluster.info(leader)["version"]

    for server in cluster.servers:
        view = cluster_view(server)
        assert view["leader_id"] == ids[leader.pid] and view["paused"] is False, view
        rows = replica_rows(view)
        assert set(ids.values()) <= rows.keys(), view
        for member in cluster.servers:
            row = rows[ids[member.pid]]
            role = "leader" if member is leader else "follower"
            assert (row["role"], row["pid"], row["alive"]) == (role, member.pid, True), row
            assert row["host"] and row["version"] == version, row
            assert utc(row["started_at"]) <= utc(row["last_heartbeat"]) <= now(), row
        assert len({rows[i]["boot"] for i in ids.values()}) == 3, view

    # Heartbeats advance, every interval.
    rows = replica_rows(cluster_view(leader))
    before = {i: utc(row["last_heartbeat"]) for i, row in rows.items()}

    def advanced() -> bool:
        rows = replica_rows(cluster_view(leader))
        return all(utc(rows[i]["last_heartbeat"]) > before[i] for i in ids.values())

    leader.wait_until(advanced, "every heartbeat advanced", timeout=4 * HEARTBEAT_INTERVAL + 2)

    # Kill -9 a follower: once its heartbeat expires, no live replica shows it alive (the
    # leader's sweep may drop its row then: see the next test), and nothing else changes.
    victim = next(s for s in cluster.servers if s is not leader)
    victim.proc.send_signal(signal.SIGKILL)
    killed_at = now()
    victim.proc.wait(timeout=10)
    survivors = cluster.alive()
    assert len(survivors) == 2
    seen: dict[str, int] = Counter()

    def dead_everywhere() -> bool:
        views = [replica_rows(cluster_view(s)) for s in survivors]
        for rows in views:
            row = rows.get(ids[victim.pid])
            seen["dead" if row is None or row["alive"] is False else "alive"] += 1
            if row is not None and row["alive"] is False:
                assert utc(row["last_heartbeat"]) <= killed_at, row  # no beat after death
        return all(not (r.get(ids[victim.pid]) or {}).get("alive") for r in views)

    wait_for(
        dead_everywhere, timeout=SWEEP, interval=0.05, what="the killed replica not shown alive",
        details=lambda: stderr_tails(cluster),
    )  # fmt: skip
    print(f"not shown alive {(now() - killed_at).total_seconds():.1f}s after the kill; {seen}")
    for server in survivors:
        view = cluster_view(server)
        assert view["leader_id"] == ids[leader.pid], view
        rows = replica_rows(view)
        for member in survivors:
            assert rows[ids[member.pid]]["alive"] is True, rows[ids[member.pid]]


@pytest.mark.parametrize("coordination", ONE_BACKEND)
def test_a_killed_replica_is_listed_dead_after_its_heartbeat_expires(cluster: Cluster) -> None:
    """Once its heartbeat expires, a killed replica is shown with alive false (for a couple of
    heartbeats at least) rather than vanishing from GET /scheduler/cluster."""
    cluster.start(2)
    leader = cluster.leader()
    victim = next(s for s in cluster.servers if s is not leader)
    victim_id = identities(cluster)[victim.pid]["replica_id"]
    victim.proc.send_signal(signal.SIGKILL)
    killed_at = now()
    victim.proc.wait(timeout=10)
    history: list[tuple[float, Any]] = []

    def listed_dead() -> bool:
        row = replica_rows(cluster_view(leader)).get(victim_id)
        state = None if row is None else row["alive"]
        if not history or history[-1][1] != state:
            history.append((round((now() - killed_at).total_seconds(), 2), state))
        return state is False or (state is None and len(history) > 1)

    wait_for(listed_dead, timeout=SWEEP, interval=0.02, what="the killed replica listed dead")
    hold_until = time.monotonic() + 2 * HEARTBEAT_INTERVAL
    while time.monotonic() < hold_until:
        listed_dead()
        assert history[-1][1] is False, (
            f"the killed replica's row: (seconds after the kill, alive) {history}; "
            "it should stay listed with alive false"
        )
        time.sleep(0.05)
