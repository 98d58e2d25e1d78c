"""Checks every request passes before its credentials are looked at: the body's size (413)
and where a browser says it comes from (403).

Cross-site requests: a browser sends another site's form or ``fetch`` with the user's saved
credentials, and some of them (a form post, a text/plain body, a body without Content-Type)
without asking first. So an unsafe request (POST, PUT, PATCH, DELETE) is refused when the
browser marks it as coming from elsewhere: ``Sec-Fetch-Site`` other than ``same-origin`` or
``none`` (Fetch Metadata; ``same-site`` too, since a sibling subdomain may be anyone's), or an
``Origin`` whose host is not the request's ``Host``. Whatever the Content-Type, a body is then
read as JSON, as Flask-APScheduler does (``request.get_json(force=True)``), so that
``curl -d '{...}'`` works: clients that are not browsers send neither header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .errors import Forbidden, PayloadTooLarge

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAME_ORIGIN = frozenset({"same-origin", "none"})  # "none": typed in the address bar
_DEFAULT_PORTS = (":80", ":443")


def refuse_large_body() -> None:
    """Answer 413 to a body whose Content-Length is over the limit, without reading it.

    A chunked body is cut at the limit by Flask's MAX_CONTENT_LENGTH when it is read (and by
    waitress before it reaches the app, under `scheduler-service run`).
    """
    limit = current_app.config["SCHEDULER_MAX_BODY_BYTES"]
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(
            f"the body has {length} bytes; at most {limit} are accepted (SCHEDULER_MAX_BODY_BYTES)"
        )


def _authority(host: str) -> str:
    host = host.strip().lower()
    for port in _DEFAULT_PORTS:  # a browser leaves the default port out of Origin
        if host.endswith(port):
            return host[: -len(port)]
    return host


def _origin_authority(origin: str) -> str | None:
    """host[:port] of an Origin header; None for "null" or anything not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return _authority(parts.netloc)


def refuse_cross_site() -> None:
    """Answer 403 to an unsafe request that a browser sent from another site.

    :raises Forbidden: naming the header that told.
    """
    if request.method not in _UNSAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in _SAME_ORIGIN:
        raise Forbidden(f"a cross-site request is refused (Sec-Fetch-Site: {site.strip()[:40]})")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if _origin_authority(origin) != _authority(request.host):
        raise Forbidden(
            f"a cross-site request is refused (Origin {origin.strip()[:100]!r} is not "
            f"this host, {request.host[:100]!r})"
        )


def init_guards(app: Flask) -> None:
    """Check body size and cross-site signals before anything else looks at a request."""
    app.config["MAX_CONTENT_LENGTH"] = app.config["SCHEDULER_MAX_BODY_BYTES"]
    app.before_request(refuse_large_body)
    app.before_request(refuse_cross_site)
