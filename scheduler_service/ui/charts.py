"""The overview's charts as inline SVG built on the server: no script, no chart library.

The content security policy forbids ``style`` attributes, so shapes are painted with SVG
presentation attributes (``fill``, ``stroke``). Every figure is also in a ``<title>`` and in a
table next to the chart; a failure state is told by a pattern as well as a colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 180
_TOP, _BOTTOM, _LEFT = 10, 24, 36  # room for the axis labels

# Each state's paint: a colour, and for the failures a pattern over it (see _PATTERNS).
PAINT: dict[str, tuple[str, str | None]] = {
    "succeeded": ("#1a7f37", None),
    "failed": ("#cf222e", "hatch"),
    "timed_out": ("#a40e26", "cross"),
    "unknown": ("#8c959f", "dots"),
    "abandoned": ("#57606a", "dots"),
    "missed": ("#bf8700", None),
    "skipped": ("#d4a72c", None),
    "skipped_duplicate": ("#eac54f", None),
    "coalesced": ("#afb8c1", None),
    "pending": ("#54aeff", None),
    "submitted": ("#218bff", None),
    "running": ("#0550ae", None),
}
_PATTERNS = {
    "hatch": '<path d="M0,6 L6,0" stroke="#fff" stroke-width="1.5"/>',
    "cross": '<path d="M0,0 L6,6 M0,6 L6,0" stroke="#fff" stroke-width="1.2"/>',
    "dots": '<circle cx="3" cy="3" r="1.2" fill="#fff"/>',
}


def svg_markup(svg: str) -> Markup:
    """Mark SVG built on the server (here and in plots.py) as safe: every value from outside
    went through ``escape``."""
    return Markup(svg)  # noqa: S704  (only escaped values are interpolated)


def _fill(state: str) -> str:
    colour, pattern = PAINT.get(state, ("#6e7781", None))
    return f"url(#fill-{state})" if pattern else colour


def _defs(states: Sequence[str]) -> str:
    parts = []
    for state in states:
        colour, pattern = PAINT.get(state, ("#6e7781", None))
        if pattern:
            parts.append(
                f'<pattern id="fill-{escape(state)}" width="6" height="6" '
                f'patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="{colour}"/>'
                f"{_PATTERNS[pattern]}</pattern>"
            )
    return f"<defs>{''.join(parts)}</defs>" if parts else ""


def swatch(state: str) -> Markup:
    """A small square in the state's paint, for a legend (the text says the state)."""
    return svg_markup(
        '<svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true">'
        f'<rect width="12" height="12" fill="{escape(_fill(state))}" stroke="#1b1f24" '
        'stroke-width="0.5"/></svg>'
    )


def _scale(largest: int) -> int:
    """A round top for the y axis, at least ``largest`` (and at least 1)."""
    for step in (1, 2, 5):
        for power in range(0, 10):
            top = step * 10**power
            if top >= largest:
                return top
    return largest


def _axis(top: int, plot_height: int) -> str:
    return (
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" class="axis">{top}</text>'
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_height}" text-anchor="end" class="axis">0</text>'
        f'<line x1="{_LEFT}" y1="{_TOP + plot_height}" x2="{WIDTH}" y2="{_TOP + plot_height}" '
        'stroke="#d0d7de"/>'
    )


def stacked_bars(
    svg_id: str,
    label: str,
    hours: Sequence[datetime],
    counts: dict[tuple[int, str], int],
    states: Sequence[str],
) -> Markup:
    """A bar per hour, stacked by state in ``states`` order (bottom first)."""
    plot_height = HEIGHT - _TOP - _BOTTOM
    totals = [sum(counts.get((i, s), 0) for s in states) for i in range(len(hours))]
    top = _scale(max(totals, default=0))
    slot = (WIDTH - _LEFT) / max(len(hours), 1)
    groups = []
    for i, hour in enumerate(hours):
        x = _LEFT + i * slot + 2
        said = ", ".join(f"{counts[(i, s)]} {s}" for s in states if counts.get((i, s)))
        title = f"{hour:%Y-%m-%d %H:00} UTC: {said or 'no runs'}"
        bars, y = [], float(_TOP + plot_height)
        for state in states:
            count = counts.get((i, state), 0)
            if not count:
                continue
            height = plot_height * count / top
            y -= height
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" height="{height:.1f}" '
                f'fill="{escape(_fill(state))}" data-state="{escape(state)}" '
                f'data-count="{count}"/>'
            )
        tick = ""
        if i % 3 == 0:
            tick = (
                f'<text x="{x + (slot - 4) / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
                f'class="axis">{hour:%H}h</text>'
            )
        groups.append(
            f'<g data-hour="{hour:%Y-%m-%dT%H:00Z}" data-total="{totals[i]}">'
            f"<title>{escape(title)}</title>{''.join(bars)}{tick}</g>"
        )
    return svg_markup(
        f'<svg id="{escape(svg_id)}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(label)}</title>{_defs(states)}{_axis(top, plot_height)}"
        f"{''.join(groups)}</svg>"
    )


def histogram(svg_id: str, label: str, buckets: Sequence[tuple[str, int]]) -> Markup:
    """A bar per bucket (its name under it, its count above it)."""
    plot_height = HEIGHT - _TOP - _BOTTOM - 12
    top = _scale(max((count for _, count in buckets), default=0))
    slot = (WIDTH - _LEFT) / max(len(buckets), 1)
    groups = []
    for i, (name, count) in enumerate(buckets):
        x = _LEFT + i * slot + 8
        height = plot_height * count / top
        y = _TOP + 12 + plot_height - height
        middle = x + (slot - 16) / 2
        groups.append(
            f'<g data-bucket="{escape(name)}" data-count="{count}">'
            f"<title>{escape(name)}: {count} fire{'' if count == 1 else 's'}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 16:.1f}" height="{height:.1f}" '
            'fill="#0550ae"/>'
            f'<text x="{middle:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="value">'
            f"{count}</text>"
            f'<text x="{middle:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">'
            f"{escape(name)}</text></g>"
        )
    return svg_markup(
        f'<svg id="{escape(svg_id)}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(label)}</title>{_axis(top, plot_height + 12)}{''.join(groups)}</svg>"
    )
