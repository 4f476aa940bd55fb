"""A rollout phase's decision tiles in the report: a figure per judged stream that mattered (the judge's
evidence per minute, kanaria_tools.reports.tile_chart) and a compact grid of every stream (metric x intent)."""

from __future__ import annotations

from kanaria_tools.rehearsal.results import PhaseResult
from kanaria_tools.reports.decision_tiles import StreamSeries, mattered, series_from_json
from kanaria_tools.reports.page import Picture, Section, Tile
from kanaria_tools.reports.svg import figure_svg
from kanaria_tools.reports.tile_chart import Markers, StageBand, tile_figure

ALARM_KINDS = {"alarm", "composite"}


def markers(phase: PhaseResult) -> Markers:
    """Stage bands (weights), the fault, gate failures, alarms and the completed rollback, in scenario minutes."""
    stages = [(float(at), str(name), int(percent)) for at, name, percent in phase.detail.get("stages") or []]
    end = (phase.rollback_completed_at or phase.ended_at) / 60
    bands = tuple(
        StageBand(name, percent, at / 60, (stages[i + 1][0] / 60 if i + 1 < len(stages) else end))
        for i, (at, name, percent) in enumerate(stages)
    )
    reactions = phase.reactions
    rollback = next((r.at / 60 for r in reactions if r.kind == "rollback"), None)
    return Markers(
        stages=bands,
        faults=tuple(r.at / 60 for r in reactions if r.kind == "fault"),
        gate_failures=tuple(r.at / 60 for r in reactions if r.kind == "gate" and " FAIL " in f" {r.what} "),
        alarms=tuple(r.at / 60 for r in reactions if r.kind in ALARM_KINDS and "-> ALARM" in r.what),
        rollback=rollback,
    )


def grid(streams: list[StreamSeries]) -> tuple[Tile, ...]:
    """One tile per stream: crossed (bad), past half its threshold (warn), within (ok), no canary data (idle)."""
    tiles = []
    for s in streams:
        canary, primary = s.trials
        peak = max(s.minutes, key=lambda m: m.statistic / m.threshold if m.threshold else 0.0, default=None)
        if canary <= 0 or peak is None:
            tiles.append(Tile(s.label, "idle", ("no canary data",)))
            continue
        status = "bad" if s.crossed_at is not None else ("warn" if s.closeness >= 0.5 else "ok")
        events = sum(m.canary_events for m in s.minutes), sum(m.primary_events for m in s.minutes)
        tiles.append(
            Tile(
                s.label,
                status,
                (
                    f"log M peak {peak.statistic:.1f} / {peak.threshold:.1f}",
                    f"canary {events[0]:g}/{canary:g}, primary {events[1]:g}/{primary:g}",
                ),
            )
        )
    return tuple(tiles)


def rollout_sections(phase: PhaseResult, text: list[str]) -> list[Section]:
    """The rollout's text, then its tiles: the streams that mattered as figures, every stream as a grid."""
    streams = [series_from_json(body) for body in phase.detail.get("streams") or []]
    if not streams:
        return [Section("\n".join(text))]
    marks = markers(phase)
    chosen = mattered(streams)
    crossed = any(s.crossed_at is not None for s in chosen)
    lines = [
        *text,
        "",
        f"### Decision tiles: {'the streams that crossed their threshold' if crossed else 'the streams nearest their threshold'}",
        "",
        "Each tile is one judged stream (metric on all intents or on one intent): the canary - primary difference "
        "per minute with its 95% interval and the tolerance, and the evidence statistic the judge compares with "
        "its threshold (the judge replayed on the minutes it reads). Minutes without traffic are left empty.",
    ]
    pictures = tuple(
        Picture(
            f"tile-{phase.name}-{s.metric}-{'all' if s.intent == '*' else s.intent}.svg",
            figure_svg(tile_figure(s, marks, f"Rollout {phase.name}: {s.label}"), f"tile-{phase.name}-{s.key}"),
            f"decision tile: {s.label}",
            (
                f"Crossed its threshold at scenario minute {s.crossed_at:.0f}."
                if s.crossed_at is not None
                else f"Peak at {s.closeness:.0%} of its threshold."
            ),
        )
        for s in chosen
    )
    return [
        Section(
            "\n".join(lines),
            pictures=pictures,
            tiles=grid(streams),
            tiles_caption=f"Every judged stream of rollout {phase.name}: red crossed its threshold, amber passed "
            "half of it, green stayed within, grey had no canary data.",
        )
    ]
