"""The label check every figure of the reports passes: it sees an overlap and a clipped label, and every figure
the reports draw (timeline, experiment effect, decision tile, evaluation chart) is clean on crowded input."""

from __future__ import annotations

from matplotlib.figure import Figure

from kanaria_tools.reports.figure_check import drawn_texts, label_problems


def test_the_check_sees_an_overlap_and_a_clipped_label() -> None:
    figure = Figure(figsize=(3, 2))
    figure.text(0.1, 0.5, "phase one title")
    figure.text(0.12, 0.5, "phase two title")
    figure.text(-0.05, 0.2, "clipped alarm name")
    (one, a), (_, b), (_, clipped) = ((d.text, d.box) for d in drawn_texts(figure))
    assert one == "phase one title" and a.overlaps(b)
    assert clipped.x0 < figure.bbox.x0
    assert label_problems(figure) == ["clipped: clipped alarm name", "overlap: phase one title / phase two title"]


def test_a_clean_figure_has_no_problem() -> None:
    figure = Figure(figsize=(4, 3), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title")
    ax.set_xlabel("minutes")
    assert label_problems(figure) == []
