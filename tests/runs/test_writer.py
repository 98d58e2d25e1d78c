"""The run writer (runs/writer.py): run-state changes queued, written by one thread in
batches, in order, never dropped; flushed before reads; drained at stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import event

from scheduler_service.extensions import db
from scheduler_service.runs.models import Run
from scheduler_service.runs.recorder import record_submitted
from scheduler_service.runs.writer import RunChange, RunWriter, write_changes
from tests.support.runs import stand_in_job
from tests.support.waiting import wait_for

NOW = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


def started(run_id: int) -> RunChange:
    return RunChange(run_id, ("submitted",), {"state": "running", "started_at": NOW})


def finished(run_id: int, state: str = "succeeded") -> RunChange:
    return RunChange(run_id, ("running",), {"state": state, "finished_at": NOW})


def missed(run_id: int) -> RunChange:
    return RunChange(run_id, ("submitted",), {"state": "missed", "finished_at": NOW})


def timed_out(run_id: int) -> RunChange:
    return RunChange(run_id, ("submitted", "running"), {"state": "timed_out", "error": "late"})


class Gate:
    """Holds a writer's batches until opened; keeps the run ids of every batch it saw."""

    def __init__(self, writer: RunWriter, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[int]] = []
        write = writer._write

        def held(changes: list[RunChange]) -> None:
            self.batches.append([change.run_id for change in changes])
            self.entered.set()
            assert self.opened.wait(10), "the test never opened the gate"
            write(changes)

        monkeypatch.setattr(writer, "_write", held)

    def hold(self, writer: RunWriter, run_id: int) -> None:
        """Give the writer one change to hold: the changes queued next wait behind it."""
        writer.put(started(run_id))
        assert self.entered.wait(5), "the writer never took the change"

    @property
    def written(self) -> list[int]:
        return [run_id for batch in self.batches for run_id in batch]


@pytest.fixture
def runs(app: Flask) -> Callable[[int], list[int]]:
    """Make ``count`` submitted runs; return their ids."""

    def make(count: int) -> list[int]:
        with app.app_context():
            job = stand_in_job("writer")
            return record_submitted(job=job, run_times=[NOW] * count, trigger="manual")

    return make


@pytest.fixture
def writers(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[RunWriter, Gate]]]:
    """Start run writers on ``app`` whose batches a Gate holds; open and stop them after."""
    made: list[tuple[RunWriter, Gate]] = []

    def make(**options: int) -> tuple[RunWriter, Gate]:
        writer = RunWriter(app, **options)
        gate = Gate(writer, monkeypatch)
        writer.start()
        made.append((writer, gate))
        return writer, gate

    yield make
    for writer, gate in made:
        gate.opened.set()
        writer.stop()


def states(app: Flask, run_ids: list[int]) -> list[str]:
    """The runs' states as the database holds them now, read in a session of their own."""
    with app.app_context():
        query = db.select(Run.id, Run.state).where(Run.id.in_(run_ids))
        found = {run_id: state for run_id, state in db.session.execute(query)}
    return [found[run_id] for run_id in run_ids]


def test_changes_of_one_batch_keep_each_runs_order(
    app: Flask, writers: Callable[..., tuple[RunWriter, Gate]], runs: Callable[[int], list[int]]
) -> None:
    writer, gate = writers()
    blocker, a, b, c, d = runs(5)
    gate.hold(writer, blocker)
    # c's late start comes after its miss, but its kind (a start) first came before it
    changes = [
        *(started(a), started(b), missed(c), finished(a)),
        *(started(d), finished(b, "failed"), started(c)),
    ]
    for change in changes:
        writer.put(change)
    gate.opened.set()
    wait_for(lambda: writer.written == 8, what="every change written")
    assert gate.batches == [[blocker], [a, b, c, a, d, b, c]]  # the seven in one batch
    assert states(app, [a, b, c, d]) == ["succeeded", "failed", "missed", "running"]
    assert writer.failed == 0


def test_flush_waits_for_a_batch_the_writer_has_taken(
    app: Flask, writers: Callable[..., tuple[RunWriter, Gate]], runs: Callable[[int], list[int]]
) -> None:
    writer, gate = writers()
    [run_id] = runs(1)
    gate.hold(writer, run_id)  # taken off the queue, not written yet
    assert writer.backlog == 0 and states(app, [run_id]) == ["submitted"]
    opener = threading.Timer(0.3, gate.opened.set)  # while flush() waits, if it does
    opener.start()
    try:
        assert writer.flush(timeout=10) is True
        assert states(app, [run_id]) == ["running"], "flush() returned before the write"
    finally:
        opener.cancel()
        gate.opened.set()


def test_flush_waits_for_every_queued_change(
    app: Flask, writers: Callable[..., tuple[RunWriter, Gate]], runs: Callable[[int], list[int]]
) -> None:
    writer, gate = writers()
    blocker, *queued = runs(4)
    gate.hold(writer, blocker)
    for run_id in queued:
        writer.put(started(run_id))
    assert writer.flush(timeout=0.2) is False  # held: not written, and flush() says so
    assert states(app, queued) == ["submitted"] * 3
    gate.opened.set()
    assert writer.flush(timeout=10) is True
    assert states(app, [blocker, *queued]) == ["running"] * 4


def test_a_refused_change_is_logged_and_the_rest_of_its_batch_written(
    app: Flask,
    writers: Callable[..., tuple[RunWriter, Gate]],
    runs: Callable[[int], list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, gate = writers()
    blocker, good, bad, other = runs(4)
    gate.hold(writer, blocker)
    refused = RunChange(bad, ("submitted",), {"state": None, "started_at": NOW})  # NOT NULL
    for change in (started(good), refused, started(other)):
        writer.put(change)
    gate.opened.set()
    wait_for(lambda: writer.written == 4, what="every change handled")
    assert gate.batches == [[blocker], [good, bad, other]]
    assert states(app, [good, bad, other]) == ["running", "submitted", "running"]
    assert writer.failed == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"could not record run {bad} as None"]
    assert errors[0].exc_info is not None


def test_stop_writes_what_is_queued(
    app: Flask, writers: Callable[..., tuple[RunWriter, Gate]], runs: Callable[[int], list[int]]
) -> None:
    writer, gate = writers(batch=2)
    blocker, *queued = runs(7)
    gate.hold(writer, blocker)
    for run_id in queued:
        writer.put(started(run_id))
    stopping = threading.Thread(target=writer.stop)
    stopping.start()
    wait_for(lambda: not writer.running, what="stop() began")
    gate.opened.set()
    stopping.join(10)
    assert not stopping.is_alive()
    assert gate.written == [blocker, *queued]  # each once, in order, in batches of two
    assert all(len(batch) <= 2 for batch in gate.batches)
    assert states(app, [blocker, *queued]) == ["running"] * 7


def test_put_after_stop_writes_inline(
    app: Flask, writers: Callable[..., tuple[RunWriter, Gate]], runs: Callable[[int], list[int]]
) -> None:
    writer, gate = writers()
    gate.opened.set()
    writer.stop()
    [run_id] = runs(1)
    with app.app_context():  # as the recorder calls it
        writer.put(started(run_id))
    assert states(app, [run_id]) == ["running"]  # no flush, no thread: written already
    assert gate.batches == []


def test_a_full_queue_makes_the_producer_wait_and_drops_nothing(
    app: Flask,
    writers: Callable[..., tuple[RunWriter, Gate]],
    runs: Callable[[int], list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, gate = writers(capacity=1, batch=1)
    ids = runs(6)
    caplog.set_level(logging.WARNING, logger="scheduler_service.runs.writer")
    producer = threading.Thread(target=lambda: [writer.put(started(run_id)) for run_id in ids])
    producer.start()
    try:
        wait_for(
            lambda: any("changes behind: waiting" in r.getMessage() for r in caplog.records),
            what="the producer waits for room",
        )
        assert producer.is_alive()  # still waiting, not dropped
        assert writer.backlog <= 1
        assert states(app, ids) == ["submitted"] * 6
    finally:
        gate.opened.set()
    producer.join(10)
    assert not producer.is_alive()
    wait_for(lambda: writer.written == 6, what="every change written")
    assert gate.written == ids  # each once, in order
    assert states(app, ids) == ["running"] * 6
    assert writer.failed == 0


def statements_of(app: Flask, changes: list[RunChange]) -> list[tuple[str, int]]:
    """Write ``changes`` in one go; return each UPDATE sent, as (kind of run, rows)."""
    sent: list[tuple[str, int]] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("UPDATE"):
            sent.append((statement, len(parameters) if executemany else 1))

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert write_changes(changes) == 0
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    return sent


def test_a_burst_of_starts_and_finishes_is_written_as_one_update_a_kind(
    app: Flask, runs: Callable[[int], list[int]]
) -> None:
    ids = runs(60)
    ok, failed = ids[:40], ids[40:]
    # as a burst queues them: each run's start, and its finish soon after
    changes = [c for run_id in ok for c in (started(run_id), finished(run_id))]
    changes += [c for run_id in failed for c in (started(run_id), finished(run_id, "failed"))]
    sent = statements_of(app, changes)
    # one start-and-finish row a run, all of one kind: a single executemany of 60 rows
    assert [rows for _, rows in sent] == [60]
    assert states(app, ids) == ["succeeded"] * 40 + ["failed"] * 20
    with app.app_context():
        rows = db.session.execute(db.select(Run.started_at, Run.finished_at).where(Run.id.in_(ids)))
        assert all(started_at == NOW and finished_at == NOW for started_at, finished_at in rows)


def test_merged_changes_keep_what_each_one_alone_would_do(
    app: Flask, runs: Callable[[int], list[int]]
) -> None:
    late, gone, plain, missed_first = runs(4)
    with app.app_context():
        assert write_changes([missed(gone)]) == 0  # no start can apply to it any more
    changes = [
        *(started(late), timed_out(late), finished(late)),  # the finish comes after the verdict
        *(started(gone), finished(gone)),  # neither applies: it stays missed
        started(plain),
        *(missed(missed_first), started(missed_first)),  # a start after a miss does nothing
    ]
    sent = statements_of(app, changes)
    assert states(app, [late, gone, plain, missed_first]) == [
        "timed_out",
        "missed",
        "running",
        "missed",
    ]
    with app.app_context():
        row = db.session.get(Run, late)
        assert (row.started_at, row.error) == (NOW, "late")  # the start and the verdict both
    assert sum(rows for _, rows in sent) < len(changes)  # some were merged
