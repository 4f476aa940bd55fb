"""Decision rules for one treatment and for the experiment (harm first, then evidence; missing data never passes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kanaria.analysis.comparisons import Evaluated
from kanaria.analysis.guardrails import GuardrailResult, all_pass
from kanaria.analysis.intents import IntentVerdict, is_worse


class Decision(str, Enum):
    """What the platform should do with the experiment."""

    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"
    REVIEW = "REVIEW"
    CONTINUE = "CONTINUE"
    NO_DECISION = "NO_DECISION"


@dataclass(frozen=True)
class TreatmentContext:
    """Everything one treatment's decision rests on."""

    method: str
    higher_is_better: bool
    primary_reported: bool
    primary: Evaluated | None
    guardrails: list[GuardrailResult]
    intents: IntentVerdict | None
    cost_increase: float | None
    at_horizon: bool
    review_cost_increase: float


@dataclass(frozen=True)
class VariantDecision:
    """A treatment's decision, why, and its primary improvement (for choosing a winner)."""

    variant: str
    decision: Decision
    reasons: list[str] = field(default_factory=list)
    improvement: float | None = None


def _improvement(ctx: TreatmentContext) -> float | None:
    effect = ctx.primary.result.effect if ctx.primary else None
    return None if effect is None else (effect if ctx.higher_is_better else -effect)


def decide_treatment(variant: str, ctx: TreatmentContext) -> VariantDecision:
    """ROLLBACK on significant harm; PROMOTE/REVIEW only on a significant win with every guardrail passing."""
    improvement = _improvement(ctx)

    def verdict(decision: Decision, *reasons: str) -> VariantDecision:
        return VariantDecision(variant, decision, list(reasons), improvement)

    if not ctx.primary_reported or ctx.primary is None:
        return verdict(Decision.NO_DECISION, "primary metric not reported for control and treatment")
    failed = [g.metric for g in ctx.guardrails if g.status == "fail"]
    if failed:
        return verdict(Decision.ROLLBACK, f"guardrail failed: {', '.join(failed)}")
    result = ctx.primary.result
    if ctx.primary.n == 0:
        return verdict(Decision.CONTINUE, "no observations of the primary metric yet")
    if result.significant and is_worse(result.effect, ctx.higher_is_better):
        return verdict(Decision.ROLLBACK, "primary metric significantly worse")
    if ctx.intents and ctx.intents.rollback_by:
        return verdict(Decision.ROLLBACK, f"revenue-critical intent significantly regressed: {', '.join(ctx.intents.rollback_by)}")
    if result.significant is None:
        return verdict(Decision.CONTINUE, "primary metric: not enough data for a test")
    if not result.significant:
        if ctx.at_horizon:
            return verdict(Decision.NO_DECISION, "planned sample reached without a significant difference")
        return verdict(Decision.CONTINUE, "primary metric not significant yet")
    # a significant improvement: everything else has to hold too
    if ctx.method == "fixed" and not ctx.at_horizon:
        return verdict(Decision.CONTINUE, "fixed-horizon test: a win before planned_n_per_variant is not acted on")
    if ctx.intents and (ctx.intents.blocked_by or ctx.intents.insufficient):
        blocking = ctx.intents.blocked_by + [f"{i} (insufficient data)" for i in ctx.intents.insufficient]
        return verdict(Decision.CONTINUE, f"blocked by revenue-critical intent: {', '.join(blocking)}")
    if ctx.intents and ctx.intents.composite_improvement is not None and ctx.intents.composite_improvement <= 0:
        return verdict(Decision.CONTINUE, "severity-weighted composite across intents does not improve")
    if not all_pass(ctx.guardrails):
        pending = [f"{g.metric} ({g.status})" for g in ctx.guardrails if g.status != "pass"]
        return verdict(Decision.CONTINUE, f"guardrails not yet passed: {', '.join(pending) or 'none configured'}")
    if ctx.cost_increase is not None and ctx.cost_increase > ctx.review_cost_increase:
        return verdict(Decision.REVIEW, f"better primary metric at {ctx.cost_increase:.1%} higher cost per request")
    return verdict(Decision.PROMOTE, "primary metric significantly better and every guardrail passed")


_ORDER = (Decision.ROLLBACK, Decision.PROMOTE, Decision.REVIEW, Decision.CONTINUE, Decision.NO_DECISION)


def combine(decisions: list[VariantDecision]) -> tuple[Decision, str | None, list[str]]:
    """Experiment decision: any ROLLBACK wins; else the best PROMOTE, the best REVIEW, CONTINUE, NO_DECISION."""
    if not decisions:
        return Decision.NO_DECISION, None, ["no active treatment"]
    for decision in _ORDER:
        matching = [d for d in decisions if d.decision is decision]
        if not matching:
            continue
        if decision in (Decision.PROMOTE, Decision.REVIEW):
            best = max(matching, key=lambda d: d.improvement if d.improvement is not None else float("-inf"))
            return decision, best.variant, [f"{best.variant}: {r}" for r in best.reasons]
        return decision, None, [f"{d.variant}: {r}" for d in matching for r in d.reasons]
    raise AssertionError("unreachable")
