"""The soreness chart's geometry (companion/chart.py): where scores and the usual range are drawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from companion.care.chart import soreness_chart

VISIT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_scores_are_placed_by_hours_since_the_visit_and_by_score():
    chart = soreness_chart(
        VISIT, [(VISIT + timedelta(hours=48), 2), (VISIT + timedelta(hours=0), 10)]
    )
    left, top, right, bottom = chart.plot
    first, second = chart.points  # drawn in time order whatever the input order
    assert (first.x, first.y) == (left, top)  # 10 right after the visit: top left
    assert first.soreness == 10 and second.soreness == 2
    assert second.x == round(left + (right - left) * 48 / 96, 1)
    assert second.y == round(bottom - (bottom - top) * 0.2, 1)
    assert chart.latest == second and chart.latest_usual_max == 2


def test_the_span_shows_four_days_at_least_and_grows_to_fit_late_scores():
    assert soreness_chart(VISIT, []).span_hours == 96
    late = soreness_chart(VISIT, [(VISIT + timedelta(hours=130), 0)])
    assert late.span_hours == 144
    assert [t.label for t in late.x_ticks] == ["0", "24", "48", "72", "96", "120", "144"]


def test_the_usual_range_steps_down_as_the_envelope_does():
    chart = soreness_chart(VISIT, [])
    heights = [float(point.split(",")[1]) for point in chart.band.split()]
    # Band tops, left to right, never rise (the usual maximum never grows with time).
    tops = heights[1:-1]
    assert all(later >= earlier for earlier, later in pairwise(tops))
    assert chart.latest is None and chart.latest_usual_max is None
