"""One phase of the rehearsal report: an experiment's results per look (effect, relative lift, per intent, SRM,
guardrails, the effect over time) or a rollout's decision tiles (the judge's evidence per stream and minute)."""

from __future__ import annotations

from typing import Any

from kanaria_tools.rehearsal.results import PhaseResult
from kanaria_tools.reports import experiment_results as er
from kanaria_tools.reports.page import Picture, Section
from kanaria_tools.reports.svg import figure_svg

ROWS_HEADER = (
    "| analysis (traffic) | units control | units treatment | quality control | quality treatment | decision | SRM |"
)


def phase_sections(phase: PhaseResult, text: list[str]) -> list[Section]:
    """The phase's sections: its text (times, reactions), then its results or tiles."""
    if phase.kind == "experiment":
        return experiment_sections(phase, text)
    if phase.kind == "rollout":
        from kanaria_tools.rehearsal.tiles_report import rollout_sections

        return rollout_sections(phase, text)
    return [Section("\n".join(text))]


def looks(phase: PhaseResult) -> list[er.LookSummary]:
    """Every analysis look of an experiment phase, summarised (treatment against control)."""
    detail = phase.detail
    control, treatment = detail.get("control"), detail.get("treatment")
    if not control or not treatment:
        return []
    return [
        er.summarise_look(str(look["label"]), float(look["minute"]), look["stored"], control, treatment)
        for look in detail.get("looks") or []
        if look.get("stored")
    ]


def experiment_sections(phase: PhaseResult, text: list[str]) -> list[Section]:
    """Results per look (tables and the effect figure); the progress rows when no analysis was stored."""
    detail: dict[str, Any] = phase.detail
    summaries = looks(phase)
    if not summaries:
        rows = detail.get("rows") or []
        table = ["", ROWS_HEADER, "| --- | --- | --- | --- | --- | --- | --- |"] if rows else []
        table += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        return [Section("\n".join(text + table))]
    control, treatment = detail["control"], detail["treatment"]
    last = detail["looks"][-1]["stored"]
    metric = ((last.get("snapshot") or {}).get("experiment") or {}).get("primary_metric", "primary metric")
    lines = [
        *text,
        "",
        f"### Results per look: {treatment} against {control} on {metric}",
        "",
        "Effect = treatment - control with the interval of the experiment's method (the always-valid interval when "
        "it reads at any time, the look's group-sequential interval for obf); relative lift with the same "
        "coverage (delta method).",
        "",
        *er.looks_table(summaries, control, treatment),
    ]
    intents = er.intents_table(summaries[-1])
    if intents:
        lines += ["", f"Per intent at the last look ({summaries[-1].label}):", "", *intents]
    guardrails = er.guardrails_table(last.get("result") or {}, treatment)
    if guardrails:
        lines += ["", "Every guardrail at the last look:", "", *guardrails]
    figure = er.effect_figure(
        summaries, metric, detail.get("mde"), f"Experiment {phase.name}: {treatment} vs {control}, effect per look"
    )
    picture = Picture(
        f"experiment-{phase.name}.svg",
        figure_svg(figure, f"experiment-{phase.name}"),
        f"effect of {treatment} over {control} per look",
        "Effect and relative lift per analysis look with their intervals; the dashed line is the minimum effect of "
        "interest.",
    )
    return [Section("\n".join(lines), pictures=(picture,))]
