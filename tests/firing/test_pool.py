"""The thread executor's pool (scheduler/pool.py): futures get results and exceptions; a
shutdown runs what is queued; nothing is taken after it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from scheduler_service.firing.pool import WorkerPool


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(3, thread_name_prefix="test-pool")
    yield pool
    pool.shutdown(wait=True)


def fail(message: str) -> None:
    raise ValueError(message)


def test_results_and_exceptions_reach_the_futures(pool: WorkerPool) -> None:
    squares = [pool.submit(pow, n, 2) for n in range(50)]
    failed = pool.submit(fail, "on purpose")
    assert [future.result(timeout=5) for future in squares] == [n * n for n in range(50)]
    error = failed.exception(timeout=5)
    assert isinstance(error, ValueError) and str(error) == "on purpose"
    # a failure does not take its worker down
    assert pool.submit(pow, 3, 3).result(timeout=5) == 27
    names = pool.submit(lambda: threading.current_thread().name).result(timeout=5)
    assert names.startswith("test-pool_")


def test_shutdown_runs_every_queued_item_first(pool: WorkerPool) -> None:
    gate, busy = threading.Event(), threading.Semaphore(0)

    def hold() -> None:
        busy.release()
        assert gate.wait(10)

    holders = [pool.submit(hold) for _ in range(3)]
    for _ in range(3):
        assert busy.acquire(timeout=5), "the workers did not all start"
    done: list[int] = []
    queued = [pool.submit(done.append, n) for n in range(200)]  # behind the busy workers
    assert done == []
    gate.set()
    pool.shutdown(wait=True)
    assert sorted(done) == list(range(200))
    assert all(future.done() and future.exception() is None for future in holders + queued)
    assert not any(thread.is_alive() for thread in pool._threads)


def test_submit_after_shutdown_raises(pool: WorkerPool) -> None:
    assert pool.submit(pow, 2, 10).result(timeout=5) == 1024
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 2, 2)


def test_shutdown_without_wait_still_runs_the_queue(pool: WorkerPool) -> None:
    gate = threading.Event()
    first = pool.submit(gate.wait, 10)
    rest = [pool.submit(pow, n, 2) for n in range(20)]
    pool.shutdown(wait=False)
    gate.set()
    assert first.result(timeout=5) is True
    assert [future.result(timeout=5) for future in rest] == [n * n for n in range(20)]
