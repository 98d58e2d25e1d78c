"""What every job-store backend module fills in (``Backend``), and what they share.

A backend module describes its store type with one ``Backend``: the class to import lazily,
the pip extra of its driver, the URL schemes it parses, and hooks for what the service does
beside APScheduler (prepare the options, probe the server, describe the store, tell which ids
it may hold, page and count its jobs at the store, write a pass's changes back at once).
A hook a backend does not need keeps the default defined here.

Paging: APScheduler's ``get_all_jobs`` reads and unpickles every job; a page of 100 among
10,000 should not. A backend with a fast path returns a ``StorePager`` that lists the
scheduled jobs soonest first, then the paused jobs (as ``get_all_jobs`` does, paused ones
ordered by id here); without one, the caller reads every job.

Write-back: after a pass, each fired job's next run time moves on (an update) or the job is
done (a removal). APScheduler writes each with its own ``update_job`` or ``remove_job``: with
1,000 jobs due at once, 1,000 transactions or round trips. A backend's ``write_back`` does it
in as few as the store allows; rows are written exactly as the store's own ``update_job``
writes them (pickled state, UTC timestamp), so the store round-trips and vanilla readers
sharing it see no difference. A job removed by someone else meanwhile is not brought back:
updates touch only the jobs still there, as ``update_job`` would (it raises JobLookupError).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ..errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.job import Job

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds: the connect / server-selection / start timeout every driver gets

Options = dict[str, Any]
# (active, offset, limit) -> jobs; () -> how many (scheduled, paused)
PageFn = Callable[[bool, int, int], "list[Job]"]
CountsFn = Callable[[], tuple[int, int]]
WriteBack = Callable[[Any, "Sequence[Job]", Sequence[str]], None]


class StorePager:
    """Count and page one store's scheduled (active) and paused jobs, for one request: the
    counts are read once (one query) and reused."""

    def __init__(self, counts: CountsFn, page: PageFn) -> None:
        self._counts_fn = counts
        self._counts: tuple[int, int] | None = None
        self._page = page

    def count(self, active: bool) -> int:
        """How many scheduled (``active``) or paused jobs the store holds."""
        if self._counts is None:
            self._counts = self._counts_fn()
        return self._counts[0 if active else 1]

    def total(self, paused: bool | None) -> int:
        """How many jobs the store holds: all, only paused, or only scheduled."""
        if paused is None:
            return self.count(True) + self.count(False)
        return self.count(not paused)

    def page(self, paused: bool | None, offset: int, limit: int) -> list[Job]:
        """The jobs at [offset, offset + limit) of the store's order, filtered by ``paused``."""
        if limit <= 0:
            return []
        if paused is not None:
            return self._page(not paused, offset, limit)
        active = self.count(True)
        jobs = self._page(True, offset, limit) if offset < active else []
        rest = limit - len(jobs)
        if rest > 0:
            jobs += self._page(False, max(0, offset - active), rest)
        return jobs


def job_state(store: Any, job: Job) -> bytes:
    """Return ``job`` pickled as the store's own ``update_job`` pickles it."""
    return pickle.dumps(job.__getstate__(), store.pickle_protocol)


def write_one_by_one(store: Any, updated: Sequence[Job], removed: Sequence[str]) -> None:
    """Write back with the store's own methods, one call a job (no faster way known)."""
    from apscheduler.jobstores.base import JobLookupError

    for job in updated:
        try:
            store.update_job(job)
        except JobLookupError:
            log.debug("job %s was removed while it ran: not stored again", job.id)
    for job_id in removed:
        with contextlib.suppress(JobLookupError):
            store.remove_job(job_id)


def _as_given(options: Options) -> Options:
    return options


def _nothing_to_probe(store: Any, timeout: float) -> None:
    """An in-process store is always reachable."""


def _nothing_to_describe(store: Any) -> dict[str, Any]:
    return {}


def _holds_any(job_id: str) -> bool:
    """The store can hold any id (a str): a lookup of any id is a plain miss."""
    return True


def _no_file(store: Any) -> Path | None:
    return None


@dataclass(frozen=True)
class Backend:
    """One job-store type: what to build, how to read its URL, and the service's hooks."""

    name: str  # the type in settings and in describe_jobstore ("redis")
    target: str  # "module:Class", imported on first use
    extra: str | None  # the pyproject extra that installs the driver; None: always installed
    schemes: tuple[str, ...]  # the URL schemes ``parse`` reads
    parse: Callable[[str], Options]  # URL -> constructor options (ValueError: malformed)
    prepare: Callable[[Options], Options] = _as_given  # bounded timeouts, a client of its own
    probe: Callable[[Any, float], None] = _nothing_to_probe  # can the server be reached now?
    describe: Callable[[Any], dict[str, Any]] = _nothing_to_describe  # for the info endpoint
    holds: Callable[[str], bool] = _holds_any  # could a job of the store have this id?
    pager: Callable[[Any], StorePager] | None = None  # paging at the store; None: read all
    write_back: WriteBack = write_one_by_one  # a pass's changes in as few writes as it can
    missing_file: Callable[[Any], Path | None] = _no_file  # a local file a probe would make
    url_types: tuple[str, ...] = ()  # more type names for it, given with a url ("postgres")
    also: tuple[str, ...] = ()  # more "module:Class" targets that are this type, as given
    # a missing driver module -> (its pip package, the extra that installs it)
    drivers: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    # the driver's errors that say the server is out of reach: ("module", "Class") pairs
    connection_errors: tuple[tuple[str, str], ...] = ()


def copy_spec(where: str, spec: Mapping[str, Any], known: Iterable[str]) -> Options:
    """Copy a ``{"type": ...}`` spec two levels deep (APScheduler pops keys and fills nested
    option dicts), refusing a class path.

    :raises ConfigError: the spec names a ``class``.
    """
    if "class" in spec:
        raise ConfigError(
            f"{where}: 'class' is not allowed (no arbitrary class paths); "
            f"use 'type', one of: {', '.join(known)}"
        )
    return {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in spec.items()
    }


# --- URL parts, for the backends' parsers ------------------------------------------------------
def split_url(url: str, *, one_host: bool = True) -> SplitResult:
    """Split a job-store URL; ``one_host``: check its port too.

    :raises ValueError: malformed, or with a #fragment.
    """
    try:
        parts = urlsplit(url)
        if one_host:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    if parts.fragment:
        raise ValueError("a job-store URL takes no #fragment")
    return parts


def port_of(parts: SplitResult, default: int) -> int:
    return parts.port if parts.port is not None else default


def query_options(
    parts: SplitResult, *, known: Iterable[str], others_allowed: bool = False
) -> dict[str, str]:
    """Return the ``known`` query options of a URL, each given once.

    :raises ValueError: an option given twice, or an unknown one unless ``others_allowed``.
    """
    known = tuple(known)
    found: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in found:
            raise ValueError(f"option {key!r} is given twice")
        if key in known:
            found[key] = value
        elif not others_allowed:
            raise ValueError(f"unknown option {key!r} (known: {', '.join(known)})")
    return found
