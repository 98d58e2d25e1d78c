"""CPU per POST /scheduler/jobs for cron jobs, valid and never firing (issue 15).

The "cron never fires" check walked APScheduler's search to the year 9999: up to seconds of
CPU with the GIL held, per request. Run it on any build, from the repo root:

    python bench/cron_check.py [requests per case, default 5]

It builds an app on a memory store (paused, nothing fires) and posts each case through the
Flask test client, so the CPU time of this thread is the request's.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler_service import create_app
from tests.support.credentials import ADMIN
from tests.support.settings import base_config

CASES = {
    "valid: minute 0 (hourly)": {"minute": "0"},
    "valid: day 31": {"day": 31},
    "valid: feb 29 on a monday": {"month": 2, "day": 29, "day_of_week": "mon"},
    "never: month 4,6,9,11 day 31": {"month": "4,6,9,11", "day": 31},
    "never: month 2 day 30": {"month": 2, "day": 30},
    "never: week 53 month 2": {"week": 53, "month": 2},
}


def main(requests: int) -> None:
    instance = Path(tempfile.mkdtemp()) / "instance"
    app = create_app({**base_config(instance), "SCHEDULER_JOBSTORE_URL": "memory://"})
    client = app.test_client()
    for number, (name, fields) in enumerate(CASES.items()):
        spent, status = [], None
        for i in range(requests):
            body = {"id": f"c{number}-{i}", "func": "jobs.examples:print_test", "args": ["x"]}
            start = time.thread_time()
            response = client.post(
                "/scheduler/jobs", json={**body, "trigger": "cron", **fields}, headers=ADMIN
            )
            spent.append(time.thread_time() - start)
            status = response.status_code
        median, worst = statistics.median(spent) * 1000, max(spent) * 1000
        print(f"{name:32s} {status}  CPU median {median:8.2f} ms  max {worst:8.2f} ms")
    app.extensions["scheduler_service"].shutdown(wait=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
