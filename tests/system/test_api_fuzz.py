"""Schemathesis' own runner, every phase (examples, coverage, fuzzing, stateful), against a real
`scheduler-service run` over HTTP: no 5xx, every answer as the OpenAPI document says.

tests/test_openapi.py drives Schemathesis from pytest inside the process (where a failure is
easiest to read); this run adds the phases only the runner has (coverage's boundary values
and the stateful chains it infers from responses and Location headers) and the real server
in between (waitress, its limits, the request threads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, ADMIN_USER, REPO_ROOT, Server

pytestmark = pytest.mark.slow

SEED = 20240501
MAX_EXAMPLES = 40
# Operations left to tests/test_openapi.py: a shutdown ends the server for every later case;
# a new event stream sends only what happens from now on, so a read of it waits for ever.
EXCLUDED = r"^/scheduler/(shutdown|events)$"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)

RUN_TIMEOUT = 900  # seconds; the run takes about one minute on two loaded cores


def test_every_phase_finds_no_server_error_and_no_schema_violation(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server()
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis),
        "run",
        f"{server.base}/openapi.json",
        "--auth",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        CHECKS,
        "--exclude-path-regex",
        EXCLUDED,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--workers",
        "1",  # two workers would parse Hypothesis lambdas at once, which CPython 3.11 fails at
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.system.schemathesis_hooks",
        "PYTHONPATH": str(REPO_ROOT),
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-5000:]  # each phase ran, and passed
    assert "Test cases:" in output and " passed" in output
    assert (server.request("GET", "/healthz", auth=False)).status == 200
