"""The evaluation report: metrics per intent x configuration, intent gates, Pareto frontier, routing table, monthly
cost projection, and the per-configuration summaries stored for the stage-0 gate.

Conventions (docs/evaluation.md): percentiles are nearest-rank; a failed call counts as a failed case with
quality 0 and is left out of latency, token and cost statistics; costs are USD.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from decimal import Decimal
from typing import Iterable, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kanaria.domain import pricing
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile, profile_for
from kanaria.errors import ValidationError
from kanaria.evaluation.configs import is_offline
from kanaria.evaluation.configs import EvalConfiguration
from kanaria.evaluation.dataset import Dataset
from kanaria.evaluation.judge import JudgeSpec
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.scoring import SCORER_VERSION, WEIGHTS
from kanaria.quantiles import percentile

# Traffic mix mapped from the design notes' intent distribution onto Kanaria's intents (sums to 1).
DEFAULT_INTENT_MIX: dict[str, float] = {
    "order_status": 0.15, "shipping_info": 0.15, "product_search": 0.20, "manga_qa": 0.17,
    "recommendation": 0.25, "chitchat": 0.08,
}
DEFAULT_REQUESTS_PER_MONTH = 30_000_000  # 1M messages a day
DEFAULT_LATENCY_LIMIT_MS = 3000.0  # the chatbot's 3-second SLA, on p95
MAX_ROUTING_COMBINATIONS = 200_000


class GatePolicy(BaseModel):
    """What an intent x configuration needs to pass, beyond the per-case quality target of the intent's profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pass_rate: dict[str, float] = Field(default_factory=lambda: {"high": 0.90, "medium": 0.80, "low": 0.80},
                                            description="by profile severity")
    max_hallucination_rate: dict[str, float] = Field(default_factory=lambda: {"high": 0.0},
                                                     description="by severity; absent = no limit beyond pass rate")
    min_cases: int = Field(default=5, ge=1)

    def for_intent(self, intent: str, profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> "IntentGate":
        """The thresholds that apply to one intent."""
        profile = profile_for(intent, profiles)
        return IntentGate(quality_target=profile.quality_target, severity=profile.severity,
                          min_pass_rate=self.min_pass_rate.get(profile.severity, 0.80),
                          max_hallucination_rate=self.max_hallucination_rate.get(profile.severity),
                          min_cases=self.min_cases)


class IntentGate(BaseModel):
    """Thresholds of one intent."""

    model_config = ConfigDict(frozen=True)

    quality_target: float
    severity: str
    min_pass_rate: float
    max_hallucination_rate: float | None
    min_cases: int


class CellMetrics(BaseModel):
    """One configuration on one intent (or on every intent when intent is "*")."""

    model_config = ConfigDict(frozen=True)

    config: str
    intent: str
    n: int
    passed_cases: int
    errors: int
    hallucinations: int
    throttles: int
    mean_quality: float
    pass_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None
    cost_per_satisfactory_usd: float | None
    token_efficiency: float | None = Field(description="mean quality per 1K tokens (input + output)")
    latency_quality_ratio: float | None = Field(description="p95 latency ms / mean quality (lower is better)")
    quality_target: float | None = None
    min_pass_rate: float | None = None
    gate_passed: bool | None = None
    gate_reasons: tuple[str, ...] = ()


class ConfigSummary(BaseModel):
    """Identity of one evaluated configuration."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    config_hash: str
    intent_hashes: dict[str, str]
    model_ids: list[str]
    offline: bool


class RouteChoice(BaseModel):
    """The configuration recommended for one intent (None when nothing qualifies, with the reasons)."""

    model_config = ConfigDict(frozen=True)

    intent: str
    config: str | None
    share: float
    mean_quality: float | None = None
    mean_cost_usd: float | None = None
    latency_p95_ms: float | None = None
    reasons: tuple[str, ...] = ()


class Routing(BaseModel):
    """Intent -> configuration under a latency limit (p95) and an optional monthly budget."""

    model_config = ConfigDict(frozen=True)

    latency_limit_ms: float
    monthly_budget_usd: float | None
    objective: Literal["min_cost", "max_quality_within_budget"]
    choices: tuple[RouteChoice, ...]
    monthly_cost_usd: float | None
    within_budget: bool | None
    notes: tuple[str, ...] = ()


class Projection(BaseModel):
    """Monthly cost of the intent mix on each configuration alone and on the recommended routing."""

    model_config = ConfigDict(frozen=True)

    requests_per_month: int
    intent_mix: dict[str, float]
    per_configuration_usd: dict[str, float | None]
    routed_usd: float | None
    covered_share: float = Field(description="share of the mix the projection covers (intents evaluated)")
    savings_vs_usd: dict[str, float | None]


class DatasetInfo(BaseModel):
    """Which dataset the report ran on."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    sha256: str
    uri: str | None
    cases: int
    intents: list[str]


class JudgeInfo(BaseModel):
    """Which judge scored (the hash pins model, prompt, rubric and settings)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    judge_hash: str


class EvaluationReport(BaseModel):
    """Everything one evaluation run produced except the per-case records (stored next to it)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    created_at: str
    dataset: DatasetInfo
    scorer_version: str = SCORER_VERSION
    weights: dict[str, float] = Field(default_factory=lambda: dict(WEIGHTS))
    judge: JudgeInfo | None = None
    price_table_version: str = pricing.PRICE_TABLE_VERSION
    policy: GatePolicy = Field(default_factory=GatePolicy)
    configurations: tuple[ConfigSummary, ...]
    cells: tuple[CellMetrics, ...]
    overall: tuple[CellMetrics, ...]
    pareto: dict[str, list[str]]
    routing: Routing
    projection: Projection

    def cell(self, config: str, intent: str) -> CellMetrics | None:
        """The metrics of one configuration on one intent."""
        return next((c for c in self.cells if c.config == config and c.intent == intent), None)


class IntentResult(BaseModel):
    """Stored per intent for the gate."""

    model_config = ConfigDict(frozen=True)

    n: int
    pass_rate: float
    mean_quality: float
    quality_target: float
    min_pass_rate: float
    hallucinations: int
    errors: int
    passed: bool
    reasons: tuple[str, ...] = ()


class EvaluationSummary(BaseModel):
    """What the evaluations table keeps per config hash (EVAL#<ts>#<dataset version> and LATEST)."""

    model_config = ConfigDict(frozen=True)

    config_hash: str
    config_name: str
    run_id: str
    created_at: str
    dataset_version: str
    report_uri: str | None = None
    scorer_version: str
    judge_hash: str | None = None
    price_table_version: str
    offline: bool
    per_intent: dict[str, IntentResult]

    @property
    def passed(self) -> bool:
        """Every evaluated intent passed."""
        return bool(self.per_intent) and all(r.passed for r in self.per_intent.values())


# --- arithmetic ----------------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def cell_metrics(config: str, intent: str, records: Sequence[CaseRecord], gate: IntentGate | None = None) -> CellMetrics:
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
            reasons.append(f"pass rate {pass_rate:.0%} < required {gate.min_pass_rate:.0%} "
                           f"(per-case quality target {gate.quality_target:.2f})")
        if gate.max_hallucination_rate is not None and n and hallucinations / n > gate.max_hallucination_rate:
            reasons.append(f"{hallucinations} case(s) with forbidden or invented facts "
                           f"(allowed rate {gate.max_hallucination_rate:.0%} for {gate.severity}-severity intents)")
    return CellMetrics(
        config=config, intent=intent, n=n, passed_cases=passed, errors=n - len(ok), hallucinations=hallucinations,
        throttles=sum(r.throttles for r in records), mean_quality=mean_quality, pass_rate=pass_rate,
        latency_p50_ms=percentile(latencies, 50), latency_p95_ms=p95, latency_p99_ms=percentile(latencies, 99),
        mean_input_tokens=mean_in, mean_output_tokens=mean_out,
        mean_cost_usd=float(total_cost / len(ok)) if total_cost is not None else None,
        cost_per_satisfactory_usd=float(total_cost / passed) if total_cost is not None and passed else None,
        token_efficiency=mean_quality / tokens * 1000 if tokens else None,
        latency_quality_ratio=p95 / mean_quality if p95 is not None and mean_quality > 0 else None,
        quality_target=gate.quality_target if gate else None, min_pass_rate=gate.min_pass_rate if gate else None,
        gate_passed=not reasons if gate else None, gate_reasons=tuple(reasons),
    )



def aggregate(records: Iterable[CaseRecord], policy: GatePolicy = GatePolicy(),
              profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> tuple[list[CellMetrics], list[CellMetrics]]:
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
        no_worse = (a.mean_quality >= b.mean_quality and a.mean_cost_usd <= b.mean_cost_usd  # type: ignore[operator]
                    and a.latency_p95_ms <= b.latency_p95_ms)  # type: ignore[operator]
        better = (a.mean_quality > b.mean_quality or a.mean_cost_usd < b.mean_cost_usd  # type: ignore[operator]
                  or a.latency_p95_ms < b.latency_p95_ms)  # type: ignore[operator]
        return no_worse and better

    return {
        intent: [c.config for c in sorted(group, key=lambda c: (c.mean_cost_usd, c.config))
                 if not any(dominates(o, c) for o in group if o is not c)]
        for intent, group in by_intent.items()
    }


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """An intent mix: non-negative shares summing to 1 (within 1e-6)."""
    if not mix:
        raise ValidationError("the intent mix is empty", field="intent_mix")
    bad = [i for i, s in mix.items() if not isinstance(s, (int, float)) or s < 0 or math.isnan(s)]
    if bad:
        raise ValidationError(f"shares must be non-negative numbers: {', '.join(bad)}", field="intent_mix")
    total = sum(mix.values())
    if abs(total - 1.0) > 1e-6:
        raise ValidationError(f"shares must sum to 1, got {total:.6f}", field="intent_mix")
    return {i: float(s) for i, s in mix.items()}


def _ineligibility(cell: CellMetrics, latency_limit_ms: float) -> list[str]:
    reasons = [f"{cell.config}: {r}" for r in cell.gate_reasons]
    if cell.latency_p95_ms is None:
        reasons.append(f"{cell.config}: no successful call")
    elif cell.latency_p95_ms > latency_limit_ms:
        reasons.append(f"{cell.config}: p95 {cell.latency_p95_ms:.0f} ms > limit {latency_limit_ms:.0f} ms")
    if cell.mean_cost_usd is None:
        reasons.append(f"{cell.config}: no price for its model in {pricing.PRICE_TABLE_VERSION}")
    return reasons


def route(cells: Sequence[CellMetrics], mix: Mapping[str, float], *, latency_limit_ms: float = DEFAULT_LATENCY_LIMIT_MS,
          monthly_budget_usd: float | None = None, requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH) -> Routing:
    """Recommended routing. Eligible per intent: gate passed, p95 <= limit, priced. Without a budget: the cheapest
    eligible configuration per intent (ties: higher quality). With a budget: the combination with the highest
    traffic-weighted mean quality whose monthly cost fits (ties: cheaper); if even the cheapest does not fit,
    the cheapest, flagged over budget."""
    intents = list(dict.fromkeys(c.intent for c in cells))
    eligible: dict[str, list[CellMetrics]] = {}
    unrouted: dict[str, list[str]] = {}
    for intent in intents:
        group = [c for c in cells if c.intent == intent]
        ok = [c for c in group if not _ineligibility(c, latency_limit_ms)]
        if ok:
            eligible[intent] = sorted(ok, key=lambda c: (c.mean_cost_usd, -c.mean_quality, c.config))
        else:
            unrouted[intent] = [r for c in group for r in _ineligibility(c, latency_limit_ms)]

    def monthly(choice: Mapping[str, CellMetrics]) -> float:
        return requests_per_month * sum(mix.get(i, 0.0) * c.mean_cost_usd for i, c in choice.items())  # type: ignore[operator,misc]

    cheapest = {intent: group[0] for intent, group in eligible.items()}
    chosen, objective, notes = cheapest, "min_cost", []
    within: bool | None = None
    if monthly_budget_usd is not None:
        objective = "max_quality_within_budget"
        combinations = math.prod(len(g) for g in eligible.values()) if eligible else 0
        if monthly(cheapest) > monthly_budget_usd:
            within = False
            notes.append(f"even the cheapest passing routing costs {monthly(cheapest):,.2f} USD/month, over the "
                         f"budget of {monthly_budget_usd:,.2f}")
        elif combinations > MAX_ROUTING_COMBINATIONS:
            within = True
            notes.append(f"{combinations} combinations: kept the cheapest routing instead of searching")
        else:
            within = True
            order = list(eligible)
            best_key: tuple[float, float] | None = None
            for combo in itertools.product(*(eligible[i] for i in order)):
                choice = dict(zip(order, combo))
                cost = monthly(choice)
                if cost > monthly_budget_usd + 1e-9:
                    continue
                key = (sum(mix.get(i, 0.0) * c.mean_quality for i, c in choice.items()), -cost)
                if best_key is None or key > best_key:
                    best_key, chosen = key, choice
    missing = sorted(i for i, s in mix.items() if s > 0 and i not in intents)
    if missing:
        notes.append(f"not evaluated, left out of the projection: {', '.join(missing)}")
    choices = []
    for intent in intents:
        share = mix.get(intent, 0.0)
        if intent in chosen:
            c = chosen[intent]
            choices.append(RouteChoice(intent=intent, config=c.config, share=share, mean_quality=c.mean_quality,
                                       mean_cost_usd=c.mean_cost_usd, latency_p95_ms=c.latency_p95_ms))
        else:
            choices.append(RouteChoice(intent=intent, config=None, share=share, reasons=tuple(unrouted[intent])))
    if unrouted:
        notes.append(f"no configuration qualifies for: {', '.join(unrouted)}")
    return Routing(latency_limit_ms=latency_limit_ms, monthly_budget_usd=monthly_budget_usd, objective=objective,
                   choices=tuple(choices), monthly_cost_usd=monthly(chosen) if chosen else None,
                   within_budget=within, notes=tuple(notes))


def project(cells: Sequence[CellMetrics], routing: Routing, mix: Mapping[str, float],
            requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH) -> Projection:
    """Monthly USD of the mix's evaluated intents on each configuration alone (None when the configuration lacks a
    priced result for one of them) and on the recommended routing (None when a mixed intent is unrouted)."""
    evaluated = {c.intent for c in cells}
    covered = sum(s for i, s in mix.items() if i in evaluated)
    per_config: dict[str, float | None] = {}
    for config in dict.fromkeys(c.config for c in cells):
        total: float | None = 0.0
        for intent, share in mix.items():
            if intent not in evaluated or share == 0:
                continue
            cell = next((c for c in cells if c.config == config and c.intent == intent), None)
            if cell is None or cell.mean_cost_usd is None:
                total = None
                break
            total += share * cell.mean_cost_usd  # type: ignore[operator]
        per_config[config] = None if total is None else requests_per_month * total
    routed_complete = all(ch.config is not None for ch in routing.choices if mix.get(ch.intent, 0) > 0)
    routed = routing.monthly_cost_usd if routed_complete else None
    savings = {name: (value - routed if value is not None and routed is not None else None)
               for name, value in per_config.items()}
    return Projection(requests_per_month=requests_per_month, intent_mix=dict(mix), per_configuration_usd=per_config,
                      routed_usd=routed, covered_share=covered, savings_vs_usd=savings)


def config_summaries(configurations: Sequence[EvalConfiguration], intents: list[str],
                     profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> tuple[ConfigSummary, ...]:
    """Identity of each configuration (hash, per-intent resolved hashes, models)."""
    out = []
    for c in configurations:
        models = c.model_ids(intents, profiles)
        out.append(ConfigSummary(name=c.name, description=c.description, config_hash=c.config_hash(profiles),
                                 intent_hashes={i: c.intent_hash(i, profiles) for i in intents}, model_ids=models,
                                 offline=any(is_offline(m) for m in models)))
    return tuple(out)


def build_report(
    *,
    run_id: str,
    created_at: str,
    dataset: Dataset,
    configurations: Sequence[EvalConfiguration],
    records: Sequence[CaseRecord],
    judge: JudgeSpec | None = None,
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
    routing = route(cells, mix, latency_limit_ms=latency_limit_ms, monthly_budget_usd=monthly_budget_usd,
                    requests_per_month=requests_per_month)
    intents = dataset.intents()
    return EvaluationReport(
        run_id=run_id, created_at=created_at,
        dataset=DatasetInfo(name=dataset.name, version=dataset.version, sha256=dataset.sha256, uri=dataset.uri,
                            cases=len(dataset.cases), intents=intents),
        judge=JudgeInfo(model_id=judge.model_id, judge_hash=judge.judge_hash) if judge else None,
        policy=policy, configurations=config_summaries(configurations, intents, profiles),
        cells=tuple(cells), overall=tuple(overall), pareto=pareto_frontier(cells), routing=routing,
        projection=project(cells, routing, mix, requests_per_month),
    )


def intent_result(cell: CellMetrics) -> IntentResult:
    """The stored form of a gated cell."""
    return IntentResult(n=cell.n, pass_rate=cell.pass_rate, mean_quality=cell.mean_quality,
                        quality_target=cell.quality_target or 0.0, min_pass_rate=cell.min_pass_rate or 0.0,
                        hallucinations=cell.hallucinations, errors=cell.errors, passed=bool(cell.gate_passed),
                        reasons=cell.gate_reasons)


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
                config_hash=hash_, config_name=config.name, run_id=report.run_id, created_at=report.created_at,
                dataset_version=report.dataset.version, report_uri=report_uri, scorer_version=report.scorer_version,
                judge_hash=report.judge.judge_hash if report.judge else None,
                price_table_version=report.price_table_version, offline=config.offline,
                per_intent={i: results[i] for i in intents},
            )
    return out

