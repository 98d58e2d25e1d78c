"""Prometheus metrics at /metrics: runs by job and outcome, run duration, fire lateness, jobs
per store, scheduler state, store errors. One registry per app (create_app may run often).

Run figures come from the run lifecycle's events (firing/lifecycle.py). Lateness measures
the first attempt of a scheduled fire only; retries and manual runs have their own series
(the start minus when they fell due), so that a retry's backoff is not counted as lateness."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from apscheduler.schedulers.base import STATE_STOPPED
from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..control import ServiceScheduler
from ..firing.lifecycle import RunEvent
from ..openapi import describe
from ..scheduler.service import store_error
from ..stores import count_jobs

log = logging.getLogger(__name__)

EXTENSION_KEY = "scheduler_service.metrics"
# Run states that count as an outcome (pending and submitted are not).
OUTCOMES = frozenset(
    ("succeeded", "failed", "timed_out", "missed", "skipped", "skipped_duplicate", "coalesced")
)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)

bp = Blueprint("metrics", __name__)


class _SchedulerCollector:
    """Read the scheduler's state and the jobs per store at scrape time (counted at the
    store: a scrape of 10,000 jobs unpickles none)."""

    def __init__(self, extension: ServiceScheduler, errors: Counter) -> None:
        self.extension = extension
        self.errors = errors

    @property
    def leader(self) -> bool:
        return self.extension.role == "leader"

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = GaugeMetricFamily(
            "scheduler_state", "Scheduler state: 0 stopped, 1 running, 2 paused"
        )
        state.add_metric([], self.extension.state)
        yield state
        firing = GaugeMetricFamily("scheduler_firing", "1 when this process fires jobs")
        firing.add_metric([], float(self.extension.firing))
        yield firing
        leader = GaugeMetricFamily("scheduler_leader", "1 when this replica is the leader")
        leader.add_metric([], float(self.leader))
        yield leader
        election = self.extension.election
        changes = CounterMetricFamily(
            "scheduler_leadership_changes",
            "Times this replica became or stopped being the leader",
        )
        changes.add_metric([], election.changes if election is not None else 0)
        yield changes
        jobs = GaugeMetricFamily("scheduler_jobs", "Jobs in each job store", labels=["jobstore"])
        if self.extension.state != STATE_STOPPED:
            for alias, store in self.extension.jobstores.items():
                try:
                    jobs.add_metric([alias], count_jobs(store))
                except Exception:  # the store is down: counted, and left out of this scrape
                    self.errors.labels("scrape").inc()
        yield jobs


class ServiceMetrics:
    """The metrics of one app, fed by the run lifecycle and store-error signals.

    No label takes values that grow with job churn (one-shot jobs would make a series
    each): per-job figures are in the API (the run history, the fire ledger)."""

    def __init__(self, extension: ServiceScheduler) -> None:
        self.registry = CollectorRegistry()
        # The standard process_* and python_* series (CPU, memory, open files, GC).
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.runs = Counter(
            "scheduler_runs",
            "Runs by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "scheduler_run_duration_seconds",
            "How long runs took",
            ["outcome"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.lateness = Histogram(
            "scheduler_run_lateness_seconds",
            "Start of a scheduled fire's first attempt minus its scheduled time",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.start_delay = Histogram(
            "scheduler_run_start_delay_seconds",
            "Start of a retry or manual run minus when it fell due",
            ["trigger"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "scheduler_store_errors", "Failed job store calls", ["kind"], registry=self.registry
        )
        self.registry.register(_SchedulerCollector(extension, self.store_errors))
        self._children: dict[tuple[Any, ...], Any] = {}

    def on_run(self, event: RunEvent) -> None:
        """Count a run outcome (a lifecycle subscriber)."""
        if event.state not in OUTCOMES or event.job_id.startswith("__"):
            return
        self._child(self.runs, event.state).inc()
        if event.duration is not None:
            self._child(self.duration, event.state).observe(event.duration)
        if event.lateness is not None:
            late = max(event.lateness, 0.0)
            if event.first_scheduled:
                self.lateness.observe(late)
            else:
                kind = "retry" if event.attempt > 1 else "manual"
                self._child(self.start_delay, kind).observe(late)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: ``labels`` takes the metric's lock and
        checks the values at every call, from twenty job threads at once in a burst."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_store_error(self, sender: Any, kind: str = "api", **_: Any) -> None:
        self.store_errors.labels(kind).inc()


def init_metrics(app: Flask, extension: ServiceScheduler) -> None:
    """Collect ``app``'s metrics (its scheduler, its run events); ``bp`` serves them."""
    metrics = ServiceMetrics(extension)
    if extension.lifecycle is not None:
        extension.lifecycle.subscribe(metrics.on_run)
    store_error.connect(metrics.on_store_error, sender=app)
    app.extensions[EXTENSION_KEY] = metrics


@bp.get("/metrics")
@describe(
    "Prometheus metrics",
    response={"type": "string"},
    media_type="text/plain",
    description="The Prometheus text exposition format.",
)
def metrics_view() -> Response:
    metrics: ServiceMetrics = current_app.extensions[EXTENSION_KEY]
    return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)
