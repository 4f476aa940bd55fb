"""Canary rollouts, pure: the request (candidate, offline evaluation, warm-up) and the stage plan (stages, gates'
thresholds, approval, the judge's settings), with the default plan. Gates: rollout_gates.py; progression, weights
and anti-flapping: rollout.py."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic import (
    ValidationError as PydanticValidationError,
)

from kanaria.canary.judge import JudgeSettings, horizon_periods
from kanaria.domain.experiment import ID_PATTERN
from kanaria.domain.secrets import HEADER_NAME, PARAMETER_NAME, refuse_secret_headers
from kanaria.errors import ValidationError, from_pydantic, validate_strict

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


class StageGates(BaseModel):
    """Thresholds of one stage; a gate left out (None) is not evaluated. Rates are fractions (0.005 = 0.5%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float | None = Field(default=None, ge=0, le=1, description="canary errors / observations")
    max_latency_p99_increase: float | None = Field(
        default=None, ge=0, le=10, description="canary p99 may exceed primary p99 by this fraction (0.10 = 10%)"
    )
    max_hallucination_rate_increase: float | None = Field(
        default=None, ge=0, le=1, description="absolute: canary rate - primary rate"
    )
    max_throttle_rate: float | None = Field(default=None, ge=0, le=1, description="canary throttles / observations")
    max_csat_drop: float | None = Field(
        default=None, ge=0, le=1, description="canary mean CSAT >= primary mean x (1 - this)"
    )
    max_quality_drop: float | None = Field(
        default=None, ge=0, le=1, description="canary mean quality >= primary mean x (1 - this)"
    )
    require_significance: bool = Field(
        default=False, description="the latest analysis result must favour the candidate's variant"
    )
    min_observations: int = Field(default=200, ge=1, le=10_000_000, description="per side, else inconclusive")
    min_csat_responses: int = Field(default=30, ge=1, le=10_000_000)
    alarms: bool = Field(default=True, description="critical composite in ALARM fails, warning not OK holds")

    def has_checks(self) -> bool:
        """Whether any threshold or the significance gate is set."""
        thresholds = (
            self.max_error_rate,
            self.max_latency_p99_increase,
            self.max_hallucination_rate_increase,
            self.max_throttle_rate,
            self.max_csat_drop,
            self.max_quality_drop,
        )
        return any(t is not None for t in thresholds) or self.require_significance


class Stage(BaseModel):
    """One traffic step: its share, how long it is observed at least, how often, and how long it may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    percent: int = Field(ge=1, le=99, description="canary share of the listener's traffic")
    min_duration_seconds: Seconds
    check_interval_seconds: PositiveSeconds = Field(default=60, description="how often the judge and gates look")
    max_hold_seconds: Seconds | None = Field(
        default=None, description="extra time on an inconclusive gate after the minimum; default = the minimum"
    )
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
        default=None, description="SendTaskHeartbeat interval; default timeout - 1 (no heartbeat needed)"
    )

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
    stickiness_seconds: PositiveSeconds = Field(
        default=HOUR, le=7 * DAY, description="ALB target-group stickiness while weighted"
    )
    judge: JudgeSettings | None = Field(
        default_factory=JudgeSettings,
        description="the sequential canary judge (kanaria.canary); null leaves only the stages' point gates",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "RolloutPlan":
        if self.judge is None:
            for stage in self.stages:
                if not stage.gates.has_checks():
                    raise ValueError(
                        f"stages: stage {stage.name!r} has nothing to check: set a gate threshold or "
                        "require_significance, or keep the judge"
                    )
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
                "raise check_interval_seconds or shorten min_duration_seconds/max_hold_seconds"
            )
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
        default=None,
        min_length=1,
        description="intents the candidate serves (stage 0 checks each); None: every profiled intent",
    )
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
    config_hash: str | None = Field(
        default=None, pattern=CONFIG_HASH_PATTERN, description="hash the evaluation ran on; must match the candidate's"
    )


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
    headers: dict[str, str] = Field(default_factory=dict, description="literal headers; never a credential")
    secret_headers: dict[Annotated[str, Field(pattern=HEADER_NAME)], Annotated[str, Field(pattern=PARAMETER_NAME)]] = (
        Field(
            default_factory=dict,
            max_length=8,
            description="header -> SSM SecureString parameter name, read by the warm-up sender only",
        )
    )

    @field_validator("headers")
    @classmethod
    def _no_literal_secret(cls, headers: dict[str, str]) -> dict[str, str]:
        refuse_secret_headers(headers)
        return headers

    @model_validator(mode="after")
    def _each_header_once(self) -> "Warmup":
        both = {h.lower() for h in self.headers} & {h.lower() for h in self.secret_headers}
        if both:
            raise ValueError(f"warmup.secret_headers: {sorted(both)} also given in warmup.headers")
        return self


class RolloutRequest(BaseModel):
    """The execution input: candidate, stage plan, the offline evaluation and an optional warm-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str | None = Field(
        default=None, pattern=ROLLOUT_ID_PATTERN, description="defaults to the execution name"
    )
    candidate: Candidate
    plan: RolloutPlan = Field(default_factory=lambda: default_plan())
    offline_evaluation: OfflineEvaluation | None = Field(
        default=None, description="evidence for stage 0 when no evaluation of the candidate is stored"
    )
    warmup: Warmup | None = None
    requested_by: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _significance_needs_experiment(self) -> "RolloutRequest":
        for stage in self.plan.stages:
            if stage.gates.require_significance and self.candidate.experiment_id is None:
                raise ValueError(
                    f"candidate.experiment_id: required because stage {stage.name!r} gates on significance "
                    "(set experiment_id and variant, or drop require_significance)"
                )
        return self


_GUARDRAILS = dict(
    max_error_rate=0.005, max_latency_p99_increase=0.10, max_hallucination_rate_increase=0.01, max_throttle_rate=0.05
)
DEFAULT_PLAN = RolloutPlan(
    stages=(
        # 25,000 history events: one look a minute at 5% (8 h with the hold), then every 3 and 6 minutes
        Stage(
            name="canary-5",
            percent=5,
            min_duration_seconds=4 * HOUR,
            check_interval_seconds=60,
            gates=StageGates(max_error_rate=0.005, max_latency_p99_increase=0.10),
        ),
        Stage(
            name="canary-25",
            percent=25,
            min_duration_seconds=DAY,
            check_interval_seconds=180,
            gates=StageGates(**_GUARDRAILS, max_csat_drop=0.01),
        ),
        Stage(
            name="canary-50",
            percent=50,
            min_duration_seconds=2 * DAY,
            check_interval_seconds=360,
            gates=StageGates(**_GUARDRAILS, max_csat_drop=0.01, require_significance=True),
        ),
    ),
    approval=ApprovalSettings(timeout_seconds=3 * DAY),
)


def default_plan() -> RolloutPlan:
    """The plan of a request that names none (defined below the request model that uses it)."""
    return DEFAULT_PLAN


def parse_rollout_request(document: Any) -> RolloutRequest:
    """Validate a rollout request strictly (no "5" for a number); ValidationError naming the first bad field."""
    if not isinstance(document, dict):
        raise ValidationError("rollout request must be a JSON object", field="request")
    return validate_strict(RolloutRequest, document)


def check_offline_evaluation(candidate: Candidate, evaluation: OfflineEvaluation | None) -> OfflineEvaluation:
    """Stage 0 quality gate: the evaluation when it passed, else ValidationError with the reason."""
    if evaluation is None:
        raise ValidationError(
            f"no offline evaluation of configuration {candidate.config_hash} is stored and the request carries "
            "none; run `kanaria evaluate` on the golden dataset first",
            field="offline_evaluation",
        )
    if evaluation.config_hash is not None and evaluation.config_hash != candidate.config_hash:
        raise ValidationError(
            f"evaluated config {evaluation.config_hash!r} is not the candidate's {candidate.config_hash!r}; "
            "evaluate this exact configuration",
            field="offline_evaluation.config_hash",
        )
    failed = sorted(intent for intent, result in evaluation.per_intent.items() if not result.passed)
    if not evaluation.passed or failed:
        which = f" (failed intents: {', '.join(failed)})" if failed else ""
        raise ValidationError(
            f"the candidate failed its offline quality gate{which}; see {evaluation.report_uri}. Fix the "
            "configuration and evaluate again before any traffic",
            field="offline_evaluation.passed",
        )
    return evaluation


def with_first_stage_multiplier(plan: RolloutPlan, multiplier: int) -> RolloutPlan:
    """The plan with the first stage's minimum duration multiplied (anti-flapping after a rollback)."""
    if multiplier == 1:
        return plan
    first = plan.stages[0]
    stretched = first.model_copy(
        update={
            "min_duration_seconds": first.min_duration_seconds * multiplier,
            "max_hold_seconds": first.hold_bound_seconds,
        }
    )
    try:
        return RolloutPlan.model_validate(
            {**plan.model_dump(), "stages": [stretched.model_dump(), *(s.model_dump() for s in plan.stages[1:])]}
        )
    except PydanticValidationError as exc:
        raise from_pydantic(exc, "plan") from None
