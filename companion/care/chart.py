"""Soreness over time against the expected envelope, as plain geometry for a server-drawn SVG.

No chart library: the template `_chart.html` draws what `soreness_chart()` computes. The patient's
history uses it now; the therapist's visit page can use the same function (issue 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from companion.care.triage import RULES, envelope_window
from companion.timeutil import hours_since

WIDTH = 320
HEIGHT = 200
# Margins leave room for the axis labels.
LEFT, RIGHT, TOP, BOTTOM = 30, 10, 10, 30
MIN_SPAN_HOURS = 96  # always show the first four days: the whole expected course (clinical.md)


@dataclass(frozen=True)
class ChartPoint:
    hours: float
    soreness: int
    x: float
    y: float
    recorded_at: datetime


@dataclass(frozen=True)
class Tick:
    value: float
    at: float  # the x or y position
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    band: str  # SVG points of the usual range (0 to usual maximum), a step shape
    amber: str  # SVG points of the amber threshold line
    line: str  # SVG points joining the patient's scores in time order
    points: list[ChartPoint]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    span_hours: float
    latest: ChartPoint | None
    latest_usual_max: int | None


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def soreness_chart(
    performed_at: datetime,
    scores: Sequence[tuple[datetime, int]],
    rules: dict[str, Any] = RULES,
) -> Chart:
    """`scores`: (recorded_at, soreness) of one visit, any order."""
    ordered = sorted(scores)
    hours = [hours_since(performed_at, at) for at, _ in ordered]
    last = max([h for h in hours if h >= 0], default=0.0)
    # Round the span up to whole days so the ticks fall on 24 h marks.
    span = max(MIN_SPAN_HOURS, ((int(last) // 24) + 1) * 24)
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(h: float) -> float:
        return left + (min(max(h, 0.0), span) / span) * (right - left)

    def y(score: float) -> float:
        return bottom - (score / 10) * (bottom - top)

    band: list[str] = [f"{_fmt(x(0))},{_fmt(y(0))}"]
    amber: list[str] = []
    for w in rules["envelope"]:
        start, end = w["from_hours"], min(w["to_hours"], span)
        if start >= span:
            break
        band += [f"{_fmt(x(start))},{_fmt(y(w['usual_max']))}"]
        band += [f"{_fmt(x(end))},{_fmt(y(w['usual_max']))}"]
        amber += [f"{_fmt(x(start))},{_fmt(y(w['amber_at']))}"]
        amber += [f"{_fmt(x(end))},{_fmt(y(w['amber_at']))}"]
    band.append(f"{_fmt(x(span))},{_fmt(y(0))}")

    points = [
        ChartPoint(h, score, round(x(h), 1), round(y(score), 1), at)
        for (at, score), h in zip(ordered, hours, strict=True)
    ]
    x_ticks = [Tick(h, round(x(h), 1), str(h)) for h in range(0, int(span) + 1, 24)]
    y_ticks = [Tick(s, round(y(s), 1), str(s)) for s in (0, 2, 4, 6, 8, 10)]
    latest = points[-1] if points else None
    latest_max = (
        None if latest is None else envelope_window(rules, max(latest.hours, 0))["usual_max"]
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot=(left, top, right, bottom),
        band=" ".join(band),
        amber=" ".join(amber),
        line=" ".join(f"{p.x},{p.y}" for p in points),
        points=points,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        span_hours=span,
        latest=latest,
        latest_usual_max=latest_max,
    )
