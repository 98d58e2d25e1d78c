"""SPEC §5: jobs declared in configuration are upserted at start-up, across restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from scheduler_service.errors import ConfigError
from tests.support.credentials import ADMIN, OPERATOR
from tests.support.waiting import wait_for

TICK = {
    "id": "tick",
    "func": "jobs.examples:print_test",
    "args": ["x"],
    "trigger": "interval",
    "seconds": 30,
}


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def jobs_of(app: Flask) -> dict[str, dict]:
    response = app.test_client().get("/scheduler/jobs", headers=ADMIN)
    return {job["id"]: job for job in response.get_json()}


def write_toml(path: Path, seconds: int = 3600) -> Path:
    path.write_text(f"""
[[jobs]]
id = "from-file"
func = "jobs.examples:print_test"
args = ["file"]
trigger = "interval"
seconds = {seconds}

[[jobs]]
id = "nightly"
func = "jobs.ops:disk_usage"
kwargs = {{ path = "/" }}
trigger = "cron"
crontab = "0 3 * * *"
""")
    return path


def test_declared_jobs_are_added(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(SCHEDULER_JOBS=[TICK], SCHEDULER_JOBS_FILE=str(write_toml(tmp_path / "j.toml")))
    jobs = jobs_of(app)
    assert set(jobs) == {"tick", "from-file", "nightly"}
    assert (jobs["nightly"]["hour"], jobs["nightly"]["minute"]) == ("3", "0")


def test_restart_keeps_one_copy_and_the_schedule(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    jobs_file = str(write_toml(tmp_path / "j.toml"))
    first = jobs_of(make_app(SCHEDULER_JOBS=[TICK], SCHEDULER_JOBS_FILE=jobs_file))
    second = jobs_of(make_app(SCHEDULER_JOBS=[TICK], SCHEDULER_JOBS_FILE=jobs_file))
    assert second == first  # same ids, once each, same next_run_time: nothing reset


def test_restart_keeps_an_operators_pause(make_app: Callable[..., Flask]) -> None:
    app = make_app(SCHEDULER_JOBS=[TICK])
    app.test_client().post("/scheduler/jobs/tick/pause", headers=OPERATOR)
    app.extensions["scheduler_service"].shutdown()
    assert jobs_of(make_app(SCHEDULER_JOBS=[TICK]))["tick"]["next_run_time"] is None


def test_changed_declaration_updates_the_stored_job(make_app: Callable[..., Flask]) -> None:
    make_app(SCHEDULER_JOBS=[TICK])
    changed = {**TICK, "seconds": 90, "args": ["y"], "max_instances": 3}
    job = jobs_of(make_app(SCHEDULER_JOBS=[changed]))["tick"]
    assert (job["minutes"], job["seconds"]) == (1, 30)
    assert job["args"] == ["y"]
    assert job["max_instances"] == 3


def test_yaml_jobs_file(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    file = tmp_path / "jobs.yaml"
    file.write_text(
        "jobs:\n  - id: y1\n    func: jobs.examples:print_test\n    args: [a]\n"
        "    trigger: cron\n    crontab: '*/5 * * * *'\n"
    )
    assert jobs_of(make_app(SCHEDULER_JOBS_FILE=str(file)))["y1"]["minute"] == "*/5"


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ([{**TICK, "func": "os:system"}], r"SCHEDULER_JOBS: job 'tick': field 'func'"),
        ([{**TICK, "seconds": "often"}], r"job 'tick': field 'seconds'"),
        ([{**TICK, "hour": "3"}], r"job 'tick': field 'hour'"),
        ([TICK, TICK], r"job 'tick': declared twice"),
        ([{"func": "jobs.examples:print_test"}], r"job #0: field 'id'"),
        ([{**TICK, "id": "nightly report"}], r"job 'nightly report': field 'id'"),  # alphabet
        ([{**TICK, "args": [_deep(33)]}], r"job 'tick': field 'args'"),
        ([{**TICK, "trigger": "cron", "seconds": None}], r"job 'tick': field 'trigger'"),
        (["not a job"], r"SCHEDULER_JOBS\[0\] has value 'not a job'"),
    ],
)
def test_invalid_declaration_stops_start_up(
    make_app: Callable[..., Flask], jobs: list, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(SCHEDULER_JOBS=jobs)


def test_invalid_file_declaration_names_the_file(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    file = tmp_path / "jobs.toml"
    file.write_text(
        '[[jobs]]\nid = "bad"\nfunc = "jobs.examples:print_test"\n'
        'trigger = "interval"\nseconds = 5\n'
    )
    with pytest.raises(ConfigError, match=rf"{file}: job 'bad': field 'args'"):
        make_app(SCHEDULER_JOBS_FILE=str(file))


def test_past_date_job_is_skipped(make_app: Callable[..., Flask]) -> None:
    past = {
        "id": "once",
        "func": "jobs.examples:print_test",
        "args": ["x"],
        "trigger": "date",
        "run_date": "2001-01-01 00:00:00",
    }
    assert set(jobs_of(make_app(SCHEDULER_JOBS=[past, TICK]))) == {"tick"}


def test_a_declared_next_run_time_that_has_passed_is_left_out(
    make_app: Callable[..., Flask],
) -> None:
    """A restart long after a declared next_run_time: the job runs by its trigger (a time
    further back than misfire_grace_time is a 422 through the API)."""
    declared = {**TICK, "next_run_time": "2001-01-01T00:00:00+00:00"}
    job = jobs_of(make_app(SCHEDULER_JOBS=[declared]))["tick"]
    assert job["next_run_time"] is not None and job["next_run_time"] > "2001-01-02"


def test_a_declared_job_fires(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    log = tmp_path / "fires.log"
    make_app(
        SCHEDULER_START_PAUSED=False,
        SCHEDULER_JOBS=[
            {
                "id": "rec",
                "func": "jobs.examples:record",
                "args": [str(log), "declared"],
                "trigger": "interval",
                "seconds": 1,
            }
        ],
    )
    wait_for(lambda: log.exists() and "declared" in log.read_text())
