"""A job's run policy (retries with backoff, timeout), carried by a wrapper around its trigger.

APScheduler 3 jobs have a fixed set of attributes, so the policy travels inside the trigger,
which every job store pickles with the job: it is written and read atomically with the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger

MAX_RETRY_DELAY = 3600.0  # seconds: the backoff's cap


@dataclass(frozen=True)
class RunPolicy:
    """How to run a job: retries after a failure, and how long a run may take."""

    retries: int = 0
    retry_delay: float = 10.0
    timeout: float | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2, 3, ...): doubling from retry_delay, capped."""
        return min(self.retry_delay * 2 ** (attempt - 2), MAX_RETRY_DELAY)


DEFAULT_POLICY = RunPolicy()


class PolicyTrigger(BaseTrigger):
    """A trigger that fires as ``inner`` does and carries the job's run policy."""

    def __init__(self, inner: BaseTrigger, policy: RunPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> Any:
        return self.inner.get_next_fire_time(previous_fire_time, now)

    def __str__(self) -> str:
        return str(self.inner)

    def __repr__(self) -> str:
        return f"<PolicyTrigger {self.inner!r} {self.policy}>"


def with_policy(trigger: BaseTrigger, policy: RunPolicy) -> BaseTrigger:
    """Wrap ``trigger`` with ``policy``, or return the bare trigger for the default policy."""
    inner = inner_trigger(trigger)
    return inner if policy == DEFAULT_POLICY else PolicyTrigger(inner, policy)


def inner_trigger(trigger: BaseTrigger) -> BaseTrigger:
    """Return the trigger that decides the fire times."""
    return trigger.inner if isinstance(trigger, PolicyTrigger) else trigger


def policy_of(trigger: BaseTrigger) -> RunPolicy:
    """Return the run policy a trigger carries (the default when none)."""
    return trigger.policy if isinstance(trigger, PolicyTrigger) else DEFAULT_POLICY
