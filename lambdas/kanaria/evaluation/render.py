"""The report as Markdown and as a self-contained SVG chart (quality vs cost per intent, Pareto points filled)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

from kanaria.evaluation.report import CellMetrics, EvaluationReport

CHART_FILE = "chart.svg"
_COLS, _PANEL_W, _PANEL_H, _MARGIN, _PAD = 3, 300, 220, 50, 24  # chart: panels per row, panel size, gaps
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _usd(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "—"
    return f"{'-' if value < 0 else ''}${abs(value):,.{digits}f}"


def _gate(cell: CellMetrics) -> str:
    return "—" if cell.gate_passed is None else ("PASS" if cell.gate_passed else "FAIL")


RESULT_HEADER = (
    "| intent | configuration | n | mean quality | pass rate (need) | gate | p50 ms | p95 ms | p99 ms "
    "| mean cost | cost / satisfactory | tokens in/out | quality per 1K tokens | p95 ms / quality |"
)


def result_row(cell: CellMetrics) -> str:
    """One Markdown row of the results table."""
    need = f" ({cell.min_pass_rate:.0%})" if cell.min_pass_rate is not None else ""
    target = f" / {cell.quality_target:.2f}" if cell.quality_target is not None else ""
    tokens = (
        f"{cell.mean_input_tokens:.0f} / {cell.mean_output_tokens:.0f}"
        if cell.mean_input_tokens is not None and cell.mean_output_tokens is not None
        else "—"
    )
    return (
        f"| {cell.intent} | {cell.config} | {cell.n} | {cell.mean_quality:.3f}{target} | {cell.pass_rate:.0%}{need} "
        f"| {_gate(cell)} | {_num(cell.latency_p50_ms, '.0f')} | {_num(cell.latency_p95_ms, '.0f')} "
        f"| {_num(cell.latency_p99_ms, '.0f')} | {_usd(cell.mean_cost_usd)} | {_usd(cell.cost_per_satisfactory_usd)} "
        f"| {tokens} | {_num(cell.token_efficiency, '.2f')} | {_num(cell.latency_quality_ratio, ',.0f')} |"
    )


def results_table(cells: Sequence[CellMetrics]) -> str:
    """The per intent x configuration table (also what the CLI prints)."""
    rows = [RESULT_HEADER, "|" + "---|" * RESULT_HEADER.count(" | ") + "---|"]
    rows += [result_row(c) for c in cells]
    return "\n".join(rows)


def routing_table(report: EvaluationReport) -> str:
    """The recommended routing as Markdown."""
    r = report.routing
    budget = "none" if r.monthly_budget_usd is None else f"${r.monthly_budget_usd:,.2f}/month"
    lines = [
        f"Latency limit p95 ≤ {r.latency_limit_ms:.0f} ms, budget {budget}, objective `{r.objective}`.",
        "",
        "| intent | traffic share | configuration | mean quality | mean cost | p95 ms | why not routed |",
        "|---|---|---|---|---|---|---|",
    ]
    for ch in r.choices:
        lines.append(
            f"| {ch.intent} | {ch.share:.0%} | {ch.config or '**none**'} | {_num(ch.mean_quality, '.3f')} "
            f"| {_usd(ch.mean_cost_usd)} | {_num(ch.latency_p95_ms, '.0f')} | {'; '.join(ch.reasons)} |"
        )
    within = {None: "", True: " (within budget)", False: " (**over budget**)"}[r.within_budget]
    lines += ["", f"Routed monthly cost: {_usd(r.monthly_cost_usd, 2)}{within}."]
    lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines)


def render_markdown(report: EvaluationReport, chart_file: str | None = CHART_FILE) -> str:
    """The whole report as Markdown."""
    d = report.dataset
    judge = f"`{report.judge.model_id}` (judge hash `{report.judge.judge_hash}`)" if report.judge else "none"
    weights = ", ".join(f"{k} {v:.2f}" for k, v in report.weights.items())
    out = [
        f"# Offline evaluation `{report.run_id}`",
        "",
        f"- Dataset: `{d.version}` ({d.cases} cases; intents {', '.join(d.intents)})" + (f", {d.uri}" if d.uri else ""),
        f"- Created: {report.created_at}",
        f"- Scorer: `{report.scorer_version}`, weights {weights}; judge: {judge}",
        f"- Prices: `{report.price_table_version}`",
        "- Gate: per-case quality target from the intent profile; pass rate ≥ "
        + ", ".join(f"{v:.0%} ({k})" for k, v in report.policy.min_pass_rate.items())
        + "; forbidden/invented facts allowed at "
        + (", ".join(f"{v:.0%} ({k})" for k, v in report.policy.max_hallucination_rate.items()) or "any rate")
        + f"; at least {report.policy.min_cases} cases",
        "",
        "## Configurations",
        "",
        "| configuration | config hash | models | offline adapter |",
        "|---|---|---|---|",
    ]
    for c in report.configurations:
        out.append(
            f"| {c.name} | `{c.config_hash}` | {', '.join(f'`{m}`' for m in c.model_ids)} | "
            f"{'yes' if c.offline else 'no'} |"
        )
    out += ["", "## Results per intent", "", results_table(report.cells), ""]
    failures = [c for c in report.cells if c.gate_passed is False]
    if failures:
        out += ["### Gate failures", ""]
        out += [f"- **{c.intent} / {c.config}**: {'; '.join(c.gate_reasons)}" for c in failures]
        out.append("")
    out += [
        "## Overall per configuration",
        "",
        results_table(report.overall),
        "",
        "## Pareto frontier (mean quality ↑, mean cost ↓, p95 ↓)",
        "",
    ]
    out += [f"- {intent}: {', '.join(names) or '—'}" for intent, names in report.pareto.items()]
    out += ["", "## Recommended routing", "", routing_table(report), "", "## Monthly cost projection", ""]
    p = report.projection
    out.append(
        f"{p.requests_per_month:,} requests/month, mix "
        + ", ".join(f"{i} {s:.0%}" for i, s in p.intent_mix.items())
        + (f" (evaluated intents cover {p.covered_share:.0%} of it)" if p.covered_share < 1 else "")
        + "."
    )
    out += ["", "| configuration | monthly cost | routing saves |", "|---|---|---|"]
    for name, value in p.per_configuration_usd.items():
        out.append(f"| {name} (all intents) | {_usd(value, 2)} | {_usd(p.savings_vs_usd.get(name), 2)} |")
    out.append(f"| recommended routing | {_usd(p.routed_usd, 2)} | |")
    if chart_file:
        out += ["", f"![Mean quality vs mean cost per intent]({chart_file})"]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class _Panel:
    """One intent's panel of the chart: its top-left corner and the axes' ranges (cost from 0, quality to 1)."""

    ox: int
    oy: int
    x_max: float
    y_min: float

    def px(self, cost: float) -> float:
        """The x coordinate of a mean cost."""
        return self.ox + _PAD + cost / self.x_max * (_PANEL_W - 2 * _PAD)

    def py(self, quality: float) -> float:
        """The y coordinate of a mean quality."""
        return self.oy + _PANEL_H - _PAD - (quality - self.y_min) / (1.0 - self.y_min) * (_PANEL_H - 2 * _PAD)


def render_svg(report: EvaluationReport) -> str:
    """Small multiples, one panel per intent: mean cost (x) vs mean quality (y), target as a dashed line, Pareto
    points filled, dominated points hollow, p95 latency in the label."""
    intents = list(dict.fromkeys(c.intent for c in report.cells))
    configs = [c.name for c in report.configurations]
    colour = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(configs)}
    rows = (len(intents) + _COLS - 1) // _COLS or 1
    width, height = _COLS * (_PANEL_W + _MARGIN) + _MARGIN, rows * (_PANEL_H + _MARGIN + 20) + 90
    costs = [c.mean_cost_usd for c in report.cells if c.mean_cost_usd is not None]
    x_max = (max(costs) * 1.15) if costs else 1.0
    q_min = min([c.mean_quality for c in report.cells] + [c.quality_target or 1 for c in report.cells] + [0.7])
    y_min = max(0.0, round(q_min - 0.05, 1))
    svg = _svg_header(report, configs, colour, width, height)
    for index, intent in enumerate(intents):
        ox = _MARGIN + (index % _COLS) * (_PANEL_W + _MARGIN)
        oy = 70 + (index // _COLS) * (_PANEL_H + _MARGIN + 20)
        panel = _Panel(ox, oy, x_max, y_min)
        cells = [c for c in report.cells if c.intent == intent]
        svg += _svg_axes(panel, intent, cells)
        frontier = set(report.pareto.get(intent, []))
        for cell in cells:
            if cell.mean_cost_usd is not None:
                svg += _svg_point(panel, cell, cell.mean_cost_usd, colour, cell.config in frontier)
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def _svg_header(
    report: EvaluationReport, configs: list[str], colour: dict[str, str], width: int, height: int
) -> list[str]:
    """The opening tag, title, background, heading and legend."""
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>Offline evaluation {escape(report.run_id)}: mean quality vs mean cost per intent</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{_MARGIN}" y="22" font-size="14" font-weight="bold">Mean quality vs mean cost per request '
        f"({escape(report.dataset.version)})</text>",
    ]
    for i, name in enumerate(configs):
        legend_x = _MARGIN + i * 170
        svg.append(
            f'<circle cx="{legend_x}" cy="42" r="5" fill="{colour[name]}"/>'
            f'<text x="{legend_x + 9}" y="46">{escape(name)}</text>'
        )
    svg.append(
        f'<text x="{_MARGIN + len(configs) * 170}" y="46" fill="#555">filled = Pareto, hollow = dominated, '
        "dashed = quality target</text>"
    )
    return svg


def _svg_axes(panel: _Panel, intent: str, cells: list[CellMetrics]) -> list[str]:
    """A panel's frame, intent name, ticks, axis label and the intent's quality target (dashed)."""
    ox, oy, px, py = panel.ox, panel.oy, panel.px, panel.py
    svg = [
        f'<rect x="{ox}" y="{oy}" width="{_PANEL_W}" height="{_PANEL_H}" fill="#fafafa" stroke="#999"/>',
        f'<text x="{ox}" y="{oy - 6}" font-weight="bold">{escape(intent)}</text>',
    ]
    for tick in (panel.y_min, (panel.y_min + 1) / 2, 1.0):
        svg.append(f'<text x="{ox - 4}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for tick in (0.0, panel.x_max / 2, panel.x_max):
        svg.append(f'<text x="{px(tick):.1f}" y="{oy + _PANEL_H + 14}" text-anchor="middle">${tick:.4f}</text>')
    svg.append(
        f'<text x="{ox + _PANEL_W}" y="{oy + _PANEL_H + 28}" text-anchor="end" fill="#555">mean cost per request</text>'
    )
    target = next((c.quality_target for c in cells if c.quality_target is not None), None)
    if target is not None:
        svg.append(
            f'<line x1="{ox}" x2="{ox + _PANEL_W}" y1="{py(target):.1f}" y2="{py(target):.1f}" '
            f'stroke="#555" stroke-dasharray="4 3"/>'
        )
    return svg


def _svg_point(panel: _Panel, cell: CellMetrics, cost: float, colour: dict[str, str], on_frontier: bool) -> list[str]:
    """One configuration's point (filled on the Pareto frontier) and its label."""
    x, y = panel.px(cost), panel.py(max(cell.mean_quality, panel.y_min))
    stroke = colour.get(cell.config, "#000")
    fill = stroke if on_frontier else "white"
    anchor = "end" if x > panel.ox + _PANEL_W * 0.6 else "start"
    dx = -9 if anchor == "end" else 9
    return [
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="2"><title>{escape(cell.config)}: quality {cell.mean_quality:.3f}, pass '
        f"{cell.pass_rate:.0%}, cost ${cost:.6f}, p95 "
        f"{_num(cell.latency_p95_ms, '.0f')} ms</title></circle>",
        f'<text x="{x + dx:.1f}" y="{y - 8:.1f}" text-anchor="{anchor}">'
        f"{escape(cell.config)} · {_gate(cell)} · p95 {_num(cell.latency_p95_ms, '.0f')} ms</text>",
    ]
