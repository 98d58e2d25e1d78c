"""Jobs declared in configuration (SPEC §5): SCHEDULER_JOBS / JOBS and a TOML or YAML file."""

from __future__ import annotations

import logging
import tomllib
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from ..errors import ConfigError, ServiceError, Unprocessable
from .resolve import resolve_job
from .specs import JobContext, JobSpec, parse_spec

log = logging.getLogger(__name__)


def read_jobs_file(path: str) -> list[Any]:
    """Read the ``jobs`` list of a TOML (``[[jobs]]``) or YAML (``jobs:``) file.

    :raises ConfigError: the file is missing, does not parse, or has no list of jobs.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"SCHEDULER_JOBS_FILE: no such file {path!r}")
    try:
        if file.suffix == ".toml":
            data = tomllib.loads(file.read_text())
        elif file.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    "SCHEDULER_JOBS_FILE: YAML needs PyYAML: pip install 'scheduler-service[yaml]'"
                ) from None
            data = yaml.safe_load(file.read_text()) or {}
        else:
            raise ConfigError(f"SCHEDULER_JOBS_FILE: {path!r} is not a .toml or .yaml file")
    except ConfigError:
        raise
    except Exception as exc:  # TOML or YAML syntax error
        raise ConfigError(f"SCHEDULER_JOBS_FILE: {path!r} does not parse: {exc}") from None
    jobs = data.get("jobs", []) if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        raise ConfigError(f"SCHEDULER_JOBS_FILE: {path!r} must hold a list named 'jobs'")
    return jobs


def _describe(error: ServiceError) -> str:
    if error.errors:
        return "; ".join(f"field '{field}': {problem}" for field, problem in error.errors.items())
    return error.message


class DeclaredJobs(Sequence[JobSpec]):
    """The validated declared jobs, kept for the life of the service (every start of the
    scheduler upserts them) in a compact form: each as the fields its declaration set, a few
    hundred bytes, not as a JobSpec of forty-odd fields, a few KB. A job read back is its
    JobSpec again, rebuilt from those fields (pydantic's validator, a few microseconds, is
    faster at it than ``model_construct``)."""

    def __init__(self) -> None:
        self._fields: list[dict[str, Any]] = []

    def append(self, spec: JobSpec) -> None:
        self._fields.append({name: getattr(spec, name) for name in spec.model_fields_set})

    def __len__(self) -> int:
        return len(self._fields)

    @overload
    def __getitem__(self, index: int) -> JobSpec: ...
    @overload
    def __getitem__(self, index: slice) -> list[JobSpec]: ...
    def __getitem__(self, index: int | slice) -> JobSpec | list[JobSpec]:
        if isinstance(index, slice):
            return [JobSpec.model_validate(fields) for fields in self._fields[index]]
        return JobSpec.model_validate(self._fields[index])


def load_declared_jobs(config: dict[str, Any], context: JobContext) -> DeclaredJobs:
    """Validate every declared job; skip date jobs whose moment has passed.

    :raises ConfigError: naming the job and the field at fault.
    """
    declared = deque(("SCHEDULER_JOBS", job) for job in config["SCHEDULER_JOBS"])
    if config["SCHEDULER_JOBS_FILE"]:
        path = config["SCHEDULER_JOBS_FILE"]
        declared.extend((path, job) for job in read_jobs_file(path))
    seen: set[str] = set()
    specs = DeclaredJobs()
    now = datetime.now(context.timezone)
    for index in range(len(declared)):
        # Consumed as validated: a long file's parsed form is not kept beside its specs.
        source, job = declared.popleft()
        name = job.get("id") if isinstance(job, dict) else None
        where = f"{source}: job {name!r}" if name else f"{source}: job #{index}"
        if isinstance(name, str) and name in seen:  # an id of another type fails validation
            raise ConfigError(f"{where}: declared twice")
        spec = _validate(job, context, now=now, where=where)
        if spec is None:
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs


def _validate(job: Any, context: JobContext, *, now: datetime, where: str) -> JobSpec | None:
    """Validate one declared job; None: a date job whose moment has passed. A next_run_time
    that has passed (by more than misfire_grace_time: a restart long after it) is left out.

    :raises ConfigError: naming the job and the field at fault.
    """
    try:
        spec = parse_spec(job, context)
        resolve_job(spec, context, now=now)
        return spec
    except Unprocessable as exc:
        if exc.errors and "run_date" in exc.errors:
            log.warning("%s: run_date has passed; not scheduled", where)
            return None
        if exc.errors and "next_run_time" in exc.errors and isinstance(job, dict):
            log.warning("%s: next_run_time has passed; it runs by its trigger", where)
            job = {key: value for key, value in job.items() if key != "next_run_time"}
            return _validate(job, context, now=now, where=where)
        raise ConfigError(f"{where}: {_describe(exc)}") from None
    except ServiceError as exc:
        raise ConfigError(f"{where}: {_describe(exc)}") from None
