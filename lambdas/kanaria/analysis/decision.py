"""Decision rules per treatment and for the experiment (harm first, then evidence; missing data never passes).

Harm (ROLLBACK) is judged at every read by one-sided always-valid tests at the experiment's harm level, whatever
the method; a win (PROMOTE/REVIEW) only where the method tests efficacy: `fixed` once, at the planned sample;
`obf` at its planned looks; `always_valid` at any read. For `fixed`/`obf` the read that reaches the planned
sample is final: what it decides is frozen (CONTINUE becomes NO_DECISION).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kanaria.analysis.comparisons import Evaluated
from kanaria.analysis.guardrails import GuardrailResult, all_pass
from kanaria.analysis.intents import IntentVerdict
from kanaria.domain.analysis_result import ACTION_OF, Decision
from kanaria.stats.frequentist import finite_or_none

__all__ = [
    "Decision",
    "Efficacy",
    "HarmTest",
    "TreatmentContext",
    "VariantDecision",
    "combine",
    "decide_treatment",
    "finalize",
]


@dataclass(frozen=True)
class Efficacy:
    """Whether this read tests the primary metric for a win, and the outcome."""

    tested: bool
    significant: bool | None  # better at the method's level; None: undefined or below min_n
    p_value: float | None
    level: float
    test: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        body = {
            "tested": self.tested,
            "significant": self.significant,
            "p_value": finite_or_none(self.p_value),
            "level": self.level,
            "test": self.test,
        }
        if self.note:
            body["note"] = self.note
        return body


@dataclass(frozen=True)
class HarmTest:
    """One harm hypothesis of a treatment (primary metric or a revenue-critical intent): one-sided, always valid."""

    name: str
    p_value: float | None
    level: float
    rejected: bool
    estimate: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        body = {
            "name": self.name,
            "p_value": finite_or_none(self.p_value),
            "level": self.level,
            "rejected": self.rejected,
            "estimate": finite_or_none(self.estimate),
        }
        if self.note:
            body["note"] = self.note
        return body


@dataclass(frozen=True)
class CostIncrease:
    """Relative cost-per-request change of the treatment with its delta-method interval."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class TreatmentContext:
    """Everything one treatment's decision rests on."""

    method: str
    higher_is_better: bool
    primary_reported: bool
    primary: Evaluated | None
    efficacy: Efficacy
    harm: list[HarmTest]
    guardrails: list[GuardrailResult]
    intents: IntentVerdict | None
    cost: CostIncrease | None
    final: bool
    review_cost_increase: float


@dataclass(frozen=True)
class VariantDecision:
    """A treatment's decision, why, and its primary improvement (for choosing a winner)."""

    variant: str
    decision: Decision
    reasons: list[str] = field(default_factory=list)
    improvement: float | None = None
    waiting: bool = False  # a win was shown; the guardrails (or intents) are still being proven

    @property
    def action(self) -> str:
        """promote, review, stop, continue or none."""
        return ACTION_OF[self.decision]


def _improvement(ctx: TreatmentContext) -> float | None:
    effect = ctx.primary.result.effect if ctx.primary else None
    return None if effect is None else (effect if ctx.higher_is_better else -effect)


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x:+.1%}"


def decide_treatment(variant: str, ctx: TreatmentContext) -> VariantDecision:
    """ROLLBACK on harm shown by an always-valid test; PROMOTE/REVIEW only on a win where the method tests one,
    with every guardrail passing; at a final read CONTINUE becomes NO_DECISION."""
    improvement = _improvement(ctx)

    def verdict(decision: Decision, *reasons: str, waiting: bool = False) -> VariantDecision:
        result = VariantDecision(variant, decision, list(reasons), improvement, waiting)
        return finalize(result) if ctx.final else result

    if not ctx.primary_reported or ctx.primary is None:
        return verdict(Decision.NO_DECISION, "primary metric not reported for control and treatment")
    failed = [g.metric for g in ctx.guardrails if g.status == "fail"]
    if failed:
        return verdict(Decision.ROLLBACK, f"guardrail failed: {', '.join(failed)}")
    harmed = [h for h in ctx.harm if h.rejected]
    if harmed:
        return verdict(
            Decision.ROLLBACK, *(f"{h.name} worse (always-valid p = {h.p_value:.3g} ≤ {h.level:.3g})" for h in harmed)
        )
    if ctx.primary.n == 0:
        return verdict(Decision.CONTINUE, "no observations of the primary metric yet")
    eff = ctx.efficacy
    if not eff.tested:
        return verdict(Decision.CONTINUE, eff.note or "no efficacy test at this read")
    if eff.significant is None:
        return verdict(Decision.CONTINUE, "primary metric: not enough data for a test")
    if not eff.significant:
        return verdict(Decision.CONTINUE, "primary metric not significantly better")
    # a significant improvement: everything else has to hold too
    if ctx.intents and (ctx.intents.blocked_by or ctx.intents.insufficient):
        blocking = ctx.intents.blocked_by + [f"{i} (insufficient data)" for i in ctx.intents.insufficient]
        return verdict(Decision.CONTINUE, f"blocked by revenue-critical intent: {', '.join(blocking)}", waiting=True)
    if ctx.intents and ctx.intents.composite_improvement is not None and ctx.intents.composite_improvement <= 0:
        return verdict(Decision.CONTINUE, "severity-weighted composite across intents does not improve", waiting=True)
    if not all_pass(ctx.guardrails):
        pending = [f"{g.metric} ({g.status})" for g in ctx.guardrails if g.status != "pass"]
        return verdict(
            Decision.CONTINUE, f"guardrails not yet passed: {', '.join(pending) or 'none configured'}", waiting=True
        )
    cost = ctx.cost
    if cost is not None and cost.estimate is not None:
        if cost.high is None or cost.high > ctx.review_cost_increase:
            return verdict(
                Decision.REVIEW,
                f"better primary metric; cost per request {_pct(cost.estimate)}"
                f" [{_pct(cost.low)}, {_pct(cost.high)}]: an increase above"
                f" {ctx.review_cost_increase:.0%} is not excluded",
            )
    return verdict(Decision.PROMOTE, "primary metric significantly better and every guardrail passed")


def finalize(decision: VariantDecision) -> VariantDecision:
    """At a final read CONTINUE becomes NO_DECISION (nothing will be tested again)."""
    if decision.decision is not Decision.CONTINUE:
        return decision
    return VariantDecision(
        decision.variant,
        Decision.NO_DECISION,
        [*decision.reasons, "planned sample reached: the decision is final"],
        decision.improvement,
    )


_ORDER = (Decision.ROLLBACK, Decision.PROMOTE, Decision.REVIEW, Decision.CONTINUE, Decision.NO_DECISION)


def _pick(decisions: list[VariantDecision]) -> tuple[Decision, str | None, list[str]]:
    for decision in _ORDER:
        matching = [d for d in decisions if d.decision is decision]
        if not matching:
            continue
        if decision in (Decision.PROMOTE, Decision.REVIEW):
            best = max(matching, key=lambda d: d.improvement if d.improvement is not None else float("-inf"))
            return decision, best.variant, [f"{best.variant}: {r}" for r in best.reasons]
        return decision, None, [f"{d.variant}: {r}" for d in matching for r in d.reasons]
    raise AssertionError("unreachable")


def combine(decisions: list[VariantDecision]) -> tuple[Decision, str | None, list[str], list[str]]:
    """(decision, winner, reasons, stop_variants) of the experiment.

    With one treatment (or when every treatment is harmful) a ROLLBACK is the experiment's. With several, a
    harmful arm is stopped (stop_variants) and the others decide: the best PROMOTE (or REVIEW), else CONTINUE,
    else NO_DECISION; the reasons name the stopped arms too.
    """
    if not decisions:
        return Decision.NO_DECISION, None, ["no active treatment"], []
    harmful = [d for d in decisions if d.decision is Decision.ROLLBACK]
    others = [d for d in decisions if d.decision is not Decision.ROLLBACK]
    if not harmful or not others:
        decision, winner, reasons = _pick(decisions)
        return decision, winner, reasons, []
    decision, winner, reasons = _pick(others)
    stopped = [f"{d.variant}: stopped, {r}" for d in harmful for r in d.reasons]
    return decision, winner, stopped + reasons, [d.variant for d in harmful]
