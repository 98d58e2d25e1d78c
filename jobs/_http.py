"""The HTTP client of jobs.ops:http_check: a GET that cannot be turned against the host.

Every connection, redirects included, goes to addresses checked against the job limits
(``JobLimits.check_host``), and to exactly those: the name is resolved once, checked, and the
socket connects to the checked addresses, so a name that resolves differently the second
time cannot slip through. No proxy from the environment is used (a proxy would fetch
addresses the check never saw). A failure says only what happened ("connection failed",
"timed out"), never the socket's own words, which would tell an open port from a closed one;
the detail goes to the DEBUG log.

This module is private (its name starts with ``_``): nothing in it may be scheduled.
"""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import ssl
import time
import urllib.parse

from ._args import DEFAULT_PORTS
from ._limits import JobLimits

logger = logging.getLogger("jobs.ops")

USER_AGENT = "scheduler-service-http-check/1"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


class CheckFailed(RuntimeError):
    """The request did not get an answer; the message says why in a few words."""


def shown(url: str) -> str:
    """``url`` fit for a log line or an error: no password, no query string."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "***" if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def get_status(url: str, *, timeout: float, follow_redirects: bool) -> int:
    """GET ``url`` and return the status of the answer (after redirects if asked).

    :raises CheckFailed: refused address, no connection, timeout, too many redirects.
    """
    deadline = time.monotonic() + timeout
    origin = _origin(url)
    auth = _basic_auth(url)
    for _ in range(MAX_REDIRECTS + 1):
        status, location = _get_once(url, auth if _origin(url) == origin else None, deadline)
        if not (follow_redirects and status in REDIRECTS and location):
            return status
        url = urllib.parse.urljoin(url, location)
        if urllib.parse.urlsplit(url).scheme.lower() not in DEFAULT_PORTS:
            raise CheckFailed("a redirect leads to a URL that is not http(s)")
        logger.info("http_check: redirected (%s) to %s", status, shown(url))
    raise CheckFailed(f"more than {MAX_REDIRECTS} redirects")


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _basic_auth(url: str) -> str | None:
    """The Authorization header for credentials in the URL, sent to its own origin only."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _get_once(url: str, auth: str | None, deadline: float) -> tuple[int, str | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise CheckFailed("the URL's port is not valid") from None
    if not parts.hostname:
        raise CheckFailed("the URL has no host")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CheckFailed("timed out")
    kind = _CheckedHTTPSConnection if scheme == "https" else _CheckedHTTPConnection
    connection = kind(parts.hostname, port, timeout=remaining)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    if auth is not None:
        headers["Authorization"] = auth
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location")
    except CheckFailed:
        raise
    except TimeoutError as exc:
        logger.debug("http_check: %s: %r", shown(url), exc)
        raise CheckFailed("timed out") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        logger.debug("http_check: %s: %r", shown(url), exc)
        raise CheckFailed("connection failed") from None
    finally:
        connection.close()


def _connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """Connect to the first address of ``host`` that answers, if a job may reach them all."""
    try:
        infos = JobLimits.current().check_host(host, port, unresolved_ok=False)
    except ValueError as exc:
        raise CheckFailed(f"refused: {exc}") from None
    error: OSError = OSError("no address")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _connect(self.host, self.port, self.timeout)


_tls: ssl.SSLContext | None = None


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        global _tls
        if _tls is None:
            _tls = ssl.create_default_context()
        sock = _connect(self.host, self.port, self.timeout)
        self.sock = _tls.wrap_socket(sock, server_hostname=self.host)
