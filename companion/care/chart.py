"""Soreness over time against the expected envelope, as plain geometry for a server-drawn SVG.

No chart library: the template `_chart.html` draws what `soreness_chart()` computes. The patient's
history and the therapist's visit page both draw it.

Each score is marked by its check-in's triage with a shape as well as a colour (issue 12; WCAG
1.4.1, colour is never the only sign): red flag a triangle, amber a square, green a circle, the
same shapes as the icons beside the words on the pages (templates/_marks.html).
"""

from __future__ import annotations

import math
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
# At most this many steps between day ticks: a long episode gets a tick every few days, never one
# per day (a check-in stamped 2099 once made a 2 MB page of ticks; issue 14).
MAX_TICK_STEPS = 10
# A marker's shape by triage level; None: the caller did not say (a plain score).
SHAPES: dict[str | None, str] = {
    "red": "triangle",
    "amber": "square",
    "green": "circle",
    None: "circle",
}
# Half sizes, in SVG units, chosen so the three shapes cover about the same area (a circle of
# radius 5 is about 79): a square of side 9 (81), a triangle 14 wide and 12 high (84).
CIRCLE_R = 5
SQUARE_HALF = 4.5
TRIANGLE_HALF_WIDTH, TRIANGLE_UP, TRIANGLE_DOWN = 7, 7, 5


@dataclass(frozen=True)
class ChartPoint:
    hours: float
    soreness: int
    x: float
    y: float
    recorded_at: datetime
    level: str | None = None  # the check-in's triage: red | amber | green
    shape: str = "circle"  # SHAPES[level]
    marker: str = ""  # SVG points of a triangle or square marker; "" for a circle

    @property
    def flagged(self) -> bool:
        """A red or amber check-in: the text alternative names it."""
        return self.level in ("red", "amber")


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

    @property
    def levels(self) -> set[str | None]:
        """The triage levels among the points: the legend shows a symbol for each, no others."""
        return {p.level for p in self.points}

    @property
    def flagged(self) -> list[ChartPoint]:
        """The red and amber points in time order."""
        return [p for p in self.points if p.flagged]


def _marker(shape: str, x: float, y: float) -> str:
    if shape == "triangle":  # pointing up, like a warning sign
        corners = [
            (x, y - TRIANGLE_UP),
            (x + TRIANGLE_HALF_WIDTH, y + TRIANGLE_DOWN),
            (x - TRIANGLE_HALF_WIDTH, y + TRIANGLE_DOWN),
        ]
    elif shape == "square":
        h = SQUARE_HALF
        corners = [(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h)]
    else:
        return ""
    return " ".join(f"{_fmt(cx)},{_fmt(cy)}" for cx, cy in corners)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def soreness_chart(
    performed_at: datetime,
    scores: Sequence[tuple[datetime, int] | tuple[datetime, int, str]],
    rules: dict[str, Any] = RULES,
    until: datetime | None = None,
) -> Chart:
    """`scores`: (recorded_at, soreness, triage) of one visit's check-ins, any order. Without the
    triage, (recorded_at, soreness), a score is drawn as a plain circle.

    `until`: the end of the episode (checkins.store.latest_checkin_time). A score recorded after
    it cannot be real (rows stored before times were checked) and is left out of the chart, so
    the axis ends with the episode and the latest score shown is the real one.
    """
    ordered = sorted(
        (
            (entry[0], entry[1], entry[2] if len(entry) > 2 else None)
            for entry in scores
            if until is None or entry[0] <= until
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    hours = [hours_since(performed_at, at) for at, _, _ in ordered]
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

    points = []
    for (at, score, level), h in zip(ordered, hours, strict=True):
        px, py = round(x(h), 1), round(y(score), 1)
        shape = SHAPES.get(level, "circle")
        points.append(ChartPoint(h, score, px, py, at, level, shape, _marker(shape, px, py)))
    step = 24 * max(1, math.ceil(span / 24 / MAX_TICK_STEPS))
    x_ticks = [Tick(h, round(x(h), 1), str(h)) for h in range(0, int(span) + 1, step)]
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
