"""The rehearsal's timeline picture (matplotlib): a valid SVG with its titles, and no label drawn over another
or cut off at the figure's edge (the hand-written renderer printed phase titles over each other, axis titles
over tick labels and clipped long alarm names)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from kanaria_tools.rehearsal import timeline_chart
from kanaria_tools.rehearsal.results import PhaseResult
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


def _drawn_texts(figure) -> list[tuple[str, Bbox]]:
    """Every piece of text the renderer actually draws (ticks outside the view are never drawn), with its box."""
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    drawn: list[tuple[str, Bbox]] = []
    draw_text = renderer.draw_text

    def recording(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if s.strip() and mtext is not None:
            drawn.append((s, mtext.get_window_extent(renderer)))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording
    figure.draw(renderer)
    return drawn


def test_no_label_overlaps_another_or_leaves_the_figure(tmp_path: Path) -> None:
    figure = timeline_chart.timeline_figure(_crowded(tmp_path))
    drawn = _drawn_texts(figure)
    labels = " | ".join(text for text, _ in drawn)
    assert "kanaria-canary-hallucination-rate-for-intent-2" in labels and "rollout-with-a-long-name-2" in labels
    assert "p99 latency per minute (ms)" in labels and "scenario minutes" in labels
    page = figure.bbox
    outside = [
        text
        for text, box in drawn
        if box.x0 < page.x0 - 0.5 or box.y0 < page.y0 - 0.5 or box.x1 > page.x1 + 0.5 or box.y1 > page.y1 + 0.5
    ]
    assert outside == []
    overlapping = [(a[0], b[0]) for a, b in combinations(drawn, 2) if a[1].overlaps(b[1])]
    assert overlapping == []


def test_the_text_check_sees_an_overlap_and_a_clipped_label() -> None:
    figure = Figure(figsize=(3, 2))
    figure.text(0.1, 0.5, "phase one title")
    figure.text(0.12, 0.5, "phase two title")
    figure.text(-0.05, 0.2, "clipped alarm name")
    (one, a), (_, b), (_, clipped) = _drawn_texts(figure)
    assert one == "phase one title" and a.overlaps(b)
    assert clipped.x0 < figure.bbox.x0
