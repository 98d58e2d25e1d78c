"""The jobs table, a job's page, its runs (a fragment the live script swaps in), and the
run, pause and resume buttons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from flask import Response, current_app, flash, redirect, render_template, request, url_for
from pydantic import BaseModel, Field

from ..auth import require_role
from ..control import get_job_service
from ..errors import ServiceError
from ..runs.ledger import list_fires
from ..runs.service import latest_runs, list_runs
from ..scheduler.serialize import job_to_dict
from ..scheduler.upstream import store_alias
from ..web import query_args
from .blueprint import bp, local_path
from .plots import durations_svg, finished_runs, summary
from .words import next_fire_times, shown_time, time_zone, trigger_words

PAGE_SIZE = 50
RUNS_SHOWN = 50
FIRES_SHOWN = 50


class JobsPageQuery(BaseModel):
    """The jobs table's query: which page (50 jobs a page), and the paused filter."""

    page: int = Field(default=1, ge=1, le=10_000_000)
    paused: bool | None = None


def _row(job: Job, last: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "trigger": trigger_words(job.trigger),
        "next_run": shown_time(job.next_run_time) if job.next_run_time else "paused",
        "store": store_alias(job),
        "paused": job.next_run_time is None,
        "last": last,
    }


@bp.get("/jobs")
def list_jobs() -> str:
    """One page of jobs, read at the store as GET /scheduler/jobs reads it."""
    query = query_args(JobsPageQuery)  # a bad page or filter: 400, as the API answers
    page, paused = query.page, query.paused
    jobs, total = get_job_service().list_page(
        paused=paused, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    last = latest_runs([job.id for job in jobs])
    filters: dict[str, Any] = {} if paused is None else {"paused": str(paused).lower()}
    return render_template(
        "ui/jobs.html",
        rows=[_row(job, last.get(job.id)) for job in jobs],
        events_url=events_url(),
        total=total,
        paused=paused,
        first=(page - 1) * PAGE_SIZE + 1,
        prev_url=url_for("ui.list_jobs", page=page - 1, **filters) if page > 1 else None,
        next_url=(
            url_for("ui.list_jobs", page=page + 1, **filters) if page * PAGE_SIZE < total else None
        ),
    )


def _runs(job_id: str) -> list[Any]:
    runs, _total = list_runs(job_id=job_id, limit=RUNS_SHOWN)
    return runs


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> str:
    """A job: its definition, next fire times, runs and buttons."""
    job = get_job_service().get_job(job_id)
    zone = time_zone(job.trigger)
    runs = _runs(job_id)  # flushes the run writer (list_runs): the plot below reads as much
    points = finished_runs(job_id)
    ledger, ledger_total = list_fires(job_id, limit=FIRES_SHOWN)
    return render_template(
        "ui/job.html",
        job=job_to_dict(job),
        row=_row(job, None),
        fires=[shown_time(t) for t in next_fire_times(job.trigger, datetime.now(UTC))],
        zone=str(zone) if zone is not None else "",
        runs=runs,
        events_url=events_url(),
        durations=durations_svg(points),
        durations_summary=summary(points),
        ledger=ledger,
        ledger_total=ledger_total,
        run_url=_run_url,
    )


def _run_url(run_id: int) -> str | None:
    """A run's record in the API (none when the API is off)."""
    if "runs.get_one_run" not in current_app.view_functions:
        return None
    return url_for("runs.get_one_run", run_id=run_id)


def events_url() -> str | None:
    """Where the live script listens (none when the API, and so its stream, is off)."""
    if "events.stream_events" not in current_app.view_functions:
        return None
    return url_for("events.stream_events")


@bp.get("/jobs/<job_id>/row")
def job_row(job_id: str) -> str:
    """One row of the jobs table, for the live script to swap in; ``next`` is the page the
    row's buttons come back to."""
    job = get_job_service().get_job(job_id)
    row = _row(job, latest_runs([job_id]).get(job_id))
    back = local_path(request.args.get("next"), url_for("ui.list_jobs"))
    return render_template("ui/_job_row.html", row=row, back=back)


@bp.get("/jobs/<job_id>/runs")
def job_runs(job_id: str) -> str:
    """The runs table's body alone, for the live script to swap in."""
    get_job_service().get_job(job_id)  # an unknown job is a 404, as its page is
    return render_template("ui/_runs.html", runs=_runs(job_id))


def _act(job_id: str, action: str) -> Response:
    service = get_job_service()
    try:
        if action == "run":
            run_id = service.run_job(job_id)
            flash(f"run {run_id} of {job_id} requested", "status")
        else:
            getattr(service, f"{action}_job")(job_id)
            flash(f"{job_id} {action}d", "status")
    except ServiceError as exc:
        flash(f"could not {action} {job_id}: {exc.message}", "alert")
    back = local_path(request.form.get("next"), url_for("ui.show_job", job_id=job_id))
    return redirect(back, code=303)  # type: ignore[return-value]


@bp.post("/jobs/<job_id>/run")
@require_role("operator")
def run_job(job_id: str) -> Response:
    return _act(job_id, "run")


@bp.post("/jobs/<job_id>/pause")
@require_role("operator")
def pause_job(job_id: str) -> Response:
    return _act(job_id, "pause")


@bp.post("/jobs/<job_id>/resume")
@require_role("operator")
def resume_job(job_id: str) -> Response:
    return _act(job_id, "resume")
