"""The rehearsal's timeline picture, drawn with matplotlib: canary weight, p99 latency and mean quality per
minute (canary vs primary), and each alarm's state, over the whole rehearsal in scenario minutes (the experiment
phase too), with the phases as shaded bands and the faults, completed rollbacks (never green) and promotions as
vertical lines. A minute without traffic on a side leaves a gap: lines are never drawn across it.

Every label sits where matplotlib's constrained layout puts it (axis titles beside their ticks, alarm names as
the state panel's tick labels, phase names and markers in the legend below the panels), so nothing is drawn over
anything else or cut off; tests/unit/rehearsal/test_timeline_chart.py measures the drawn text to hold that.
The figure is built on matplotlib's object API (no pyplot, no global figure state), so it is safe in a thread.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from kanaria_tools.rehearsal.fleet import MinuteSample
from kanaria_tools.rehearsal.results import RehearsalResult
from kanaria_tools.reports.svg import figure_svg

STATE_COLOURS = {"OK": "#3a9d5d", "ALARM": "#d64545", "INSUFFICIENT_DATA": "#b9b9b9"}
SIDE_COLOURS = {"primary": "#3b6fb6", "canary": "#e08a1e"}
PHASE_FILLS = ("#dfe9fb", "#efe6fb", "#fbf1dc", "#dcf3ea", "#f8e0e8", "#e6e6e6")
FAULT_COLOUR, ROLLBACK_COLOUR, PROMOTION_COLOUR = STATE_COLOURS["ALARM"], "#5b2a86", "#34495e"
PANEL_TITLES = ("canary weight (%)", "p99 latency per minute (ms)", "mean quality per minute", "alarm state")


def title(result: RehearsalResult) -> str:
    """The figure's title."""
    return (
        f"Rehearsal {result.scenario.name}: canary weight, canary vs primary, alarm states "
        f"(scenario minutes; clock {result.speed:g}x)"
    )


def _window(result: RehearsalResult) -> tuple[float, float]:
    """Scenario seconds shown: the whole rehearsal, from its start (the experiment phase) to the end."""
    ends = [p.ended_at for p in result.phases] + [m.minute * 60 + 60 for m in result.samples] + [60]
    start = min([p.started_at for p in result.phases] + [0])
    return float(start), float(max(ends))


def timeline_figure(result: RehearsalResult) -> Figure:
    """The timeline as a matplotlib Figure (not yet drawn)."""
    start, end = _window(result)
    samples = [m for m in result.samples if m.minute * 60 >= start]
    alarms = list(result.alarm_thresholds)
    figure = Figure(figsize=(12, 7.5 + 0.25 * len(alarms)), layout="constrained")
    weight_ax, latency_ax, quality_ax, alarm_ax = figure.subplots(
        4, 1, sharex=True, gridspec_kw={"height_ratios": [2, 2.6, 2, max(1.0, 0.45 * len(alarms))]}
    )
    figure.suptitle(title(result), fontsize=12, fontweight="bold")
    to_min = 1 / 60

    _weight_panel(weight_ax, result, end)
    for ax, attribute in ((latency_ax, "p99_ms"), (quality_ax, "quality")):
        _side_panel(ax, samples, attribute)
    _alarm_panel(alarm_ax, result, alarms, start, end)

    phase_handles = _phases(result, start, (weight_ax, latency_ax, quality_ax, alarm_ax))
    for ax, panel_title in zip((weight_ax, latency_ax, quality_ax, alarm_ax), PANEL_TITLES, strict=True):
        ax.set_title(panel_title, loc="left", fontsize=10)
        ax.grid(axis="y", color="#e5e5e5")
        ax.set_xlim(start * to_min, end * to_min)
    legend = [
        Line2D([], [], color=SIDE_COLOURS["canary"], label="canary"),
        Line2D([], [], color=SIDE_COLOURS["primary"], label="primary"),
        *(Patch(color=colour, label=f"alarm {state}") for state, colour in STATE_COLOURS.items()),
        Line2D([], [], color=FAULT_COLOUR, linestyle="--", label="fault"),
        Line2D([], [], color=ROLLBACK_COLOUR, linestyle="--", label="rolled back"),
        Line2D([], [], color=PROMOTION_COLOUR, linestyle=":", label="promoted (primary redeployed, weight reset)"),
        *phase_handles,
    ]
    figure.legend(handles=legend, loc="outside lower center", ncols=min(4, len(legend)), fontsize=9, frameon=False)
    return figure


def _weight_panel(ax: Any, result: RehearsalResult, end: float) -> None:
    """The canary weight as a step line held to the end."""
    if result.weights:
        to_min = 1 / 60
        times = [at * to_min for at, _ in result.weights] + [end * to_min]
        values = [percent for _, percent in result.weights] + [result.weights[-1][1]]
        ax.step(times, values, where="post", color=SIDE_COLOURS["canary"], linewidth=2.2)
    ax.set_ylim(-5, 105)
    ax.set_yticks([0, 25, 50, 75, 100])


def _side_panel(ax: Any, samples: list[MinuteSample], attribute: str) -> None:
    """One per-minute figure of the samples (p99_ms, quality), canary vs primary."""
    for side in ("primary", "canary"):
        points = sorted(
            (m.minute, getattr(m, attribute))
            for m in samples
            if m.side == side and m.requests and getattr(m, attribute) is not None
        )
        xs: list[float] = []
        ys: list[float] = []
        for index, (minute, value) in enumerate(points):
            if index and minute - points[index - 1][0] > 1:
                xs.append(math.nan)  # a minute without traffic: break the line
                ys.append(math.nan)
            xs.append(minute + 0.5)
            ys.append(value)
        if xs:
            ax.plot(xs, ys, color=SIDE_COLOURS[side], linewidth=1.2)


def _alarm_panel(ax: Any, result: RehearsalResult, alarms: list[str], start: float, end: float) -> None:
    """The alarm states: one lane per alarm, a bar per state interval."""
    to_min = 1 / 60
    for lane, name in enumerate(alarms):
        changes = sorted((t.at, t.new) for t in result.alarm_transitions if t.alarm == name)
        state, since = "INSUFFICIENT_DATA", start
        for at, new in [*changes, (end, None)]:
            left, right = max(start, since), max(start, at)
            if right > left:
                ax.broken_barh(
                    [(left * to_min, (right - left) * to_min)],
                    (lane - 0.4, 0.8),
                    facecolors=STATE_COLOURS.get(state, "#999999"),
                )
            if new is not None:
                state, since = new, at
    ax.set_yticks(range(len(alarms)), alarms, fontsize=9)
    ax.set_ylim(len(alarms) - 0.5, -0.5)
    ax.set_xlabel("scenario minutes")


def _phases(result: RehearsalResult, start: float, axes: tuple[Any, ...]) -> list[Patch]:
    """Shade each phase over every panel and mark its fault and completed rollback; legend entries for them."""
    handles: list[Patch] = []
    shown = [p for p in result.phases if p.ended_at > start]
    for index, phase in enumerate(shown):
        fill = PHASE_FILLS[index % len(PHASE_FILLS)]
        for ax in axes:
            ax.axvspan(max(start, phase.started_at) / 60, phase.ended_at / 60, color=fill, alpha=0.6, zorder=0)
            if phase.fault_at is not None:
                ax.axvline(phase.fault_at / 60, color=FAULT_COLOUR, linestyle="--", linewidth=1)
            if phase.rollback_completed_at is not None:
                ax.axvline(phase.rollback_completed_at / 60, color=ROLLBACK_COLOUR, linestyle="--", linewidth=1)
            if phase.kind == "rollout" and phase.outcome == "completed":
                ax.axvline(phase.ended_at / 60, color=PROMOTION_COLOUR, linestyle=":", linewidth=1.2)
        handles.append(
            Patch(color=fill, label=f"{phase.kind} {phase.name} ({'OK' if phase.ok else 'FAIL'}: {phase.outcome})")
        )
    return handles


def render_svg(result: RehearsalResult) -> str:
    """The timeline as a standalone SVG document (text kept as text, stable element ids)."""
    return figure_svg(timeline_figure(result), "kanaria-timeline")
