"""Run-state changes written off the firing path: one thread, a bounded queue, batches.

A run's start and finish (and timeouts and losses) are UPDATEs of its row. Written inline,
each costs a commit in the job's own thread; with 1,000 jobs due at once those commits,
serialised by the database, make the last job start seconds late. Here they are queued
and written by one thread, as many as are waiting in one transaction, in the order they
were queued (a run's start is always written before its finish).

A batch is written as few statements as it allows: changes of one kind (the same source
states and columns, e.g. every "running" mark) share one executemany UPDATE, split where a
run appears twice so that its changes keep their order.

Nothing is dropped: when the queue is full the job thread waits for room (and this is
logged). While the database cannot be reached (a connection error, a lock timeout), the
batch is kept and written again, backing off up to ``PATIENCE_MAX`` seconds between tries,
until it answers: the queue stays bounded and back-pressures the job threads. A batch the
database refuses for its content is written again one change at a time, and a change that
still fails is logged with its run id. Readers of the run history call ``flush()`` first,
so an API client reads what has been recorded so far.

So a finished run's outcome reaches the database within ``GATHER`` seconds plus one write
while the database answers; a kill -9 loses at most what was gathered in that window, and
the runs it held are then closed as ``unknown`` by the sweep (see runs/sweep.py).

Size: the writer thread, its bounded queue and the batching of changes into statements are one
mechanism (ordering and outage handling run through all three).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import and_, bindparam, or_

from ..errors import database_unreachable
from ..extensions import db
from .models import Run

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.sql import Update

log = logging.getLogger(__name__)

WRITER_KEY = "scheduler_service.run_writer"
CAPACITY = 10_000  # changes waiting at most; a job thread waits for room beyond it
BATCH = 1_000  # changes written in one transaction at most
GATHER = 0.05  # seconds a batch may wait for more changes before it is written
PATIENCE_MAX = 5.0  # seconds between two tries at most while the database is unreachable


class DatabaseUnavailable(Exception):
    """The database could not be reached; the changes were not written."""


class RunChange(NamedTuple):
    """Set ``values`` on run ``run_id`` if it is in one of ``from_states`` (so that a late
    finish never overwrites timed_out)."""

    run_id: int
    from_states: tuple[str, ...]
    values: dict[str, Any]

    @property
    def kind(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.from_states, tuple(sorted(self.values))

    def describe(self) -> str:
        return f"run {self.run_id} as {self.values.get('state')}"


@lru_cache(maxsize=64)
def _statement(from_states: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    """One UPDATE for every change of a kind, its values bound per row."""
    table = Run.__table__
    return (
        table.update()
        .where(
            and_(
                table.c.id == bindparam("_run_id"),
                or_(*(table.c.state == bindparam(f"_from{i}") for i in range(len(from_states)))),
            )
        )
        .values({column: bindparam(f"_set_{column}") for column in columns})
    )


def _parameters(change: RunChange) -> dict[str, Any]:
    row: dict[str, Any] = {"_run_id": change.run_id}
    row.update({f"_set_{column}": value for column, value in change.values.items()})
    row.update({f"_from{i}": state for i, state in enumerate(change.from_states)})
    return row


def _follows(first: RunChange, then: RunChange) -> bool:
    """Whether ``then`` applies from the state ``first`` sets, and from no state but that
    one and ``first``'s sources."""
    state = first.values.get("state")
    return state in then.from_states and set(then.from_states) <= {*first.from_states, state}


def _merged(changes: list[RunChange]) -> list[RunChange]:
    """``changes`` with each run's consecutive changes made one where the second applies
    from the state the first sets (a start and its finish): one row to write, not two.

    Written in one transaction, "set A if the state is in A's sources, then B if it is in
    B's" and "set A and B if the state is in A's sources" differ only for a row in one of
    B's sources that is not one of A's. Changes are merged only when that can be nothing
    but A's target state, which no one but A itself sets (a run is marked running only by
    its own start).
    """
    last: dict[int, int] = {}  # run id -> index in out of its latest change
    out: list[RunChange] = []
    for change in changes:
        i = last.get(change.run_id)
        if i is not None and _follows(out[i], change):
            first = out[i]
            out[i] = RunChange(change.run_id, first.from_states, {**first.values, **change.values})
            continue
        last[change.run_id] = len(out)
        out.append(change)
    return out


def _grouped(changes: list[RunChange]) -> list[tuple[Update, list[dict[str, Any]]]]:
    """The statements that write ``changes``, each with its rows, in an order that keeps
    every run's changes in sequence.

    The changes are written in rounds: round k holds each run's k-th change of the batch,
    one statement per kind. A burst queues every run's start and finish close together;
    splitting the batch wherever a run came back would make most statements one row long.
    """
    rounds: list[dict[Any, list[dict[str, Any]]]] = []
    count: dict[int, int] = {}
    for change in _merged(changes):
        k = count.get(change.run_id, 0)
        count[change.run_id] = k + 1
        if k == len(rounds):
            rounds.append({})
        rounds[k].setdefault(change.kind, []).append(_parameters(change))
    return [(_statement(*kind), rows) for kinds in rounds for kind, rows in kinds.items()]


class _Flush:
    """A marker: set once every change queued before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
_started: weakref.WeakSet[RunWriter] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, write what a writer not stopped by its scheduler still holds."""
    for writer in list(_started):
        writer.stop()


class RunWriter:
    """Writes queued run changes in a thread of its own, in order, in batches."""

    def __init__(
        self, app: Flask, *, capacity: int = CAPACITY, batch: int = BATCH, gather: float = GATHER
    ) -> None:
        self.app = app
        self.gather = gather
        self.capacity = capacity
        self.batch = batch
        # A SimpleQueue takes no Python-level lock on put: 20 job threads finishing at once
        # do not queue behind each other. Its bound is kept by put() (see _wait_for_room).
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._lock = threading.Lock()
        self._hurry = threading.Event()  # set by flush() and stop(): write without gathering
        self._thread: threading.Thread | None = None
        self.written = 0  # changes written since start
        self.failed = 0  # changes the database refused (each logged)
        self.unreachable = False  # the last write found the database out of reach
        self._give_up_at: float | None = None  # set by stop(): stop waiting for the database

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the writing thread (again, after a stop)."""
        with self._lock:
            if self.running:
                return
            self._give_up_at = None
            self._thread = threading.Thread(target=self._run, name="run-writer", daemon=True)
            self._thread.start()
            _started.add(self)

    def put(self, change: RunChange) -> None:
        """Queue one change; write it inline when the writer is not running."""
        if self._thread is None:
            write_now([change])
            return
        if self._queue.qsize() >= self.capacity:
            self._wait_for_room()
            if self._thread is None:  # stopped meanwhile
                write_now([change])
                return
        self._queue.put(change)

    def _wait_for_room(self) -> None:
        log.warning("the run-history writer is %d changes behind: waiting", self.backlog)
        with self._room:
            self._room.wait_for(lambda: self._queue.qsize() < self.capacity or self._thread is None)

    @property
    def backlog(self) -> int:
        """Changes queued and not yet written."""
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every change queued so far is written; False when ``timeout`` passed."""
        if not self.running:  # an empty queue is not enough: a batch may be in flight
            return True
        if self.unreachable:  # the database is down: a reader would wait for nothing
            return False
        marker = _Flush()
        self._queue.put(marker)
        self._hurry.set()
        return marker.done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._give_up_at = time.monotonic() + timeout / 2
        with self._room:
            self._room.notify_all()  # a job thread waiting for room writes inline now
        if thread.is_alive():
            self._queue.put(_STOP)
            self._hurry.set()
            thread.join(timeout)
        if thread.is_alive():
            log.error(
                "the run-history writer did not finish in %.0f s: %d changes unwritten",
                timeout,
                self.backlog,
            )
            return
        self._drain()  # a change that waited for room while the writer stopped

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            # Gather for a moment before writing (group commit): in a burst, one transaction
            # takes many changes. The writer sleeps through the moment rather than waking at
            # every change: a wake-up per change would take the GIL from the jobs 2,000
            # times in a burst of 1,000 runs. A flush or a stop cuts the moment short.
            if not isinstance(items[0], _Flush) and items[0] is not _STOP:
                self._hurry.wait(self.gather)
            self._hurry.clear()  # before draining: a flush marker put after it sets it again
            while len(items) < self.batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            changes = [item for item in items if isinstance(item, RunChange)]
            if changes:
                self._write(changes)
                with self._room:
                    self._room.notify_all()
            for item in items:
                if isinstance(item, _Flush):
                    item.done.set()
            if any(item is _STOP for item in items):
                self._drain()
                return

    def _drain(self) -> None:
        """Write what was queued after the stop marker (a job ending at shutdown)."""
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, RunChange):
                rest.append(item)
            elif isinstance(item, _Flush):
                item.done.set()
        if rest:
            self._write(rest)

    def _write(self, changes: list[RunChange]) -> None:
        """Write ``changes``; while the database is out of reach, keep them and try again."""
        pause = 0.2
        while True:
            try:
                with self.app.app_context():
                    self.failed += write_changes(changes)
                break
            except DatabaseUnavailable as exc:
                if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                    log.error(
                        "stopping with the service database unreachable: %d run changes not "
                        "written (the sweep closes their runs as unknown)",
                        len(changes),
                    )
                    self.failed += len(changes)
                    return
                if pause == 0.2:
                    log.warning(
                        "the service database is unreachable (%s): keeping %d run changes "
                        "and retrying until it answers",
                        exc,
                        len(changes),
                    )
                self.unreachable = True
                time.sleep(pause)
                pause = min(pause * 2, PATIENCE_MAX)
        if self.unreachable:
            log.warning("the service database answers again: run changes written")
            self.unreachable = False
        self.written += len(changes)


def write_changes(changes: list[RunChange]) -> int:
    """Write ``changes`` in one transaction; if the database refuses it, one at a time.
    Return how many it refused (each is logged).

    :raises DatabaseUnavailable: the database is out of reach; nothing was written.
    """
    try:
        for statement, rows in _grouped(changes):
            db.session.execute(statement, rows)
        db.session.commit()
        return 0
    except Exception as exc:
        db.session.rollback()
        if database_unreachable(exc):  # worth waiting for
            raise DatabaseUnavailable(_first_line(exc)) from exc
        if len(changes) == 1:
            log.exception("could not record %s", changes[0].describe())
            return 1
    log.warning("a batch of %d run changes failed: writing them one by one", len(changes))
    return sum(write_changes([change]) for change in changes)


def write_now(changes: list[RunChange]) -> None:
    """Write ``changes`` inline (no writer thread: a process-pool child, or a stopped
    writer); an unreachable database is logged, with each change lost."""
    try:
        write_changes(changes)
    except DatabaseUnavailable as exc:
        for change in changes:
            log.error("could not record %s: %s", change.describe(), exc)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_writer(app: Flask) -> RunWriter | None:
    """The app's run writer, if it has one (the service has; a process-pool child has not)."""
    return app.extensions.get(WRITER_KEY)


def init_run_writer(app: Flask) -> RunWriter:
    """Give ``app`` a run writer (started with the scheduler, stopped after it)."""
    writer = RunWriter(app)
    app.extensions[WRITER_KEY] = writer
    return writer
