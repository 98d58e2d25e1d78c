"""Fixtures of the job-store tests: stores built through the registry, shut down after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apscheduler.jobstores.base import BaseJobStore

from scheduler_service.errors import ConfigError
from scheduler_service.stores import build_jobstore


def close_store(store: BaseJobStore) -> None:
    """Shut a store down (RethinkDBJobStore.shutdown() fails when it was never started)."""
    if not (type(store).__name__ == "RethinkDBJobStore" and store.conn is None):
        store.shutdown()


@pytest.fixture
def built() -> Iterator[Callable[..., BaseJobStore]]:
    """Build stores with build_jobstore and shut each one down after the test; skip the test
    when the store's driver is not installed here."""
    stores: list[BaseJobStore] = []

    def build(spec: Any, alias: str = "test") -> BaseJobStore:
        try:
            store = build_jobstore(alias, spec)
        except ConfigError as exc:
            if " package: pip install " in str(exc):
                pytest.skip(str(exc))
            raise
        stores.append(store)
        return store

    yield build
    for store in stores:
        close_store(store)
