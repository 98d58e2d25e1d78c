"""Two process-wide memory tricks of `scheduler-service run` (and gunicorn workers), kept
because `bench/run.py` shows they pay on a SQL job store (ARCHITECTURE.md, "Start-up tricks",
has the account of every trick, kept or dropped).

Listing 10,000 jobs from a SQLite store (GET /scheduler/jobs, all of them, by 8 request
threads), one run each, in the same hour (bench/RESULTS.md, issue 16):

==============================  ===========  ======  ===========
build                           list-all ms  RSS MB  ratio to FA
==============================  ===========  ======  ===========
both tricks                     240          108     1.05x, 1.62x
``gc.freeze`` only              221          152     1.06x, 2.28x
neither                         283, 264     154     1.34x, 2.29x
==============================  ===========  ======  ===========

``gc.freeze`` keeps list-all fast (each full collection otherwise walks every object built at
start-up again, while 10,000 jobs are unpickled); one malloc arena keeps the memory down (each
request thread otherwise keeps its own arena with its own peak). With the memory store, whose
jobs are already objects, neither shows (bench/tricks.py).
"""

from __future__ import annotations

import gc
import os

# glibc's mallopt() parameter for the number of malloc arenas (<malloc.h>: M_ARENA_MAX).
_M_ARENA_MAX = -8


def one_malloc_arena() -> None:
    """Have every thread allocate from one glibc malloc arena, unless MALLOC_ARENA_MAX says
    otherwise; call before any thread starts.

    By default glibc gives each thread an arena of its own (up to eight per core) and keeps
    what a thread frees in that arena for the thread's next allocations: a list of 10,000
    jobs answered by each of the request threads in turn leaves one such peak resident per
    thread. With one arena every request reuses the same memory. The threads allocate while
    they hold the GIL, so they do not queue for the arena's lock.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc
        return
    mallopt(_M_ARENA_MAX, 1)


def freeze_startup_objects() -> None:
    """Move every object built so far (the app, its routes, models, settings) out of the
    cyclic garbage collector's sight with ``gc.freeze()``: they live as long as the process,
    and each full collection would walk them all again. Call once, when the service is built.
    """
    gc.collect()  # what is garbage already is not frozen
    gc.freeze()
