"""Experiment definition (pre-registered, validated) and its lifecycle."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kanaria.domain.profiles import ParameterOverrides
from kanaria.errors import ConflictError, ValidationError, validate_strict
from kanaria.names import BUCKETS

# Metric catalog: kind of sufficient statistic and which direction is better.
MEAN_METRICS = {
    "quality_score": True,
    "relevance_score": True,
    "csat": True,
    "latency_ms": False,
    "input_tokens": False,
    "output_tokens": False,
    "cost_usd": False,
}
BINARY_METRICS = {
    "task_completed": True,
    "cart_add": True,
    "error": False,
    "hallucination": False,
    "safety_filtered": False,
    "escalated": False,
}
METRICS = {**MEAN_METRICS, **BINARY_METRICS}
GUARDRAIL_METRICS = {*METRICS, "latency_p99_ms"}

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Characters no identifier may hold (units, intents): C0/C1 controls (NUL...), zero-width characters and the
# bidirectional overrides/isolates (an RTL override makes a unit id display as another one in logs and consoles).
_UNSAFE = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
UNIT_PATTERN = rf"^[^\s{_UNSAFE}]{{1,256}}$"  # a session or user id: any printable text without whitespace
INTENT_PATTERN = rf"^[^\s{_UNSAFE}]{{1,64}}$"
WEIGHT_TOLERANCE = 1e-6


class Status(str, Enum):
    """Lifecycle states of an experiment."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"


# action -> (allowed from, to)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "start": (frozenset({Status.DRAFT}), Status.RUNNING),
    "pause": (frozenset({Status.RUNNING}), Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.RUNNING),
    "complete": (frozenset({Status.RUNNING, Status.PAUSED}), Status.COMPLETED),
}


def next_status(current: Status, action: str) -> Status:
    """The status after `action`, or ConflictError for an illegal transition."""
    if action not in TRANSITIONS:
        raise ConflictError(f"unknown action {action!r}; expected one of {sorted(TRANSITIONS)}", field="action")
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise ConflictError(f"cannot {action} an experiment that is {current.value}", field="status")
    return target


class Variant(BaseModel):
    """One arm of the experiment: a share of the units and its parameter overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: float = Field(ge=0.0, le=1.0)
    overrides: ParameterOverrides = Field(default_factory=ParameterOverrides)
    description: str = ""


class Traffic(BaseModel):
    """Share of eligible units in the experiment, optionally stratified per intent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: float = Field(ge=0.0, le=1.0)
    per_intent: dict[str, float] = Field(default_factory=dict)

    @field_validator("per_intent")
    @classmethod
    def _rates_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for intent, rate in value.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for intent {intent!r} must be between 0 and 1, got {rate}")
        return value

    def rate(self, intent: str | None) -> float:
        """Traffic share for an intent (the default when the intent has no rate of its own)."""
        if intent is not None and intent in self.per_intent:
            return self.per_intent[intent]
        return self.default


class Guardrail(BaseModel):
    """A metric that must not get worse than a bound for a promotion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    max_degradation: float = Field(
        ge=0.0, description="allowed worsening vs control; a fraction of control's value when relative"
    )
    relative: bool | None = Field(
        default=None,
        description="default: points (absolute) for rates, a fraction of control's value for means and the p99",
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in GUARDRAIL_METRICS:
            raise ValueError(f"unknown metric {value!r}; expected one of {sorted(GUARDRAIL_METRICS)}")
        return value


class DecisionSettings(BaseModel):
    """Pre-registered decision rule: error rates, minimum detectable effect and peeking method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    power: float = Field(default=0.8, ge=0.5, lt=1.0)
    mde: float = Field(gt=0.0, description="minimum detectable effect, absolute, in the primary metric's unit")
    method: Literal["fixed", "obf", "always_valid"] = "obf"
    planned_n_per_variant: int | None = Field(default=None, ge=2)


class Experiment(BaseModel):
    """A pre-registered experiment definition; immutable once started."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    description: str = Field(min_length=1, max_length=2000)
    hypothesis: str = Field(min_length=1, max_length=2000)
    intents: tuple[str, ...] = Field(min_length=1)
    unit: Literal["session", "user"] = "session"
    namespace: str | None = Field(default=None, pattern=ID_PATTERN)
    namespace_segment: tuple[int, int] = (0, BUCKETS)
    salt: str | None = Field(default=None, min_length=1, max_length=128)
    traffic: Traffic = Field(default_factory=lambda: Traffic(default=1.0))
    control: str
    variants: tuple[Variant, ...] = Field(min_length=2, max_length=10)
    primary_metric: str
    guardrails: tuple[Guardrail, ...] = ()
    decision: DecisionSettings
    tier: Literal["standard", "revenue_critical"] = "standard"
    bandit: bool = False

    @field_validator("traffic", mode="before")
    @classmethod
    def _traffic_shorthand(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"default": value}
        return value

    @field_validator("primary_metric")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; expected one of {sorted(METRICS)}")
        return value

    @field_validator("namespace_segment")
    @classmethod
    def _segment_in_buckets(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not 0 <= start < end <= BUCKETS:
            raise ValueError(f"must satisfy 0 <= start < end <= {BUCKETS}, got [{start}, {end}]")
        return value

    @model_validator(mode="after")
    def _variants_consistent(self) -> "Experiment":
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError("variants: ids must be unique")
        if self.control not in ids:
            raise ValueError(f"control: {self.control!r} is not one of the variants {ids}")
        total = math.fsum(v.weight for v in self.variants)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"variants: weights must sum to 1, got {total:.6f}")
        return self

    @property
    def layer(self) -> str:
        """Mutual-exclusion layer: experiments sharing it get disjoint bucket segments."""
        return self.namespace or self.id

    @property
    def assignment_salt(self) -> str:
        """Salt of the variant hash (defaults to the experiment id)."""
        return self.salt or self.id

    @property
    def weights(self) -> dict[str, float]:
        """Configured weight per variant."""
        return {v.id: v.weight for v in self.variants}

    def variant(self, variant_id: str) -> Variant:
        """The variant with this id (KeyError if absent)."""
        for v in self.variants:
            if v.id == variant_id:
                return v
        raise KeyError(variant_id)

    def targets(self, intent: str | None) -> bool:
        """Whether requests of this intent are eligible ('*' targets every intent)."""
        return "*" in self.intents or (intent is not None and intent in self.intents)


def parse_experiment(document: Any) -> Experiment:
    """Validate a JSON experiment definition strictly (no "0.25" for a number); ValidationError naming the first
    bad field."""
    if not isinstance(document, dict):
        raise ValidationError("experiment definition must be a JSON object", field="experiment")
    return validate_strict(Experiment, document)


def segments_overlap(a: Experiment, b: Experiment) -> bool:
    """True when two experiments in one layer would share units."""
    if a.layer != b.layer:
        return False
    (a0, a1), (b0, b1) = a.namespace_segment, b.namespace_segment
    return a0 < b1 and b0 < a1
