"""Signing in and out of the dashboard (the session itself: ``sessions.py``)."""

from __future__ import annotations

from flask import Response, current_app, redirect, render_template, request, url_for

from ..auth import EXTENSION_KEY, Authenticator, require_role
from ..errors import ServiceUnavailable, TooManyRequests
from ..sessions import end_session, start_session
from .blueprint import bp, local_path

WRONG = "wrong user name or password"


def _form(*, status: int, alert: str | None = None, headers: dict[str, str] | None = None):
    page = render_template(
        "ui/login.html",
        alert=alert,
        next=local_path(request.values.get("next"), ""),
        username=request.form.get("username", ""),
    )
    return page, status, headers or {}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int, dict[str, str]]:
    """Show the sign-in form; check a posted one as HTTP Basic is checked (same limits)."""
    if request.method == "GET":
        return _form(status=200)
    authenticator: Authenticator = current_app.extensions[EXTENSION_KEY]
    name = request.form.get("username", "")
    try:
        checked = authenticator.login(name, request.form.get("password", ""))
    except (TooManyRequests, ServiceUnavailable) as exc:
        return _form(status=exc.code, alert=exc.message, headers=exc.headers)
    if checked is None:
        return _form(status=401, alert=WRONG)
    principal, password_hash = checked
    start_session(name=principal.name, role=principal.role, password_hash=password_hash)
    target = local_path(request.form.get("next"), url_for("ui.list_jobs"))
    return redirect(target, code=303)  # type: ignore[return-value]


@bp.post("/logout")
@require_role("viewer")
def logout() -> Response:
    """Sign the browser out."""
    end_session()
    return redirect(url_for("ui.login"), code=303)  # type: ignore[return-value]
