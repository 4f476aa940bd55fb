"""Canary rollouts, pure: the request and stage plan, gate evaluation, stage progression, listener weights and
anti-flapping rules. No AWS here; logic/rollouts.py wires it to the world (state and texts: rollout_state.py)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import Enum
from fractions import Fraction
from typing import Annotated, Any, Iterable, Literal, Mapping, Sequence

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError as PydanticValidationError,
    field_validator,
    model_validator,
)

from kanaria.canary.judge import Judgement, JudgeSettings, Verdict, horizon_periods
from kanaria.domain.experiment import ID_PATTERN
from kanaria.errors import ValidationError, from_pydantic

# --- durations ---------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
HOUR = 3600
DAY = 24 * HOUR


def parse_duration(value: Any) -> Any:
    """Seconds as an int, or a string like "90s", "15m", "4h", "2d" (anything else is left to pydantic)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r}; use seconds or a number with s, m, h or d")
        return int(match.group(1)) * _UNITS[match.group(2)]
    return value


Seconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=30 * DAY)]
PositiveSeconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=1, le=30 * DAY)]

# --- the request -------------------------------------------------------------------------------------------

DEFAULT_TARGET_GROUP = "default"
TARGET_GROUP_ARN = r"^arn:[\w-]+:elasticloadbalancing:[\w-]+:\d{12}:targetgroup/[\w-]+/\w+$"
# A Step Functions execution name: 1..80 characters, no whitespace, brackets, wildcards or the specials below.
ROLLOUT_ID_PATTERN = r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}$"
CONFIG_HASH_PATTERN = r"^[A-Za-z0-9:_.-]{6,128}$"

# Step Functions STANDARD keeps at most 25,000 history events per execution. Each observation loop costs
# Wait (2) + Task (5) + Choice (2) events; the rest of a run (prepare, weights, approval, rollback) stays < 200.
HISTORY_EVENT_LIMIT = 25_000
EVENTS_PER_CHECK = 9
EVENTS_OUTSIDE_CHECKS = 200


class Outcome(str, Enum):
    """What one gate (or all gates of a stage) says about the canary."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class StageGates(BaseModel):
    """Thresholds of one stage; a gate left out (None) is not evaluated. Rates are fractions (0.005 = 0.5%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float | None = Field(default=None, ge=0, le=1, description="canary errors / observations")
    max_latency_p99_increase: float | None = Field(
        default=None, ge=0, le=10, description="canary p99 may exceed primary p99 by this fraction (0.10 = 10%)")
    max_hallucination_rate_increase: float | None = Field(
        default=None, ge=0, le=1, description="absolute: canary rate - primary rate")
    max_throttle_rate: float | None = Field(default=None, ge=0, le=1, description="canary throttles / observations")
    max_csat_drop: float | None = Field(
        default=None, ge=0, le=1, description="canary mean CSAT >= primary mean x (1 - this)")
    max_quality_drop: float | None = Field(
        default=None, ge=0, le=1, description="canary mean quality >= primary mean x (1 - this)")
    require_significance: bool = Field(
        default=False, description="the latest analysis result must favour the candidate's variant")
    min_observations: int = Field(default=200, ge=1, le=10_000_000, description="per side, else inconclusive")
    min_csat_responses: int = Field(default=30, ge=1, le=10_000_000)
    alarms: bool = Field(default=True, description="critical composite in ALARM fails, warning not OK holds")

    def has_checks(self) -> bool:
        """Whether any threshold or the significance gate is set."""
        thresholds = (self.max_error_rate, self.max_latency_p99_increase, self.max_hallucination_rate_increase,
                      self.max_throttle_rate, self.max_csat_drop, self.max_quality_drop)
        return any(t is not None for t in thresholds) or self.require_significance


class Stage(BaseModel):
    """One traffic step: its share, how long it is observed at least, how often, and how long it may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    percent: int = Field(ge=1, le=99, description="canary share of the listener's traffic")
    min_duration_seconds: Seconds
    check_interval_seconds: PositiveSeconds = Field(default=60, description="how often the judge and gates look")
    max_hold_seconds: Seconds | None = Field(
        default=None, description="extra time on an inconclusive gate after the minimum; default = the minimum")
    gates: StageGates = Field(default_factory=StageGates)

    @property
    def hold_bound_seconds(self) -> int:
        """Seconds after the minimum an inconclusive gate may hold before the rollout rolls back."""
        return self.min_duration_seconds if self.max_hold_seconds is None else self.max_hold_seconds

    @property
    def max_checks(self) -> int:
        """Upper bound of gate evaluations of this stage (history budget)."""
        return math.ceil((self.min_duration_seconds + self.hold_bound_seconds) / self.check_interval_seconds) + 1


class ApprovalSettings(BaseModel):
    """The human approval before 100%: how long the task token waits (traffic holds at the last stage)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: PositiveSeconds = 3 * DAY
    heartbeat_seconds: PositiveSeconds | None = Field(
        default=None, description="SendTaskHeartbeat interval; default timeout - 1 (no heartbeat needed)")

    @field_validator("timeout_seconds")
    @classmethod
    def _room_for_heartbeat(cls, value: int) -> int:
        if value < 2:
            raise ValueError("must be at least 2 seconds")
        return value

    @model_validator(mode="after")
    def _heartbeat_below_timeout(self) -> "ApprovalSettings":
        if self.heartbeat_seconds is None:
            object.__setattr__(self, "heartbeat_seconds", self.timeout_seconds - 1)
        elif self.heartbeat_seconds >= self.timeout_seconds:
            raise ValueError("heartbeat_seconds: must be smaller than timeout_seconds")
        return self


class RolloutPlan(BaseModel):
    """Gated stages with increasing shares, then 100% after a human approval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...] = Field(min_length=1, max_length=10)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    stickiness_seconds: PositiveSeconds = Field(default=HOUR, le=7 * DAY,
                                                description="ALB target-group stickiness while weighted")
    judge: JudgeSettings | None = Field(
        default_factory=JudgeSettings,
        description="the sequential canary judge (kanaria.canary); null leaves only the stages' point gates")

    @model_validator(mode="after")
    def _consistent(self) -> "RolloutPlan":
        if self.judge is None:
            for stage in self.stages:
                if not stage.gates.has_checks():
                    raise ValueError(f"stages: stage {stage.name!r} has nothing to check: set a gate threshold or "
                                     "require_significance, or keep the judge")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stages: names must be unique")
        percents = [s.percent for s in self.stages]
        if any(b <= a for a, b in zip(percents, percents[1:])):
            raise ValueError(f"stages: percents must increase strictly, got {percents}")
        events = history_events(self)
        if events > HISTORY_EVENT_LIMIT:
            raise ValueError(
                f"stages: up to {events} Step Functions history events (limit {HISTORY_EVENT_LIMIT}); "
                "raise check_interval_seconds or shorten min_duration_seconds/max_hold_seconds")
        return self


def history_events(plan: RolloutPlan) -> int:
    """Worst-case history events of one execution of the plan."""
    return EVENTS_OUTSIDE_CHECKS + EVENTS_PER_CHECK * sum(s.max_checks for s in plan.stages)


def judge_horizon_periods(plan: RolloutPlan) -> int:
    """The most periods the judge can watch a rollout of this plan (every stage's minimum and hold bound)."""
    assert plan.judge is not None
    return horizon_periods(plan.judge, (s.min_duration_seconds + s.hold_bound_seconds for s in plan.stages))


class Candidate(BaseModel):
    """What is rolled out: its target group, its configuration identity, optionally its experiment variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_group: str = Field(default=DEFAULT_TARGET_GROUP, description='canary target group ARN or "default"')
    model_id: str = Field(min_length=1, max_length=256)
    config_id: str | None = Field(default=None, min_length=1, max_length=128)
    config_hash: str = Field(pattern=CONFIG_HASH_PATTERN, description="anti-flapping history is kept per hash")
    experiment_id: str | None = Field(default=None, pattern=ID_PATTERN)
    variant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    intents: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="intents the candidate serves (stage 0 checks each); None: every profiled intent")
    description: str = Field(default="", max_length=500)

    @field_validator("target_group")
    @classmethod
    def _target_group(cls, value: str) -> str:
        if value != DEFAULT_TARGET_GROUP and not re.match(TARGET_GROUP_ARN, value):
            raise ValueError(f'must be "default" or a target group ARN, got {value!r}')
        return value

    @model_validator(mode="after")
    def _variant_with_experiment(self) -> "Candidate":
        if (self.experiment_id is None) != (self.variant is None):
            raise ValueError("variant: experiment_id and variant go together (both or neither)")
        return self


class IntentEvaluation(BaseModel):
    """Offline result of one intent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    passed: bool
    score: float | None = None
    threshold: float | None = None


class OfflineEvaluation(BaseModel):
    """Stage 0: the candidate's offline evaluation on the golden dataset (extra fields of the report are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    passed: bool
    report_uri: str = Field(min_length=1, max_length=2048)
    per_intent: dict[str, IntentEvaluation] = Field(default_factory=dict)
    config_hash: str | None = Field(default=None, pattern=CONFIG_HASH_PATTERN,
                                    description="hash the evaluation ran on; must match the candidate's")


class Warmup(BaseModel):
    """Synthetic requests sent to the canary before it gets live traffic (cold starts, caches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://\S+$", max_length=2048, description="reaches the canary target directly")
    requests: int = Field(ge=1, le=5000)
    concurrency: int = Field(default=8, ge=1, le=64)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    deadline_seconds: float = Field(default=40.0, gt=0, le=600, description="unsent requests count as failed")
    max_failure_rate: float = Field(default=0.05, ge=0, le=1)
    body: dict[str, Any] = Field(default_factory=lambda: {"message": "warm-up", "synthetic": True})
    headers: dict[str, str] = Field(default_factory=dict)


class RolloutRequest(BaseModel):
    """The execution input: candidate, stage plan, the offline evaluation and an optional warm-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str | None = Field(default=None, pattern=ROLLOUT_ID_PATTERN,
                                   description="defaults to the execution name")
    candidate: Candidate
    plan: RolloutPlan = Field(default_factory=lambda: default_plan())
    offline_evaluation: OfflineEvaluation | None = Field(
        default=None, description="evidence for stage 0 when no evaluation of the candidate is stored")
    warmup: Warmup | None = None
    requested_by: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _significance_needs_experiment(self) -> "RolloutRequest":
        for stage in self.plan.stages:
            if stage.gates.require_significance and self.candidate.experiment_id is None:
                raise ValueError(
                    f"candidate.experiment_id: required because stage {stage.name!r} gates on significance "
                    "(set experiment_id and variant, or drop require_significance)")
        return self


_GUARDRAILS = dict(max_error_rate=0.005, max_latency_p99_increase=0.10, max_hallucination_rate_increase=0.01,
                   max_throttle_rate=0.05)
DEFAULT_PLAN = RolloutPlan(
    stages=(
        # 25,000 history events: one look a minute at 5% (8 h with the hold), then every 3 and 6 minutes
        Stage(name="canary-5", percent=5, min_duration_seconds=4 * HOUR, check_interval_seconds=60,
              gates=StageGates(max_error_rate=0.005, max_latency_p99_increase=0.10)),
        Stage(name="canary-25", percent=25, min_duration_seconds=DAY, check_interval_seconds=180,
              gates=StageGates(**_GUARDRAILS, max_csat_drop=0.01)),
        Stage(name="canary-50", percent=50, min_duration_seconds=2 * DAY, check_interval_seconds=360,
              gates=StageGates(**_GUARDRAILS, max_csat_drop=0.01, require_significance=True)),
    ),
    approval=ApprovalSettings(timeout_seconds=3 * DAY),
)


def default_plan() -> RolloutPlan:
    """The plan of a request that names none (defined below the request model that uses it)."""
    return DEFAULT_PLAN


def parse_rollout_request(document: Any) -> RolloutRequest:
    """Validate a rollout request; ValidationError naming the first bad field."""
    if not isinstance(document, dict):
        raise ValidationError("rollout request must be a JSON object", field="request")
    try:
        return RolloutRequest.model_validate(document)
    except PydanticValidationError as exc:
        raise from_pydantic(exc) from None


def check_offline_evaluation(candidate: Candidate, evaluation: OfflineEvaluation | None) -> OfflineEvaluation:
    """Stage 0 quality gate: the evaluation when it passed, else ValidationError with the reason."""
    if evaluation is None:
        raise ValidationError(
            f"no offline evaluation of configuration {candidate.config_hash} is stored and the request carries "
            "none; run `kanaria evaluate` on the golden dataset first", field="offline_evaluation")
    if evaluation.config_hash is not None and evaluation.config_hash != candidate.config_hash:
        raise ValidationError(
            f"evaluated config {evaluation.config_hash!r} is not the candidate's {candidate.config_hash!r}; "
            "evaluate this exact configuration", field="offline_evaluation.config_hash")
    failed = sorted(intent for intent, result in evaluation.per_intent.items() if not result.passed)
    if not evaluation.passed or failed:
        which = f" (failed intents: {', '.join(failed)})" if failed else ""
        raise ValidationError(
            f"the candidate failed its offline quality gate{which}; see {evaluation.report_uri}. Fix the "
            "configuration and evaluate again before any traffic", field="offline_evaluation.passed")
    return evaluation


def with_first_stage_multiplier(plan: RolloutPlan, multiplier: int) -> RolloutPlan:
    """The plan with the first stage's minimum duration multiplied (anti-flapping after a rollback)."""
    if multiplier == 1:
        return plan
    first = plan.stages[0]
    stretched = first.model_copy(update={"min_duration_seconds": first.min_duration_seconds * multiplier,
                                         "max_hold_seconds": first.hold_bound_seconds})
    try:
        return RolloutPlan.model_validate({**plan.model_dump(), "stages": [stretched.model_dump(), *(
            s.model_dump() for s in plan.stages[1:])]})
    except PydanticValidationError as exc:
        raise from_pydantic(exc, "plan") from None


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
    return GateCheck(gate=gate, outcome=Outcome.INCONCLUSIVE, threshold=threshold,
                     reason=f"no datapoints for {what} (missing data is not zero)")


def _too_few(gate: str, side: str, have: float | None, need: int, what: str = "observations") -> GateCheck | None:
    if have is None:
        return _missing(gate, f"{side} {what}")
    if have < need:
        return GateCheck(gate=gate, outcome=Outcome.INCONCLUSIVE,
                         reason=f"only {have:g} {side} {what}, need at least {need}")
    return None


def _rate_check(gate: str, canary: SideMetrics, events: float | None, limit: float, need: int, what: str) -> GateCheck:
    short = _too_few(gate, "canary", canary.observations, need)
    if short:
        return short
    rate = canary.rate(events)
    if rate is None:
        return _missing(gate, f"canary {what}", limit)
    ok = rate < limit
    return GateCheck(gate=gate, outcome=Outcome.PASS if ok else Outcome.FAIL, canary=rate, threshold=limit,
                     reason=f"canary {what} rate {rate:.3%} {'<' if ok else '>='} {limit:.3%}")


def _error_rate(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    return _rate_check("error_rate", s.canary, s.canary.errors, gates.max_error_rate or 0, gates.min_observations,
                       "error")


def _throttle_rate(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    return _rate_check("throttle_rate", s.canary, s.canary.throttles, gates.max_throttle_rate or 0,
                       gates.min_observations, "throttle")


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
    return GateCheck(gate=gate, outcome=Outcome.PASS if ok else Outcome.FAIL, canary=canary, primary=primary,
                     threshold=limit, reason=f"canary p99 {canary:.0f} ms {'<=' if ok else '>'} {limit:.0f} ms "
                                             f"(primary {primary:.0f} ms + {bound:.0%})")


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
    return GateCheck(gate=gate, outcome=Outcome.PASS if ok else Outcome.FAIL, canary=canary, primary=primary,
                     threshold=primary + bound,
                     reason=f"canary {canary:.3%} vs primary {primary:.3%}: "
                            f"{'within' if ok else 'more than'} +{bound:.2%}")


def _mean_drop(gate: str, label: str, canary_mean: float | None, primary_mean: float | None, canary_n: float | None,
               primary_n: float | None, bound: float, need: int) -> GateCheck:
    for side, count in (("canary", canary_n), ("primary", primary_n)):
        short = _too_few(gate, side, count, need, f"{label} samples")
        if short:
            return short
    if canary_mean is None or primary_mean is None:
        return _missing(gate, f"{'canary' if canary_mean is None else 'primary'} {label}", bound)
    floor = primary_mean * (1 - bound)
    ok = canary_mean >= floor
    return GateCheck(gate=gate, outcome=Outcome.PASS if ok else Outcome.FAIL, canary=canary_mean,
                     primary=primary_mean, threshold=floor,
                     reason=f"canary {label} {canary_mean:.3f} {'>=' if ok else '<'} {floor:.3f} "
                            f"(primary {primary_mean:.3f} - {bound:.0%})")


def _csat(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    c, p = s.canary, s.primary
    return _mean_drop("csat", "CSAT", c.mean(c.csat_sum, c.csat_count), p.mean(p.csat_sum, p.csat_count),
                      c.csat_count, p.csat_count, gates.max_csat_drop or 0, gates.min_csat_responses)


def _quality(gates: StageGates, s: MetricSnapshot) -> GateCheck:
    c, p = s.canary, s.primary
    return _mean_drop("quality", "quality", c.mean(c.quality_sum, c.quality_count),
                      p.mean(p.quality_sum, p.quality_count), c.quality_count, p.quality_count,
                      gates.max_quality_drop or 0, gates.min_observations)


def _alarms(s: MetricSnapshot) -> list[GateCheck]:
    checks = []
    if s.critical_alarm is not None:
        state = s.alarms.get(s.critical_alarm)
        if state == "ALARM":
            checks.append(GateCheck(gate="critical_alarm", outcome=Outcome.FAIL,
                                    reason=f"{s.critical_alarm} is in ALARM"))
        elif state is None:
            checks.append(GateCheck(gate="critical_alarm", outcome=Outcome.INCONCLUSIVE,
                                    reason=f"{s.critical_alarm} not found"))
    if s.warning_alarm is not None:
        state = s.alarms.get(s.warning_alarm)
        if state != "OK":
            checks.append(GateCheck(gate="warning_alarm", outcome=Outcome.INCONCLUSIVE,
                                    reason=f"{s.warning_alarm} is {state or 'not found'}, not OK: holding"))
    # The children too: a composite re-evaluates after its children, so a child already in ALARM is news the
    # composite has not passed on yet.
    for child in s.critical_children:
        if s.alarms.get(child) == "ALARM":
            checks.append(GateCheck(gate="critical_alarm", outcome=Outcome.FAIL, reason=f"{child} is in ALARM"))
    for child in s.warning_children:
        if s.alarms.get(child) == "ALARM":
            checks.append(GateCheck(gate="warning_alarm", outcome=Outcome.INCONCLUSIVE,
                                    reason=f"{child} is in ALARM: holding"))
    return checks


def judge_checks(judgement: Judgement) -> list[GateCheck]:
    """The judge's verdict as gate checks: ROLLBACK fails, CONTINUE is inconclusive, PASS passes."""
    outcome = {Verdict.ROLLBACK: Outcome.FAIL, Verdict.CONTINUE: Outcome.INCONCLUSIVE, Verdict.PASS: Outcome.PASS}
    return [GateCheck(gate=f"judge:{f.metric.value}@{f.intent}", outcome=outcome[f.verdict], reason=f.line(),
                      canary=f.canary_rate, primary=f.primary_rate,
                      threshold=f.log_threshold if f.verdict is Verdict.ROLLBACK else None)
            for f in judgement.findings]


def evaluate_gates(gates: StageGates, snapshot: MetricSnapshot, significance: Significance | None = None,
                   judgement: Judgement | None = None) -> GateResult:
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
    outcome = (Outcome.FAIL if Outcome.FAIL in outcomes
               else Outcome.INCONCLUSIVE if Outcome.INCONCLUSIVE in outcomes else Outcome.PASS)
    return GateResult(outcome=outcome, checks=tuple(checks), snapshot=snapshot, significance=significance)


def significance_from_result(result: Mapping[str, Any] | Any | None, variant: str) -> Significance:
    """Interpret the latest analysis result (aggregates item RESULT#LATEST, a StoredResult or its mapping) for the
    candidate's variant: the typed reading of `kanaria.domain.analysis_result.verdict_for_variant` (PROMOTE of this
    variant passes, ROLLBACK or a stop of this variant fails, anything else is inconclusive)."""
    from kanaria.domain.analysis_result import verdict_for_variant  # kept local: only this function is ours here

    verdict = verdict_for_variant(result, variant)
    outcome = {"pass": Outcome.PASS, "fail": Outcome.FAIL}.get(verdict.verdict, Outcome.INCONCLUSIVE)
    return Significance(outcome=outcome, decision=verdict.decision, computed_at=verdict.computed_at,
                        reason=verdict.reason)


# --- progression -------------------------------------------------------------------------------------------

Decision = Literal["wait", "hold", "advance", "await_approval", "rollback"]


class StepDecision(BaseModel):
    """What the state machine does after a gate evaluation, and after how many seconds it looks again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Decision
    reason: str
    wait_seconds: int = Field(ge=0)


def next_step(stage: Stage, outcome: Outcome, elapsed_seconds: float, last_stage: bool) -> StepDecision:
    """Fail -> rollback at once; before the minimum -> keep observing; pass -> next stage (or approval);
    inconclusive -> hold, never promote, until the hold bound, then rollback."""
    interval = stage.check_interval_seconds
    minimum = stage.min_duration_seconds
    if outcome is Outcome.FAIL:
        return StepDecision(decision="rollback", reason=f"stage {stage.name}: a gate failed", wait_seconds=0)
    if elapsed_seconds < minimum:
        remaining = math.ceil(minimum - elapsed_seconds)
        return StepDecision(decision="wait", wait_seconds=max(1, min(interval, remaining)),
                            reason=f"stage {stage.name}: {remaining}s of the {minimum}s minimum left ({outcome.value})")
    if outcome is Outcome.PASS:
        if last_stage:
            return StepDecision(decision="await_approval", wait_seconds=0,
                                reason=f"stage {stage.name} passed; 100% needs a human approval")
        return StepDecision(decision="advance", wait_seconds=0, reason=f"stage {stage.name} passed")
    bound = minimum + stage.hold_bound_seconds
    if elapsed_seconds >= bound:
        return StepDecision(decision="rollback", wait_seconds=0,
                            reason=f"stage {stage.name}: gates still inconclusive after {int(elapsed_seconds)}s "
                                   f"(hold bound {bound}s)")
    remaining = math.ceil(bound - elapsed_seconds)
    return StepDecision(decision="hold", wait_seconds=max(1, min(interval, remaining)),
                        reason=f"stage {stage.name}: inconclusive, holding (rollback in {remaining}s unless conclusive)")


# --- listener weights --------------------------------------------------------------------------------------


class Forward(BaseModel):
    """A forward action: weight per target group and target-group stickiness."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, int]
    stickiness_enabled: bool = False
    stickiness_seconds: int | None = None

    def weight(self, target_group: str) -> int:
        """Weight of a target group (0 when absent)."""
        return self.weights.get(target_group, 0)

    def share(self, target_group: str) -> int:
        """Percent of new sessions a target group receives."""
        total = sum(self.weights.values())
        return 0 if total == 0 else round(100 * self.weight(target_group) / total)

    def reaches(self, target_group: str) -> bool:
        """Whether any request can reach the group: a weight, or membership while sticky (a stuck session
        keeps going to its group whatever its weight)."""
        return target_group in self.weights and (self.weights[target_group] > 0 or self.stickiness_enabled)

    def to_action_config(self) -> dict[str, Any]:
        """ForwardConfig of ModifyListener/ModifyRule."""
        stickiness: dict[str, Any] = {"Enabled": self.stickiness_enabled}
        if self.stickiness_enabled and self.stickiness_seconds:
            stickiness["DurationSeconds"] = self.stickiness_seconds
        return {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in self.weights.items()],
            "TargetGroupStickinessConfig": stickiness,
        }


def target_forward(primary: str, canary: str, percent: int, stickiness_seconds: int) -> Forward:
    """The forward action of a stage: 0 = primary only, 100 = canary only, else weighted and sticky."""
    if percent <= 0:
        return Forward(weights={primary: 100})
    if percent >= 100:
        return Forward(weights={canary: 100})
    return Forward(weights={primary: 100 - percent, canary: percent}, stickiness_enabled=True,
                   stickiness_seconds=stickiness_seconds)


def primary_only(primary: str) -> Forward:
    """Rollback: the canary is out of the forward action, stickiness off; every session leaves it."""
    return Forward(weights={primary: 100})


def forward_of(actions: Sequence[Mapping[str, Any]]) -> Forward | None:
    """The forward action among a listener's or rule's actions (None when it has none)."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        config = action.get("ForwardConfig")
        if config and config.get("TargetGroups"):
            weights = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in config["TargetGroups"]}
            sticky = config.get("TargetGroupStickinessConfig") or {}
            enabled = bool(sticky.get("Enabled", False))
            return Forward(weights=weights, stickiness_enabled=enabled,
                           stickiness_seconds=sticky.get("DurationSeconds") if enabled else None)
        if action.get("TargetGroupArn"):
            return Forward(weights={action["TargetGroupArn"]: 1})
    return None


def with_forward(actions: Sequence[Mapping[str, Any]], forward: Forward) -> list[dict[str, Any]]:
    """The actions with their forward action replaced (authenticate actions and their order kept)."""
    result: list[dict[str, Any]] = []
    replaced = False
    for action in actions:
        if action.get("Type") == "forward" and not replaced:
            new = {"Type": "forward", "ForwardConfig": forward.to_action_config()}
            if "Order" in action:
                new["Order"] = action["Order"]
            result.append(new)
            replaced = True
            continue
        copy = dict(action)
        oidc = copy.get("AuthenticateOidcConfig")
        if oidc is not None and "ClientSecret" not in oidc:
            copy["AuthenticateOidcConfig"] = {**oidc, "UseExistingClientSecret": True}
        result.append(copy)
    if not replaced:
        raise ValidationError("the listener's default action has no forward action to weight", field="listener")
    return result


def without_target_group(forward: Forward, target_group: str, fallback: str) -> Forward:
    """A rule's forward without the target group (to the fallback when nothing else is left)."""
    weights = {arn: w for arn, w in forward.weights.items() if arn != target_group}
    if not weights or sum(weights.values()) == 0:
        weights = {fallback: 100}
    return Forward(weights=weights, stickiness_enabled=forward.stickiness_enabled and len(weights) > 1,
                   stickiness_seconds=forward.stickiness_seconds if len(weights) > 1 else None)


def _shares(forward: Forward) -> dict[str, Fraction]:
    total = sum(forward.weights.values())
    return {arn: Fraction(w, total) if total else Fraction(0) for arn, w in forward.weights.items()}


def forward_differences(expected: Forward, actual: Forward | None) -> list[str]:
    """Human-readable differences between the forward action written and the one the listener reports. Weights
    are relative, so the same target groups with the same traffic shares match ({canary: 100} = {canary: 1})."""
    if actual is None:
        return ["the listener has no forward action"]
    diffs = []
    want, have = _shares(expected), _shares(actual)
    for arn in sorted(set(want) | set(have)):
        if want.get(arn) != have.get(arn):
            diffs.append(f"{arn}: expected weight {expected.weights.get(arn)} ({_percent(want.get(arn))}), "
                         f"found {actual.weights.get(arn)} ({_percent(have.get(arn))})")
    if expected.stickiness_enabled != actual.stickiness_enabled:
        diffs.append(f"stickiness: expected {expected.stickiness_enabled}, found {actual.stickiness_enabled}")
    elif expected.stickiness_enabled and expected.stickiness_seconds != actual.stickiness_seconds:
        diffs.append(f"stickiness duration: expected {expected.stickiness_seconds}s, found {actual.stickiness_seconds}s")
    return diffs


def _percent(share: Fraction | None) -> str:
    return "absent" if share is None else f"{float(share):.1%}"


# --- anti-flapping -----------------------------------------------------------------------------------------

COOLDOWN = timedelta(hours=24)
FLAP_WINDOW = timedelta(days=7)
FLAP_LIMIT = 3
FIRST_STAGE_MULTIPLIER = 2


class CandidateEvent(BaseModel):
    """One ended attempt of a candidate configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rollback", "completed"]
    at: datetime
    rollout_id: str
    trigger: str = ""


class Admission(BaseModel):
    """Whether a candidate may start a rollout now and with which first-stage multiplier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    reason: str
    rejected: bool = False
    cooldown_until: datetime | None = None
    rollbacks_in_window: int = 0
    first_stage_multiplier: int = 1


def flapping(rollbacks: Iterable[datetime]) -> bool:
    """FLAP_LIMIT rollbacks within any FLAP_WINDOW."""
    times = sorted(rollbacks)
    return any(times[i + FLAP_LIMIT - 1] - times[i] <= FLAP_WINDOW for i in range(len(times) - FLAP_LIMIT + 1))


def admission(events: Iterable[CandidateEvent], rejected: bool, now: datetime) -> Admission:
    """24 h cooldown after a rollback; 3 rollbacks in 7 days reject for good; after a rollback the next attempt's
    first stage lasts twice as long."""
    history = sorted(events, key=lambda e: e.at)
    rollbacks = [e.at for e in history if e.kind == "rollback"]
    recent = sum(1 for at in rollbacks if now - at <= FLAP_WINDOW)
    if rejected or flapping(rollbacks):
        return Admission(allowed=False, rejected=True, rollbacks_in_window=recent,
                         reason=f"candidate rejected for good: {FLAP_LIMIT} rollbacks within "
                                f"{FLAP_WINDOW.days} days; change the configuration (new config_hash)")
    if rollbacks and now - rollbacks[-1] < COOLDOWN:
        until = rollbacks[-1] + COOLDOWN
        return Admission(allowed=False, cooldown_until=until, rollbacks_in_window=recent,
                         reason=f"cooldown after the rollback at {rollbacks[-1].isoformat()}: "
                                f"no new attempt before {until.isoformat()}")
    after_rollback = bool(history) and history[-1].kind == "rollback"
    multiplier = FIRST_STAGE_MULTIPLIER if after_rollback else 1
    reason = (f"previous attempt rolled back: first stage minimum x{multiplier}" if after_rollback
              else "no rollback on record")
    return Admission(allowed=True, reason=reason, rollbacks_in_window=recent, first_stage_multiplier=multiplier)
