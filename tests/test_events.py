"""Live events: GET /scheduler/events streams job and run events (SSE), resumable."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from flask import Flask
from flask.testing import FlaskClient

from tests.support.credentials import ADMIN, OPERATOR, VIEWER

JOB = {
    "id": "e",
    "func": "jobs.examples:print_test",
    "args": ["x"],
    "trigger": "interval",
    "hours": 1,
}


def events_of(response, count: int, timeout: float = 20.0) -> list[dict]:
    """Read ``count`` events from an open SSE response."""
    found: list[dict] = []
    chunks: Iterator[bytes] = response.iter_encoded()
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"only {found} within {timeout}s"
        chunk = next(chunks).decode()
        fields = dict(
            line.split(": ", 1)
            for line in chunk.strip().splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            found.append(
                {"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])}
            )
    return found


def test_job_and_run_events_stream_in_order(client: FlaskClient) -> None:
    client.post("/scheduler/jobs", json={**JOB, "id": "before"}, headers=ADMIN)
    # a new client gets what happens from now on: not the job added before, as if live
    response = client.get("/scheduler/events", headers=VIEWER, buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    client.post("/scheduler/jobs", json=JOB, headers=ADMIN)
    client.post("/scheduler/jobs/e/run?wait=10", headers=OPERATOR)
    client.post(
        "/scheduler/jobs", json={**JOB, "id": "f", "func": "jobs.examples:fail"}, headers=ADMIN
    )
    client.post("/scheduler/jobs/f/run?wait=10", headers=OPERATOR)
    client.delete("/scheduler/jobs/e", headers=ADMIN)
    events = events_of(response, 9)
    response.close()
    assert [(e["event"], e["data"]["job_id"]) for e in events] == [
        ("job.added", "e"),
        ("run.pending", "e"),
        ("run.submitted", "e"),
        ("run.succeeded", "e"),
        ("job.added", "f"),
        ("run.pending", "f"),
        ("run.submitted", "f"),
        ("run.failed", "f"),
        ("job.removed", "e"),
    ]
    assert events[1]["data"]["run_id"] == events[2]["data"]["run_id"] == events[3]["data"]["run_id"]
    assert events[1]["data"]["trigger"] == "manual"
    assert "T" in events[3]["data"]["scheduled_run_time"]  # ISO 8601
    assert events[7]["data"]["error"] == "RuntimeError: x"  # fail(message) got args ["x"]
    run = client.get(f"/scheduler/runs/{events[3]['data']['run_id']}", headers=VIEWER)
    assert run.get_json()["state"] == "succeeded"


def test_reconnect_resumes_after_last_event_id(client: FlaskClient) -> None:
    first = client.get("/scheduler/events", headers=VIEWER, buffered=False)
    for i in range(3):
        client.post("/scheduler/jobs", json={**JOB, "id": f"j{i}"}, headers=ADMIN)
    seen = events_of(first, 3)
    first.close()
    again = client.get(
        "/scheduler/events", buffered=False, headers={**VIEWER, "Last-Event-ID": seen[0]["id"]}
    )
    assert [e["data"]["job_id"] for e in events_of(again, 2)] == ["j1", "j2"]
    again.close()
    stale = client.get(
        "/scheduler/events?last_event_id=feedbeef-2", headers=VIEWER, buffered=False
    )  # an id from an earlier boot: replay what is kept
    assert [e["data"]["job_id"] for e in events_of(stale, 3)] == ["j0", "j1", "j2"]
    stale.close()


def test_events_need_auth_and_are_bounded_in_all_and_per_user(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(SCHEDULER_EVENT_STREAMS=3, SCHEDULER_EVENT_STREAMS_PER_USER=2).test_client()
    assert client.get("/scheduler/events").status_code == 401
    viewer = [client.get("/scheduler/events", headers=VIEWER, buffered=False) for _ in range(2)]
    assert [s.status_code for s in viewer] == [200, 200]
    # A viewer cannot take every slot: its third stream is refused, the others' are not.
    refused = client.get("/scheduler/events", headers=VIEWER, buffered=False)
    assert refused.status_code == 429 and refused.get_json()["code"] == 429
    assert int(refused.headers["Retry-After"]) >= 1
    operator = client.get("/scheduler/events", headers=OPERATOR, buffered=False)
    assert operator.status_code == 200
    full = client.get("/scheduler/events", headers=ADMIN, buffered=False)
    assert full.status_code == 503 and full.get_json()["code"] == 503
    for stream in (*viewer, operator):
        next(stream.iter_encoded())  # start the generator so that close() releases its slot
        stream.close()
    reopened = [client.get("/scheduler/events", headers=VIEWER, buffered=False) for _ in range(2)]
    assert [s.status_code for s in reopened] == [200, 200]
    for stream in reopened:
        next(stream.iter_encoded())
        stream.close()
