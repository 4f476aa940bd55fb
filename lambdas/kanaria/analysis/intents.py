"""Per-intent results of the primary metric, the severity-weighted composite and the revenue-critical block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from kanaria.analysis.comparisons import Evaluated
from kanaria.analysis.guardrails import one_sided_p
from kanaria.stats.frequentist import finite_or_none


@dataclass(frozen=True)
class IntentVerdict:
    """One treatment across intents: composite, and which revenue-critical intents block or roll back."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    composite_improvement: float | None = None
    blocked_by: list[str] = field(default_factory=list)
    rollback_by: list[str] = field(default_factory=list)
    insufficient: list[str] = field(default_factory=list)
    harm_p_values: dict[str, float | None] = field(default_factory=dict)  # critical intents' one-sided p

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "intents": self.rows,
            "composite_improvement": finite_or_none(self.composite_improvement),
            "blocked_by": self.blocked_by,
            "rollback_by": self.rollback_by,
            "insufficient_data": self.insufficient,
        }


def is_worse(effect: float | None, higher_is_better: bool) -> bool:
    """Whether a treatment − control effect points in the bad direction."""
    return effect is not None and (effect < 0 if higher_is_better else effect > 0)


def regression_p_value(ev: Evaluated, higher_is_better: bool, max_regression: float, tau: float) -> float | None:
    """Always-valid one-sided p-value of "the intent regressed by more than max_regression (relative)":
    D = (1 − r)·C̄ − T̄ (higher is better; T̄ − (1 + r)·C̄ otherwise) with the delta-method variance."""
    t, c = ev.treatment_value, ev.control_value
    if t is None or c is None:
        return None
    factor = (1 - max_regression) if higher_is_better else (1 + max_regression)
    excess = (factor * c - t) if higher_is_better else (t - factor * c)
    return one_sided_p(excess, ev.treatment_var_mean + factor * factor * ev.control_var_mean, tau)


def judge_intents(
    evaluated: Mapping[str, Evaluated],
    higher_is_better: bool,
    weights: Mapping[str, float],
    revenue_critical: frozenset[str],
    max_regression: float,
    min_n: int,
    harm_level: float = 0.0,
    tau: float = 0.0,
) -> IntentVerdict:
    """Relative improvement per intent, weighted composite, block on a > max_regression critical regression (point
    estimate), roll back when an always-valid one-sided test shows it at `harm_level`."""
    verdict = IntentVerdict()
    weighted, total_weight = 0.0, 0.0
    for intent, ev in evaluated.items():
        relative = ev.relative_effect
        improvement = None if relative is None else (relative if higher_is_better else -relative)
        critical = intent in revenue_critical
        weight = weights.get(intent, 0.0)
        row = {
            "relative_change": finite_or_none(relative),
            "improvement": finite_or_none(improvement),
            "p_value": ev.result.p_value,
            "significant": ev.result.significant,
            "n_control": ev.job.control.n,
            "n_treatment": ev.job.treatment.n,
            "weight": weight,
            "revenue_critical": critical,
        }
        verdict.rows[intent] = row
        if improvement is not None and weight > 0:
            weighted += weight * improvement
            total_weight += weight
        if not critical:
            continue
        p = regression_p_value(ev, higher_is_better, max_regression, tau) if tau > 0 else None
        verdict.harm_p_values[intent] = p
        row["regression_p_value"] = finite_or_none(p)
        if improvement is None or ev.n < min_n:
            verdict.insufficient.append(intent)
            continue
        if -improvement > max_regression:
            verdict.blocked_by.append(intent)
        if p is not None and p <= harm_level:
            verdict.rollback_by.append(intent)
    composite = weighted / total_weight if total_weight > 0 else None
    return IntentVerdict(
        verdict.rows, composite, verdict.blocked_by, verdict.rollback_by, verdict.insufficient, verdict.harm_p_values
    )
