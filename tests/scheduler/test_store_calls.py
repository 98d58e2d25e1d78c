"""The job API's request path touches each store once per change: create relies on the store's
own unique id, delete on the store's "no such job"; answers stay as before."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.support.api import JOB, assert_error
from tests.support.credentials import ADMIN


def spy(monkeypatch: pytest.MonkeyPatch, store: Any, *methods: str) -> dict[str, int]:
    """Count the calls the request thread makes to ``methods`` of ``store`` (the scheduler's
    own thread may read the store meanwhile: its calls are not counted)."""
    calls = dict.fromkeys(methods, 0)
    caller = threading.get_ident()
    for name in methods:
        real = getattr(store, name)

        def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            if threading.get_ident() == caller:
                calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return calls


def store_of(app: Flask, alias: str) -> Any:
    return app.extensions["scheduler_service"].scheduler._lookup_jobstore(alias)


def test_create_and_delete_are_one_store_call_each(app: Flask, monkeypatch) -> None:
    client = app.test_client()
    calls = spy(monkeypatch, store_of(app, "default"), "lookup_job", "add_job", "remove_job")

    assert client.post("/scheduler/jobs", json=JOB, headers=ADMIN).status_code == 200
    assert calls == {"lookup_job": 0, "add_job": 1, "remove_job": 0}
    taken = assert_error(client.post("/scheduler/jobs", json=JOB, headers=ADMIN), 409)
    assert taken["error_message"] == "Job a already exists."
    assert calls == {"lookup_job": 0, "add_job": 2, "remove_job": 0}

    response = client.delete("/scheduler/jobs/a", headers=ADMIN)
    assert response.status_code == 204 and response.data == b""
    assert calls == {"lookup_job": 0, "add_job": 2, "remove_job": 1}
    gone = assert_error(client.delete("/scheduler/jobs/a", headers=ADMIN), 404)
    assert gone["error_message"] == "Job a not found"
    assert calls == {"lookup_job": 0, "add_job": 2, "remove_job": 2}


def test_replace_existing_still_replaces_in_place(app: Flask, monkeypatch) -> None:
    client = app.test_client()
    assert client.post("/scheduler/jobs", json=JOB, headers=ADMIN).status_code == 200
    calls = spy(monkeypatch, store_of(app, "default"), "lookup_job")
    again = {**JOB, "seconds": 45, "replace_existing": True}
    assert client.post("/scheduler/jobs", json=again, headers=ADMIN).get_json()["seconds"] == 45
    assert client.get("/scheduler/jobs/a", headers=ADMIN).get_json()["seconds"] == 45
    assert calls["lookup_job"] == 1  # the GET; the replace itself read nothing first


@pytest.fixture
def two_stores(make_app: Callable[..., Flask]) -> Flask:
    return make_app(SCHEDULER_JOBSTORES={"default": None, "mem": "memory://"})


@pytest.mark.parametrize("replace_existing", [False, True])
def test_an_id_in_another_store_is_taken(two_stores: Flask, replace_existing: bool) -> None:
    client = two_stores.test_client()
    assert client.post("/scheduler/jobs", json=JOB, headers=ADMIN).status_code == 200
    elsewhere = {**JOB, "jobstore": "mem", "replace_existing": replace_existing}
    taken = assert_error(client.post("/scheduler/jobs", json=elsewhere, headers=ADMIN), 409)
    assert taken["error_message"] == "Job a already exists."
    assert store_of(two_stores, "mem").get_all_jobs() == []


def test_delete_finds_the_job_in_whichever_store_holds_it(two_stores: Flask) -> None:
    client = two_stores.test_client()
    body = {**JOB, "jobstore": "mem"}
    assert client.post("/scheduler/jobs", json=body, headers=ADMIN).status_code == 200
    assert client.delete("/scheduler/jobs/a", headers=ADMIN).status_code == 204
    assert store_of(two_stores, "mem").get_all_jobs() == []
    assert_error(client.delete("/scheduler/jobs/a", headers=ADMIN), 404)


def test_the_service_store_is_out_of_reach(app: Flask) -> None:
    client = app.test_client()
    assert_error(client.delete("/scheduler/jobs/__housekeeping__", headers=ADMIN), 404)
    assert app.extensions["scheduler_service"].scheduler.get_job("__housekeeping__") is not None
