"""The report as Markdown. The chart (quality vs cost per intent with intervals) is drawn with matplotlib by the
tooling (kanaria_tools.reports.evaluation_chart), where a person reads the report: matplotlib never enters the
Lambda asset, so the deployed evaluation stores report.json, report.md and the records, without a chart."""

from __future__ import annotations

from typing import Sequence

from kanaria.evaluation.report import CellMetrics, EvaluationReport

CHART_FILE = "chart.svg"
# A nearest-rank quantile of fewer cases than this is the largest latency: shown as "max", not as a quantile.
_QUANTILE_CASES = {0.95: 20, 0.99: 100}


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _usd(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "—"
    return f"{'-' if value < 0 else ''}${abs(value):,.{digits}f}"


def _quantile(value: float | None, q: float, n: int) -> str:
    """A latency quantile, or "max N" when too few cases to tell it from the largest value."""
    if value is not None and n < _QUANTILE_CASES[q]:
        return f"max {value:.0f}"
    return _num(value, ".0f")


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
        f"| {_gate(cell)} | {_num(cell.latency_p50_ms, '.0f')} | {_quantile(cell.latency_p95_ms, 0.95, cell.n)} "
        f"| {_quantile(cell.latency_p99_ms, 0.99, cell.n)} | {_usd(cell.mean_cost_usd)} | {_usd(cell.cost_per_satisfactory_usd)} "
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


def render_markdown(report: EvaluationReport, chart_file: str | None = None) -> str:
    """The whole report as Markdown (linking the chart file when there is one)."""
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
