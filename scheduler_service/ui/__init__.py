"""The operator's dashboard (SPEC §10): server-rendered pages over the same services as the
API, under /ui; the root redirects there.

A thin blueprint: each view reads the request, calls the job or run service the API uses and
renders a template. Forms post back to the dashboard and answer with a redirect (303), so every
page works without JavaScript; ``static/ui.js`` adds the live runs table (Server-Sent Events
from /scheduler/events) and re-renders the job form's parameter fields on a change of
function. No front-end build, no external asset.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, url_for

from . import form, jobs, login, overview  # noqa: F401  (their views join bp)
from .blueprint import bp

__all__ = ["bp", "init_ui"]

home = Blueprint("ui_home", __name__)


@home.get("/")
def home_page() -> Response:
    return redirect(url_for("ui.list_jobs"), code=303)  # type: ignore[return-value]


def init_ui(app: Flask) -> None:
    """Serve the dashboard at /ui and redirect / to its jobs page."""
    app.register_blueprint(bp, url_prefix="/ui")
    app.register_blueprint(home)
