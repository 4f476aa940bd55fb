"""Canary rollouts, pure: the metrics a gate reads (canary vs primary snapshot), each point gate, the judge's
verdict as gate checks, the analysis' significance, and the stage's combined outcome."""

from __future__ import annotations

from enum import Enum
from typing import Any, Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from kanaria.canary.judge import Judgement, Verdict
from kanaria.domain.rollout_plan import StageGates


class Outcome(str, Enum):
    """What one gate (or all gates of a stage) says about the canary."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


# --- metrics and gates -------------------------------------------------------------------------------------


class SideMetrics(BaseModel):
    """Aggregates of one side (canary or primary) over the stage's window. None = no datapoints (never 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    observations: float | None = None
    errors: float | None = None
    throttles: float | None = None
    hallucinations: float | None = None
    latency_p99_ms: float | None = None
    csat_sum: float | None = None
    csat_count: float | None = None
    quality_sum: float | None = None
    quality_count: float | None = None

    def rate(self, events: float | None) -> float | None:
        """events / observations, None when either is missing or there are no observations."""
        if events is None or not self.observations:
            return None
        return events / self.observations

    @staticmethod
    def mean(total: float | None, count: float | None) -> float | None:
        """total / count, None when missing."""
        if total is None or not count:
            return None
        return total / count


class MetricSnapshot(BaseModel):
    """Canary vs primary over one window, plus the composite alarm states (None when not configured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_start: str
    window_end: str
    canary: SideMetrics
    primary: SideMetrics
    alarms: dict[str, str] = Field(default_factory=dict, description="alarm name -> state (composites and children)")
    critical_alarm: str | None = None
    warning_alarm: str | None = None
    critical_children: tuple[str, ...] = Field(default=(), description="metric alarms behind the critical composite")
    warning_children: tuple[str, ...] = Field(default=(), description="metric alarms behind the warning composite")


class Significance(BaseModel):
    """What the latest analysis result says about the candidate's variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    reason: str
    decision: str | None = None
    computed_at: str | None = None


class GateCheck(BaseModel):
    """One gate's verdict with what it saw."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: str
    outcome: Outcome
    reason: str
    canary: float | None = None
    primary: float | None = None
    threshold: float | None = None


class GateResult(BaseModel):
    """All gates of a stage: FAIL if any failed, else INCONCLUSIVE if any was, else PASS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    checks: tuple[GateCheck, ...]
    snapshot: MetricSnapshot | None = None
    significance: Significance | None = None

    @property
    def reasons(self) -> list[str]:
        """Reasons of the checks that decided the outcome."""
        return [f"{c.gate}: {c.reason}" for c in self.checks if c.outcome is self.outcome]


def _missing(gate: str, what: str, threshold: float | None = None) -> GateCheck:
    return GateCheck(
        gate=gate,
        outcome=Outcome.INCONCLUSIVE,
        threshold=threshold,
        reason=f"no datapoints for {what} (missing data is not zero)",
    )


def _too_few(gate: str, side: str, have: float | None, need: int, what: str = "observations") -> GateCheck | None:
    if have is None:
        return _missing(gate, f"{side} {what}")
    if have < need:
        return GateCheck(
            gate=gate, outcome=Outcome.INCONCLUSIVE, reason=f"only {have:g} {side} {what}, need at least {need}"
        )
    return None


def _rate_check(gate: str, canary: SideMetrics, events: float | None, limit: float, need: int, what: str) -> GateCheck:
    short = _too_few(gate, "canary", canary.observations, need)
    if short:
        return short
    rate = canary.rate(events)
    if rate is None:
        return _missing(gate, f"canary {what}", limit)
    ok = rate < limit
    return GateCheck(
        gate=gate,
        outcome=Outcome.PASS if ok else Outcome.FAIL,
        canary=rate,
        threshold=limit,
        reason=f"canary {what} rate {rate:.3%} {'<' if ok else '>='} {limit:.3%}",
    )


def _error_rate(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    return _rate_check(
        "error_rate", s.canary, s.canary.errors, gates.max_error_rate or 0, gates.min_observations, "error"
    )


def _throttle_rate(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    return _rate_check(
        "throttle_rate", s.canary, s.canary.throttles, gates.max_throttle_rate or 0, gates.min_observations, "throttle"
    )


def _latency(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    gate, bound = "latency_p99", gates.max_latency_p99_increase or 0
    for side, metrics in (("canary", s.canary), ("primary", s.primary)):
        short = _too_few(gate, side, metrics.observations, gates.min_observations)
        if short:
            return short
    canary, primary = s.canary.latency_p99_ms, s.primary.latency_p99_ms
    if canary is None or primary is None:
        return _missing(gate, "canary p99 latency" if canary is None else "primary p99 latency", bound)
    limit = primary * (1 + bound)
    ok = canary <= limit
    return GateCheck(
        gate=gate,
        outcome=Outcome.PASS if ok else Outcome.FAIL,
        canary=canary,
        primary=primary,
        threshold=limit,
        reason=f"canary p99 {canary:.0f} ms {'<=' if ok else '>'} {limit:.0f} ms "
        f"(primary {primary:.0f} ms + {bound:.0%})",
    )


def _hallucinations(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    gate, bound = "hallucination_rate", gates.max_hallucination_rate_increase or 0
    for side, metrics in (("canary", s.canary), ("primary", s.primary)):
        short = _too_few(gate, side, metrics.observations, gates.min_observations)
        if short:
            return short
    canary, primary = s.canary.rate(s.canary.hallucinations), s.primary.rate(s.primary.hallucinations)
    if canary is None or primary is None:
        return _missing(gate, f"{'canary' if canary is None else 'primary'} hallucinations", bound)
    ok = canary - primary <= bound
    return GateCheck(
        gate=gate,
        outcome=Outcome.PASS if ok else Outcome.FAIL,
        canary=canary,
        primary=primary,
        threshold=primary + bound,
        reason=f"canary {canary:.3%} vs primary {primary:.3%}: {'within' if ok else 'more than'} +{bound:.2%}",
    )


def _mean_drop(
    gate: str,
    label: str,
    canary_mean: float | None,
    primary_mean: float | None,
    canary_n: float | None,
    primary_n: float | None,
    bound: float,
    need: int,
) -> GateCheck:
    for side, count in (("canary", canary_n), ("primary", primary_n)):
        short = _too_few(gate, side, count, need, f"{label} samples")
        if short:
            return short
    if canary_mean is None or primary_mean is None:
        return _missing(gate, f"{'canary' if canary_mean is None else 'primary'} {label}", bound)
    floor = primary_mean * (1 - bound)
    ok = canary_mean >= floor
    return GateCheck(
        gate=gate,
        outcome=Outcome.PASS if ok else Outcome.FAIL,
        canary=canary_mean,
        primary=primary_mean,
        threshold=floor,
        reason=f"canary {label} {canary_mean:.3f} {'>=' if ok else '<'} {floor:.3f} "
        f"(primary {primary_mean:.3f} - {bound:.0%})",
    )


def _csat(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    c, p = s.canary, s.primary
    return _mean_drop(
        "csat",
        "CSAT",
        c.mean(c.csat_sum, c.csat_count),
        p.mean(p.csat_sum, p.csat_count),
        c.csat_count,
        p.csat_count,
        gates.max_csat_drop or 0,
        gates.min_csat_responses,
    )


def _quality(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    c, p = s.canary, s.primary
    return _mean_drop(
        "quality",
        "quality",
        c.mean(c.quality_sum, c.quality_count),
        p.mean(p.quality_sum, p.quality_count),
        c.quality_count,
        p.quality_count,
        gates.max_quality_drop or 0,
        gates.min_observations,
    )


def _alarms(s: MetricSnapshot) -> list[GateCheck]:
    checks = []
    if s.critical_alarm is not None:
        state = s.alarms.get(s.critical_alarm)
        if state == "ALARM":
            checks.append(
                GateCheck(gate="critical_alarm", outcome=Outcome.FAIL, reason=f"{s.critical_alarm} is in ALARM")
            )
        elif state is None:
            checks.append(
                GateCheck(gate="critical_alarm", outcome=Outcome.INCONCLUSIVE, reason=f"{s.critical_alarm} not found")
            )
    if s.warning_alarm is not None:
        state = s.alarms.get(s.warning_alarm)
        if state != "OK":
            checks.append(
                GateCheck(
                    gate="warning_alarm",
                    outcome=Outcome.INCONCLUSIVE,
                    reason=f"{s.warning_alarm} is {state or 'not found'}, not OK: holding",
                )
            )
    # The children too: a composite re-evaluates after its children, so a child already in ALARM is news the
    # composite has not passed on yet.
    for child in s.critical_children:
        if s.alarms.get(child) == "ALARM":
            checks.append(GateCheck(gate="critical_alarm", outcome=Outcome.FAIL, reason=f"{child} is in ALARM"))
    for child in s.warning_children:
        if s.alarms.get(child) == "ALARM":
            checks.append(
                GateCheck(gate="warning_alarm", outcome=Outcome.INCONCLUSIVE, reason=f"{child} is in ALARM: holding")
            )
    return checks


def judge_checks(judgement: Judgement) -> list[GateCheck]:
    """The judge's verdict as gate checks: ROLLBACK fails, CONTINUE is inconclusive, PASS passes."""
    outcome = {Verdict.ROLLBACK: Outcome.FAIL, Verdict.CONTINUE: Outcome.INCONCLUSIVE, Verdict.PASS: Outcome.PASS}
    return [
        GateCheck(
            gate=f"judge:{f.metric.value}@{f.intent}",
            outcome=outcome[f.verdict],
            reason=f.line(),
            canary=f.canary_rate,
            primary=f.primary_rate,
            threshold=f.log_threshold if f.verdict is Verdict.ROLLBACK else None,
        )
        for f in judgement.findings
    ]


def evaluate_gates(
    gates: StageGates,
    snapshot: MetricSnapshot,
    significance: Significance | None = None,
    judgement: Judgement | None = None,
) -> GateResult:
    """Every configured gate of a stage against one snapshot (and the analysis result when required), with the
    judge's verdict when it runs."""
    checks: list[GateCheck] = judge_checks(judgement) if judgement is not None else []
    for threshold, check in (
        (gates.max_error_rate, _error_rate),
        (gates.max_latency_p99_increase, _latency),
        (gates.max_hallucination_rate_increase, _hallucinations),
        (gates.max_throttle_rate, _throttle_rate),
        (gates.max_csat_drop, _csat),
        (gates.max_quality_drop, _quality),
    ):
        if threshold is not None:
            checks.append(check(gates, snapshot))
    if gates.require_significance:
        sig = significance or Significance(outcome=Outcome.INCONCLUSIVE, reason="no analysis result read")
        checks.append(GateCheck(gate="significance", outcome=sig.outcome, reason=sig.reason))
    if gates.alarms:
        checks.extend(_alarms(snapshot))
    outcomes = {c.outcome for c in checks}
    outcome = (
        Outcome.FAIL
        if Outcome.FAIL in outcomes
        else Outcome.INCONCLUSIVE
        if Outcome.INCONCLUSIVE in outcomes
        else Outcome.PASS
    )
    return GateResult(outcome=outcome, checks=tuple(checks), snapshot=snapshot, significance=significance)


def significance_from_result(result: Mapping[str, Any] | Any | None, variant: str) -> Significance:
    """Interpret the latest analysis result (aggregates item RESULT#LATEST, a StoredResult or its mapping) for the
    candidate's variant: the typed reading of `kanaria.domain.analysis_result.verdict_for_variant` (PROMOTE of this
    variant passes, ROLLBACK or a stop of this variant fails, anything else is inconclusive)."""
    from kanaria.domain.analysis_result import verdict_for_variant  # kept local: only this function is ours here

    verdict = verdict_for_variant(result, variant)
    outcome = {"pass": Outcome.PASS, "fail": Outcome.FAIL}.get(verdict.verdict, Outcome.INCONCLUSIVE)
    return Significance(
        outcome=outcome, decision=verdict.decision, computed_at=verdict.computed_at, reason=verdict.reason
    )
