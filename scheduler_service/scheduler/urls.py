"""Job-store URLs (SPEC §2): parse one into a store type and constructor options; hide secrets.

Parsing is pure: no driver is imported and nothing touches the network, so a bad URL fails with a
``ValueError`` that ``backends.build_jobstore`` reports under the store's alias.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# scheme:// then the userinfo (everything up to the last "@" before the path): "user:password".
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#]*)@")
# ?password=..., &ssl_password=..., ?auth_key=... (drivers accept secrets as query options too)
_SECRET_PARAM = re.compile(r"(?i)(?P<key>[?&][^=&#]*(?:password|passwd|pwd|auth_key)=)[^&#]*")

# host, [v6:addr] or name, then an optional :port
_ZK_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]/]+)(:\d+)?$")

# option names whose values are secrets; URLs inside free text (driver error messages)
_SECRET_KEY = re.compile(r"(?i)password|passwd|pwd|auth_key|secret|token")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")

# A bare dialect gets the driver we ship (pyproject extras `postgres` and `mysql`).
_SQL_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def redact_url(url: str) -> str:
    """Return ``url`` with its password (in the userinfo or a query option) replaced by ``***``."""
    match = _USERINFO.match(url)
    if match and ":" in match["userinfo"]:
        user = match["userinfo"].split(":", 1)[0]
        url = f"{match['head']}{user}:***@{url[match.end() :]}"
    return _SECRET_PARAM.sub(r"\g<key>***", url)


def secrets_in(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the passwords in store ``options`` (secret keys, URL userinfo, ZooKeeper auth)."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, str) and _SECRET_KEY.search(key):
            found.append(value)
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            found += [password, unquote(password)] if password else []
        elif key == "auth_data" and isinstance(value, list | tuple):
            found += [str(credential).partition(":")[2] for _, credential in value]
    return tuple(secret for secret in found if secret)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with each of ``secrets`` (the longest first) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with URL passwords and each of ``secrets`` replaced by ``***``."""
    return mask(_URL_IN_TEXT.sub(lambda match: redact_url(match[0]), text), secrets)


def parse_jobstore_url(url: str) -> tuple[str, dict[str, Any]]:
    """Return the job-store type and the constructor options that ``url`` names.

    :raises ValueError: the URL is malformed or its scheme names no job store.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError("not a URL: expected scheme://..., e.g. sqlite:///jobs.db or memory://")
    parser = _SCHEMES.get(scheme.lower(), _parse_sqlalchemy)
    return parser(url)


def _parse_memory(url: str) -> tuple[str, dict[str, Any]]:
    if url.lower() != "memory://":
        raise ValueError("memory:// takes no host, path or options")
    return "memory", {}


def sql_url(url: str) -> URL:
    """Return the SQLAlchemy URL ``url`` names, a bare dialect given the driver we ship
    (``postgres://`` and ``postgresql://`` -> ``postgresql+psycopg://``).

    :raises ValueError: the URL is malformed or names no SQLAlchemy dialect (no password shown).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("not a URL: expected dialect://..., e.g. postgresql://user@host/db")
    dialect, plus, driver = scheme.lower().partition("+")
    dialect = "postgresql" if dialect == "postgres" else dialect
    name = f"{dialect}+{driver}" if plus else _SQL_DRIVERS.get(dialect, dialect)
    try:
        sa_url = make_url(f"{name}://{rest}")
        sa_url.get_dialect()  # loads the dialect class only; the DB driver is imported later
    except NoSuchModuleError:
        raise ValueError(
            f"unknown database {scheme!r}: use sqlite://, postgresql://, mysql:// or "
            "another SQLAlchemy URL"
        ) from None
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a valid SQLAlchemy URL ({type(exc).__name__})") from None
    return sa_url


def _parse_sqlalchemy(url: str) -> tuple[str, dict[str, Any]]:
    try:
        sa_url = sql_url(url)
    except ValueError as exc:
        if str(exc).startswith("unknown database"):
            scheme = url.partition("://")[0]
            known = ", ".join(f"{s}://" for s in _SCHEMES)
            raise ValueError(
                f"unknown scheme {scheme!r}: use {known} or an SQLAlchemy URL"
            ) from None
        raise
    options: dict[str, Any] = {}
    tablename = sa_url.query.get("tablename")
    if tablename is not None:
        if not isinstance(tablename, str) or not tablename:
            raise ValueError("tablename must be given once and not be empty")
        options["tablename"] = tablename
        sa_url = sa_url.difference_update_query(["tablename"])
    options["url"] = sa_url.render_as_string(hide_password=False)
    return "sqlalchemy", options


def _parse_redis(url: str) -> tuple[str, dict[str, Any]]:
    parts = _split(url)
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"the path must be a database number, got {db!r}")
    options: dict[str, Any] = {"host": parts.hostname or "localhost", "port": _port(parts, 6379)}
    options["db"] = int(db)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.scheme.lower() == "rediss":
        options["ssl"] = True
    options.update(_query(parts, known=("jobs_key", "run_times_key")))
    return "redis", options


def _parse_mongodb(url: str) -> tuple[str, dict[str, Any]]:
    parts = _split(url, one_host=False)  # pymongo checks its host list itself
    if not parts.netloc.rpartition("@")[2]:
        raise ValueError("mongodb:// needs a host")
    database = unquote(parts.path.strip("/")) or "apscheduler"
    if "/" in database:
        raise ValueError(f"the path must be one database name, got {database!r}")
    ours = _query(parts, known=("collection",), others_allowed=True)
    # Hand pymongo the URL minus our own option, each of its own options kept as written.
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in ours]
    client_url = url.split("?", 1)[0].split("#", 1)[0]
    if kept:
        client_url = f"{client_url if parts.path else client_url + '/'}?{'&'.join(kept)}"
    options = {"database": database, "collection": ours.get("collection", "jobs")}
    return "mongodb", {**options, "host": client_url}


def _parse_rethinkdb(url: str) -> tuple[str, dict[str, Any]]:
    parts = _split(url)
    database = unquote(parts.path.strip("/")) or "apscheduler"
    options: dict[str, Any] = {"database": database, "table": "jobs"}
    options.update(_query(parts, known=("table",)))
    options.update(host=parts.hostname or "localhost", port=_port(parts, 28015))
    if parts.username:
        options["user"] = unquote(parts.username)
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    return "rethinkdb", options


def _parse_zookeeper(url: str) -> tuple[str, dict[str, Any]]:
    parts = _split(url, one_host=False)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ValueError("zookeeper:// needs at least one host[:port]")
    for host in hosts.split(","):
        if not _ZK_HOST.match(host):
            raise ValueError(f"not a host[:port]: {host!r}")
    if parts.query:
        raise ValueError("zookeeper:// takes no query options")
    options: dict[str, Any] = {"hosts": hosts, "path": parts.path.rstrip("/") or "/apscheduler"}
    if at:  # digest auth, as `zkCli addauth digest user:password`
        user, _, password = userinfo.partition(":")
        options["auth_data"] = [("digest", f"{unquote(user)}:{unquote(password)}")]
    return "zookeeper", options


def _split(url: str, *, one_host: bool = True) -> SplitResult:
    try:
        parts = urlsplit(url)
        if one_host:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    if parts.fragment:
        raise ValueError("a job-store URL takes no #fragment")
    return parts


def _port(parts: SplitResult, default: int) -> int:
    return parts.port if parts.port is not None else default


def _query(
    parts: SplitResult, *, known: Iterable[str], others_allowed: bool = False
) -> dict[str, str]:
    known = tuple(known)
    found: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in found:
            raise ValueError(f"option {key!r} is given twice")
        if key in known:
            found[key] = value
        elif not others_allowed:
            raise ValueError(f"unknown option {key!r} (known: {', '.join(known)})")
    return found


_SCHEMES: dict[str, Callable[[str], tuple[str, dict[str, Any]]]] = {
    "memory": _parse_memory,
    "sqlite": _parse_sqlalchemy,
    "postgresql": _parse_sqlalchemy,
    "mysql": _parse_sqlalchemy,
    "redis": _parse_redis,
    "rediss": _parse_redis,
    "mongodb": _parse_mongodb,
    "mongodb+srv": _parse_mongodb,
    "rethinkdb": _parse_rethinkdb,
    "zookeeper": _parse_zookeeper,
}
