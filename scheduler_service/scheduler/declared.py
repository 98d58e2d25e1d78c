"""Jobs declared in configuration (SPEC §5): SCHEDULER_JOBS / JOBS and a TOML or YAML file."""

from __future__ import annotations

import logging
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ServiceError, Unprocessable
from .specs import JobContext, JobSpec, parse_spec, resolve_job

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


def load_declared_jobs(config: dict[str, Any], context: JobContext) -> list[JobSpec]:
    """Validate every declared job; skip date jobs whose moment has passed.

    :raises ConfigError: naming the job and the field at fault.
    """
    declared = list(config["SCHEDULER_JOBS"])
    source = {id(job): "SCHEDULER_JOBS" for job in declared}
    if config["SCHEDULER_JOBS_FILE"]:
        from_file = read_jobs_file(config["SCHEDULER_JOBS_FILE"])
        source.update({id(job): config["SCHEDULER_JOBS_FILE"] for job in from_file})
        declared += from_file
    specs: dict[str, JobSpec] = {}
    now = datetime.now(context.timezone)
    for index, job in enumerate(declared):
        name = job.get("id") if isinstance(job, dict) else None
        where = f"{source[id(job)]}: job {name!r}" if name else f"{source[id(job)]}: job #{index}"
        if name in specs:
            raise ConfigError(f"{where}: declared twice")
        try:
            spec = parse_spec(job, context)
            resolve_job(spec, context, now=now)
        except Unprocessable as exc:
            if exc.errors and "run_date" in exc.errors:
                log.warning("%s: run_date has passed; not scheduled", where)
                continue
            raise ConfigError(f"{where}: {_describe(exc)}") from None
        except ServiceError as exc:
            raise ConfigError(f"{where}: {_describe(exc)}") from None
        specs[spec.id] = spec
    return list(specs.values())
