"""The executor registry: the dict forms of SCHEDULER_EXECUTORS and their errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from apscheduler.executors.pool import ProcessPoolExecutor, ThreadPoolExecutor

from scheduler_service.errors import ConfigError
from scheduler_service.firing.registry import EXECUTOR_TYPES, build_executor


@pytest.mark.parametrize(
    ("spec", "cls", "workers"),
    [
        ({"type": "threadpool", "max_workers": 3}, ThreadPoolExecutor, 3),
        ({"type": "thread", "max_workers": 1}, ThreadPoolExecutor, 1),
        ({"type": "threadpool"}, ThreadPoolExecutor, 10),
        ({"type": "processpool", "max_workers": 2}, ProcessPoolExecutor, 2),
        (
            {"type": "process", "max_workers": 2, "pool_kwargs": {"initargs": ()}},
            ProcessPoolExecutor,
            2,
        ),
    ],
)
def test_build_executor(spec: dict, cls: type, workers: int) -> None:
    before = copy.deepcopy(spec)
    executor = build_executor("default", spec)
    try:
        assert isinstance(executor, cls)
        assert type(executor).__module__ == "scheduler_service.firing.executors"
        assert executor._pool._max_workers == workers
        assert spec == before  # ProcessPoolExecutor fills pool_kwargs: it got a copy
    finally:
        executor.shutdown(wait=False)
    assert spec["type"] in EXECUTOR_TYPES


def test_executor_instances_are_returned_as_is() -> None:
    executor = ThreadPoolExecutor(2)
    try:
        assert build_executor("mine", executor) is executor
    finally:
        executor.shutdown(wait=False)


@pytest.mark.parametrize("workers", [0, -1, "4", 2.5, True, None])
def test_executor_bad_max_workers(workers: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        build_executor("pool", {"type": "threadpool", "max_workers": workers})
    assert str(caught.value) == (
        f"SCHEDULER_EXECUTORS['pool']: max_workers must be a positive integer, got {workers!r}"
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"type": "gevent"}, "unknown type 'gevent'; known types: threadpool, processpool"),
        ({"max_workers": 2}, "no type"),
        ({"class": "apscheduler.executors.pool:ThreadPoolExecutor"}, "'class' is not allowed"),
        ({"type": "threadpool", "colour": "red"}, "argument 'colour'"),
        ("threadpool", "expected a {'type': ...} dict"),
    ],
)
def test_executor_bad_specs(spec: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_executor("pool", spec)
    assert str(caught.value).startswith("SCHEDULER_EXECUTORS['pool']: ")
    assert fragment in str(caught.value)
