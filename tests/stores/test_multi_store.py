"""Several job stores at once: a job's "jobstore" picks one, in the API and in declarations."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask

from tests.support.backends import service_url
from tests.support.credentials import ADMIN


@pytest.fixture
def redis_store() -> Iterator[tuple[str, redis.Redis, str]]:
    """A redis store URL with keys of this test's own; the keys are deleted afterwards."""
    base = service_url("TEST_REDIS_URL")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    jobs_key = f"{prefix}.jobs"
    url = f"{base}?jobs_key={jobs_key}&run_times_key={prefix}.run_times"
    client = redis.Redis.from_url(base)
    yield url, client, jobs_key
    client.delete(jobs_key, f"{prefix}.run_times")
    client.close()


def test_a_job_lands_in_the_store_it_names(
    make_app: Callable[..., Flask], redis_store: tuple[str, redis.Redis, str]
) -> None:
    url, raw, jobs_key = redis_store
    declared = {
        "id": "seed-redis",
        "func": "jobs.examples:print_test",
        "args": ["r"],
        "trigger": "interval",
        "seconds": 60,
        "jobstore": "redis",
    }
    app = make_app(SCHEDULER_JOBSTORES={"default": None, "redis": url}, SCHEDULER_JOBS=[declared])
    client = app.test_client()
    body = {
        "id": "api-redis",
        "func": "jobs.examples:print_test",
        "args": ["x"],
        "trigger": "cron",
        "minute": "*/10",
        "jobstore": "redis",
    }
    assert (
        client.post("/scheduler/jobs", json=body, headers=ADMIN).get_json()["jobstore"] == "redis"
    )
    local = {**body, "id": "api-default"}
    del local["jobstore"]
    assert client.post("/scheduler/jobs", json=local, headers=ADMIN).status_code == 200

    assert sorted(k.decode() for k in raw.hkeys(jobs_key)) == ["api-redis", "seed-redis"]
    in_redis = client.get("/scheduler/jobs?jobstore=redis", headers=ADMIN).get_json()
    assert sorted(j["id"] for j in in_redis) == ["api-redis", "seed-redis"]
    in_default = client.get("/scheduler/jobs?jobstore=default", headers=ADMIN).get_json()
    assert [j["id"] for j in in_default] == ["api-default"]
    # An id is unique across stores: the same id in the other store is a conflict.
    clash = {**local, "id": "api-redis"}
    assert client.post("/scheduler/jobs", json=clash, headers=ADMIN).status_code == 409
    # Operations find the job in its own store.
    assert (
        client.patch("/scheduler/jobs/api-redis", json={"args": ["y"]}, headers=ADMIN).get_json()[
            "jobstore"
        ]
        == "redis"
    )
    assert client.delete("/scheduler/jobs/api-redis", headers=ADMIN).status_code == 204
    assert [k.decode() for k in raw.hkeys(jobs_key)] == ["seed-redis"]
