"""Job functions operators may schedule: public callables in jobs.examples and jobs.ops.

``JobLimits`` is what the service installs at start-up to tell them which folders and
networks they may use (see ``jobs._limits``); it is a class, so it cannot be scheduled.
"""

from ._limits import JobLimits

__all__ = ["JobLimits"]
