"""The rehearsal report: a Markdown summary, a self-contained SVG picture (no plotting dependency) of the
canary weight, canary vs primary metrics and alarm states over scenario time, and one HTML page holding both
(open it in a browser)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from kanaria_tools.rehearsal.clock import fmt, fmt_duration
from kanaria_tools.rehearsal.moto_adaptations import ADAPTATIONS, MOTO_VERSION

STATE_COLOURS = {"OK": "#3a9d5d", "ALARM": "#d64545", "INSUFFICIENT_DATA": "#b9b9b9"}
SIDE_COLOURS = {"primary": "#3b6fb6", "canary": "#e08a1e"}


def write_report(result: Any) -> list[Path]:
    """report.md, timeline.svg, result.json and report.html in the run directory; returns their paths."""
    run_dir: Path = result.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    svg = run_dir / "timeline.svg"
    svg.write_text(render_svg(result), encoding="utf-8")
    markdown = run_dir / "report.md"
    markdown.write_text(render_markdown(result, svg.name), encoding="utf-8")
    data = run_dir / "result.json"
    data.write_text(json.dumps(summary(result), indent=2, default=str), encoding="utf-8")
    page = run_dir / "report.html"
    page.write_text(render_html(result, svg.read_text(encoding="utf-8"), markdown.read_text(encoding="utf-8")),
                    encoding="utf-8")
    latest = run_dir.parent / "latest.md"
    latest.write_text(render_markdown(result, f"{run_dir.name}/{svg.name}"), encoding="utf-8")
    return [markdown, svg, data, page]


def render_html(result: Any, svg: str, markdown: str) -> str:
    """One self-contained page: the outcome, the picture inline and the Markdown summary as text."""
    verdict = "every outcome as expected" if result.ok else "NOT every outcome as expected"
    colour = STATE_COLOURS["OK"] if result.ok else STATE_COLOURS["ALARM"]
    title = html.escape(f"Kanaria rehearsal: {result.scenario.name}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}pre{white-space:pre-wrap;"
        "background:#f6f6f6;padding:1em}</style></head><body>\n"
        f"<h1>{title}</h1>\n<p style=\"color:{colour};font-weight:bold\">{html.escape(verdict)}</p>\n"
        f"{svg}\n<pre>{html.escape(markdown)}</pre>\n</body></html>\n"
    )


def summary(result: Any) -> dict[str, Any]:
    """Machine-readable outcome (what tests and CI read)."""
    return {
        "scenario": result.scenario.name,
        "ok": result.ok,
        "error": result.error,
        "speed": result.speed,
        "wall_seconds": round(result.wall_seconds, 1),
        "deploy_seconds": round(result.deploy_seconds, 1),
        "phases": [{
            "name": p.name, "kind": p.kind, "expected": p.expected, "outcome": p.outcome, "ok": p.ok,
            "started_at": p.started_at, "ended_at": p.ended_at, "fault_at": p.fault_at,
            "rollback_completed_at": p.rollback_completed_at, "fault_to_rollback_seconds": p.fault_to_rollback,
            "reactions": [{"at": r.at, "kind": r.kind, "what": r.what} for r in p.reactions],
            "detail": _detail(p.detail),
        } for p in result.phases],
        "alerts": [{"at": at, "subject": subject} for at, subject, _ in result.alerts],
        "alarm_transitions": [{"at": t.at, "alarm": t.alarm, "old": t.old, "new": t.new, "actions": list(t.actions)}
                              for t in result.alarm_transitions],
        "not_emulated": result.not_created,
        "invocations": _invocation_stats(result.invocations),
    }


def _detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable part of a rollout phase's detail: the rollout, how it ended, what restored 100/0."""
    kept = {k: detail[k] for k in ("rollout_id", "status", "execution_status", "weights_after", "restored_by",
                                   "rollback_alerts") if k in detail}
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


def render_markdown(result: Any, svg_name: str) -> str:
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
        "(tooling/kanaria_tools/rehearsal/moto_adaptations.py)",
    ]
    if result.error:
        lines += ["", f"**Error:** {result.error}"]
    lines += ["", f"![timeline]({svg_name})", "", "## Outcomes", "",
              "| phase | kind | expected | outcome | fault -> rollback complete |", "| --- | --- | --- | --- | --- |"]
    for p in result.phases:
        lines.append(f"| {p.name} | {p.kind} | {p.expected or 'any'} | {'OK' if p.ok else 'FAIL'}: {p.outcome} | "
                     f"{fmt_duration(p.fault_to_rollback) if p.fault_to_rollback is not None else '-'} |")
    for p in result.phases:
        lines += ["", f"## {p.kind.capitalize()} {p.name}", "",
                  f"{fmt(p.started_at)} to {fmt(p.ended_at)} ({fmt_duration(p.ended_at - p.started_at)} of scenario time)."]
        if p.kind == "experiment" and p.detail.get("rows"):
            lines += ["", "| analysis (traffic) | units control | units treatment | quality control | quality treatment | decision | SRM |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in p.detail["rows"]]
        if p.reactions:
            lines += ["", "What reacted, and when (scenario clock; + is after the first fault):", ""]
            for r in p.reactions:
                delta = f" (+{fmt_duration(r.at - p.fault_at)})" if p.fault_at is not None and r.at >= p.fault_at else ""
                lines.append(f"- {fmt(r.at)}{delta} [{r.kind}] {r.what}")
        if p.fault_to_rollback is not None:
            lines += ["", f"Time from fault to completed rollback: **{fmt_duration(p.fault_to_rollback)}** (scenario clock)."]
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
        lines += ["", "## Not emulated", "", "Resources of the templates the emulator does not create (the rehearsal "
                  "invokes the functions directly with API-Gateway-shaped events; alarms are evaluated by the "
                  "rehearsal):", ""]
        lines += [f"- {stack}: {', '.join(types)}" for stack, types in skipped.items()]
    lines += ["", "## Emulator adaptations", ""]
    lines += [f"- **{a.name}**: {a.adaptation}" for a in ADAPTATIONS]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------
# SVG


class _Panel:
    def __init__(self, top: float, height: float, left: float, width: float, t0: float, t1: float, y0: float, y1: float):
        self.top, self.height, self.left, self.width = top, height, left, width
        self.t0, self.t1, self.y0, self.y1 = t0, t1, y0, y1 if y1 > y0 else y0 + 1

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / max(1e-9, self.t1 - self.t0) * self.width

    def y(self, v: float) -> float:
        return self.top + self.height - (v - self.y0) / (self.y1 - self.y0) * self.height


def _polyline(points: list[tuple[float, float]], colour: str, width: float = 1.6, dash: str = "") -> str:
    if not points:
        return ""
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashing = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{dashing} points="{text}"/>'


def render_svg(result: Any) -> str:
    width, left, right = 1100, 190, 30
    plot_width = width - left - right
    samples = result.samples
    end = max([p.ended_at for p in result.phases] + [m.minute * 60 + 60 for m in samples] + [60])
    rollouts = [p for p in result.phases if p.kind == "rollout"]
    # The picture is about the canary: it starts shortly before the first rollout (the experiment is a table).
    start = max(0.0, min(p.started_at for p in rollouts) - 120) if rollouts else min([p.started_at for p in result.phases] + [0])
    samples = [m for m in samples if m.minute * 60 >= start]
    alarm_names = [n for n in result.alarm_thresholds] or []
    lanes = max(1, len(alarm_names))
    heights = {"weight": 110, "latency": 150, "quality": 110, "alarms": 22 * lanes + 10}
    top = 50
    parts: list[str] = []
    title = html.escape(f"Rehearsal {result.scenario.name}: canary weight, canary vs primary, alarm states "
                        f"(scenario minutes; clock {result.speed:g}x)")
    parts.append(f'<text x="{left}" y="24" font-size="15" font-weight="bold">{title}</text>')

    def axis(panel: _Panel, label: str, ticks: list[float], unit: str = "") -> None:
        parts.append(f'<rect x="{panel.left}" y="{panel.top}" width="{panel.width}" height="{panel.height}" '
                     'fill="#fafafa" stroke="#cccccc"/>')
        parts.append(f'<text x="{panel.left - 10}" y="{panel.top + panel.height / 2}" font-size="12" text-anchor="end">'
                     f'{html.escape(label)}</text>')
        for tick in ticks:
            y = panel.y(tick)
            parts.append(f'<line x1="{panel.left}" x2="{panel.left + panel.width}" y1="{y:.1f}" y2="{y:.1f}" '
                         'stroke="#e5e5e5"/>')
            parts.append(f'<text x="{panel.left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                         f'{tick:g}{unit}</text>')

    # phases and faults as bands / markers over every panel
    total_height = sum(heights.values()) + 30 * len(heights)
    overlay = _Panel(top, total_height, left, plot_width, start, end, 0, 1)
    for phase in result.phases:
        if phase.ended_at <= start:
            continue
        x0, x1 = overlay.x(max(start, phase.started_at)), overlay.x(phase.ended_at)
        parts.append(f'<rect x="{x0:.1f}" y="{top - 8}" width="{max(1, x1 - x0):.1f}" height="{total_height}" '
                     f'fill="{"#eef4ff" if phase.kind == "rollout" else "#f3f0ff"}" opacity="0.5"/>')
        parts.append(f'<text x="{x0 + 3:.1f}" y="{top - 12}" font-size="11">{html.escape(phase.name)} '
                     f'({"OK" if phase.ok else "FAIL"}: {html.escape(phase.outcome)})</text>')
        if phase.fault_at is not None:
            xf = overlay.x(phase.fault_at)
            parts.append(f'<line x1="{xf:.1f}" x2="{xf:.1f}" y1="{top}" y2="{top + total_height - 30}" '
                         'stroke="#d64545" stroke-dasharray="5,3"/>')
            parts.append(f'<text x="{xf + 3:.1f}" y="{top + 10}" font-size="10" fill="#d64545">fault</text>')
        if phase.rollback_completed_at is not None:
            xr = overlay.x(phase.rollback_completed_at)
            parts.append(f'<line x1="{xr:.1f}" x2="{xr:.1f}" y1="{top}" y2="{top + total_height - 30}" '
                         'stroke="#3a9d5d" stroke-dasharray="5,3"/>')
            parts.append(f'<text x="{xr + 3:.1f}" y="{top + 22}" font-size="10" fill="#3a9d5d">rolled back</text>')

    y = top
    # 1. canary weight
    panel = _Panel(y, heights["weight"], left, plot_width, start, end, 0, 100)
    axis(panel, "canary weight (%)", [0, 25, 50, 75, 100])
    points: list[tuple[float, float]] = []
    for at, percent in result.weights:
        if points:
            points.append((panel.x(at), points[-1][1]))
        points.append((panel.x(at), panel.y(percent)))
    if points:
        points.append((panel.x(end), points[-1][1]))
    parts.append(_polyline(points, SIDE_COLOURS["canary"], 2.2))
    y += heights["weight"] + 30

    # 2. p99 latency per minute
    latencies = [m.p99_ms for m in samples if m.p99_ms is not None]
    top_latency = max(latencies) * 1.1 if latencies else 1000
    panel = _Panel(y, heights["latency"], left, plot_width, start, end, 0, top_latency)
    step = _nice_step(top_latency / 4)
    axis(panel, "p99 latency per minute (ms)", [step * i for i in range(0, int(top_latency // step) + 1)])
    for side in ("primary", "canary"):
        series = [(panel.x(m.minute * 60 + 30), panel.y(m.p99_ms)) for m in samples if m.side == side and m.p99_ms is not None]
        parts.append(_polyline(series, SIDE_COLOURS[side], 1.2))
    y += heights["latency"] + 30

    # 3. mean quality per minute
    qualities = [m.quality for m in samples if m.quality is not None]
    q0 = min(qualities) - 0.02 if qualities else 0.5
    q1 = max(qualities) + 0.02 if qualities else 1.0
    panel = _Panel(y, heights["quality"], left, plot_width, start, end, q0, q1)
    axis(panel, "mean quality per minute", [round(q0 + (q1 - q0) * i / 4, 2) for i in range(5)])
    for side in ("primary", "canary"):
        series = [(panel.x(m.minute * 60 + 30), panel.y(m.quality)) for m in samples if m.side == side and m.quality is not None]
        parts.append(_polyline(series, SIDE_COLOURS[side], 1.0))
    y += heights["quality"] + 30

    # 4. alarm states
    panel = _Panel(y, heights["alarms"], left, plot_width, start, end, 0, 1)
    parts.append(f'<rect x="{left}" y="{y}" width="{plot_width}" height="{heights["alarms"]}" fill="#fafafa" stroke="#cccccc"/>')
    for lane, name in enumerate(alarm_names):
        lane_y = y + 5 + lane * 22
        parts.append(f'<text x="{left - 10}" y="{lane_y + 13}" font-size="11" text-anchor="end">{html.escape(name)}</text>')
        changes = sorted((t.at, t.new) for t in result.alarm_transitions if t.alarm == name)
        state, since = "INSUFFICIENT_DATA", start
        for at, new in [*changes, (end, None)]:
            x0, x1 = panel.x(max(start, since)), panel.x(max(start, at))
            if x1 > x0:
                parts.append(f'<rect x="{x0:.1f}" y="{lane_y}" width="{x1 - x0:.1f}" height="16" '
                             f'fill="{STATE_COLOURS.get(state, "#999")}"><title>{html.escape(name)}: {state} from '
                             f'{fmt(since)}</title></rect>')
            if new is not None:
                state, since = new, at
    y += heights["alarms"] + 10

    # time axis and legend
    tick = _nice_step((end - start) / 60 / 10)
    minute = math.ceil(start / 60 / tick) * tick
    while minute * 60 <= end + 1e-6:
        x = overlay.x(minute * 60)
        parts.append(f'<text x="{x:.1f}" y="{y + 14}" font-size="10" text-anchor="middle">{minute:g}</text>')
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{y}" stroke="#000" stroke-opacity="0.05"/>')
        minute += tick
    parts.append(f'<text x="{left + plot_width}" y="{y + 28}" font-size="10" text-anchor="end">scenario minutes</text>')
    legend_y = y + 34
    legend = [("canary", SIDE_COLOURS["canary"]), ("primary", SIDE_COLOURS["primary"]), ("alarm OK", STATE_COLOURS["OK"]),
              ("ALARM", STATE_COLOURS["ALARM"]), ("INSUFFICIENT_DATA", STATE_COLOURS["INSUFFICIENT_DATA"])]
    x = left
    for label, colour in legend:
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="12" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{legend_y}" font-size="11">{label}</text>')
        x += 30 + 7 * len(label)
    height = legend_y + 20
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'font-family="Helvetica, Arial, sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(p for p in parts if p) + "\n</svg>\n")


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
