"""Live events (SPEC §6): job and run events as a Server-Sent Events stream.

Every event gets an id ``<boot>-<n>``; the hub keeps the last ones so that a client that
reconnects with ``Last-Event-ID`` misses nothing that is still kept. An id from an earlier
boot of the service replays everything kept. A client that sends no id gets what happens
from now on: old events are not sent to it as if they were live.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ADDED, EVENT_JOB_MODIFIED, EVENT_JOB_REMOVED
from flask import Blueprint, Flask, Response, current_app, g, request
from pydantic import BaseModel, ConfigDict

from ..control import ServiceScheduler
from ..errors import ServiceUnavailable, TooManyRequests
from ..firing.lifecycle import RunEvent
from ..openapi import describe
from ..web import query_args

EXTENSION_KEY = "scheduler_service.events"
KEEP = 1000  # events kept for replay
# Seconds between comments on an idle stream: they keep proxies from closing it, and a write
# is how a server learns that its client went away (so its slot is freed within this time).
KEEPALIVE = 2.0
RETRY_MS = 3000  # how long a client waits before it reconnects (the SSE `retry` field)

_KINDS = {
    EVENT_JOB_ADDED: "job.added",
    EVENT_JOB_MODIFIED: "job.modified",
    EVENT_JOB_REMOVED: "job.removed",
}

bp = Blueprint("events", __name__)


class EventsQuery(BaseModel):
    """Where a stream resumes."""

    last_event_id: str | None = None


class Event(BaseModel):
    """One Server-Sent Event: ``data`` is a JSON object naming the job (and the run)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    event: str
    data: str
    retry: int | None = None


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class EventHub:
    """A bounded, replayable log of events that streams wait on.

    Publishing takes no lock unless a stream is waiting: the firing path publishes two
    events a run from twenty threads at once, and a shared lock there makes them queue
    for the GIL. An event is appended (atomic in CPython) unnumbered and with its data as a
    dict; a reader numbers new events in the log's order and encodes their JSON, once.
    """

    def __init__(self, keep: int = KEEP, *, slots: StreamSlots | None = None) -> None:
        self.slots = slots or StreamSlots(total=4, per_user=2)
        self.boot = secrets.token_hex(4)
        # [number, kind, data]: number 0 and a dict until a reader first sees it
        self._events: deque[list[Any]] = deque(maxlen=keep)
        self._numbered = 0  # the last number given
        self._waiting = 0  # streams waiting for an event
        self._changed = threading.Condition()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Add an event and wake the streams (the service's own "__" jobs stay hidden)."""
        if str(data.get("job_id", "")).startswith("__"):
            return
        self._events.append([0, kind, data])
        if self._waiting:  # a stream waits: it counted itself before it last looked
            with self._changed:
                self._changed.notify_all()

    def latest_id(self) -> str:
        """The id of the newest event (a new stream starts after it)."""
        with self._changed:
            events = self._snapshot()
        return f"{self.boot}-{events[-1][0] if events else 0}"

    def _position(self, last_event_id: str | None) -> int:
        boot, _, number = (last_event_id or "").partition("-")
        return int(number) if boot == self.boot and number.isdigit() else 0

    def _snapshot(self) -> list[list[Any]]:
        """The log as it is now, every event numbered and encoded (hold ``_changed``)."""
        events = list(self._events)  # one C call: no append can interleave
        for event in events:
            if event[0] == 0:
                self._numbered += 1
                event[0] = self._numbered
                event[2] = json.dumps(event[2], default=_json_default)
        return events

    def after(self, last_event_id: str | None, *, timeout: float) -> list[tuple[str, str, str]]:
        """Return the events after ``last_event_id``, waiting up to ``timeout`` for one."""
        position = self._position(last_event_id)
        deadline = time.monotonic() + timeout
        with self._changed:
            self._waiting += 1
            try:
                while True:
                    new = [e for e in self._snapshot() if e[0] > position]
                    left = deadline - time.monotonic()
                    if new or left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                self._waiting -= 1
        return [(f"{self.boot}-{n}", kind, data) for n, kind, data in new]

    def on_scheduler_event(self, event: Any) -> None:
        """Publish a job event of APScheduler's (a listener; never raises)."""
        kind = _KINDS.get(event.code)
        if kind is not None:
            self.publish(kind, {"job_id": event.job_id, "jobstore": event.jobstore})

    def on_run(self, event: RunEvent) -> None:
        """Publish a run event of the lifecycle's: ``run.<state>`` (a timed-out run is
        ``run.failed`` with ``timed_out``, as before the state existed)."""
        data: dict[str, Any] = {
            "job_id": event.job_id,
            "run_id": event.run_id,
            "attempt": event.attempt,
            "trigger": event.trigger,
            "scheduled_run_time": event.scheduled_run_time,
        }
        for name in ("jobstore", "duration", "error"):
            if getattr(event, name) is not None:
                data[name] = getattr(event, name)
        state = event.state
        if state == "timed_out":
            state, data["timed_out"] = "failed", True
        self.publish(f"run.{state}", data)


class StreamSlots:
    """Open streams, counted in all and per user: each holds a server thread for its life."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total = total
        self.per_user = per_user
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, user: str) -> None:
        """Take a slot for ``user``.

        :raises TooManyRequests: the user holds ``per_user`` streams already (429).
        :raises ServiceUnavailable: ``total`` streams are open (503).
        """
        with self._lock:
            if self._open.get(user, 0) >= self.per_user:
                raise TooManyRequests(
                    f"{user!r} has {self.per_user} event stream(s) open already, the most a "
                    "user may; close one first",
                    headers={"Retry-After": str(RETRY_MS // 1000)},
                )
            if sum(self._open.values()) >= self.total:
                raise ServiceUnavailable(
                    f"already {self.total} event streams open; try again later"
                )
            self._open[user] = self._open.get(user, 0) + 1

    def give_back(self, user: str) -> None:
        with self._lock:
            left = self._open.get(user, 0) - 1
            if left > 0:
                self._open[user] = left
            else:
                self._open.pop(user, None)


def init_events(app: Flask, extension: ServiceScheduler) -> EventHub:
    """Publish ``app``'s job and run events; ``bp`` serves them at <prefix>/events."""
    slots = StreamSlots(
        app.config["SCHEDULER_EVENT_STREAMS"], app.config["SCHEDULER_EVENT_STREAMS_PER_USER"]
    )
    hub = EventHub(slots=slots)
    extension.add_listener(hub.on_scheduler_event, sum(_KINDS))
    if extension.lifecycle is not None:
        extension.lifecycle.subscribe(hub.on_run)
    app.extensions[EXTENSION_KEY] = hub
    return hub


def _stream(hub: EventHub, user: str, last_event_id: str | None) -> Iterator[str]:
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            events = hub.after(last_event_id, timeout=KEEPALIVE)
            if not events:
                yield ": keepalive\n\n"
            for event_id, kind, data in events:
                yield f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
                last_event_id = event_id
    finally:
        hub.slots.give_back(user)


@bp.get("/events")
@describe(
    "Stream job and run events",
    description="Server-Sent Events: `id`, `event` (job.added, run.succeeded...) and JSON "
    "`data`, from the moment of the request; resumes after the `Last-Event-ID` header or "
    "`?last_event_id=` (what is still kept of the last 1000). Streams are limited in all "
    "(`SCHEDULER_EVENT_STREAMS`, 503 beyond) and per user "
    "(`SCHEDULER_EVENT_STREAMS_PER_USER`, 429 beyond).",
    query=EventsQuery,
    response=Event,
    media_type="text/event-stream",
    errors=(429, 503),
)
def stream_events() -> Response:
    """Stream job and run events; resume after the Last-Event-ID header (or ?last_event_id=)."""
    hub: EventHub = current_app.extensions[EXTENSION_KEY]
    last = request.headers.get("Last-Event-ID") or query_args(EventsQuery).last_event_id
    if last is None:  # a new client: what happens from now on, no replay
        last = hub.latest_id()
    user = g.principal.name
    hub.slots.take(user)
    return Response(
        _stream(hub, user, last),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
