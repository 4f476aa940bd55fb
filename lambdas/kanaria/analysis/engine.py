"""analyze_snapshot: one experiment snapshot in, tests, guardrails, SRM, intents, efficiency and a decision out."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kanaria.analysis import catalogue
from kanaria.analysis.comparisons import Design, Evaluated, Job, evaluate
from kanaria.analysis.decision import Decision, TreatmentContext, VariantDecision, combine, decide_treatment
from kanaria.analysis.efficiency import efficiency_report
from kanaria.analysis.guardrails import GuardrailResult, evaluate_guardrail
from kanaria.analysis.intents import IntentVerdict, judge_intents
from kanaria.analysis.schema import BinaryAggregate, ExperimentSpec, Snapshot, VariantAggregate, parse_snapshot
from kanaria.errors import ValidationError
from kanaria.stats import (
    chi2_independence,
    obf_look,
    sample_size_two_means,
    sample_size_two_proportions,
    srm_check,
    thompson_weights,
)
from kanaria.stats.frequentist import finite_or_none, mean_and_variance


def analyze_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Analyse one experiment snapshot (pure; raises kanaria ValidationError on bad input)."""
    return _analyze(parse_snapshot(snapshot))


def _primary_baseline(exp: ExperimentSpec, control: VariantAggregate | None) -> tuple[float | None, bool]:
    """(control SD of the primary metric, whether it is binary); SD None when unknown."""
    if control is None:
        return None, exp.primary_metric in catalogue.KNOWN_BINARY_METRICS
    if exp.primary_metric in control.binaries:
        b = control.binaries[exp.primary_metric]
        return (math.sqrt(b.successes / b.n * (1 - b.successes / b.n)) if b.n else None), True
    m = control.means.get(exp.primary_metric)
    if m is None or m.n < 2:
        return None, False
    sd = math.sqrt(float(mean_and_variance(m.n, m.sum, m.sum_sq)[1]))
    return (sd if sd > 0 else None), False


def _planned_n(exp: ExperimentSpec, control: VariantAggregate | None) -> tuple[int | None, str]:
    """planned_n_per_variant, or the sample-size formula at the control's observed baseline."""
    if exp.planned_n_per_variant is not None:
        return exp.planned_n_per_variant, "experiment"
    assert exp.mde is not None  # schema: one of the two is required
    sd, binary = _primary_baseline(exp, control)
    if sd is None or control is None:
        return None, "unknown until the control has data"
    try:
        if binary:
            b = control.binaries[exp.primary_metric]
            rate = b.successes / b.n
            mde = exp.mde if rate + exp.mde < 1 else -exp.mde
            return sample_size_two_proportions(rate, mde, exp.alpha, exp.power), "sample-size formula at control rate"
        return sample_size_two_means(sd, exp.mde, exp.alpha, exp.power), "sample-size formula at control SD"
    except ValueError:
        return None, "sample-size formula not applicable at the control baseline"


def _metric_n(agg: VariantAggregate | None, metric: str) -> int:
    if agg is None:
        return 0
    stats = agg.binaries.get(metric) or agg.means.get(metric)
    return stats.n if stats is not None else 0


def _jobs(snapshot: Snapshot, treatments: list[str]) -> list[Job]:
    exp, aggs = snapshot.experiment, snapshot.aggregates
    control = aggs.get(exp.control)
    jobs: list[Job] = []
    if control is not None:
        for variant in treatments:
            treatment = aggs.get(variant)
            if treatment is None:
                continue
            jobs.extend(_pairs("overall", control, treatment, variant, None))
    for intent, per_variant in (snapshot.intents or {}).items():
        control = per_variant.get(exp.control)
        for variant in treatments:
            treatment = per_variant.get(variant)
            if control is not None and treatment is not None:
                jobs.extend(_pairs(intent, control, treatment, variant, exp.primary_metric))
    return jobs


def _pairs(scope: str, control: VariantAggregate, treatment: VariantAggregate, variant: str, only: str | None) -> list[Job]:
    jobs = []
    for metric, c in (*control.binaries.items(), *control.means.items()):
        if only is not None and metric != only:
            continue
        t = treatment.binaries.get(metric) if isinstance(c, BinaryAggregate) else treatment.means.get(metric)
        if t is None:
            if metric in treatment.binaries or metric in treatment.means:
                where = "aggregates" if scope == "overall" else f"intents.{scope}"
                raise ValidationError("metric has a different shape than in control", field=f"{where}.{variant}.{metric}")
            continue
        jobs.append(Job(scope, metric, variant, c, t))
    return jobs


def _srm(exp: ExperimentSpec, aggs: dict[str, VariantAggregate], active: list[str]) -> dict[str, Any]:
    if exp.bandit:
        return {"p_value": None, "mismatch": None, "skipped": "bandit weights change over time"}
    total_weight = math.fsum(exp.weights[v] for v in active)
    if total_weight <= 0:
        return {"p_value": None, "mismatch": None, "skipped": "no active variant has weight"}
    weights = {v: exp.weights[v] / total_weight for v in active}
    units = {v: aggs[v].units if v in aggs else 0 for v in active}
    body = srm_check(units, weights, catalogue.SRM_THRESHOLD).to_dict()
    if exp.stopped_variants:
        body["excluded_variants"] = sorted(exp.stopped_variants)  # their units stop growing once stopped
    return body


def _bandit(snapshot: Snapshot, active: list[str], guardrails: dict[str, list[GuardrailResult]]) -> dict[str, Any]:
    exp, aggs = snapshot.experiment, snapshot.aggregates
    arms, removed, reasons = {}, set(exp.stopped_variants), {}
    for variant in exp.weights:
        agg = aggs.get(variant)
        reward = agg.binaries.get(exp.primary_metric) if agg else None
        arms[variant] = (reward.successes, reward.n) if reward else (0, 0)
        quality = agg.means.get("quality_score") if agg else None
        if quality is not None and quality.n >= exp.min_n_per_variant and quality.sum / quality.n < exp.quality_floor:
            removed.add(variant)
            reasons[variant] = f"mean quality {quality.sum / quality.n:.3f} below the floor {exp.quality_floor}"
        failed = [g.metric for g in guardrails.get(variant, []) if g.status == "fail"]
        if failed:
            removed.add(variant)
            reasons[variant] = f"guardrail failed: {', '.join(failed)}"
    for variant in exp.stopped_variants:
        reasons.setdefault(variant, f"stopped: {exp.stopped_variants[variant]}")
    if removed >= set(exp.weights):
        weights = {v: 1.0 if v == exp.control else 0.0 for v in exp.weights}
        return {"weights": weights, "prob_best": {}, "removed": reasons, "note": "every arm removed: all traffic to control"}
    seed = exp.seed
    if seed is None:  # reproducible for the same data, different as data accrue
        units = sum(a.units for a in aggs.values())
        seed = int.from_bytes(hashlib.sha256(f"{exp.id}:{units}".encode()).digest()[:8], "big")
    result = thompson_weights(arms, np.random.default_rng(seed), min_share=exp.bandit_min_share, removed=removed)
    return {"weights": result.weights, "prob_best": result.prob_best, "removed": reasons, "seed": seed}


def _omnibus(snapshot: Snapshot, active: list[str]) -> dict[str, Any]:
    """Chi-squared test of independence across all active variants for each binary metric (3+ variants)."""
    if len(active) < 3:
        return {}
    out = {}
    for metric in snapshot.aggregates.get(snapshot.experiment.control, VariantAggregate(units=0)).binaries:
        rows = [snapshot.aggregates[v].binaries.get(metric) if v in snapshot.aggregates else None for v in active]
        if any(r is None or r.n == 0 for r in rows):
            continue
        table = [[r.successes, r.n - r.successes] for r in rows]  # type: ignore[union-attr]
        try:
            chi = chi2_independence(table)
        except ValueError:
            continue
        out[metric] = {"test": "chi2_independence", "statistic": chi.statistic, "df": chi.df, "p_value": chi.p_value}
    return out


@dataclass(frozen=True)
class _Plan:
    """How far the experiment is and how its comparisons are read."""

    design: Design
    planned_n: int | None
    planned_source: str
    fraction: float | None
    sequential: dict[str, Any]

    @property
    def at_horizon(self) -> bool:
        """Whether every arm has reached the planned sample of the primary metric."""
        return self.fraction is not None and self.fraction >= 1.0


def _plan(exp: ExperimentSpec, aggs: dict[str, VariantAggregate], treatments: list[str]) -> _Plan:
    control = aggs.get(exp.control)
    alpha = exp.alpha / max(1, len(treatments))  # Bonferroni across treatments
    planned_n, planned_source = _planned_n(exp, control)
    n_primary = min(_metric_n(aggs.get(v), exp.primary_metric) for v in [exp.control, *treatments])
    fraction = n_primary / planned_n if planned_n else None
    sequential: dict[str, Any] = {}
    look = None
    if exp.method == "obf":
        # before any data (or without a plan) read at the first planned look's boundary: the most conservative
        look = obf_look(fraction or 1.0 / exp.planned_looks, exp.looks, alpha, exp.planned_looks)
        sequential = {"looks": list(look.fractions), "boundaries": [finite_or_none(b) for b in look.boundaries],
                      "boundary_z": finite_or_none(look.boundary_z), "nominal_alpha": look.nominal_alpha,
                      "alpha_spent": look.alpha_spent}
    sd, _ = _primary_baseline(exp, control)
    tau_per_sd = exp.mde / sd if exp.mde is not None and sd else catalogue.DEFAULT_STANDARDISED_MDE
    if exp.method == "always_valid":
        sequential = {"primary_tau": exp.mde, "tau_per_sd": tau_per_sd}
    design = Design(exp.method, alpha, exp.min_n_per_variant, look, tau_per_sd, exp.primary_metric, exp.mde, exp.alpha)
    return _Plan(design, planned_n, planned_source, fraction, sequential)


def _intent_verdicts(snapshot: Snapshot, by_intent: dict[str, dict[str, Evaluated]], higher: bool) -> dict[str, IntentVerdict]:
    exp = snapshot.experiment
    if not snapshot.intents:
        return {}
    weights = {i: (exp.intent_weights or {}).get(i, catalogue.default_intent_weight(i)) for i in snapshot.intents}
    critical = frozenset(exp.revenue_critical_intents if exp.revenue_critical_intents is not None
                         else catalogue.DEFAULT_REVENUE_CRITICAL_INTENTS)
    return {v: judge_intents(rows, higher, weights, critical, exp.max_intent_regression, exp.min_n_per_variant)
            for v, rows in by_intent.items()}


def _experiment_decision(exp: ExperimentSpec, srm: dict[str, Any], decisions: list[VariantDecision]
                         ) -> tuple[Decision, str | None, list[str], list[str]]:
    """(decision, winner, reasons, actions): SRM pauses, bandits re-weight, otherwise the combined decision."""
    if exp.bandit:
        return Decision.CONTINUE, None, ["bandit: traffic re-weighted by Thompson sampling"], ["update_weights"]
    if srm.get("mismatch") is True:
        reason = f"sample-ratio mismatch (p = {srm['p_value']:.3g} < {catalogue.SRM_THRESHOLD}): results are not trustworthy"
        return Decision.NO_DECISION, None, [reason], ["pause"]
    decision, winner, reasons = combine(decisions)
    actions = {Decision.ROLLBACK: ["rollback"], Decision.PROMOTE: ["promote"], Decision.REVIEW: ["review"]}
    return decision, winner, reasons, actions.get(decision, [])


def _efficiency(snapshot: Snapshot, active: list[str]) -> dict[str, Any]:
    exp, aggs = snapshot.experiment, snapshot.aggregates
    targets = exp.quality_targets or {}
    return {
        "overall": efficiency_report({v: aggs[v] for v in active if v in aggs}, None),
        "intents": {
            intent: efficiency_report({v: a for v, a in per_variant.items() if v in active},
                                      targets.get(intent, catalogue.default_quality_target(intent)))
            for intent, per_variant in (snapshot.intents or {}).items()
        },
    }


def _analyze(snapshot: Snapshot) -> dict[str, Any]:
    exp, aggs = snapshot.experiment, snapshot.aggregates
    lower = frozenset(exp.lower_is_better)
    active = [v for v in exp.weights if v not in exp.stopped_variants]
    treatments = [v for v in active if v != exp.control]
    control = aggs.get(exp.control)
    plan = _plan(exp, aggs, treatments)

    evaluated = evaluate(_jobs(snapshot, treatments), plan.design)
    overall: dict[str, dict[str, Evaluated]] = {v: {} for v in treatments}
    by_intent: dict[str, dict[str, Evaluated]] = {v: {} for v in treatments}
    for ev in evaluated:
        if ev.job.scope == "overall":
            overall[ev.job.variant][ev.job.metric] = ev
        else:  # intent jobs carry only the primary metric
            by_intent[ev.job.variant][ev.job.scope] = ev
    metrics: dict[str, dict[str, Any]] = {}
    for variant, by_metric in overall.items():
        for metric, ev in by_metric.items():
            metrics.setdefault(metric, {})[variant] = ev.result.to_dict()

    guardrails = {v: [evaluate_guardrail(g, control, aggs.get(v), overall[v], lower) for g in snapshot.guardrails]
                  for v in treatments}
    higher = catalogue.higher_is_better(exp.primary_metric, lower)
    verdicts = _intent_verdicts(snapshot, by_intent, higher)
    decisions = [
        decide_treatment(v, TreatmentContext(
            method=exp.method,
            higher_is_better=higher,
            primary_reported=exp.primary_metric in overall[v],
            primary=overall[v].get(exp.primary_metric),
            guardrails=guardrails[v],
            intents=verdicts.get(v),
            cost_increase=overall[v]["cost_usd"].relative_effect if "cost_usd" in overall[v] else None,
            at_horizon=plan.at_horizon,
            review_cost_increase=exp.review_cost_increase,
        ))
        for v in treatments
    ]
    srm = _srm(exp, aggs, active)
    decision, winner, reasons, actions = _experiment_decision(exp, srm, decisions)

    evidence: dict[str, Any] = {
        "reasons": reasons,
        "method": exp.method,
        "alpha": exp.alpha,
        "alpha_per_comparison": plan.design.alpha,
        "alpha_spent": plan.sequential.get("alpha_spent", plan.design.alpha),
        "tier": exp.tier,
        "primary_metric": exp.primary_metric,
        "planned_n_per_variant": plan.planned_n,
        "planned_n_source": plan.planned_source,
        "information_fraction": finite_or_none(plan.fraction),
        "sequential": plan.sequential,
        "srm": srm,
        "primary": {v: by_metric[exp.primary_metric].result.to_dict()
                    for v, by_metric in overall.items() if exp.primary_metric in by_metric},
        "guardrails": {v: [g.to_dict() for g in results] for v, results in guardrails.items()},
        "variants": {d.variant: {"decision": d.decision.value, "reasons": d.reasons} for d in decisions},
        "efficiency": _efficiency(snapshot, active),
    }
    if verdicts:
        evidence["intents"] = {v: verdict.to_dict() for v, verdict in verdicts.items()}
    omnibus = _omnibus(snapshot, active)
    if omnibus:
        evidence["omnibus"] = omnibus
    if exp.config_hashes is not None:
        evidence["config_hashes"] = exp.config_hashes
    if exp.stopped_variants:
        evidence["stopped_variants"] = dict(exp.stopped_variants)
    result: dict[str, Any] = {
        "experiment_id": exp.id,
        "decision": decision.value,
        "winner": winner,
        "actions": actions,
        "srm": srm,
        "metrics": metrics,
        "evidence": evidence,
    }
    if exp.bandit:
        bandit = _bandit(snapshot, active, guardrails)
        result.update(weights=bandit["weights"], bandit=bandit)
    return result
