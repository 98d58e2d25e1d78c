"""Leader election over a coordination backend, with lease fencing (SPEC §8).

A backend (ZooKeeper, Redis, PostgreSQL) offers a lock held under a lease: the server drops
it when its holder stops renewing (ZooKeeper session expiry, a Redis key TTL, PostgreSQL's
idle_session_timeout). ``LeaderElection`` runs one thread that acquires or renews that lock
every third of the lease. This process counts as leader only until ``LEASE_SAFETY`` of the
lease after its last confirmed renewal *began*, so a replica that stalls (a pause, a hung
network call, SIGSTOP) stops firing before the server can hand the lock to another.

Changes to the jobs made on any replica are announced through the backend (a ZooKeeper
watch, Redis pub/sub, PostgreSQL LISTEN/NOTIFY) so the leader re-reads its stores at once.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

# The share of the lease this process trusts itself to be leader after a renewal began.
LEASE_SAFETY = 0.8


class Backend(ABC):
    """One replica's handle on a coordination service: a leased lock and a notice channel.

    Every call may raise (the service is unreachable); ``LeaderElection`` handles that.
    """

    kind: str  # "zookeeper", "redis" or "postgresql"

    def __init__(self, *, name: str, replica_id: str, lease: float) -> None:
        self.name = name
        self.replica_id = replica_id
        self.lease = lease  # a backend may lower it to what its server grants
        # Called (from any thread, without blocking) when the backend knows the lock is
        # in doubt, e.g. a ZooKeeper connection suspended: stop firing at once.
        self.on_lost: Callable[[], None] = lambda: None

    @abstractmethod
    def acquire(self, wait: float) -> bool:
        """Try to take the lock, waiting at most ``wait`` seconds; True when held."""

    @abstractmethod
    def renew(self) -> bool:
        """Confirm the lock is still ours and restart its lease; False when lost."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up, if held."""

    @abstractmethod
    def leader(self) -> str | None:
        """The replica id of the lock's holder, if any."""

    @abstractmethod
    def publish(self) -> None:
        """Announce that the jobs changed."""

    @abstractmethod
    def listen(self, callback: Callable[[], None], stop: threading.Event) -> None:
        """Call ``callback`` on every announcement until ``stop`` is set (runs in a thread
        of its own; reconnects by itself)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""


class LeaderElection:
    """Keep trying to lead; know, at any instant, whether this replica may fire."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.replica_id = backend.replica_id
        # What to do when elected, and on a change notice (the scheduler's wakeup).
        self.on_elected: Callable[[], None] = _nothing
        self.on_notice: Callable[[], None] = _nothing
        self._contend = True
        self._held = False
        self._deadline = 0.0  # monotonic; leader while now < deadline
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._changed = threading.Event()
        self._threads: list[threading.Thread] = []
        self.changes = 0  # leadership gained or lost, for the metrics
        self.error: str | None = None  # the backend's last failure, None once it answers
        self._leader_seen: str | None = None
        backend.on_lost = self._lost

    @property
    def lease(self) -> float:
        """Seconds the coordination service keeps the lock of a silent holder."""
        return self.backend.lease

    @property
    def interval(self) -> float:
        """Seconds between two renewals (or acquisition attempts)."""
        return self.backend.lease / 3

    # -- what the rest of the service reads ---------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """Whether this replica holds an unexpired lease now."""
        return time.monotonic() < self._deadline

    @property
    def lease_remaining(self) -> float | None:
        """Seconds this replica may still fire without a renewal; None when not leader."""
        remaining = self._deadline - time.monotonic()
        return round(remaining, 3) if remaining > 0 else None

    def leader_id(self) -> str | None:
        """The leader's replica id as last seen (this replica's when it leads)."""
        if self.is_leader:
            return self.replica_id
        return self._leader_seen

    @property
    def contend(self) -> bool:
        """Whether this replica wants to lead; False (a paused replica) steps down at once."""
        return self._contend

    @contend.setter
    def contend(self, value: bool) -> None:
        self._contend = value
        if not value:
            self._deadline = 0.0
        self._poke.set()

    def wake(self) -> None:
        """Renew, acquire or release now rather than at the next interval."""
        self._poke.set()

    def announce(self) -> None:
        """Tell the other replicas the jobs changed (coalesced, sent from a thread)."""
        if not self.is_leader:
            self._changed.set()

    def notify(self) -> None:
        """Tell every replica, the leader included, to look again now (a requested run, a
        change of the pause flag)."""
        self._changed.set()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the election, notice-listening and announcing threads."""
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._elect, name="leader-election", daemon=True),
            threading.Thread(
                target=self.backend.listen,
                args=(self._notice, self._stop),
                name="leader-notices",
                daemon=True,
            ),
            threading.Thread(target=self._announce, name="leader-announce", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop firing at once, give the lock up and close the connections."""
        was_leader = self._held
        self._deadline = 0.0
        self._stop.set()
        self._poke.set()
        self._changed.set()
        for thread in self._threads:
            thread.join(timeout=self.lease)
        try:
            if was_leader:
                self.backend.release()
                self.backend.publish()  # followers try at once rather than at their next poll
        except Exception as exc:  # the server is gone: the lease runs out by itself
            log.warning("could not release leadership: %s", _reason(exc))
        finally:
            self._held = False
            self.backend.close()

    # -- threads ---------------------------------------------------------------------------------
    def _notice(self) -> None:
        self.on_notice()
        if not self._held:
            self._poke.set()  # a leader may have stepped down: try now

    def _lost(self) -> None:
        self._deadline = 0.0
        self._poke.set()

    def _elect(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                held = self._hold()
                leader = None if held else self.backend.leader()
                self.error = None
            except Exception as exc:
                held, leader = False, None
                if self.error is None:
                    log.warning("coordination (%s) failed: %s", self.backend.kind, _reason(exc))
                self.error = _reason(exc)
            if self._stop.is_set():
                break
            self._leader_seen = leader
            self._settle(held, began)
            self._poke.wait(max(0.0, self.interval - (time.monotonic() - began)))
            self._poke.clear()

    def _hold(self) -> bool:
        """Renew, acquire or give up the lock, as this replica's wish to lead says."""
        if not self.contend:
            if self._held:
                self._deadline = 0.0
                self.backend.release()
            return False
        return self.backend.renew() if self._held else self.backend.acquire(self.interval)

    def _settle(self, held: bool, began: float) -> None:
        if held:
            self._deadline = began + self.lease * LEASE_SAFETY
            if not self._held:
                self._held = True
                self.changes += 1
                log.info("replica %s is now the leader: it fires jobs", self.replica_id)
                self.on_elected()
        else:
            self._deadline = 0.0
            if self._held:
                self._held = False
                self.changes += 1
                log.warning("replica %s lost the leadership: it stopped firing", self.replica_id)

    def _announce(self) -> None:
        while True:
            self._changed.wait()
            if self._stop.is_set():
                return
            self._changed.clear()
            try:
                self.backend.publish()
            except Exception as exc:  # the leader's periodic re-check covers a lost notice
                log.warning("could not announce a job change: %s", _reason(exc))


def _nothing() -> None:
    pass


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
