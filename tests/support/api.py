"""Job bodies and checks for tests that talk to the job API through a test client."""

from __future__ import annotations

from typing import Any

from tests.support.credentials import ADMIN

# The seed documentation's example job (SPEC §3), which must work as written.
SEED = {
    "id": "job2",
    "func": "jobs.examples:print_test",
    "args": ["linda"],
    "trigger": "interval",
    "seconds": 5,
}

# A plain interval job for tests that need any job.
JOB = {
    "id": "a",
    "func": "jobs.examples:print_test",
    "args": ["x"],
    "trigger": "interval",
    "seconds": 30,
}


def assert_error(response, code: int, *fields: str) -> dict:
    """Check the SPEC §3 error body, and that ``fields`` are named in ``errors``."""
    assert response.status_code == code, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["code"] == code
    assert body["error_message"]
    assert body["status"]
    for field in fields:
        assert field in body.get("errors", {}), body
    return body


def add_job(client: Any, body: dict) -> dict:
    """POST ``body`` as admin; it must be accepted (200): return the job."""
    response = client.post("/scheduler/jobs", json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def get_job(client: Any, job_id: str) -> dict:
    """GET the job as admin; it must exist: return it."""
    response = client.get(f"/scheduler/jobs/{job_id}", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def add_hourly_job(client: Any, job_id: str, func: str, args: list, **extra: Any) -> dict:
    """Add an hourly interval job running ``func(*args)`` (``extra``: more fields); return it."""
    body = {"id": job_id, "func": func, "args": args, "trigger": "interval", "hours": 1, **extra}
    return add_job(client, body)
