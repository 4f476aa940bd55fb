"""The offline evaluation's chart, drawn with matplotlib: one panel per intent, mean cost per request (x) against
mean quality (y) of each configuration, both with 95% t-intervals over the intent's cases, the intent's quality
target dashed, Pareto points filled and dominated ones hollow, a gate failure marked with a cross. Names sit in
the legend, never beside the points, so no label is drawn over another (tests/unit/reports measures it)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.report import CellMetrics, EvaluationReport
from kanaria.stats.distributions import t_ppf
from kanaria_tools.reports.svg import figure_svg

CHART_FILE = "chart.svg"
COLUMNS = 3
CONFIDENCE = 0.95


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The mean and the half-width of its two-sided t-interval; None with fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t_ppf(1 - (1 - CONFIDENCE) / 2, n - 1)) * sd / math.sqrt(n)


def _cases(records: Sequence[CaseRecord], config: str, intent: str) -> tuple[list[float], list[float]]:
    """The qualities and the costs of one configuration's cases on one intent."""
    chosen = [r for r in records if r.config_name == config and r.intent == intent]
    return [r.composite for r in chosen], [float(r.cost_usd) for r in chosen if r.cost_usd is not None]


def evaluation_figure(report: EvaluationReport, records: Sequence[CaseRecord]) -> Figure:
    """The chart as a matplotlib Figure (not yet drawn)."""
    intents = list(dict.fromkeys(c.intent for c in report.cells))
    configs = [c.name for c in report.configurations]
    colour = {name: f"C{i % 10}" for i, name in enumerate(configs)}
    rows = max(1, math.ceil(len(intents) / COLUMNS))
    columns = min(COLUMNS, max(1, len(intents)))
    figure = Figure(figsize=(max(8.4, 4.2 * columns), 3.4 * rows + 1.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True)
    figure.suptitle(
        f"Mean quality vs cost per request, 95% intervals\n{report.dataset.version}, run {report.run_id}",
        fontsize=11,
        fontweight="bold",
    )
    for index, intent in enumerate(intents):
        ax = axes[index // COLUMNS][index % COLUMNS]
        cells = [c for c in report.cells if c.intent == intent]
        _panel(ax, intent, cells, records, colour, set(report.pareto.get(intent, [])))
    for index in range(len(intents), rows * columns):
        axes[index // COLUMNS][index % COLUMNS].set_visible(False)
    handles = [Line2D([], [], color=colour[n], marker="o", linestyle="none", label=n) for n in configs]
    handles += [
        Line2D([], [], color="#555555", marker="o", linestyle="none", label="Pareto (filled)"),
        Line2D([], [], color="#555555", marker="o", markerfacecolor="white", linestyle="none", label="dominated"),
        Line2D([], [], color="#555555", marker="x", linestyle="none", label="gate FAIL"),
        Line2D([], [], color="#555555", linestyle="--", label="quality target"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8.5, frameon=False)
    return figure


def _panel(
    ax: Any,
    intent: str,
    cells: list[CellMetrics],
    records: Sequence[CaseRecord],
    colour: dict[str, str],
    frontier: set[str],
) -> None:
    """One intent: each configuration's point with its quality and cost intervals."""
    for cell in cells:
        if cell.mean_cost_usd is None:
            continue
        qualities, costs = _cases(records, cell.config, intent)
        quality, cost = mean_interval(qualities), mean_interval(costs)
        x, y = cell.mean_cost_usd * 1000, cell.mean_quality
        face = colour.get(cell.config, "black") if cell.config in frontier else "white"
        ax.errorbar(
            x,
            y,
            xerr=None if cost is None else cost[1] * 1000,
            yerr=None if quality is None else quality[1],
            color=colour.get(cell.config, "black"),
            marker="o",
            markerfacecolor=face,
            markersize=7,
            capsize=3,
            linestyle="none",
        )
        if cell.gate_passed is False:
            ax.plot([x], [y], marker="x", color="black", markersize=9, linestyle="none")
    target = next((c.quality_target for c in cells if c.quality_target is not None), None)
    if target is not None:
        ax.axhline(target, color="#555555", linestyle="--", linewidth=1)
    n = max((c.n for c in cells), default=0)
    ax.set_title(f"{intent} (n = {n} cases)", loc="left", fontsize=10)
    ax.set_xlabel("cost per 1,000 requests (USD)", fontsize=8.5)
    ax.set_ylabel("mean quality", fontsize=8.5)
    ax.tick_params(labelsize=8)
    ax.grid(color="#eeeeee")


def render_svg(report: EvaluationReport, records: Sequence[CaseRecord]) -> str:
    """The chart as a standalone SVG document."""
    return figure_svg(evaluation_figure(report, records), f"evaluation-{report.run_id}")
