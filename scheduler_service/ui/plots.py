"""The duration-over-time plot of a job page: an inline SVG drawn on the server.

No chart library and no script: the SVG is a string built here with every text escaped, and
styled by presentation attributes and CSS classes (the page's CSP forbids inline styles).
Failed runs are crosses, others dots, so the plot reads without colour; each point has a
``<title>`` (time, state, duration) and ``#durations-summary`` says the numbers in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

from ..runs.stats import FAILING_STATES, durations, percentile
from .charts import svg_markup

POINTS = 100  # the last finished runs drawn
WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
BAD = frozenset(FAILING_STATES)


@dataclass(frozen=True)
class Point:
    started: datetime
    state: str
    duration: float


def finished_runs(job_id: str, limit: int = POINTS) -> list[Point]:
    """The job's last ``limit`` finished runs with a duration, oldest first (one query)."""
    return [Point(*row) for row in durations(job_id, limit=limit)]


def summary(points: Sequence[Point]) -> str:
    """ "p50 1.20 s, max 3.40 s, 12 runs (2 failed)", or why there is nothing to draw."""
    if not points:
        return "No finished run yet."
    durations = [p.duration for p in points]
    failed = sum(p.state in BAD for p in points)
    count = f"{len(points)} run{'s' if len(points) != 1 else ''}"
    bad = f" ({failed} failed)" if failed else ""
    return (
        f"p50 {percentile(durations, 0.5):.2f} s, max {max(durations):.2f} s, "
        f"{count}{bad}: the last {POINTS} finished runs at most."
    )


def _when(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat(sep=" ")


def _point(x: float, y: float, point: Point) -> str:
    said = f"{_when(point.started)}: {point.state}, {point.duration:.3f} s"
    title = f"<title>{escape(said)}</title>"
    if point.state in BAD:  # a cross: failed runs differ by shape, not only by colour
        a, b, c, e = x - 4, x + 4, y - 4, y + 4
        d = f"M{a:.1f},{c:.1f}L{b:.1f},{e:.1f}M{a:.1f},{e:.1f}L{b:.1f},{c:.1f}"
        return (
            f'<g class="point point-bad" data-state="{escape(point.state)}">{title}'
            f'<path d="{d}" stroke="#cf222e" stroke-width="2.5" fill="none"/></g>'
        )
    return (
        f'<g class="point point-ok" data-state="{escape(point.state)}">{title}'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#1a7f37"/></g>'
    )


def durations_svg(points: Sequence[Point]) -> Markup:
    """The plot: x the start time, y the duration in seconds from 0 to the longest run."""
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((p.duration for p in points), default=0.0) or 1.0
    start = points[0].started if points else None
    span = (points[-1].started - points[0].started).total_seconds() if points else 0.0
    parts = [
        f'<svg id="durations" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="durations-title">',
        '<title id="durations-title">Duration of the last finished runs over their start time'
        "</title>",
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}" stroke="#57606a"/>',
        f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}" '
        'stroke="#57606a"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" fill="#57606a">'
        f"{top:.2f} s</text>",
        f'<text x="{LEFT - 6}" y="{TOP + inner_h}" text-anchor="end" font-size="11" '
        'fill="#57606a">0 s</text>',
    ]
    if points and start is not None:
        parts.append(
            f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="#57606a">'
            f"{escape(_when(points[0].started))}</text>"
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{escape(_when(points[-1].started))}</text>'
        )
    for index, point in enumerate(points):
        if span > 0:
            share = (point.started - start).total_seconds() / span  # type: ignore[operator]
        else:
            share = (index + 0.5) / len(points)
        x = LEFT + share * inner_w
        y = TOP + inner_h - point.duration / top * inner_h
        parts.append(_point(x, y, point))
    parts.append("</svg>")
    return svg_markup("".join(parts))
