"""The evaluation report: metrics per intent x configuration, intent gates, Pareto frontier, routing table, monthly
cost projection, and the per-configuration summaries stored for the stage-0 gate.

Built here from the case records; the models are in evaluation.report_models and the routing/projection in
evaluation.routing (both re-exported: `from kanaria.evaluation.report import EvaluationReport, route` works).

Conventions (docs/evaluation.md): percentiles are nearest-rank; a failed call counts as a failed case with
quality 0 and is left out of latency, token and cost statistics; costs are USD.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile
from kanaria.evaluation.configs import EvalConfiguration, is_offline
from kanaria.evaluation.dataset import Dataset
from kanaria.evaluation.grader import GraderSpec
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.report_models import (
    DEFAULT_INTENT_MIX,
    DEFAULT_LATENCY_LIMIT_MS,
    DEFAULT_REQUESTS_PER_MONTH,
    MAX_ROUTING_COMBINATIONS,
    CellMetrics,
    ConfigSummary,
    DatasetInfo,
    EvaluationReport,
    EvaluationSummary,
    GatePolicy,
    GraderInfo,
    IntentGate,
    IntentResult,
    Projection,
    RouteChoice,
    Routing,
)
from kanaria.evaluation.routing import check_mix, project, route
from kanaria.percentiles import percentile

__all__ = [
    "DEFAULT_INTENT_MIX",
    "DEFAULT_LATENCY_LIMIT_MS",
    "DEFAULT_REQUESTS_PER_MONTH",
    "MAX_ROUTING_COMBINATIONS",
    "CellMetrics",
    "ConfigSummary",
    "DatasetInfo",
    "EvaluationReport",
    "EvaluationSummary",
    "GatePolicy",
    "IntentGate",
    "IntentResult",
    "GraderInfo",
    "Projection",
    "RouteChoice",
    "Routing",
    "aggregate",
    "build_report",
    "cell_metrics",
    "check_mix",
    "config_summaries",
    "intent_result",
    "pareto_frontier",
    "project",
    "route",
    "summaries_by_hash",
]


# --- arithmetic ----------------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def cell_metrics(
    config: str, intent: str, records: Sequence[CaseRecord], gate: IntentGate | None = None
) -> CellMetrics:
    """Metrics of a group of records, with the intent gate applied when given."""
    n = len(records)
    passed = sum(1 for r in records if r.passed)
    ok = [r for r in records if r.error is None]
    hallucinations = sum(1 for r in records if r.hallucinated)
    mean_quality = sum(r.composite for r in records) / n if n else 0.0
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    costs = [r.cost_usd for r in ok]
    priced = bool(ok) and all(c is not None for c in costs)
    total_cost = sum((c for c in costs if c is not None), Decimal(0)) if priced else None
    mean_in = _mean([r.input_tokens for r in ok])
    mean_out = _mean([r.output_tokens for r in ok])
    tokens = (mean_in or 0) + (mean_out or 0)
    p95 = percentile(latencies, 95)
    pass_rate = passed / n if n else 0.0
    reasons: list[str] = []
    if gate is not None:
        if n < gate.min_cases:
            reasons.append(f"{n} case(s), fewer than the {gate.min_cases} required")
        if pass_rate < gate.min_pass_rate:
            reasons.append(
                f"pass rate {pass_rate:.0%} < required {gate.min_pass_rate:.0%} "
                f"(per-case quality target {gate.quality_target:.2f})"
            )
        if gate.max_hallucination_rate is not None and n and hallucinations / n > gate.max_hallucination_rate:
            reasons.append(
                f"{hallucinations} case(s) with forbidden or invented facts "
                f"(allowed rate {gate.max_hallucination_rate:.0%} for {gate.severity}-severity intents)"
            )
    return CellMetrics(
        config=config,
        intent=intent,
        n=n,
        passed_cases=passed,
        errors=n - len(ok),
        hallucinations=hallucinations,
        throttles=sum(r.throttles for r in records),
        mean_quality=mean_quality,
        pass_rate=pass_rate,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=p95,
        latency_p99_ms=percentile(latencies, 99),
        mean_input_tokens=mean_in,
        mean_output_tokens=mean_out,
        mean_cost_usd=float(total_cost / len(ok)) if total_cost is not None else None,
        cost_per_satisfactory_usd=float(total_cost / passed) if total_cost is not None and passed else None,
        token_efficiency=mean_quality / tokens * 1000 if tokens else None,
        latency_quality_ratio=p95 / mean_quality if p95 is not None and mean_quality > 0 else None,
        quality_target=gate.quality_target if gate else None,
        min_pass_rate=gate.min_pass_rate if gate else None,
        gate_passed=not reasons if gate else None,
        gate_reasons=tuple(reasons),
    )


def aggregate(
    records: Iterable[CaseRecord],
    policy: GatePolicy = GatePolicy(),
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> tuple[list[CellMetrics], list[CellMetrics]]:
    """(cells per configuration x intent with gates, overall per configuration), in first-seen order."""
    by_cell: dict[tuple[str, str], list[CaseRecord]] = defaultdict(list)
    by_config: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_cell[(record.config_name, record.intent)].append(record)
        by_config[record.config_name].append(record)
    cells = [cell_metrics(c, i, rs, policy.for_intent(i, profiles)) for (c, i), rs in by_cell.items()]
    overall = [cell_metrics(c, "*", rs) for c, rs in by_config.items()]
    return cells, overall


def pareto_frontier(cells: Iterable[CellMetrics]) -> dict[str, list[str]]:
    """Per intent, the configurations no other beats on all of mean quality (up), mean cost and p95 (down);
    unpriced or failed-call-only cells cannot be compared and are left out. Sorted by cost."""
    by_intent: dict[str, list[CellMetrics]] = defaultdict(list)
    for cell in cells:
        if cell.mean_cost_usd is not None and cell.latency_p95_ms is not None:
            by_intent[cell.intent].append(cell)

    def dominates(a: CellMetrics, b: CellMetrics) -> bool:
        a_cost, b_cost = a.mean_cost_usd or 0.0, b.mean_cost_usd or 0.0  # priced: filtered above
        a_p95, b_p95 = a.latency_p95_ms or 0.0, b.latency_p95_ms or 0.0
        no_worse = a.mean_quality >= b.mean_quality and a_cost <= b_cost and a_p95 <= b_p95
        better = a.mean_quality > b.mean_quality or a_cost < b_cost or a_p95 < b_p95
        return no_worse and better

    return {
        intent: [
            c.config
            for c in sorted(group, key=lambda c: (c.mean_cost_usd, c.config))
            if not any(dominates(o, c) for o in group if o is not c)
        ]
        for intent, group in by_intent.items()
    }


def config_summaries(
    configurations: Sequence[EvalConfiguration],
    intents: list[str],
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> tuple[ConfigSummary, ...]:
    """Identity of each configuration (hash, per-intent resolved hashes, models)."""
    out = []
    for c in configurations:
        models = c.model_ids(intents, profiles)
        out.append(
            ConfigSummary(
                name=c.name,
                description=c.description,
                config_hash=c.config_hash(profiles),
                intent_hashes={i: c.intent_hash(i, profiles) for i in intents},
                model_ids=models,
                offline=any(is_offline(m) for m in models),
            )
        )
    return tuple(out)


def build_report(
    *,
    run_id: str,
    created_at: str,
    dataset: Dataset,
    configurations: Sequence[EvalConfiguration],
    records: Sequence[CaseRecord],
    grader: GraderSpec | None = None,
    policy: GatePolicy = GatePolicy(),
    intent_mix: Mapping[str, float] = DEFAULT_INTENT_MIX,
    latency_limit_ms: float = DEFAULT_LATENCY_LIMIT_MS,
    monthly_budget_usd: float | None = None,
    requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> EvaluationReport:
    """Aggregate the records of a run into the report."""
    mix = check_mix(intent_mix)
    cells, overall = aggregate(records, policy, profiles)
    routing = route(
        cells,
        mix,
        latency_limit_ms=latency_limit_ms,
        monthly_budget_usd=monthly_budget_usd,
        requests_per_month=requests_per_month,
    )
    intents = dataset.intents()
    return EvaluationReport(
        run_id=run_id,
        created_at=created_at,
        dataset=DatasetInfo(
            name=dataset.name,
            version=dataset.version,
            sha256=dataset.sha256,
            uri=dataset.uri,
            cases=len(dataset.cases),
            intents=intents,
        ),
        judge=GraderInfo(model_id=grader.model_id, judge_hash=grader.judge_hash) if grader else None,
        policy=policy,
        configurations=config_summaries(configurations, intents, profiles),
        cells=tuple(cells),
        overall=tuple(overall),
        pareto=pareto_frontier(cells),
        routing=routing,
        projection=project(cells, routing, mix, requests_per_month),
    )


def intent_result(cell: CellMetrics) -> IntentResult:
    """The stored form of a gated cell."""
    return IntentResult(
        n=cell.n,
        pass_rate=cell.pass_rate,
        mean_quality=cell.mean_quality,
        quality_target=cell.quality_target or 0.0,
        min_pass_rate=cell.min_pass_rate or 0.0,
        hallucinations=cell.hallucinations,
        errors=cell.errors,
        passed=bool(cell.gate_passed),
        reasons=cell.gate_reasons,
    )


def summaries_by_hash(report: EvaluationReport, report_uri: str | None = None) -> dict[str, EvaluationSummary]:
    """One summary per config hash: each configuration's identity hash (all its intents) and, when intents resolve
    to other hashes (overrides), each resolved hash with the intents that resolved to it."""
    out: dict[str, EvaluationSummary] = {}
    for config in report.configurations:
        results = {c.intent: intent_result(c) for c in report.cells if c.config == config.name}
        groups: dict[str, list[str]] = {config.config_hash: list(results)}
        for intent, intent_hash in config.intent_hashes.items():
            if intent_hash != config.config_hash and intent in results:
                groups.setdefault(intent_hash, []).append(intent)
        for hash_, intents in groups.items():
            out[hash_] = EvaluationSummary(
                config_hash=hash_,
                config_name=config.name,
                run_id=report.run_id,
                created_at=report.created_at,
                dataset_version=report.dataset.version,
                report_uri=report_uri,
                scorer_version=report.scorer_version,
                judge_hash=report.judge.judge_hash if report.judge else None,
                price_table_version=report.price_table_version,
                offline=config.offline,
                per_intent={i: results[i] for i in intents},
            )
    return out
