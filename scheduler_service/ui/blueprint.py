"""The dashboard's blueprint: HTML errors, a redirect to sign in, and shared page helpers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from ..errors import ServiceError, Unauthorized

bp = Blueprint(
    "ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)

# Only the service's own scripts, styles and forms; no framing.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def local_path(value: str | None, default: str) -> str:
    """Return ``value`` if it is a path on this site (no scheme, no host), else ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


def here() -> str:
    """The current page's path and query, to come back to after a form."""
    return request.full_path.rstrip("?")


def may(role: str) -> bool:
    """Whether the signed-in user has ``role`` (buttons are shown only to who may use them)."""
    principal = g.get("principal")
    return principal is not None and principal.has(role)


@bp.context_processor
def _page_helpers() -> dict[str, Any]:
    return {"may": may, "here": here}


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.errorhandler(ServiceError)
def _error_page(error: ServiceError) -> Response | tuple[str, int, dict[str, str]]:
    """Sign-in for a browser without credentials; an HTML page for every other error."""
    if isinstance(error, Unauthorized):
        target = url_for("ui.login", next=here())
        return redirect(target, code=303)  # type: ignore[return-value]
    headers = {k: v for k, v in error.headers.items() if k.lower() != "www-authenticate"}
    page = render_template("ui/error.html", code=error.code, message=error.message)
    return page, error.code, headers
