"""A thread pool for bursts: a fixed set of workers fed by one C-level queue.

``concurrent.futures.ThreadPoolExecutor.submit`` takes its shutdown lock and an idle
semaphore (a Python-level lock and condition) on every call, which its workers release
after every item. With 1,000 jobs due at once, the scheduler thread submitting and twenty
workers finishing take turns on those locks, each turn waiting for the GIL: the burst
becomes a queue of lock hand-overs. Here ``submit`` is one ``SimpleQueue.put`` (no Python
lock), and the workers block in ``SimpleQueue.get``.

Same contract as the standard pool for what the executors use: ``submit`` returns a
``concurrent.futures.Future``; ``shutdown(wait)`` runs what was queued, then stops the
workers (joining them if ``wait``); ``_max_workers`` and ``_shutdown`` are read by the
executor and the scheduler info.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = None
_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _at_exit() -> None:
    """Let the workers finish what is queued and end, as the standard pool's do, before
    the interpreter waits for them (they are not daemons: a running job is not cut off)."""
    for pool in list(_pools):
        pool.shutdown(wait=False)


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # what the stdlib pool uses


class WorkerPool:
    """``max_workers`` threads, started on the first submit, running items in order."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "job-worker") -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """Queue ``fn(*args)``; return its future.

        :raises RuntimeError: the pool was shut down.
        """
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if not self._threads:
            self._start()
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._shutdown:
                return
            for number in range(self._max_workers):
                thread = threading.Thread(target=self._work, name=f"{self._prefix}_{number}")
                thread.start()
                self._threads.append(thread)
            _pools.add(self)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            del item, future, fn, args  # no reference kept while idle

    def shutdown(self, wait: bool = True) -> None:
        """Run what is queued, then stop every worker; with ``wait``, join them."""
        with self._lock:
            first, self._shutdown = not self._shutdown, True
            threads = list(self._threads)
        if first:
            for _ in threads:
                self._queue.put(_STOP)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()
