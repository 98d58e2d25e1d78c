"""The job functions the service ships, and the name ``jobs`` that schedules them.

They live in the repository's top-level folder ``jobs/`` and are named ``jobs.examples:...``
everywhere: the default SCHEDULER_ALLOWED_MODULES (``["jobs"]``), config/*.toml, the README,
and jobs stored in users' databases (APScheduler stores ``"module:function"`` and imports it
again on every load, in the service and in process-pool children). A wheel must not claim the
top-level name ``jobs``, which other distributions may use, so it installs the folder as
``scheduler_service.jobs`` (pyproject.toml), and :func:`install` lets ``import jobs`` load
that folder when nothing else provides a ``jobs`` package:

- A finder at the *end* of ``sys.meta_path`` answers for the top-level name ``jobs`` only,
  so it is asked only when every other finder failed: a user's own ``jobs`` package (on
  sys.path, installed, or this repository's checkout) wins. Ours then stay importable as
  ``scheduler_service.jobs.*`` (list that in SCHEDULER_ALLOWED_MODULES to schedule them).
  Like any import, a bare ``jobs/`` folder without ``__init__.py`` on sys.path (a namespace
  package) also comes first.
- The folder is loaded *under the name* ``jobs`` (not as an alias of the module object
  ``scheduler_service.jobs``), so ``jobs.examples`` is one module, found through
  ``jobs.__path__``, whose functions' ``__module__`` is ``"jobs.examples"``: what the
  allowlist (scheduler/callables.py) checks and APScheduler stores.

:func:`install` runs when ``scheduler_service`` is imported rather than at app build: a
child spawned for a job with a timeout unpickles its job, and so imports ``jobs.examples``,
before it builds its app; the pickled worker function has imported ``scheduler_service`` by
then (pool children run ``create_job_app`` first, and forked ones inherit the finder).
``jobs/`` itself imports nothing of scheduler_service.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

NAME = "jobs"
PACKAGE = "scheduler_service.jobs"


def _folder_spec() -> importlib.machinery.ModuleSpec | None:
    """The spec of the shipped folder as ``scheduler_service.jobs`` (not imported), or None
    when it is not installed under that name (a checkout used without pip install)."""
    try:
        return importlib.util.find_spec(PACKAGE)
    except ImportError:
        return None


class _ShippedJobsFinder(importlib.abc.MetaPathFinder):
    """Find the top-level package ``jobs`` in the shipped folder (see the module docstring)."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != NAME or path is not None:
            return None
        folder = _folder_spec()
        if folder is None or folder.origin is None or not folder.submodule_search_locations:
            return None
        return importlib.util.spec_from_file_location(
            NAME, folder.origin, submodule_search_locations=list(folder.submodule_search_locations)
        )


def install() -> None:
    """Let ``import jobs`` load the shipped folder when nothing else provides ``jobs``
    (idempotent)."""
    if not any(isinstance(finder, _ShippedJobsFinder) for finder in sys.meta_path):
        sys.meta_path.append(_ShippedJobsFinder())


def package() -> str:
    """The name under which the shipped job functions load in this process: ``"jobs"``,
    unless another ``jobs`` package wins, then ``"scheduler_service.jobs"``."""
    try:
        found = importlib.util.find_spec(NAME)
    except ImportError:
        found = None
    folder = _folder_spec()
    if folder is None or folder.origin is None:  # a checkout used as it is: jobs/ is ours
        return NAME
    if found is None or found.origin is None:  # no jobs, or a namespace package
        return PACKAGE
    same = os.path.realpath(found.origin) == os.path.realpath(folder.origin)
    return NAME if same else PACKAGE


def load() -> ModuleType:
    """Import and return the shipped job package (see :func:`package`)."""
    return importlib.import_module(package())
