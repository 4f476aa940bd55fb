"""analyze_snapshot: one experiment snapshot in, tests, guardrails, SRM, intents, efficiency and a decision out.

Kept whole (~480 lines): it is the one place that orders the checks into a decision (harm before wins, the
planned read final, per-arm stops); the checks themselves live in comparisons, guardrails, intents."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kanaria.analysis import catalogue
from kanaria.analysis.comparisons import Design, Evaluated, Job, evaluate
from kanaria.analysis.decision import (
    CostIncrease,
    Decision,
    Efficacy,
    HarmTest,
    TreatmentContext,
    VariantDecision,
    combine,
    decide_treatment,
    finalize,
)
from kanaria.analysis.efficiency import efficiency_report
from kanaria.analysis.guardrails import GuardrailResult, Levels, evaluate_guardrail, hypotheses, one_sided_p, resolve
from kanaria.analysis.intents import IntentVerdict, judge_intents
from kanaria.analysis.schema import (
    _DEFAULT_GUARDRAILS,
    BinaryAggregate,
    ExperimentSpec,
    Snapshot,
    VariantAggregate,
    parse_snapshot,
)
from kanaria.domain.analysis_result import AnalysisResult
from kanaria.errors import ValidationError
from kanaria.stats import (
    chi2_independence,
    obf_look,
    sample_size_two_means,
    sample_size_two_proportions,
    srm_check,
    thompson_weights,
)
from kanaria.stats.frequentist import finite_or_none
from kanaria.stats.ratios import relative_change_interval
from kanaria.stats.sequential import MIN_LOOK_SPACING, SequentialLook, msprt_one_sided


def analyze_snapshot(snapshot: dict[str, Any]) -> AnalysisResult:
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
    sd = math.sqrt(m.m2 / (m.n - 1))
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


def _pairs(
    scope: str, control: VariantAggregate, treatment: VariantAggregate, variant: str, only: str | None
) -> list[Job]:
    jobs = []
    for metric, c in (*control.binaries.items(), *control.means.items()):
        if only is not None and metric != only:
            continue
        t = treatment.binaries.get(metric) if isinstance(c, BinaryAggregate) else treatment.means.get(metric)
        if t is None:
            if metric in treatment.binaries or metric in treatment.means:
                where = "aggregates" if scope == "overall" else f"intents.{scope}"
                raise ValidationError(
                    "metric has a different shape than in control", field=f"{where}.{variant}.{metric}"
                )
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
        return {
            "weights": weights,
            "prob_best": {},
            "removed": reasons,
            "note": "every arm removed: all traffic to control",
        }
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
    treatments_total: int  # every non-control variant of the definition (the Bonferroni count, stable over time)

    @property
    def at_horizon(self) -> bool:
        """Whether every arm has reached the planned sample of the primary metric."""
        return self.fraction is not None and self.fraction >= 1.0

    def final(self, exp: ExperimentSpec, decisions: list[VariantDecision]) -> bool:
        """obf/fixed at the planned sample with no treatment waiting for its guardrails: this read's decision is the
        experiment's last (the scheduled analysis stores it and tests no more)."""
        return (
            exp.method in ("fixed", "obf")
            and not exp.bandit
            and self.at_horizon
            and not any(d.waiting for d in decisions)
        )

    @property
    def efficacy_tested(self) -> bool:
        """Whether this read is one of the method's efficacy looks (fixed: the read reaching the plan)."""
        return self.design.is_look


def _next_grid_look(last: float, planned_looks: int) -> float | None:
    for j in range(1, planned_looks + 1):
        if j / planned_looks > last + MIN_LOOK_SPACING:
            return j / planned_looks
    return None


def _obf_read(exp: ExperimentSpec, fraction: float | None, alpha: float) -> tuple[SequentialLook, bool, list[float]]:
    """(look, whether this read is a planned look, looks to carry to the next read).

    Efficacy is tested at the planned looks j/planned_looks only (a read is the look when its information fraction
    reaches the next one, within MIN_LOOK_SPACING), however often the experiment is read; the last look is at
    t = 1. Without a history (`looks` absent) this read is a look, earlier ones assumed at the planned grid.
    """
    k = exp.planned_looks
    if fraction is None or fraction <= 0:
        look = obf_look(1.0 / k, [], alpha, k)  # the first planned look's boundary, for the report only
        return look, False, list(exp.looks or [])
    t = min(fraction, 1.0)
    if exp.looks is None:
        look = obf_look(t, None, alpha, k)
        return look, True, list(look.fractions)
    history = list(exp.looks)
    last = history[-1] if history else 0.0
    grid = _next_grid_look(last, k)  # None after the final look: later reads only wait for guardrails
    if grid is not None and t >= grid - MIN_LOOK_SPACING:
        look = obf_look(t, history, alpha, k)
        return look, True, list(look.fractions)
    look = obf_look(last, history, alpha, k) if history else obf_look(1.0 / k, [], alpha, k)
    return look, False, history


def _plan(exp: ExperimentSpec, aggs: dict[str, VariantAggregate], treatments: list[str]) -> _Plan:
    control = aggs.get(exp.control)
    total = max(1, len(exp.weights) - 1)
    alpha = exp.alpha / total  # Bonferroni across the definition's treatments (two-sided; a win spends half)
    planned_n, planned_source = _planned_n(exp, control)
    n_primary = min(_metric_n(aggs.get(v), exp.primary_metric) for v in [exp.control, *treatments])
    fraction = n_primary / planned_n if planned_n else None
    sequential: dict[str, Any] = {}
    look, is_look = None, True
    if exp.method == "fixed":
        # one look, at the plan: the read that reaches it (a history holding 1.0 has had it)
        done = exp.looks is not None and any(t >= 1.0 - MIN_LOOK_SPACING for t in exp.looks)
        is_look = fraction is not None and fraction >= 1.0 and not done
        sequential = {"looks": list(exp.looks or []) + ([1.0] if is_look else []), "look": is_look}
    if exp.method == "obf":
        look, is_look, looks = _obf_read(exp, fraction, alpha)
        next_look = _next_grid_look(looks[-1] if looks else 0.0, exp.planned_looks)
        sequential = {
            "looks": looks,
            "boundaries": [finite_or_none(b) for b in look.boundaries],
            "boundary_z": finite_or_none(look.boundary_z),
            "nominal_alpha": look.nominal_alpha,
            "alpha_spent": look.alpha_spent,
            "planned_looks": exp.planned_looks,
            "look": is_look,
            "next_look": next_look,
        }
    sd, _ = _primary_baseline(exp, control)
    tau_per_sd = exp.mde / sd if exp.mde is not None and sd else catalogue.DEFAULT_STANDARDISED_MDE
    if exp.method == "always_valid":
        sequential = {"primary_tau": exp.mde, "tau_per_sd": tau_per_sd}
    design = Design(
        exp.method, alpha, exp.min_n_per_variant, look, tau_per_sd, exp.primary_metric, exp.mde, exp.alpha, is_look
    )
    return _Plan(design, planned_n, planned_source, fraction, sequential, total)


def _critical_intents(exp: ExperimentSpec) -> frozenset[str]:
    return frozenset(
        exp.revenue_critical_intents
        if exp.revenue_critical_intents is not None
        else catalogue.DEFAULT_REVENUE_CRITICAL_INTENTS
    )


def _intent_verdicts(
    snapshot: Snapshot, by_intent: dict[str, dict[str, Evaluated]], higher: bool, harm_level: float, tau: float
) -> dict[str, IntentVerdict]:
    exp = snapshot.experiment
    if not snapshot.intents:
        return {}
    weights = {i: (exp.intent_weights or {}).get(i, catalogue.default_intent_weight(i)) for i in snapshot.intents}
    return {
        v: judge_intents(
            rows,
            higher,
            weights,
            _critical_intents(exp),
            exp.max_intent_regression,
            exp.min_n_per_variant,
            harm_level,
            tau,
        )
        for v, rows in by_intent.items()
    }


def _experiment_decision(
    exp: ExperimentSpec, srm: dict[str, Any], decisions: list[VariantDecision]
) -> tuple[Decision, str | None, list[str], list[str], list[str]]:
    """(decision, winner, reasons, actions, stop_variants): SRM pauses, bandits re-weight, otherwise combined."""
    if exp.bandit:
        return Decision.CONTINUE, None, ["bandit: traffic re-weighted by Thompson sampling"], ["update_weights"], []
    if srm.get("mismatch") is True:
        reason = (
            f"sample-ratio mismatch (p = {srm['p_value']:.3g} < {catalogue.SRM_THRESHOLD}): results are not trustworthy"
        )
        return Decision.NO_DECISION, None, [reason], ["pause"], []
    decision, winner, reasons, stop = combine(decisions)
    actions = {Decision.ROLLBACK: ["rollback"], Decision.PROMOTE: ["promote"], Decision.REVIEW: ["review"]}
    return decision, winner, reasons, (["stop_variant"] if stop else []) + actions.get(decision, []), stop


def _efficiency(snapshot: Snapshot, active: list[str]) -> dict[str, Any]:
    exp, aggs = snapshot.experiment, snapshot.aggregates
    targets = exp.quality_targets or {}
    return {
        "overall": efficiency_report({v: aggs[v] for v in active if v in aggs}, None),
        "intents": {
            intent: efficiency_report(
                {v: a for v, a in per_variant.items() if v in active},
                targets.get(intent, catalogue.default_quality_target(intent)),
            )
            for intent, per_variant in (snapshot.intents or {}).items()
        },
    }


def _harm_count(snapshot: Snapshot, guardrails: list[Any]) -> int:
    """Harm hypotheses per treatment: the primary metric, every guardrail bound, every revenue-critical intent
    (when the snapshot is analysed by intent). Fixed by the definition, so the level does not drift over reads."""
    intents = len(_critical_intents(snapshot.experiment)) if snapshot.intents is not None else 0
    return 1 + sum(hypotheses(g) for g in guardrails) + intents


def _primary_harm(ev: Evaluated | None, higher: bool, tau: float, level: float, min_n: int) -> HarmTest:
    """One-sided always-valid test of "the treatment is worse than control" on the primary metric."""
    if ev is None or ev.treatment_value is None or ev.control_value is None:
        return HarmTest("primary metric", None, level, False, note="no data")
    worsening = (ev.control_value - ev.treatment_value) if higher else (ev.treatment_value - ev.control_value)
    p = one_sided_p(worsening, ev.control_var_mean + ev.treatment_var_mean, tau)
    enough = ev.n >= min_n
    return HarmTest(
        "primary metric",
        p,
        level,
        bool(enough and p is not None and p <= level),
        worsening,
        None if enough else f"n below min_n_per_variant ({min_n}): not acted on",
    )


def _efficacy(plan: _Plan, ev: Evaluated | None, higher: bool, tau: float, shown_at: float | None = None) -> Efficacy:
    """The method's win test of the primary metric at this read (a win shown at an earlier look is kept)."""
    design = plan.design
    if shown_at is not None:
        return Efficacy(
            True,
            True,
            None,
            design.alpha,
            "shown at an earlier look",
            f"primary metric better, shown at information fraction {shown_at:g}; waiting for the guardrails",
        )
    if design.method == "always_valid":
        level = design.alpha / 2
        if ev is None or ev.treatment_value is None or ev.control_value is None:
            return Efficacy(True, None, None, level, "msprt_one_sided")
        gain = (ev.treatment_value - ev.control_value) if higher else (ev.control_value - ev.treatment_value)
        variance = ev.control_var_mean + ev.treatment_var_mean
        p = None
        if math.isfinite(variance) and variance >= 0 and tau > 0:
            p = float(msprt_one_sided(gain, variance, tau * tau).p_value)
        significant = None if p is None or ev.n < design.min_n or math.isnan(p) else p <= level
        return Efficacy(True, significant, p, level, "msprt_one_sided")
    test = "welch_t" if ev is None or not ev.job.is_binary else "two_proportion_z"
    if design.method == "fixed":
        level = design.alpha
        if not design.is_look:
            note = (
                "fixed horizon: a win is tested only at the planned sample"
                if not plan.at_horizon
                else "fixed horizon: the planned sample's test was made at an earlier read"
            )
            return Efficacy(False, None, None, level, test, note)
    else:
        level = design.look.nominal_alpha if design.look is not None else 0.0
        if not design.is_look:
            next_look = plan.sequential.get("next_look")
            at = f" (next at information fraction {next_look:g})" if next_look else ""
            return Efficacy(False, None, None, level, test, f"obf: efficacy is tested at the planned looks only{at}")
    if ev is None:
        return Efficacy(True, None, None, level, test)
    r = ev.result
    better = r.effect is not None and (r.effect > 0 if higher else r.effect < 0)
    significant = None if r.significant is None else bool(r.significant and better)
    return Efficacy(True, significant, r.p_value, level, test + " (two-sided p, better direction)")


def _cost_increase(ev: Evaluated | None, alpha: float) -> CostIncrease | None:
    if ev is None or ev.treatment_value is None or ev.control_value is None:
        return None
    change = relative_change_interval(
        ev.treatment_value, ev.treatment_var_mean, ev.control_value, ev.control_var_mean, alpha
    )
    return CostIncrease(change.estimate, change.low, change.high)


def _analyze(snapshot: Snapshot) -> AnalysisResult:
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

    resolved = resolve(list(_DEFAULT_GUARDRAILS), list(exp.guardrails or []))
    per_treatment = _harm_count(snapshot, resolved)
    harm_alpha = exp.alpha / 2  # half of alpha for ROLLBACK, half for PROMOTE: the two together stay within alpha
    harm_level = harm_alpha / (per_treatment * plan.treatments_total)  # Bonferroni over every harm test
    # pass bounds: fixed-level at a planned look of fixed/obf (a pre-planned single test), time-uniform at any
    # other read (always_valid, and the reads after a win while the guardrails are still being proven)
    sequential_pass = exp.method == "always_valid" or not plan.efficacy_tested
    levels = Levels(exp.alpha, harm_level, plan.design.tau_per_sd, exp.min_n_per_variant, sequential_pass)
    guardrails = {
        v: [evaluate_guardrail(g, control, aggs.get(v), overall[v], levels, lower) for g in resolved]
        for v in treatments
    }
    higher = catalogue.higher_is_better(exp.primary_metric, lower)
    primary_sd, _ = _primary_baseline(exp, control)
    primary_tau = exp.mde if exp.mde is not None else catalogue.DEFAULT_STANDARDISED_MDE * (primary_sd or 1.0)
    verdicts = _intent_verdicts(snapshot, by_intent, higher, harm_level, primary_tau)
    harm: dict[str, list[HarmTest]] = {}
    efficacy: dict[str, Efficacy] = {}
    decisions = []
    for v in treatments:
        primary = overall[v].get(exp.primary_metric)
        tests = [_primary_harm(primary, higher, primary_tau, harm_level, exp.min_n_per_variant)]
        verdict = verdicts.get(v)
        if verdict is not None:
            tests += [
                HarmTest(
                    f"revenue-critical intent {intent} (regression > {exp.max_intent_regression:.0%})",
                    p,
                    harm_level,
                    intent in verdict.rollback_by,
                )
                for intent, p in verdict.harm_p_values.items()
            ]
        harm[v] = tests
        efficacy[v] = _efficacy(plan, primary, higher, primary_tau, exp.efficacy_shown.get(v))
        decisions.append(
            decide_treatment(
                v,
                TreatmentContext(
                    method=exp.method,
                    higher_is_better=higher,
                    primary_reported=exp.primary_metric in overall[v],
                    primary=primary,
                    efficacy=efficacy[v],
                    harm=tests,
                    guardrails=guardrails[v],
                    intents=verdict,
                    cost=_cost_increase(overall[v].get("cost_usd"), exp.alpha),
                    final=False,
                    review_cost_increase=exp.review_cost_increase,
                ),
            )
        )
    final = plan.final(exp, decisions)
    if final:  # nothing will be tested again: what is still CONTINUE ends as NO_DECISION
        decisions = [finalize(d) for d in decisions]
    shown = dict(exp.efficacy_shown)
    for v, e in efficacy.items():
        if e.significant and v not in shown:
            shown[v] = finite_or_none(min(plan.fraction, 1.0)) if plan.fraction is not None else None
    srm = _srm(exp, aggs, active)
    decision, winner, reasons, actions, stop = _experiment_decision(exp, srm, decisions)

    evidence: dict[str, Any] = {
        "reasons": reasons,
        "method": exp.method,
        "alpha": exp.alpha,
        "alpha_per_comparison": plan.design.alpha,
        "alpha_spent": plan.sequential.get("alpha_spent", plan.design.alpha),
        "harm_alpha": harm_alpha,
        "harm_level": harm_level,
        "harm_tests_per_treatment": per_treatment,
        "tier": exp.tier,
        "primary_metric": exp.primary_metric,
        "planned_n_per_variant": plan.planned_n,
        "planned_n_source": plan.planned_source,
        "information_fraction": finite_or_none(plan.fraction),
        "final": final,
        "sequential": plan.sequential,
        "srm": srm,
        "primary": {
            v: by_metric[exp.primary_metric].result.to_dict()
            for v, by_metric in overall.items()
            if exp.primary_metric in by_metric
        },
        "efficacy": {v: e.to_dict() for v, e in efficacy.items()},
        "efficacy_shown": shown,
        "harm": {v: [h.to_dict() for h in tests] for v, tests in harm.items()},
        "guardrails": {v: [g.to_dict() for g in results] for v, results in guardrails.items()},
        "variants": {
            d.variant: {"decision": d.decision.value, "action": d.action, "reasons": d.reasons} for d in decisions
        },
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
    result = AnalysisResult(
        experiment_id=exp.id,
        decision=decision,
        winner=winner,
        actions=actions,
        srm=srm,
        metrics=metrics,
        evidence=evidence,
        final=final and not exp.bandit,
        stop_variants=stop,
    )
    if exp.bandit:
        bandit = _bandit(snapshot, active, guardrails)
        result.weights, result.bandit = bandit["weights"], bandit
    return result
