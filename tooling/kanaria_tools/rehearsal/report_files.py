"""The rehearsal report files: a Markdown summary, result.json (what tests and CI read), the timeline picture
(kanaria_tools.rehearsal.timeline_chart, matplotlib) and one HTML page holding both (open it in a browser)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from kanaria_tools.rehearsal.clock import fmt, fmt_duration
from kanaria_tools.rehearsal.moto_adaptations import ADAPTATIONS, MOTO_VERSION
from kanaria_tools.rehearsal.results import PhaseResult, RehearsalResult
from kanaria_tools.rehearsal.timeline_chart import STATE_COLOURS, render_svg


def write_report(result: RehearsalResult) -> list[Path]:
    """report.md, timeline.svg, result.json and report.html in the run directory; returns their paths."""
    run_dir = result.run_dir
    if run_dir is None:
        raise ValueError("the rehearsal has no run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    svg = run_dir / "timeline.svg"
    svg.write_text(render_svg(result), encoding="utf-8")
    markdown = run_dir / "report.md"
    markdown.write_text(render_markdown(result, svg.name), encoding="utf-8")
    data = run_dir / "result.json"
    data.write_text(json.dumps(summary(result), indent=2, default=str), encoding="utf-8")
    page = run_dir / "report.html"
    page.write_text(
        render_html(result, svg.read_text(encoding="utf-8"), markdown.read_text(encoding="utf-8")), encoding="utf-8"
    )
    latest = run_dir.parent / "latest.md"
    latest.write_text(render_markdown(result, f"{run_dir.name}/{svg.name}"), encoding="utf-8")
    return [markdown, svg, data, page]


def render_html(result: RehearsalResult, svg: str, markdown: str) -> str:
    """One self-contained page: the outcome, the picture inline and the Markdown summary as text."""
    verdict = "every outcome as expected" if result.ok else "NOT every outcome as expected"
    colour = STATE_COLOURS["OK"] if result.ok else STATE_COLOURS["ALARM"]
    title = html.escape(f"Kanaria rehearsal: {result.scenario.name}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}pre{white-space:pre-wrap;"
        "background:#f6f6f6;padding:1em}</style></head><body>\n"
        f'<h1>{title}</h1>\n<p style="color:{colour};font-weight:bold">{html.escape(verdict)}</p>\n'
        f"{svg}\n<pre>{html.escape(markdown)}</pre>\n</body></html>\n"
    )


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
    """The machine-readable part of a rollout phase's detail: the rollout, how it ended, what restored 100/0."""
    kept: dict[str, Any] = {
        k: detail[k]
        for k in ("rollout_id", "status", "execution_status", "weights_after", "restored_by", "rollback_alerts")
        if k in detail
    }
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


def render_markdown(result: RehearsalResult, svg_name: str) -> str:
    """The rehearsal's report.md: the outcomes, each phase's reactions, alerts, alarm changes, the emulator."""
    lines = _summary(result, svg_name)
    for p in result.phases:
        lines += _phase_section(p)
    lines += _observed(result)
    lines += ["", "## Emulator adaptations", ""]
    lines += [f"- **{a.name}**: {a.adaptation}" for a in ADAPTATIONS]
    return "\n".join(lines) + "\n"


def _summary(result: RehearsalResult, svg_name: str) -> list[str]:
    s = result.scenario
    lines = [
        f"# Rehearsal: {s.name}",
        "",
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
        f"![timeline]({svg_name})",
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


def _phase_section(p: PhaseResult) -> list[str]:
    lines = [
        "",
        f"## {p.kind.capitalize()} {p.name}",
        "",
        f"{fmt(p.started_at)} to {fmt(p.ended_at)} ({fmt_duration(p.ended_at - p.started_at)} of scenario time).",
    ]
    if p.kind == "experiment" and p.detail.get("rows"):
        lines += [
            "",
            "| analysis (traffic) | units control | units treatment | quality control | quality treatment | decision | SRM |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in p.detail["rows"]]
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
