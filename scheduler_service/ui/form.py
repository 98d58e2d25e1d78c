"""Creating and editing a job from a form built from the task catalog (GET /scheduler/tasks):
the same JSON as the API, through the same JobService calls and so the same validator."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, redirect, render_template, request, url_for

from ..auth import require_role
from ..control import get_job_service
from ..errors import BadRequest, Conflict, Unprocessable
from ..scheduler.callables import list_tasks
from .blueprint import bp
from .jobform import TRIGGER_INPUTS, TRIGGERS, UNITS, body_from, fields_of, values_of


def _catalog() -> list[dict[str, Any]]:
    return list_tasks(current_app.config["SCHEDULER_ALLOWED_MODULES"])


def _render(
    *,
    values: dict[str, str],
    edit: str | None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    catalog = _catalog()
    tasks = {task["func"]: task for task in catalog}
    chosen = values.get("func") or (catalog[0]["func"] if catalog else "")
    fields = fields_of(tasks.get(chosen))
    errors = errors or {}
    shown = {"id", "name", "func", "kwargs", "args", "trigger", *TRIGGER_INPUTS}
    shown |= {f["key"] for f in fields}
    page = render_template(
        "ui/job_form.html",
        catalog=catalog,
        task=tasks.get(chosen),
        chosen=chosen,
        fields=fields,
        values=values,
        triggers=TRIGGERS,
        units=UNITS,
        edit=edit,
        errors=errors,
        unplaced={k: v for k, v in errors.items() if k not in shown},
        message=message,
        action=url_for("ui.edit_job", job_id=edit) if edit else url_for("ui.new_job"),
    )
    return page, status


@bp.get("/jobs/new")
@require_role("admin")  # the form is offered only to who may save it
def new_job() -> tuple[str, int]:
    """The empty form (query parameters prefill it: the function chooser reloads with them)."""
    return _render(values=request.args.to_dict(), edit=None)


@bp.get("/jobs/<job_id>/edit")
@require_role("admin")
def edit_job(job_id: str) -> tuple[str, int]:
    """The form filled with a job."""
    job = get_job_service().get_job(job_id)
    tasks = {task["func"]: task for task in _catalog()}
    values = values_of(job, fields_of(tasks.get(job.func_ref)))
    if request.args.get("func"):  # the function chooser: keep what was typed
        values.update(request.args.to_dict(), id=job_id)
    return _render(values=values, edit=job_id)


def _save(*, edit: str | None) -> Response | tuple[str, int]:
    values = request.form.to_dict()
    if edit:
        values["id"] = edit
    tasks = {task["func"]: task for task in _catalog()}
    if values.get("func") != values.get("fields_for"):  # chosen without the script: show its fields
        note = "Fill in the parameters of the function you chose, then save."
        return _render(values=values, edit=edit, message=note)
    body = body_from(values, fields_of(tasks.get(values.get("func", ""))), edit=edit is not None)
    service = get_job_service()
    try:
        job = service.modify_job(edit, body) if edit else service.add_job(body)
    except (BadRequest, Unprocessable, Conflict) as exc:
        errors = dict(exc.errors or {})
        if isinstance(exc, Conflict) and not edit:
            errors.setdefault("id", exc.message)
        return _render(
            values=values, edit=edit, errors=errors, message=exc.message, status=exc.code
        )
    return redirect(url_for("ui.show_job", job_id=job.id), code=303)  # type: ignore[return-value]


@bp.post("/jobs/new")
def create_job() -> Response | tuple[str, int]:
    """Add the job the form describes (POST /scheduler/jobs's validation)."""
    return _save(edit=None)


@bp.post("/jobs/<job_id>/edit")
def update_job(job_id: str) -> Response | tuple[str, int]:
    """Change the job as the form says (the API's atomic PATCH)."""
    get_job_service().get_job(job_id)  # an unknown job is a 404 before any form is shown
    return _save(edit=job_id)
