"""The rehearsal report files: result.json (what tests, CI and `kanaria report --result` read), the figures as
SVG files (matplotlib), report.md linking them, and report.html: the same sections rendered by Jinja2 and
markdown-it-py with every figure embedded, readable from disk without a server (kanaria_tools.reports.page)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from kanaria_tools.rehearsal.clock import fmt, fmt_duration
from kanaria_tools.rehearsal.moto_adaptations import ADAPTATIONS, MOTO_VERSION
from kanaria_tools.rehearsal.phase_report import phase_sections
from kanaria_tools.rehearsal.results import PhaseResult, RehearsalResult
from kanaria_tools.rehearsal.timeline_chart import render_svg
from kanaria_tools.reports import page
from kanaria_tools.reports.decision_tiles import mattered, series_from_json
from kanaria_tools.reports.page import Picture, Section

TIMELINE = "timeline.svg"
KEPT = (
    "rollout_id",
    "status",
    "execution_status",
    "weights_after",
    "restored_by",
    "rollback_alerts",
    "streams",
    "control",
    "treatment",
    "mde",
    "decision",
    "srm",
    "looks",
    "analysis",
)


def write_report(result: RehearsalResult) -> list[Path]:
    """report.md, timeline.svg, result.json and report.html (and each phase's figures) in the run directory;
    returns the paths of the first four."""
    run_dir = result.run_dir
    if run_dir is None:
        raise ValueError("the rehearsal has no run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = sections(result)
    for section in parts:
        for picture in section.pictures:
            (run_dir / picture.file).write_text(picture.svg, encoding="utf-8")
    markdown = run_dir / "report.md"
    markdown.write_text(f"# {_title(result)}\n\n" + page.render_markdown(parts), encoding="utf-8")
    data = run_dir / "result.json"
    data.write_text(json.dumps(summary(result), indent=2, default=str), encoding="utf-8")
    html_page = run_dir / "report.html"
    html_page.write_text(page.render_html(_title(result), _verdict(result), result.ok, parts), encoding="utf-8")
    latest = run_dir.parent / "latest.md"
    moved = [replace(s, pictures=tuple(replace(p, file=f"{run_dir.name}/{p.file}") for p in s.pictures)) for s in parts]
    latest.write_text(f"# {_title(result)}\n\n" + page.render_markdown(moved), encoding="utf-8")
    return [markdown, run_dir / TIMELINE, data, html_page]


def _title(result: RehearsalResult) -> str:
    return f"Rehearsal: {result.scenario.name}"


def _verdict(result: RehearsalResult) -> str:
    return "every outcome as expected" if result.ok else "NOT every outcome as expected"


def sections(result: RehearsalResult) -> list[Section]:
    """The report's sections: the summary with the timeline, each phase, what was observed, the emulator."""
    timeline = Picture(
        TIMELINE,
        render_svg(result),
        f"timeline of rehearsal {result.scenario.name}",
        "Canary weight, latency and quality per minute on both sides, and each alarm's state, over the whole "
        "rehearsal (experiment and rollouts).",
    )
    parts = [Section("\n".join(_summary(result)), pictures=(timeline,))]
    for phase in result.phases:
        parts += phase_sections(phase, _phase_text(phase))
    parts.append(Section("\n".join(_observed(result))))
    adaptations = ["## Emulator adaptations", ""] + [f"- **{a.name}**: {a.adaptation}" for a in ADAPTATIONS]
    parts.append(Section("\n".join(adaptations)))
    return parts


def summary(result: RehearsalResult) -> dict[str, Any]:
    """Machine-readable outcome (what tests and CI read)."""
    return {
        "scenario": result.scenario.name,
        "ok": result.ok,
        "error": result.error,
        "speed": result.speed,
        "wall_seconds": round(result.wall_seconds, 1),
        "deploy_seconds": round(result.deploy_seconds, 1),
        "phases": [
            {
                "name": p.name,
                "kind": p.kind,
                "expected": p.expected,
                "outcome": p.outcome,
                "ok": p.ok,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "fault_at": p.fault_at,
                "rollback_completed_at": p.rollback_completed_at,
                "fault_to_rollback_seconds": p.fault_to_rollback,
                "reactions": [{"at": r.at, "kind": r.kind, "what": r.what} for r in p.reactions],
                "detail": _detail(p.detail),
            }
            for p in result.phases
        ],
        "alerts": [{"at": at, "subject": subject} for at, subject, _ in result.alerts],
        "alarm_transitions": [
            {"at": t.at, "alarm": t.alarm, "old": t.old, "new": t.new, "actions": list(t.actions)}
            for t in result.alarm_transitions
        ],
        "not_emulated": result.not_created,
        "invocations": _invocation_stats(result.invocations),
    }


def _detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable part of a phase's detail: a rollout's id, how it ended, what restored 100/0, the
    judged streams that mattered; an experiment's arms and every analysis look (the last one is what `kanaria report
    --result` prints)."""
    kept: dict[str, Any] = {k: detail[k] for k in KEPT if k in detail}
    if kept.get("streams"):  # every stream is in the report's grid; result.json keeps the ones that mattered
        chosen = {s.key for s in mattered([series_from_json(body) for body in kept["streams"]])}
        kept["streams"] = [b for b in kept["streams"] if f"{b['metric']}|{b['intent']}" in chosen]
    record = detail.get("rollback")
    if isinstance(record, dict):
        kept["rollback_trigger"] = record.get("trigger")
    return kept


def _invocation_stats(invocations: list[Any]) -> dict[str, dict[str, float]]:
    """Per function: invocations, errors, mean and max wall seconds in the emulator."""
    stats: dict[str, dict[str, float]] = {}
    for _, name, error, seconds in invocations:
        entry = stats.setdefault(name, {"count": 0, "errors": 0, "mean_seconds": 0.0, "max_seconds": 0.0})
        entry["count"] += 1
        entry["errors"] += 1 if error else 0
        entry["mean_seconds"] += (seconds - entry["mean_seconds"]) / entry["count"]
        entry["max_seconds"] = max(entry["max_seconds"], seconds)
    return {k: {m: round(v, 3) for m, v in e.items()} for k, e in stats.items()}


def _summary(result: RehearsalResult) -> list[str]:
    s = result.scenario
    lines = [
        s.description,
        "",
        f"- outcome: **{'every outcome as expected' if result.ok else 'NOT every outcome as expected'}**",
        f"- design note: {s.design_note or '-'}",
        f"- scenario clock: {result.speed:g}x (1 wall second = {fmt_duration(result.speed)}); wall time "
        f"{result.wall_seconds:.0f}s, of which deploy {result.deploy_seconds:.0f}s",
        f"- emulator: moto {MOTO_VERSION} in process on loopback, {len(ADAPTATIONS)} adaptations "
        "(tooling/kanaria_tools/rehearsal/moto_adaptations/)",
    ]
    if result.error:
        lines += ["", f"**Error:** {result.error}"]
    lines += [
        "",
        "## Outcomes",
        "",
        "| phase | kind | expected | outcome | fault -> rollback complete |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in result.phases:
        lines.append(
            f"| {p.name} | {p.kind} | {p.expected or 'any'} | {'OK' if p.ok else 'FAIL'}: {p.outcome} | "
            f"{fmt_duration(p.fault_to_rollback) if p.fault_to_rollback is not None else '-'} |"
        )
    return lines


def _phase_text(p: PhaseResult) -> list[str]:
    lines = [
        "",
        f"## {p.kind.capitalize()} {p.name}",
        "",
        f"{fmt(p.started_at)} to {fmt(p.ended_at)} ({fmt_duration(p.ended_at - p.started_at)} of scenario time).",
    ]
    if p.reactions:
        lines += ["", "What reacted, and when (scenario clock; + is after the first fault):", ""]
        for r in p.reactions:
            delta = f" (+{fmt_duration(r.at - p.fault_at)})" if p.fault_at is not None and r.at >= p.fault_at else ""
            lines.append(f"- {fmt(r.at)}{delta} [{r.kind}] {r.what}")
    if p.fault_to_rollback is not None:
        lines += [
            "",
            f"Time from fault to completed rollback: **{fmt_duration(p.fault_to_rollback)}** (scenario clock).",
        ]
    return lines


def _observed(result: RehearsalResult) -> list[str]:
    """The alerts received, the alarm state changes and what the emulator did not create."""
    lines: list[str] = []
    if result.alerts:
        lines += ["", "## On-call alerts received (SNS -> SQS subscriber)", ""]
        for at, subject, _ in result.alerts:
            lines.append(f"- {fmt(at)} {subject}")
    if result.alarm_transitions:
        lines += ["", "## Alarm state changes", ""]
        for t in result.alarm_transitions:
            actions = f" -> {', '.join(t.actions)}" if t.actions else ""
            lines.append(f"- {fmt(t.at)} {t.alarm}: {t.old} -> {t.new}{actions}")
    skipped = {k: v for k, v in result.not_created.items() if v}
    if skipped:
        lines += [
            "",
            "## Not emulated",
            "",
            "Resources of the templates the emulator does not create (the rehearsal "
            "invokes the functions directly with API-Gateway-shaped events; alarms are evaluated by the "
            "rehearsal):",
            "",
        ]
        lines += [f"- {stack}: {', '.join(types)}" for stack, types in skipped.items()]
    return lines
