"""A decision tile as a figure: one judged stream over the rollout. Top: the canary - primary difference per
judged period (a minute in AWS; the rehearsal's clock can make it longer) in percentage points
with its 95% interval and the tolerance (above it the canary is harmful); bottom: the
stream's evidence statistic against its threshold. Both over the stage bands (canary weight in the legend), with
the fault, gate failures, alarms and the rollback marked. Minutes without traffic are left empty."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from kanaria_tools.reports.decision_tiles import StreamSeries

STAGE_FILLS = ("#eef3fb", "#dfe9fb", "#cfdcf5", "#bfd0ef", "#afc4ea")
LineStyle = Literal["-", "--", "-.", ":"]
MARKER_STYLES: dict[str, tuple[str, LineStyle]] = {
    "fault": ("#777777", "--"),
    "gate failure": ("#d9822b", ":"),
    "alarm": ("#d64545", "-."),
    "rollback": ("#5b2a86", "-"),  # never green: a rollback is not a success
}
DIFFERENCE_COLOUR, TOLERANCE_COLOUR, STATISTIC_COLOUR = "#1f4e8c", "#b83232", "#1f4e8c"


@dataclass(frozen=True)
class StageBand:
    """A stage: scenario minutes [start, end) and its canary weight."""

    name: str
    percent: int
    start: float
    end: float


@dataclass(frozen=True)
class Markers:
    """Moments marked on every tile (scenario minutes)."""

    stages: tuple[StageBand, ...] = ()
    faults: tuple[float, ...] = ()
    gate_failures: tuple[float, ...] = ()
    alarms: tuple[float, ...] = ()
    rollback: float | None = None

    def moments(self) -> list[tuple[str, float]]:
        """(kind, minute) of every marker."""
        kinds = [("fault", self.faults), ("gate failure", self.gate_failures), ("alarm", self.alarms)]
        found = [(kind, at) for kind, times in kinds for at in times]
        return found + ([("rollback", self.rollback)] if self.rollback is not None else [])


def tile_figure(series: StreamSeries, markers: Markers, title: str) -> Figure:
    """The stream's tile (not yet drawn)."""
    figure = Figure(figsize=(10, 5.2), layout="constrained")
    difference_ax, evidence_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    figure.suptitle(title, fontsize=11, fontweight="bold")
    with_data = [m for m in series.minutes if m.difference is not None]
    width = series.minutes[1].minute - series.minutes[0].minute if len(series.minutes) > 1 else 1.0
    if with_data:
        x = [m.minute + width / 2 for m in with_data]
        y = [100 * m.difference for m in with_data]  # type: ignore[operator]
        below = [100 * (m.difference - m.low) for m in with_data]  # type: ignore[operator]
        above = [100 * (m.high - m.difference) for m in with_data]  # type: ignore[operator]
        difference_ax.errorbar(
            x,
            y,
            yerr=[below, above],
            color=DIFFERENCE_COLOUR,
            marker="o",
            markersize=3,
            linestyle="none",
            elinewidth=0.8,
        )
        _per_minute(
            difference_ax,
            [(m.minute, 100 * m.tolerance) for m in with_data if m.tolerance is not None],
            TOLERANCE_COLOUR,
            "--",
            width,
        )
        _per_minute(evidence_ax, [(m.minute, m.statistic) for m in with_data], STATISTIC_COLOUR, "-", width)
    threshold = series.minutes[-1].threshold if series.minutes else None
    if threshold is not None:
        evidence_ax.axhline(threshold, color=TOLERANCE_COLOUR, linestyle="--", linewidth=1)
        # before any data the detector starts far below zero: show the range where the decision happens
        peak = max([m.statistic for m in with_data] + [threshold])
        evidence_ax.set_ylim(-threshold, 1.1 * peak)
    difference_ax.axhline(0, color="#555555", linewidth=0.8)
    difference_ax.set_title(
        "canary - primary per judged period (percentage points), 95% interval", loc="left", fontsize=10
    )
    evidence_ax.set_title("evidence statistic (log M) and its threshold", loc="left", fontsize=10)
    evidence_ax.set_xlabel("scenario minutes")
    handles = _bands_and_markers((difference_ax, evidence_ax), markers)
    legend = [
        Line2D([], [], color=DIFFERENCE_COLOUR, marker="o", linestyle="none", label="difference, 95% interval"),
        Line2D(
            [],
            [],
            color=TOLERANCE_COLOUR,
            linestyle="--",
            label=f"tolerance: {series.ratio:g}x primary or +{100 * series.points:g} points",
        ),
        Line2D([], [], color=STATISTIC_COLOUR, label="log M"),
        *handles,
    ]
    figure.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=8.5, frameon=False)
    for ax in (difference_ax, evidence_ax):
        ax.grid(axis="y", color="#e5e5e5")
        if series.minutes:
            ax.set_xlim(series.minutes[0].minute, series.minutes[-1].minute + width)
    return figure


def _per_minute(ax: Any, points: Sequence[tuple[float, float]], colour: str, style: str, width: float) -> None:
    """A value held over each period it belongs to: one short segment per period, nothing between periods."""
    if points:
        ax.hlines(
            [y for _, y in points],
            [m for m, _ in points],
            [m + width for m, _ in points],
            colors=colour,
            linestyles=style,
            linewidth=1.4,
        )


def _bands_and_markers(axes: Sequence[Any], markers: Markers) -> list[Any]:
    """Stage bands and vertical markers on every panel; legend entries for them."""
    handles: list[Any] = []
    for index, stage in enumerate(markers.stages):
        fill = STAGE_FILLS[index % len(STAGE_FILLS)]
        for ax in axes:
            ax.axvspan(stage.start, stage.end, color=fill, zorder=0)
        handles.append(Patch(color=fill, label=f"{stage.name}: canary {stage.percent}%"))
    seen: set[str] = set()
    for kind, at in markers.moments():
        colour, style = MARKER_STYLES[kind]
        for ax in axes:
            ax.axvline(at, color=colour, linestyle=style, linewidth=1.2)
        if kind not in seen:
            seen.add(kind)
            handles.append(Line2D([], [], color=colour, linestyle=style, label=kind))
    return handles
