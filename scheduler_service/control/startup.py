"""Start the scheduler once its job stores answer (SCHEDULER_STORE_WAIT)."""

from __future__ import annotations

import logging
import time

from flask import Flask

from ..errors import ConfigError, ServiceUnavailable
from .extension import EXTENSION_KEY, ServiceScheduler

log = logging.getLogger(__name__)


def start_scheduler(app: Flask) -> None:
    """Check the stores answer (waiting up to SCHEDULER_STORE_WAIT), then start the scheduler.

    :raises ConfigError: a job store is unreachable (one line naming it and the cause).
    """
    extension: ServiceScheduler = app.extensions[EXTENSION_KEY]
    deadline = time.monotonic() + app.config["SCHEDULER_STORE_WAIT"]
    while True:
        try:
            extension.probe_stores(timeout=app.config["SCHEDULER_STORE_TIMEOUT"])
            break
        except ServiceUnavailable as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfigError(f"SCHEDULER_JOBSTORES: {exc.message}") from None
            log.warning(
                "%s; retrying for %.0f more seconds (SCHEDULER_STORE_WAIT)", exc.message, remaining
            )
            time.sleep(min(2.0, remaining))
    extension.start(paused=app.config["SCHEDULER_START_PAUSED"])
