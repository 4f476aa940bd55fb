"""The rehearsal's timeline picture (matplotlib): a valid SVG with its titles, no label drawn over another or cut
off at the figure's edge (the hand-written renderer printed phase titles over each other, axis titles over tick
labels and clipped long alarm names), the whole rehearsal on the axis, gaps left open."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from kanaria_tools.rehearsal import timeline_chart
from kanaria_tools.rehearsal.results import PhaseResult
from kanaria_tools.reports.figure_check import drawn_texts, label_problems
from tests.unit.rehearsal.test_progress_report import rehearsal_result

SVG = "{http://www.w3.org/2000/svg}"


def _crowded(tmp_path: Path):
    """Phases that start a minute apart and long alarm names: what made the old picture overlap."""
    result = rehearsal_result(tmp_path)
    result.phases += [
        PhaseResult(
            f"rollout-with-a-long-name-{i}", "rollout", "completed", "completed", True, 1800 + 60 * i, 1860 + 60 * i
        )
        for i in range(3)
    ]
    result.alarm_thresholds.update({f"kanaria-canary-hallucination-rate-for-intent-{i}": 0.1 for i in range(3)})
    return result


def test_the_timeline_is_a_valid_svg_file_with_its_titles(tmp_path: Path) -> None:
    result = rehearsal_result(tmp_path)
    path = tmp_path / "timeline.svg"
    path.write_text(timeline_chart.render_svg(result), encoding="utf-8")
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    texts = "".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    for expected in (
        timeline_chart.title(result),
        *timeline_chart.PANEL_TITLES,
        "scenario minutes",
        "kanaria-canary-latency-p99",
        "kanaria-canary-critical",
        "rollout cold-start (OK: rolled_back)",
        "canary",
        "primary",
        "fault",
        "rolled back",
    ):
        assert expected in texts, expected
    assert len(root.findall(f".//{SVG}path")) > 10  # lines, bars and bands were drawn


def test_no_label_overlaps_another_or_leaves_the_figure(tmp_path: Path) -> None:
    figure = timeline_chart.timeline_figure(_crowded(tmp_path))
    labels = " | ".join(d.text for d in drawn_texts(figure))
    assert "kanaria-canary-hallucination-rate-for-intent-2" in labels and "rollout-with-a-long-name-2" in labels
    assert "p99 latency per minute (ms)" in labels and "scenario minutes" in labels
    assert label_problems(figure) == []


def test_the_axis_covers_the_experiment_and_a_rollback_is_not_green(tmp_path: Path) -> None:
    result = rehearsal_result(tmp_path)
    figure = timeline_chart.timeline_figure(result)
    weight_ax = figure.axes[0]
    assert weight_ax.get_xlim()[0] <= result.phases[0].started_at / 60  # the experiment phase is on the axis
    assert timeline_chart.ROLLBACK_COLOUR != timeline_chart.STATE_COLOURS["OK"]


def test_a_minute_without_traffic_breaks_the_line(tmp_path: Path) -> None:
    result = rehearsal_result(tmp_path)
    result.samples = [s for s in result.samples if s.minute != 15]
    latency_ax = timeline_chart.timeline_figure(result).axes[1]
    canary = [line for line in latency_ax.get_lines() if line.get_color() == timeline_chart.SIDE_COLOURS["canary"]]
    xs = list(canary[0].get_xdata())
    gap = xs.index(14.5) + 1
    assert math.isnan(xs[gap]) and xs[gap + 1] == 16.5
