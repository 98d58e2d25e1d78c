"""/metrics: Prometheus text that parses, with run counters matching the run history."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from scheduler_service import create_app
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.settings import base_config


def scrape(client: FlaskClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=VIEWER)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def add(client: FlaskClient, job_id: str, func: str, args: list) -> None:
    body = {"id": job_id, "func": func, "args": args, "trigger": "interval", "hours": 1}
    assert client.post("/scheduler/jobs", json=body, headers=ADMIN).status_code == 200


def history(client: FlaskClient, job_id: str, state: str) -> int:
    response = client.get(f"/scheduler/jobs/{job_id}/runs?state={state}", headers=VIEWER)
    return int(response.headers["X-Total-Count"])


def test_metrics_need_auth(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401


def test_run_counters_match_the_history(client: FlaskClient) -> None:
    add(client, "ok", "jobs.examples:print_test", ["x"])
    add(client, "bad", "jobs.examples:fail", ["no"])
    add(client, "slow", "jobs.examples:sleep", [1])
    for job_id, times in (("ok", 3), ("bad", 2)):
        for _ in range(times):
            response = client.post(f"/scheduler/jobs/{job_id}/run?wait=10", headers=OPERATOR)
            assert response.status_code == 202
    client.post("/scheduler/jobs/slow/run", headers=OPERATOR)
    assert client.post("/scheduler/jobs/slow/run", headers=OPERATOR).status_code == 409
    client.post("/scheduler/jobs/slow/run?wait=0", headers=OPERATOR)  # maybe skipped too
    samples = scrape(client)

    def counted(outcome: str) -> float:
        return samples.get(("scheduler_runs_total", (("outcome", outcome),)), 0.0)

    assert counted("succeeded") == history(client, "ok", "succeeded") == 3
    assert counted("failed") == history(client, "bad", "failed") == 2
    assert counted("skipped") == history(client, "slow", "skipped") >= 1
    # the standard process series are there
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert samples[("scheduler_run_duration_seconds_count", (("outcome", "succeeded"),))] >= 3
    # manual runs have their own series: lateness is for scheduled fires only
    assert samples[("scheduler_run_start_delay_seconds_count", (("trigger", "manual"),))] >= 5
    assert samples[("scheduler_run_lateness_seconds_count", ())] == 0


def test_series_do_not_grow_with_job_churn(client: FlaskClient) -> None:
    # 30 one-shot jobs, each run once and gone: no series names any of them
    for i in range(30):
        add(client, f"once{i}", "jobs.examples:print_test", ["x"])
        response = client.post(f"/scheduler/jobs/once{i}/run?wait=10", headers=OPERATOR)
        assert response.get_json()["state"] == "succeeded"
        assert client.delete(f"/scheduler/jobs/once{i}", headers=ADMIN).status_code == 204
    text = client.get("/metrics", headers=ADMIN).text
    assert "once" not in text
    assert scrape(client)[("scheduler_runs_total", (("outcome", "succeeded"),))] == 30


def test_state_and_jobs_per_store(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    add(client, "a", "jobs.examples:print_test", ["x"])
    add(client, "b", "jobs.examples:print_test", ["y"])
    samples = scrape(client)
    assert samples[("scheduler_jobs", (("jobstore", "default"),))] == 2
    assert samples[("scheduler_state", ())] == 2  # paused, as the test settings start
    assert samples[("scheduler_firing", ())] == 0
    client.post("/scheduler/resume", headers=OPERATOR)
    samples = scrape(client)
    assert samples[("scheduler_state", ())] == 1 and samples[("scheduler_firing", ())] == 1


def test_jobs_per_store_are_counted_at_the_store(app: Flask, monkeypatch) -> None:
    """A scrape counts jobs with the store's own count (SQL COUNT here): it unpickles none."""
    client = app.test_client()
    for job_id in ("a", "b", "c"):
        add(client, job_id, "jobs.examples:print_test", ["x"])
    client.post("/scheduler/jobs/b/pause", headers=OPERATOR)  # paused jobs count too
    store = app.extensions["scheduler_service"].scheduler._lookup_jobstore("default")

    def unpickle_all(*_: object) -> list:
        raise AssertionError("a scrape read every job")

    monkeypatch.setattr(store, "get_all_jobs", unpickle_all)
    monkeypatch.setattr(store, "_reconstitute_job", unpickle_all)
    samples = scrape(client)
    assert samples[("scheduler_jobs", (("jobstore", "default"),))] == 3
    assert samples.get(("scheduler_store_errors_total", (("kind", "scrape"),)), 0) == 0


@pytest.mark.services
def test_jobs_per_store_on_every_backend(store_app: Callable[..., Flask]) -> None:
    client = store_app().test_client()
    for job_id in ("a", "b", "c"):
        add(client, job_id, "jobs.examples:print_test", ["x"])
    client.post("/scheduler/jobs/b/pause", headers=OPERATOR)
    client.delete("/scheduler/jobs/c", headers=ADMIN)
    assert scrape(client)[("scheduler_jobs", (("jobstore", "default"),))] == 2


def test_an_app_shut_down_is_freed(tmp_path: Path) -> None:
    """Nothing global keeps an app alive once it is shut down: the store-error signal held
    each app's metrics, and through them the whole app, for the life of the process."""
    app = create_app(base_config(tmp_path / "instance"))
    app.extensions["scheduler_service"].shutdown(wait=True)
    freed = weakref.ref(app)
    del app
    gc.collect()
    assert freed() is None
