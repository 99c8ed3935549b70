"""The soreness chart (companion/care/chart.py, templates/_chart.html): where scores and the usual
range are drawn, and how red and amber check-ins are marked (shape, colour, words)."""

from __future__ import annotations

import re
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


def test_red_amber_and_green_scores_are_marked_by_shape(now):
    chart = soreness_chart(
        VISIT,
        [
            (VISIT + timedelta(hours=2), 3, "green"),
            (VISIT + timedelta(hours=12), 8, "amber"),
            (VISIT + timedelta(hours=26), 2, "red"),
            (VISIT + timedelta(hours=30), 2),  # no triage given: a plain score
        ],
    )
    green, amber, red, plain = chart.points
    assert [p.shape for p in chart.points] == ["circle", "square", "triangle", "circle"]
    assert (green.level, amber.level, red.level, plain.level) == ("green", "amber", "red", None)
    assert green.marker == "" and plain.marker == ""
    corners = [tuple(map(float, c.split(","))) for c in amber.marker.split()]
    assert len(corners) == 4 and {x for x, _ in corners} == {amber.x - 4.5, amber.x + 4.5}
    apex, *base = [tuple(map(float, c.split(","))) for c in red.marker.split()]
    assert len(base) == 2 and apex == (red.x, red.y - 7)  # a triangle pointing up
    assert chart.flagged == [amber, red]
    assert chart.levels == {"green", "amber", "red", None}


def _drawn(app, chart) -> str:
    from flask import render_template_string

    with app.test_request_context():
        return render_template_string(
            '{% from "_chart.html" import soreness_chart %}{{ soreness_chart(chart) }}', chart=chart
        )


def test_each_marker_has_a_title_and_the_description_names_the_red_and_amber_ones(app, now):
    chart = soreness_chart(
        VISIT,
        [
            (VISIT + timedelta(hours=2), 3, "green"),
            (VISIT + timedelta(hours=12), 8, "amber"),
            (VISIT + timedelta(hours=26), 2, "red"),
        ],
    )
    html = _drawn(app, chart)
    groups = re.findall(
        r'<g class="chart-point"><title>([^<]+)</title><(\w+) class="marker (\w+)"', html
    )
    assert groups == [
        ("2 h: soreness 3 out of 10, as expected", "circle", "green"),
        ("12 h: soreness 8 out of 10, not as expected", "polygon", "amber"),
        ("26 h: soreness 2 out of 10, red flag", "polygon", "red"),
    ]
    desc = html[html.index("<desc") : html.index("</desc>")]
    assert "12 h: soreness 8 out of 10, not as expected." in desc
    assert "26 h: soreness 2 out of 10, red flag." in desc
    assert "as expected." not in desc.replace("not as expected.", "")
    # The legend keeps each symbol with its words: one item per symbol, none split.
    legend = html[html.index("<figcaption") : html.index("</figcaption>")]
    items = re.findall(
        r'<span class="legend-item">(.*?)</span>\s*(?=<span class="legend-item">|$)', legend, re.S
    )
    assert any("level-icon red" in i and "red flag" in i for i in items)
    assert any("level-icon amber" in i and "not as expected" in i for i in items)
    assert any("level-icon green" in i and "as expected" in i for i in items)


def test_the_legend_shows_only_the_levels_drawn(app, now):
    html = _drawn(app, soreness_chart(VISIT, [(VISIT + timedelta(hours=2), 3, "green")]))
    legend = html[html.index("<figcaption") : html.index("</figcaption>")]
    assert "level-icon green" in legend
    assert "red flag" not in legend and "not as expected" not in legend
