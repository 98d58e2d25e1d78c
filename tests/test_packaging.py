"""What the wheel installs: only the top-level package ``scheduler_service``; the repository's
``jobs/`` ships as ``scheduler_service.jobs``, and ``import jobs`` still finds it (and job
references such as ``jobs.examples:print_test`` still resolve) where the repository is not on
sys.path, unless another ``jobs`` package is there (scheduler_service/shipped_jobs.py).

The package files are laid out by setuptools' ``build_py`` (what a wheel holds, from
pyproject.toml, without the network a wheel build in isolation needs); the interpreters run
with ``-S`` and an explicit path, so nothing of this checkout or of an editable install in the
test environment is importable by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package files a wheel of this checkout installs (a build/lib folder)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("scheduler_service", "jobs"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    lib = root / "lib"
    setup = "from setuptools import setup; setup()"
    done = subprocess.run(
        [sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(lib)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return lib


def _run(code: str, *path: Path, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter without site (no .pth files, so no editable
    installs) whose sys.path is ``path`` then this environment's site-packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SCHEDULER_"))}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), sysconfig.get_paths()["purelib"]])
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_wheel_claims_no_top_level_jobs(built: Path) -> None:
    top = sorted(p.name for p in built.iterdir())
    assert top == ["scheduler_service"]
    shipped = sorted(p.name for p in (built / "scheduler_service" / "jobs").glob("*.py"))
    assert shipped == sorted(p.name for p in (REPO / "jobs").glob("*.py"))
    # pyproject.toml lists the packages one by one: none may be left out.
    source = REPO / "scheduler_service"
    folders = {
        p.parent.relative_to(source) for p in source.rglob("*.py") if "__pycache__" not in p.parts
    }
    missing = [str(f) for f in folders if not (built / "scheduler_service" / f).is_dir()]
    assert missing == []


def test_jobs_resolves_to_the_shipped_folder_outside_the_repository(
    built: Path, tmp_path: Path
) -> None:
    before = _run(
        "import importlib.util, json; print(json.dumps(importlib.util.find_spec('jobs') is None))",
        built,
        cwd=tmp_path,
    )
    assert before is True  # nothing named jobs is installed
    seen = _run(
        """
import json, sys
import scheduler_service
from scheduler_service import shipped_jobs
from scheduler_service.scheduler.callables import list_tasks, resolve_callable

func = resolve_callable("jobs.examples:print_test", ["jobs"])
import jobs
print(json.dumps({
    "jobs": jobs.__file__,
    "module": func.__module__,
    "file": sys.modules[func.__module__].__file__,
    "package": shipped_jobs.package(),
    "tasks": sorted(t["func"] for t in list_tasks(["jobs"])),
    "copies": sorted(m for m in sys.modules if m.endswith("examples")),
}))
""",
        built,
        cwd=tmp_path,
    )
    shipped = built / "scheduler_service" / "jobs"
    assert seen["jobs"] == str(shipped / "__init__.py")
    assert seen["module"] == "jobs.examples"
    assert seen["file"] == str(shipped / "examples.py")
    assert seen["package"] == "jobs"
    assert "jobs.examples:print_test" in seen["tasks"]
    assert "jobs.ops:http_check" in seen["tasks"]
    assert seen["copies"] == ["jobs.examples"]  # one module, not also scheduler_service.jobs...


def test_an_own_jobs_package_wins_and_ours_stay_reachable(built: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "site" / "jobs"
    theirs.mkdir(parents=True)
    (theirs / "__init__.py").write_text("OWNER = 'theirs'\n")
    roots = tmp_path / "files"
    seen = _run(
        f"""
import json
from scheduler_service import create_job_app, shipped_jobs
from scheduler_service.scheduler.callables import resolve_callable
import jobs

create_job_app({{
    "SCHEDULER_INSTANCE_PATH": {str(tmp_path / "instance")!r},
    "SCHEDULER_JOB_FILE_ROOTS": [{str(roots)!r}],
}})
func = resolve_callable("scheduler_service.jobs.examples:print_test", ["scheduler_service.jobs"])
from scheduler_service.jobs import JobLimits
print(json.dumps({{
    "owner": getattr(jobs, "OWNER", None),
    "package": shipped_jobs.package(),
    "module": func.__module__,
    "roots": list(JobLimits.current().file_roots),
}}))
""",
        tmp_path / "site",
        built,
        cwd=tmp_path,
    )
    assert seen["owner"] == "theirs"
    assert seen["package"] == "scheduler_service.jobs"
    assert seen["module"] == "scheduler_service.jobs.examples"
    assert seen["roots"] == [str(roots)]  # the limits reach the copy that runs ours
