"""Who is alive: a heartbeat row per process start, the sweep of dead ones, and the
cluster-wide pause flag, all in the service database (SPEC §6, §8).

Every process start gets a random ``boot`` id, stored on each run it holds. A pid alone
cannot say a process died: pids repeat, and a container's service is always PID 1. So a
boot is dead when

- its heartbeat is older than SCHEDULER_HEARTBEAT_TIMEOUT (the leader sweeps, every beat:
  this covers replicas on other hosts), or
- at start-up, it ran on this machine in this PID namespace (same kernel boot id and
  namespace) and no process with its pid and its start time runs any more: a restart on
  the same machine closes its predecessor's runs at once.

The runs a dead boot held open are closed as ``unknown`` (runs/sweep.py). Heartbeat times
are written with each replica's clock and compared with the leader's: keep clocks in sync
(NTP) well within the timeout.

Size: the heartbeat, the sweep and the pause flag share one row per boot and one thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ..dbtypes import changed_rows, utcnow
from ..extensions import db
from ..runs.sweep import boots_with_open_runs, close_legacy_runs, close_runs_of
from .models import ClusterFlag, ReplicaBeat

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

HOST = socket.gethostname()
DEAD_LISTED = 10  # heartbeat timeouts a dead process stays in GET /scheduler/cluster


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def machine_id() -> str:
    """Where a pid names one process: this kernel's boot and this PID namespace."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"[:128]


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot, or None if none runs."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


class ReplicaRegistry:
    """This process's heartbeat, the sweep of dead processes, and the pause flag."""

    def __init__(
        self,
        app: Flask,
        *,
        replica_id: str,
        group: str,
        interval: float,
        timeout: float,
        version: str | None,
    ) -> None:
        self.app = app
        self.boot = secrets.token_hex(8)
        self.replica_id = replica_id
        self.group = group
        self.interval = interval
        self.timeout = timeout
        self.version = version
        # Set by the scheduler: whether this process leads (it sweeps), and what to do when
        # the pause flag changes (called with paused=True/False, from the heartbeat thread).
        self.is_leader: Callable[[], bool] = lambda: False
        self.on_flag: Callable[[bool], None] = lambda paused: None
        self.flag_version = -1  # the pause flag's version last applied here
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._started = False  # this process start is recorded

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> bool:
        """Record this process start, close what dead local predecessors left open, and
        start beating; return whether the cluster is paused.

        With the database out of reach, the heartbeat thread does it once it answers (and
        the cluster counts as not paused until then).
        """
        paused = False
        try:
            with self.app.app_context():
                paused = self._first_beat()
        except Exception as exc:
            log.warning("could not record this replica (retrying every beat): %s", exc)
            self._failing = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="replica-heartbeat", daemon=True)
        self._thread.start()
        return paused

    def stop(self) -> None:
        """Stop beating and remove this process's row (its runs are all closed by now)."""
        self._stop.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            with self.app.app_context():
                db.session.execute(delete(ReplicaBeat).where(ReplicaBeat.boot == self.boot))
                db.session.commit()
        except Exception as exc:  # the database is gone: the row expires by itself
            log.warning("could not remove this replica's heartbeat: %s", exc)

    def poke(self) -> None:
        """Beat, read the pause flag and sweep now rather than at the next interval."""
        self._poke.set()

    # -- the heartbeat thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(self.interval)
            self._poke.clear()
            if self._stop.is_set():
                return
            try:
                with self.app.app_context():
                    self.beat()
            except Exception as exc:
                if not self._failing:
                    log.warning("replica heartbeat failed (retrying every beat): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.warning("replica heartbeat written again")
                self._failing = False

    def _first_beat(self) -> bool:
        self._insert()
        self._close_dead_local()
        paused, self.flag_version = self._read_flag()
        self._started = True
        return paused

    def beat(self) -> None:
        """Write this process's heartbeat, apply a change of the pause flag, and (on the
        leader) close the runs of dead processes."""
        if not self._started:
            if self._first_beat():  # a pause set while this replica could not read it
                self.on_flag(True)
            return
        now = utcnow()
        result = db.session.execute(
            update(ReplicaBeat)
            .where(ReplicaBeat.boot == self.boot)
            .values(last_heartbeat=now, role=self._role())
        )
        db.session.commit()
        if changed_rows(result) == 0:  # swept while cut off from the database: back again
            self._insert()
        paused, version = self._read_flag()
        if version != self.flag_version:
            self.flag_version = version
            self.on_flag(paused)
        if self.is_leader():
            self.sweep()

    def sweep(self) -> int:
        """Close the runs of every boot whose heartbeat expired (or that has no heartbeat
        row and held runs open for longer than the timeout); return how many runs. A dead
        boot's row stays listed (alive: false) for ``DEAD_LISTED`` timeouts."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.timeout)
        expired = set(
            db.session.scalars(
                select(ReplicaBeat.boot).where(ReplicaBeat.last_heartbeat < cutoff)
            ).all()
        )
        known = set(db.session.scalars(select(ReplicaBeat.boot)).all())
        orphans = boots_with_open_runs(submitted_before=cutoff) - known
        closed = self._close((expired | orphans) - {self.boot}, "its heartbeat expired")
        forgotten = now - timedelta(seconds=self.timeout * DEAD_LISTED)
        db.session.execute(delete(ReplicaBeat).where(ReplicaBeat.last_heartbeat < forgotten))
        db.session.commit()
        return closed

    def _close(self, boots: set[str], why: str, *, forget: bool = False) -> int:
        """Close the open runs of dead ``boots``; with ``forget``, drop their rows too."""
        if not boots:
            return 0
        closed = close_runs_of(boots)
        if forget:
            db.session.execute(delete(ReplicaBeat).where(ReplicaBeat.boot.in_(boots)))
        db.session.commit()
        if closed:
            log.warning(
                "closed %d run(s) of %d dead process(es) as unknown (%s)", closed, len(boots), why
            )
        return closed

    # -- rows ----------------------------------------------------------------------------------
    def _role(self) -> str:
        return "leader" if self.is_leader() else "follower"

    def _insert(self) -> None:
        now = utcnow()
        db.session.add(
            ReplicaBeat(
                boot=self.boot,
                replica_id=self.replica_id,
                host=HOST,
                pid=os.getpid(),
                machine=machine_id(),
                pid_start=process_start(os.getpid()),
                role=self._role(),
                version=self.version,
                started_at=now,
                last_heartbeat=now,
            )
        )
        db.session.commit()

    def _close_dead_local(self) -> None:
        """Close the runs of earlier process starts on this machine that no longer run."""
        local = db.session.scalars(
            select(ReplicaBeat).where(
                ReplicaBeat.machine == machine_id(), ReplicaBeat.boot != self.boot
            )
        ).all()
        # Without /proc there is no start time to compare: the heartbeat decides.
        dead = {r.boot for r in local if r.pid_start and process_start(r.pid) != r.pid_start}
        self._close(dead, "their process no longer runs on this machine", forget=True)
        legacy = close_legacy_runs()
        if legacy:
            log.warning("closed %d run(s) of an older release's dead process as unknown", legacy)

    def _read_flag(self) -> tuple[bool, int]:
        flag = db.session.get(ClusterFlag, self.group)
        db.session.commit()
        return (False, 0) if flag is None else (flag.paused, flag.version)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume firing for every replica of the group."""
        now = utcnow()
        changed = db.session.execute(
            update(ClusterFlag)
            .where(ClusterFlag.name == self.group)
            .values(
                paused=paused,
                version=ClusterFlag.version + 1,
                changed_at=now,
                changed_by=self.replica_id,
            )
        )
        if changed_rows(changed) == 0:
            db.session.add(
                ClusterFlag(
                    name=self.group,
                    paused=paused,
                    version=1,
                    changed_at=now,
                    changed_by=self.replica_id,
                )
            )
        try:
            db.session.commit()
        except IntegrityError:  # another replica set the first flag at the same moment
            db.session.rollback()
            self.set_paused(paused)
            return
        self.flag_version = self._read_flag()[1]

    def cluster(self) -> dict[str, Any]:
        """The pause flag and every replica with a heartbeat row, newest first."""
        paused, _ = self._read_flag()
        cutoff = utcnow() - timedelta(seconds=self.timeout)
        rows = db.session.scalars(select(ReplicaBeat).order_by(ReplicaBeat.started_at.desc())).all()
        db.session.commit()
        return {
            "paused": paused,
            "replicas": [r.to_dict(alive=r.last_heartbeat >= cutoff) for r in rows],
        }
