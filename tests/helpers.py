"""The helpers' old home, kept so that code written against it still imports (the store tests
on their way to tests/stores/, bench/ scripts, open branches). New code imports from
``tests.support.<purpose>`` instead: credentials, settings, waiting, backends, api, runs."""

from tests.support.api import JOB, SEED, add_job, assert_error, get_job
from tests.support.backends import service_url, stop_containers
from tests.support.credentials import ADMIN, OPERATOR, PASSWORDS, VIEWER, basic
from tests.support.runs import stand_in_job
from tests.support.settings import base_config
from tests.support.waiting import wait_for

__all__ = [
    "ADMIN",
    "JOB",
    "OPERATOR",
    "PASSWORDS",
    "SEED",
    "VIEWER",
    "add_job",
    "assert_error",
    "base_config",
    "basic",
    "get_job",
    "service_url",
    "stand_in_job",
    "stop_containers",
    "wait_for",
]
