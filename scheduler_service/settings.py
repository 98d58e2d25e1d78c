"""Settings: built-in defaults -> config file -> SCHEDULER_* environment -> factory overrides.

Every key has a default and a comment here. Values are validated with types once, at start-up,
and a bad one stops the service with a message naming the key.

Size: one table of every key (default, type, comment) and the code that loads and checks it,
kept in one file so that every setting is found in one place.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

ENV_PREFIX = "SCHEDULER_"
SECRET_PATTERN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,127}\*?|\*)$")

DEFAULTS: dict[str, Any] = {
    # -- the scheduler (keys a Flask-APScheduler user already knows) -------------------------
    # alias -> store: a dict {"type": "sqlalchemy", "url": ...}, a URL string, or a store
    # instance. None as the default store's value means a SQLite file in the instance folder.
    "SCHEDULER_JOBSTORES": {"default": None},
    # One URL that replaces the "default" store (memory://, sqlite:///, postgresql+psycopg://,
    # mysql+pymysql://, redis://, mongodb://, rethinkdb://, zookeeper://).
    "SCHEDULER_JOBSTORE_URL": None,
    # alias -> {"type": "threadpool" | "processpool", "max_workers": N}
    "SCHEDULER_EXECUTORS": {
        "default": {"type": "threadpool", "max_workers": 20},
        "process": {"type": "processpool", "max_workers": 2},
    },
    # Defaults for every job: merge runs a late job once, one instance at a time, up to 60 s late.
    "SCHEDULER_JOB_DEFAULTS": {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    # IANA time zone for triggers given without one.
    "SCHEDULER_TIMEZONE": "UTC",
    # Serve the job API, and under which URL prefix.
    "SCHEDULER_API_ENABLED": True,
    "SCHEDULER_API_PREFIX": "/scheduler",
    # Host names on which the scheduler fires jobs; elsewhere it serves the API only. ["*"] = all.
    "SCHEDULER_ALLOWED_HOSTS": ["*"],
    # Jobs declared in configuration (SPEC §5), upserted at start-up. JOBS is the FA alias.
    "SCHEDULER_JOBS": [],
    # A TOML or YAML file of declared jobs ([[jobs]] tables / a `jobs:` list), added to the above.
    "SCHEDULER_JOBS_FILE": None,
    # Packages whose functions may be scheduled ("jobs" allows jobs and jobs.*).
    "SCHEDULER_ALLOWED_MODULES": ["jobs"],
    # -- what a job can touch (SPEC §9) ---------------------------------------------------------
    # Folders the file jobs (jobs.examples:record and flaky, jobs.ops:cleanup_old_files) may
    # use; a relative path in a job lies in the first. None: <instance>/job-files. Paths are
    # resolved (symlinks, ..) before the check, at create time and again at run time.
    "SCHEDULER_JOB_FILE_ROOTS": None,
    # Paths refused to file jobs even inside a root. The service's own files are always
    # refused: the instance folder (but a root inside it), the config and jobs files, SQLite
    # databases.
    "SCHEDULER_JOB_FILE_EXCLUDE": [],
    # Networks (CIDR) jobs.ops:http_check may reach although they are not public: loopback,
    # private, link-local, shared, multicast, reserved and cloud-metadata addresses are
    # refused (redirects included) unless listed here, e.g. ["10.20.0.0/16"].
    "SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS": [],
    # Environment variables a job argument may reference as {"secret": "NAME"} (resolved
    # when the run starts, never shown): names, or prefixes ending in "*"; [] allows none.
    # SCHEDULER_* variables (the service's own settings) can never be referenced.
    "SCHEDULER_JOB_SECRETS": ["JOB_SECRET_*"],
    # Start the scheduler inside create_app (tools such as check-config turn it off).
    "SCHEDULER_AUTOSTART": True,
    # Start with job processing paused (POST /scheduler/resume starts firing).
    "SCHEDULER_START_PAUSED": False,
    # Seconds to wait for a job store or database to answer a health probe.
    "SCHEDULER_STORE_TIMEOUT": 5.0,
    # Seconds to keep retrying, at start-up, a job store that does not answer (progress is
    # logged); 0 stops start-up at once.
    "SCHEDULER_STORE_WAIT": 0.0,
    # Seconds before the scheduler retries a job store that failed while running.
    "SCHEDULER_JOBSTORE_RETRY_INTERVAL": 10.0,
    # -- several replicas (SPEC §8) --------------------------------------------------------------
    # Who fires when several processes share the stores: "none" (every process that is
    # started fires: run one), or a coordination service that elects one leader:
    # zookeeper://host:2181[,host2:2181]/path, redis://host:6379/0, postgresql://user@host/db.
    "SCHEDULER_COORDINATION": "none",
    # Seconds a silent leader keeps the lock (ZooKeeper session timeout, Redis key TTL,
    # PostgreSQL idle_session_timeout); a dead leader is replaced within about this time.
    "SCHEDULER_COORDINATION_LEASE": 5.0,
    # Names the lock and the change channel: replicas with the same name form one group.
    "SCHEDULER_COORDINATION_NAME": "scheduler-service",
    # Seconds between two reads of the stores by the leader even without a change notice.
    "SCHEDULER_COORDINATION_RECHECK": 5.0,
    # This process's name in GET /scheduler and the run history; None: host:pid:random.
    "SCHEDULER_REPLICA_ID": None,
    # Seconds between two heartbeats of this process in the service database; a process
    # silent for SCHEDULER_HEARTBEAT_TIMEOUT is dead: the leader closes its open runs as
    # `unknown` (SPEC §6). Keep the timeout well above the interval and any clock skew.
    "SCHEDULER_HEARTBEAT_INTERVAL": 5.0,
    "SCHEDULER_HEARTBEAT_TIMEOUT": 30.0,
    # -- run history -------------------------------------------------------------------------
    # Keep finished runs this many days (0: forever), and at most this many per job (0: all).
    "SCHEDULER_RUNS_MAX_AGE_DAYS": 30.0,
    "SCHEDULER_RUNS_MAX_PER_JOB": 1000,
    # Seconds between two passes of the built-in housekeeping job that prunes the history.
    "SCHEDULER_HOUSEKEEPING_INTERVAL": 3600.0,
    # -- limits under hostile input and load (SPEC §9; README "Limits") ------------------------
    # Failed HTTP Basic logins allowed per client address and per user name, as rate strings
    # of `limits` / Flask-Limiter ("10/minute", "10/minute;100/hour"); past them a login is
    # refused with 429 and Retry-After before its password is checked. Only failed logins
    # count. The per-user limit does not apply from an address where that user logged in
    # before (see throttle.py).
    "SCHEDULER_LOGIN_FAILURES_PER_ADDRESS": "10/minute",
    "SCHEDULER_LOGIN_FAILURES_PER_USER": "100/hour",
    # Where the failures are counted: memory:// counts in each process (every gunicorn worker
    # and replica apart); a redis:// URI (a `limits` storage with moving windows) shares them.
    "SCHEDULER_LOGIN_LIMITS_STORAGE": "memory://",
    # Password hashes (scrypt: ~100 ms of CPU and 32 MiB each) computed at once; as many checks
    # again may wait up to SCHEDULER_PASSWORD_CHECK_WAIT seconds for a turn, any more get 503.
    "SCHEDULER_PASSWORD_CHECKS": 2,
    "SCHEDULER_PASSWORD_CHECK_WAIT": 1.0,
    # Largest request body in bytes (413 above it, refused before it is read).
    "SCHEDULER_MAX_BODY_BYTES": 1024 * 1024,
    # Deepest nesting of arrays and objects a JSON body may have (400 deeper).
    "SCHEDULER_MAX_JSON_DEPTH": 32,
    # The waitress server of `scheduler-service run`: open connections at most (more wait in
    # the listen backlog), seconds a connection may stay idle or send a request that never
    # completes, seconds between two sweeps for such connections, largest request head.
    "SCHEDULER_SERVER_CONNECTION_LIMIT": 1000,
    "SCHEDULER_SERVER_CHANNEL_TIMEOUT": 30.0,
    "SCHEDULER_SERVER_CLEANUP_INTERVAL": 10.0,
    "SCHEDULER_SERVER_MAX_HEADER_BYTES": 32 * 1024,
    # -- the service -------------------------------------------------------------------------
    # The service's own SQL database (run history, users, companion blueprint). None means
    # a SQLite file in the instance folder.
    "SCHEDULER_DATABASE_URL": None,
    # Apply the database migrations at start-up (off: run `scheduler-service upgrade-db`).
    "SCHEDULER_DATABASE_MIGRATE": True,
    # The instance folder (SQLite files, generated development credentials).
    "SCHEDULER_INSTANCE_PATH": "instance",
    # A Python, TOML or JSON file of settings, read after the defaults.
    "SCHEDULER_CONFIG_FILE": None,
    # Development mode: allows a generated or weak admin password. Never in production.
    "SCHEDULER_DEV_MODE": False,
    # The bootstrap admin; give the password in plain text or as a werkzeug hash.
    "SCHEDULER_ADMIN_USER": "admin",
    "SCHEDULER_ADMIN_PASSWORD": None,
    "SCHEDULER_ADMIN_PASSWORD_HASH": None,
    # More users: [{"name": ..., "password_hash": ..., "role": "viewer"|"operator"|"admin"}]
    "SCHEDULER_USERS": [],
    # Bearer tokens: [{"name": ..., "token_sha256": <hex>, "role": ...}]
    "SCHEDULER_API_TOKENS": [],
    # Realm named in WWW-Authenticate.
    "SCHEDULER_AUTH_REALM": "scheduler-service",
    # Seconds a verified password stays cached (0 turns the cache off); entries at most.
    "SCHEDULER_AUTH_CACHE_TTL": 300.0,
    "SCHEDULER_AUTH_CACHE_SIZE": 1024,
    # Signs the dashboard's session cookies (Flask's SECRET_KEY). Unset: one is generated and
    # kept in the instance folder (secret-key, mode 0600). Replicas that share sessions behind
    # one address must all set the same value. Never logged.
    "SCHEDULER_SECRET_KEY": None,
    # Hours a dashboard sign-in lasts, from the sign-in (not renewed by use).
    "SCHEDULER_UI_SESSION_HOURS": 12.0,
    # Largest page GET /scheduler/jobs?limit= may ask for.
    "SCHEDULER_MAX_PAGE_SIZE": 1000,
    # Event streams (GET /scheduler/events) open at once, in all (503 beyond) and per user
    # (429 beyond). Each holds a request thread for its life: keep the total well below the
    # server's threads (`run --threads`, 8 by default).
    "SCHEDULER_EVENT_STREAMS": 4,
    "SCHEDULER_EVENT_STREAMS_PER_USER": 2,
}

# Keys that may appear without the SCHEDULER_ prefix (Flask-APScheduler's spelling).
ALIASES = {"JOBS": "SCHEDULER_JOBS"}


_Path = Annotated[str, Field(min_length=1, max_length=4096)]


class _Typed(BaseModel):
    """Type check of every setting; field names are the setting keys."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    SCHEDULER_JOBSTORES: dict[str, Any]
    SCHEDULER_JOBSTORE_URL: str | None
    SCHEDULER_EXECUTORS: dict[str, Any]
    SCHEDULER_JOB_DEFAULTS: dict[str, Any]
    SCHEDULER_TIMEZONE: str
    SCHEDULER_API_ENABLED: bool
    SCHEDULER_API_PREFIX: str
    SCHEDULER_ALLOWED_HOSTS: list[str]
    SCHEDULER_JOBS: list[dict[str, Any]]
    SCHEDULER_JOBS_FILE: str | None
    SCHEDULER_ALLOWED_MODULES: list[str] = Field(min_length=1)
    SCHEDULER_JOB_FILE_ROOTS: list[_Path] | None
    SCHEDULER_JOB_FILE_EXCLUDE: list[_Path]
    SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS: list[str]
    SCHEDULER_JOB_SECRETS: list[str]
    SCHEDULER_AUTOSTART: bool
    SCHEDULER_START_PAUSED: bool
    SCHEDULER_STORE_TIMEOUT: float = Field(gt=0)
    SCHEDULER_STORE_WAIT: float = Field(ge=0)
    SCHEDULER_JOBSTORE_RETRY_INTERVAL: float = Field(gt=0)
    SCHEDULER_RUNS_MAX_AGE_DAYS: float = Field(ge=0)
    SCHEDULER_RUNS_MAX_PER_JOB: int = Field(ge=0)
    SCHEDULER_HOUSEKEEPING_INTERVAL: float = Field(gt=0)
    SCHEDULER_LOGIN_FAILURES_PER_ADDRESS: str
    SCHEDULER_LOGIN_FAILURES_PER_USER: str
    SCHEDULER_LOGIN_LIMITS_STORAGE: str = Field(min_length=1)
    SCHEDULER_PASSWORD_CHECKS: int = Field(ge=1, le=64)
    SCHEDULER_PASSWORD_CHECK_WAIT: float = Field(ge=0, le=60)
    SCHEDULER_MAX_BODY_BYTES: int = Field(ge=1024)
    SCHEDULER_MAX_JSON_DEPTH: int = Field(ge=2, le=500)
    SCHEDULER_SERVER_CONNECTION_LIMIT: int = Field(ge=10)
    SCHEDULER_SERVER_CHANNEL_TIMEOUT: float = Field(gt=0)
    SCHEDULER_SERVER_CLEANUP_INTERVAL: float = Field(gt=0)
    SCHEDULER_SERVER_MAX_HEADER_BYTES: int = Field(ge=1024)
    SCHEDULER_DATABASE_URL: str | None
    SCHEDULER_DATABASE_MIGRATE: bool
    SCHEDULER_INSTANCE_PATH: str
    SCHEDULER_CONFIG_FILE: str | None
    SCHEDULER_DEV_MODE: bool
    SCHEDULER_ADMIN_USER: str = Field(min_length=1)
    SCHEDULER_ADMIN_PASSWORD: str | None
    SCHEDULER_ADMIN_PASSWORD_HASH: str | None
    SCHEDULER_USERS: list[dict[str, Any]]
    SCHEDULER_API_TOKENS: list[dict[str, Any]]
    SCHEDULER_AUTH_REALM: str
    SCHEDULER_AUTH_CACHE_TTL: float = Field(ge=0)
    SCHEDULER_AUTH_CACHE_SIZE: int = Field(ge=1)
    SCHEDULER_SECRET_KEY: str | None = Field(default=None, min_length=16)
    SCHEDULER_UI_SESSION_HOURS: float = Field(gt=0, le=24 * 90)
    SCHEDULER_MAX_PAGE_SIZE: int = Field(ge=1)
    SCHEDULER_EVENT_STREAMS: int = Field(ge=0, le=1000)
    SCHEDULER_EVENT_STREAMS_PER_USER: int = Field(ge=0, le=1000)
    SCHEDULER_COORDINATION: str
    SCHEDULER_COORDINATION_LEASE: float = Field(ge=1, le=600)
    SCHEDULER_COORDINATION_NAME: str = Field(min_length=1, max_length=100)
    SCHEDULER_COORDINATION_RECHECK: float = Field(gt=0)
    SCHEDULER_REPLICA_ID: str | None = Field(default=None, min_length=1, max_length=200)
    SCHEDULER_HEARTBEAT_INTERVAL: float = Field(gt=0, le=3600)
    SCHEDULER_HEARTBEAT_TIMEOUT: float = Field(gt=0, le=86400)

    @field_validator("SCHEDULER_API_PREFIX")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/")):
            raise ValueError("must start with '/' and not end with '/', e.g. '/scheduler'")
        return value

    @field_validator("SCHEDULER_JOB_FILE_ROOTS", mode="before")
    @classmethod
    def _one_root(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # SCHEDULER_JOB_FILE_ROOTS=/data

    @field_validator("SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP network such as 10.0.0.0/8") from None
        return value

    @field_validator("SCHEDULER_JOB_SECRETS")
    @classmethod
    def _secret_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not SECRET_PATTERN.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not an environment variable name, or a prefix ending in *"
                )
        return value

    @field_validator("SCHEDULER_LOGIN_FAILURES_PER_ADDRESS", "SCHEDULER_LOGIN_FAILURES_PER_USER")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            items = parse_many(value)
        except ValueError:
            items = []
        if not items or any(item.amount < 1 for item in items):
            raise ValueError("not a rate limit: write e.g. '10/minute' or '10/minute;100/hour'")
        return value

    @field_validator("SCHEDULER_TIMEZONE")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


_STRING_KEYS = frozenset(
    name for name, field in _Typed.model_fields.items() if field.annotation in (str, str | None)
)


def _unknown_key(key: str, source: str) -> ConfigError:
    hint = difflib.get_close_matches(key, DEFAULTS, n=1)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    return ConfigError(f"{key}: unknown setting in {source}{suggestion}")


def _take(into: dict[str, Any], values: Mapping[str, Any], source: str) -> None:
    """Merge ``values`` into ``into``, refusing unknown SCHEDULER_* keys."""
    for key, value in values.items():
        key = ALIASES.get(key, key)
        if key.startswith(ENV_PREFIX) and key not in DEFAULTS:
            raise _unknown_key(key, source)
        into[key] = value


def read_config_file(path: str) -> dict[str, Any]:
    """Read a .py, .toml or .json settings file into a dict of upper-case keys.

    :raises ConfigError: the file is missing or does not parse.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"SCHEDULER_CONFIG_FILE: no such file {path!r}")
    try:
        if file.suffix == ".toml":
            data = tomllib.loads(file.read_text())
        elif file.suffix == ".json":
            data = json.loads(file.read_text())
        elif file.suffix == ".py":
            namespace: dict[str, Any] = {"__file__": str(file)}
            exec(compile(file.read_text(), str(file), "exec"), namespace)  # noqa: S102 - operator's own config
            data = namespace
        else:
            raise ConfigError(f"SCHEDULER_CONFIG_FILE: {path!r} is not a .py, .toml or .json file")
    except ConfigError:
        raise
    except Exception as exc:  # a syntax error of any of the three formats
        raise ConfigError(f"SCHEDULER_CONFIG_FILE: {path!r} does not parse: {exc}") from None
    return {k: v for k, v in data.items() if k.isupper()}


# Kubernetes' service links: for a Service named "scheduler" (or "scheduler-service"...) every
# pod gets SCHEDULER_SERVICE_HOST=10.0.0.1, SCHEDULER_PORT=tcp://10.0.0.1:80,
# SCHEDULER_PORT_80_TCP_ADDR=10.0.0.1 and so on. They are not settings; each is known by its
# name's shape and its value's, so a misspelled setting is never mistaken for one.
def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_SERVICE_LINKS: tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...] = tuple(
    (re.compile(rf"^[A-Z0-9_]+_(?:{name})$"), value_ok)
    for name, value_ok in (
        (r"SERVICE_HOST|PORT_\d+_(TCP|UDP|SCTP)_ADDR", _is_ip),
        (r"SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)_PORT", str.isdigit),
        (r"PORT_\d+_(TCP|UDP|SCTP)_PROTO", lambda v: v.lower() in ("tcp", "udp", "sctp")),
        (r"PORT(_\d+_(TCP|UDP|SCTP))?", lambda v: re.match(r"^(tcp|udp|sctp)://", v) is not None),
    )
)


def _is_service_link(key: str, value: str) -> bool:
    return any(name.match(key) and value_ok(value) for name, value_ok in _SERVICE_LINKS)


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Take SCHEDULER_* variables, decoding values that parse as JSON (as Flask does).

    :raises ConfigError: a SCHEDULER_* variable names no setting (with "did you mean"); the
        variables Kubernetes sets for a Service named like the prefix are left alone.
    """
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        if key not in DEFAULTS:
            if _is_service_link(key, raw):
                continue
            raise _unknown_key(key, "the environment")
        if key in _STRING_KEYS:
            values[key] = raw  # a password "12345678" stays a string
            continue
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


def _format_error(error: ValidationError) -> str:
    first = error.errors()[0]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    value = first.get("input")
    shown = (
        ""
        if key.endswith(("PASSWORD", "PASSWORD_HASH", "SECRET_KEY"))
        else f" has value {value!r}:"
    )
    return f"{key}{shown} {first['msg']}"


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return validated settings: defaults, then config file, then environment, then overrides.

    :raises ConfigError: a key is unknown or a value has the wrong type.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    env_values = read_environment(environ)
    settings = dict(DEFAULTS)
    config_file = overrides.get("SCHEDULER_CONFIG_FILE", env_values.get("SCHEDULER_CONFIG_FILE"))
    if config_file:
        _take(settings, read_config_file(config_file), f"config file {config_file}")
    _take(settings, env_values, "the environment")
    _take(settings, overrides, "create_app()")
    try:
        typed = _Typed.model_validate(settings)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    # The coerced values ("no" -> False), as fresh copies: APScheduler pops keys from its dicts.
    settings.update(typed.model_dump())
    if settings["SCHEDULER_HEARTBEAT_TIMEOUT"] < 2 * settings["SCHEDULER_HEARTBEAT_INTERVAL"]:
        raise ConfigError(
            "SCHEDULER_HEARTBEAT_TIMEOUT: must be at least twice SCHEDULER_HEARTBEAT_INTERVAL "
            "(a live process may miss one beat)"
        )
    return settings
