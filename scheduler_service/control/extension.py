"""The scheduler extension: Flask-APScheduler's, fed validated settings and store instances,
and the one place that starts, pauses, resumes and wakes the firing engine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from flask_apscheduler import APScheduler

from ..coordination import LeaderElection
from ..coordination.replicas import ReplicaRegistry
from ..firing.lifecycle import RunLifecycle
from ..firing.loop import FencedScheduler
from ..runs.retention import housekeeping
from ..runs.writer import RunWriter
from ..scheduler.service import JobService
from ..scheduler.specs import JobSpec
from ..stores import probe_jobstore, sqlite_file_missing

log = logging.getLogger(__name__)

EXTENSION_KEY = "scheduler_service"
# A private in-memory store for the service's own jobs; the job API never shows it.
SERVICE_STORE = "__service__"
HOUSEKEEPING_ID = "__housekeeping__"


class ServiceScheduler(APScheduler):
    """Flask-APScheduler's extension, fed validated settings and store instances.

    The scheduler always runs once started so that the API reads and writes the stores; on a
    host outside SCHEDULER_ALLOWED_HOSTS it stays paused (serves the API, fires nothing).
    With SCHEDULER_COORDINATION, every replica runs it, and only the elected leader fires.
    Pausing and resuming apply to every replica that shares the service database (a flag
    there, see coordination/replicas.py): a paused leader keeps the lead and still takes
    manual runs.
    """

    def __init__(
        self,
        *,
        jobstores: dict[str, Any],
        executors: dict[str, Any],
        election: LeaderElection | None = None,
        replica_id: str,
        run_writer: RunWriter | None = None,
        registry: ReplicaRegistry | None = None,
        lifecycle: RunLifecycle | None = None,
    ) -> None:
        super().__init__(scheduler=FencedScheduler())
        self._jobstore_instances = jobstores
        self._executor_instances = executors
        self.declared: Sequence[JobSpec] = ()
        self.service: JobService
        self.replica_id = replica_id
        self.election = election
        self.run_writer = run_writer
        self.registry = registry
        self.lifecycle = lifecycle
        self._scheduler.lifecycle = lifecycle
        if election is not None:
            self._scheduler.may_fire = lambda: election.is_leader
        if registry is not None:
            registry.is_leader = lambda: self.state != STATE_STOPPED and self.role == "leader"
            registry.on_flag = self._apply_flag

    def _load_config(self) -> None:
        config = self.app.config
        self._scheduler.configure(
            jobstores={**self._jobstore_instances, SERVICE_STORE: MemoryJobStore()},
            executors=self._executor_instances,
            job_defaults=dict(config["SCHEDULER_JOB_DEFAULTS"]),
            timezone=ZoneInfo(config["SCHEDULER_TIMEZONE"]),
            jobstore_retry_interval=config["SCHEDULER_JOBSTORE_RETRY_INTERVAL"],
        )
        if self.election is not None:
            self._scheduler.recheck = config["SCHEDULER_COORDINATION_RECHECK"]
        self.allowed_hosts = list(config["SCHEDULER_ALLOWED_HOSTS"])
        self.api_prefix = config["SCHEDULER_API_PREFIX"]
        self.api_enabled = False  # the service serves its own, hardened API

    def _load_jobs(self) -> None:
        """Declared jobs are upserted after start (see start), never queued as pending jobs."""

    def _add_housekeeping(self) -> None:
        config = self.app.config
        interval = config["SCHEDULER_HOUSEKEEPING_INTERVAL"]
        self._scheduler.add_job(
            housekeeping,
            trigger="interval",
            seconds=interval,
            id=HOUSEKEEPING_ID,
            name="prune the run history",
            jobstore=SERVICE_STORE,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            kwargs={
                "max_age_days": config["SCHEDULER_RUNS_MAX_AGE_DAYS"],
                "max_per_job": config["SCHEDULER_RUNS_MAX_PER_JOB"],
            },
        )

    @property
    def may_fire(self) -> bool:
        """Whether this host is allowed to fire jobs."""
        return "*" in self.allowed_hosts or self.host_name in self.allowed_hosts

    @property
    def firing(self) -> bool:
        """Whether this process fires jobs now: running (not paused), allowed, and leading."""
        return self.state == STATE_RUNNING and self.may_fire and self.role == "leader"

    @property
    def jobstores(self) -> dict[str, Any]:
        """The job stores by alias (the service's private store left out)."""
        return self._jobstore_instances

    @property
    def executors(self) -> dict[str, Any]:
        """The executors by alias."""
        return self._executor_instances

    def probe_stores(self, *, timeout: float, create: bool = True) -> dict[str, str]:
        """Check every job store answers now; return the SQLite files still to be made.

        With ``create`` off, a SQLite store whose file does not exist yet is not opened (that
        would make it): it is returned, alias -> path, instead.

        :raises ServiceUnavailable: naming the first store that does not answer.
        """
        to_make: dict[str, str] = {}
        for alias, store in self._jobstore_instances.items():
            missing = None if create else sqlite_file_missing(store)
            if missing is not None:
                to_make[alias] = str(missing)
                continue
            probe_jobstore(store, timeout=timeout)
        return to_make

    @property
    def role(self) -> str:
        """This process's part: the leader fires jobs (or would, unpaused); a follower does not."""
        if self.election is not None:
            return "leader" if self.election.is_leader else "follower"
        return "leader" if self.may_fire and self.state != STATE_STOPPED else "follower"

    def start(self, paused: bool = False) -> None:
        """Start, upsert the declared jobs, then fire unless paused (here, or cluster-wide)
        or on a host not allowed.

        With coordination, the election starts too: the scheduler fires once elected.
        """
        if self.run_writer is not None:
            self.run_writer.start()
        cluster_paused = self.registry.start() if self.registry is not None else False
        self._scheduler.start(paused=True)
        for spec in self.declared:
            outcome = self.service.upsert_job(spec)
            log.info("declared job %s: %s", spec.id, outcome)
        self._add_housekeeping()
        if not self.may_fire:
            log.info(
                "host %s is not in SCHEDULER_ALLOWED_HOSTS: serving the API, firing nothing",
                self.host_name,
            )
        if self.election is not None:
            self.election.contend = self.may_fire and not paused
            self.election.start()
        if not paused and not cluster_paused and self.may_fire:
            self._scheduler.resume()

    def pause(self) -> None:
        """Stop firing on every replica (the leader keeps the lead)."""
        if self.registry is not None:
            self.registry.set_paused(True)
        self._apply_flag(True)
        self.wake_leader()

    def resume(self) -> None:
        """Fire again on every replica (here, once this replica is elected)."""
        if self.registry is not None:
            self.registry.set_paused(False)
        self._apply_flag(False)
        self.wake_leader()

    def _apply_flag(self, paused: bool) -> None:
        """Follow the cluster's pause flag here (a resume also ends SCHEDULER_START_PAUSED:
        this replica contends for the lead again)."""
        if paused and self.state == STATE_RUNNING:
            self._scheduler.pause()
        elif not paused and self.may_fire:
            if self.election is not None:
                self.election.contend = True
            if self.state == STATE_PAUSED:
                self._scheduler.resume()

    def wake_leader(self) -> None:
        """Have the leader run its processing pass now (a run was requested, the pause
        flag changed): at once here, through the coordination notice elsewhere."""
        self._scheduler.wakeup()
        if self.election is not None:
            self.election.notify()

    def look_again(self) -> None:
        """Re-read the stores, the pending runs and the pause flag now, and close the runs of
        dead replicas: another replica announced a change, or this one was just elected."""
        if self.lifecycle is not None:
            self.lifecycle.requests_changed = True
        self._scheduler.wakeup()
        if self.registry is not None:
            self.registry.poke()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler; with coordination, stop firing first and release the lead."""
        if self.election is not None:
            self.election.stop()
        super().shutdown(wait)
        if self.run_writer is not None:
            self.run_writer.stop()
        if self.registry is not None:
            self.registry.stop()
