"""One run lifecycle: every change of a run's state is made here, and announced here.

    pending ─────> submitted ─────> running ─────> succeeded | failed | timed_out
    (a retry, or      │  │              └────────> unknown (its process died)
     a manual run)    │  └──> missed (too late) | skipped (max_instances)
                      └─────> unknown (its process died before the start was recorded)
    a due instant of a job: submitted (claimed), coalesced (into run N), skipped_duplicate

The database side is runs/ (recorder.py inserts claims, requests.py pending runs, changes.py
the later changes through the run writer);
the sweep of dead processes is runs/sweep.py. Each transition is published as a
``RunEvent`` to the lifecycle's subscribers (live events, metrics): one channel out of the
engine, fed from the one place that makes each transition. A failed run with retries left
becomes a pending run in the service database (durable: the leader takes it when due).

Size: the one place every run transition goes through (see above): splitting it would make two.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..runs import changes, recorder, requests
from ..runs.changes import queue_change
from ..runs.recorder import Fire, HistoryUnavailable, utcnow
from ..runs.writer import RunChange, run_writer
from ..scheduler.policy import policy_of

if TYPE_CHECKING:
    from apscheduler.job import Job
    from flask import Flask

    from ..runs.requests import PendingRun

__all__ = ["Fire", "HistoryUnavailable", "RunEvent", "RunLifecycle"]

log = logging.getLogger(__name__)

LIFECYCLE_KEY = "scheduler_service.lifecycle"


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, twice a run
class RunEvent:
    """A run entered ``state``. Picklable: a process-pool child sends these back."""

    state: str
    job_id: str
    run_id: int | None
    attempt: int = 1
    trigger: str = "schedule"
    scheduled_run_time: datetime | None = None
    jobstore: str | None = None
    duration: float | None = None
    lateness: float | None = None  # start minus when the run was due
    error: str | None = None
    retval: Any = None

    @property
    def first_scheduled(self) -> bool:
        """Whether this is the first attempt of a scheduled fire (what lateness measures)."""
        return self.trigger == "schedule" and self.attempt == 1


Subscriber = Callable[[RunEvent], None]


class RunLifecycle:
    """The parent side of every run of one app: claims, requests, outcomes, retries."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.subscribers: list[Subscriber] = []
        # Set by the scheduler: wake the processing pass (a retry or a request is due).
        self.wake: Callable[[], None] = lambda: None
        # Retries the database could not take yet, written again at every pass.
        self._deferred: deque[tuple[Job, RunEvent, float]] = deque()
        # Set when a pending run may have been added (here, or announced by another
        # replica): the processing pass reads the pending runs again only then, or when one
        # falls due, or after REQUEST_POLL seconds, not at every wake-up (a job added through
        # the API wakes it).
        self.requests_changed = True

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with every RunEvent from now on (it must not raise)."""
        self.subscribers.append(subscriber)

    def emit(self, event: RunEvent) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception:  # a subscriber's bug never stops a run being recorded
                log.exception("run event subscriber %r failed", subscriber)

    # -- claims and requests -----------------------------------------------------------------
    def claim(self, fires: Sequence[Fire]) -> list[list[tuple[datetime, int | None]]]:
        """Claim due instants in the ledger (see recorder.claim_many).

        :raises HistoryUnavailable: the service database did not take the claim.
        """
        with self.app.app_context():
            claimed = recorder.claim_many(fires)
        for fire, won in zip(fires, claimed, strict=True):
            lost = (
                set(fire.run_times) - {t for t, _ in won} if len(won) < len(fire.run_times) else ()
            )
            for run_time in sorted(lost):
                self.emit(
                    RunEvent("skipped_duplicate", fire.job.id, None, scheduled_run_time=run_time)
                )
            if won and fire.coalesced:
                for run_time in fire.coalesced:
                    self.emit(
                        RunEvent("coalesced", fire.job.id, won[-1][1], scheduled_run_time=run_time)
                    )
        return claimed

    def request(
        self,
        job: Job,
        *,
        trigger: str,
        attempt: int = 1,
        scheduled_run_time: datetime | None = None,
        delay: float = 0.0,
    ) -> int:
        """Record a run for the leader to take once ``delay`` seconds have passed (a retry or
        a manual run); return its id.

        :raises HistoryUnavailable: the service database did not take it.
        """
        now = utcnow()
        with self.app.app_context():
            run_id = requests.request_run(
                job=job,
                trigger=trigger,
                attempt=attempt,
                scheduled_run_time=scheduled_run_time or now,
                not_before=now + timedelta(seconds=delay),
            )
        self.requests_changed = True
        self.emit(
            RunEvent(
                "pending",
                job.id,
                run_id,
                attempt=attempt,
                trigger=trigger,
                scheduled_run_time=scheduled_run_time or now,
            )
        )
        self.wake()
        return run_id

    def refuse(self, job: Job, *, reason: str) -> None:
        """Record a manual run refused at once (max_instances reached) as skipped."""
        now = utcnow()
        with self.app.app_context():
            ids = recorder.record_submitted(
                job=job, run_times=[now], trigger="manual", state="skipped"
            )
        run_id = ids[0] if ids else None
        self.emit(RunEvent("skipped", job.id, run_id, 1, "manual", now, error=reason))

    def due_requests(self, now: datetime) -> tuple[list[PendingRun], datetime | None]:
        """The pending runs due by ``now``, and when the next one is (retries the database
        could not take before are recorded first).

        :raises Exception: the database could not be read.
        """
        for _ in range(len(self._deferred)):  # popleft: job threads may append meanwhile
            job, event, delay = self._deferred.popleft()
            self._retry(job, event, delay=delay, wake=False)
        with self.app.app_context():
            return requests.pending_runs(now)

    def take(self, run_id: int) -> bool:
        """Take a pending run for this process; False when it was taken or cancelled."""
        with self.app.app_context():
            return requests.take_pending(run_id)

    def cancel(self, run: PendingRun, *, reason: str) -> None:
        """Close a pending run that will not run."""
        with self.app.app_context():
            requests.cancel_pending(run.id, reason=reason)
        self.emit(RunEvent("skipped", run.job_id, run.id, run.attempt, run.trigger, error=reason))

    # -- submission --------------------------------------------------------------------------
    def submitted(
        self,
        job: Job,
        claimed: Sequence[tuple[datetime, int | None]],
        *,
        trigger: str,
        attempt: int,
    ) -> None:
        """Announce runs handed to a worker (before it can report: order matters)."""
        for run_time, run_id in claimed:
            self.emit(RunEvent("submitted", job.id, run_id, attempt, trigger, run_time))

    def skipped(
        self,
        job: Job,
        claimed: Sequence[tuple[datetime, int | None]],
        *,
        trigger: str,
        attempt: int,
    ) -> None:
        """Close claimed runs refused by max_instances."""
        for run_time, run_id in claimed:
            if run_id is not None:
                self._write(changes.skipped_change(run_id))
            self.emit(
                RunEvent(
                    "skipped",
                    job.id,
                    run_id,
                    attempt,
                    trigger,
                    run_time,
                    error=f"max_instances ({job.max_instances}) reached",
                )
            )

    def lost(
        self,
        job: Job,
        claimed: Sequence[tuple[datetime, int | None]],
        *,
        trigger: str,
        attempt: int,
        error: str,
    ) -> list[RunEvent]:
        """Close runs whose worker died before it reported as failed; return their events
        (reported like any other outcome)."""
        events = []
        for run_time, run_id in claimed:
            if run_id is not None:
                self._write(changes.lost_change(run_id, error=error))
            events.append(
                RunEvent("failed", job.id, run_id, attempt, trigger, run_time, error=error)
            )
        return events

    # -- outcomes ------------------------------------------------------------------------------
    def report(self, job: Job, events: Sequence[RunEvent], changes: Sequence[RunChange]) -> None:
        """Record what a worker reported (``changes``), announce it, and request a retry of
        each failed run that its job's policy allows."""
        for change in changes:
            self._write(change)
        policy = policy_of(job.trigger)
        for event in events:
            self.emit(event)
            if event.state in ("failed", "timed_out") and event.attempt <= policy.retries:
                self._retry(job, event, delay=policy.delay(event.attempt + 1))

    @property
    def deferred(self) -> int:
        """Retries waiting for the service database to take them."""
        return len(self._deferred)

    def _retry(self, job: Job, event: RunEvent, *, delay: float, wake: bool = True) -> None:
        try:
            self.request(
                job,
                trigger=event.trigger,
                attempt=event.attempt + 1,
                scheduled_run_time=event.scheduled_run_time,
                delay=delay,
            )
        except HistoryUnavailable as exc:  # kept, and recorded at a later pass
            log.warning(
                "job %s: attempt %d waits for the service database: %s",
                job.id,
                event.attempt + 1,
                exc,
            )
            self._deferred.append((job, event, delay))
            if wake:  # the pass then looks again every jobstore_retry_interval
                self.wake()

    def _write(self, change: RunChange) -> None:
        # Straight onto the writer's queue: no app context to push, once a run, in a burst.
        writer = run_writer(self.app)
        if writer is not None and writer.running:
            writer.put(change)
            return
        with self.app.app_context():
            queue_change(change)


def lifecycle_of(app: Flask) -> RunLifecycle:
    """Return ``app``'s run lifecycle."""
    return app.extensions[LIFECYCLE_KEY]


def init_lifecycle(app: Flask) -> RunLifecycle:
    """Give ``app`` its run lifecycle."""
    lifecycle = RunLifecycle(app)
    app.extensions[LIFECYCLE_KEY] = lifecycle
    return lifecycle
