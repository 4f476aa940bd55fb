"""Rehearsal scenarios: traffic, the true effect of each configuration, an experiment, rollouts and faults.

A scenario is a JSON file (scenarios/*.json). Times are scenario minutes; the clock's `speed` says how many
scenario seconds pass per wall second. A bad field fails with a ValidationError naming it (CLI exit 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from kanaria.domain.experiment import ID_PATTERN, METRICS
from kanaria.errors import ValidationError, from_pydantic
from kanaria_tools.paths import repository_root

DEFAULT_SCENARIO = "default"
DECISIONS = ("PROMOTE", "REVIEW", "CONTINUE", "NO_DECISION", "ROLLBACK")
FAULT_KINDS = (
    "error_spike",
    "latency_regression",
    "throttling",
    "hallucination_spike",
    "quality_drop",
    "srm_assignment_bug",
    "missing_metrics",
    "rollback_function_failure",
)
# Faults of the system itself rather than of the traffic: not the incident a rollback's reaction time is timed from.
SYSTEM_FAULT_KINDS = ("rollback_function_failure",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    """Log-normal response latency given by its median and p99 (ms)."""

    median_ms: float = Field(gt=0, le=600_000)
    p99_ms: float = Field(gt=0, le=3_600_000)

    @model_validator(mode="after")
    def _ordered(self) -> "Latency":
        if self.p99_ms <= self.median_ms:
            raise ValueError("p99_ms: must be greater than median_ms")
        return self

    @property
    def sigma(self) -> float:
        """Log-space standard deviation (p99 = median x exp(2.326 sigma))."""
        return math.log(self.p99_ms / self.median_ms) / 2.3263


class Effects(_Strict):
    """The true behaviour of a configuration: what the synthetic chatbot draws each response from."""

    quality_score: float = Field(ge=0, le=1, description="mean quality score")
    quality_sd: float = Field(default=0.1, ge=0, le=0.5)
    latency: Latency
    error_rate: float = Field(default=0.002, ge=0, le=1)
    hallucination_rate: float = Field(default=0.01, ge=0, le=1)
    throttle_rate: float = Field(default=0.0, ge=0, le=1)
    csat: float = Field(default=3.2, ge=1, le=4, description="mean CSAT (1-4)")
    csat_response_rate: float = Field(default=0.3, ge=0, le=1, description="share of responses with a CSAT answer")
    cost_usd: float = Field(default=0.008, ge=0, le=10, description="mean cost per response")
    task_completion_rate: float = Field(default=0.8, ge=0, le=1)
    cart_add_rate: float = Field(default=0.1, ge=0, le=1)
    safety_filter_rate: float = Field(default=0.002, ge=0, le=1, description="responses stopped by the guardrails")


class EffectOverrides(_Strict):
    """Per-intent differences from a configuration's effects (unset fields keep the configuration's value)."""

    quality_score: float | None = Field(default=None, ge=0, le=1)
    latency: Latency | None = None
    error_rate: float | None = Field(default=None, ge=0, le=1)
    hallucination_rate: float | None = Field(default=None, ge=0, le=1)
    task_completion_rate: float | None = Field(default=None, ge=0, le=1)
    csat: float | None = Field(default=None, ge=1, le=4)
    cost_usd: float | None = Field(default=None, ge=0, le=10)


class Configuration(_Strict):
    """A chatbot configuration (model + parameters) and its true effects."""

    model_id: str = Field(min_length=1, max_length=256)
    description: str = ""
    temperature: float | None = Field(default=None, ge=0, le=1)
    system_prompt_version: str | None = Field(default=None, min_length=1, max_length=64)
    effects: Effects
    per_intent: dict[str, EffectOverrides] = Field(default_factory=dict)

    def effects_for(self, intent: str | None) -> Effects:
        """Effects of this configuration for an intent."""
        override = self.per_intent.get(intent or "")
        if override is None:
            return self.effects
        return self.effects.model_copy(update=override.model_dump(exclude_none=True))

    def overrides(self) -> dict[str, Any]:
        """Experiment variant overrides that select this configuration."""
        body: dict[str, Any] = {"model_id": self.model_id}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.system_prompt_version is not None:
            body["system_prompt_version"] = self.system_prompt_version
        return body


class Traffic(_Strict):
    """Chatbot traffic: volume and intent mix."""

    requests_per_minute: int = Field(ge=10, le=20_000)
    intent_mix: dict[str, float] = Field(min_length=1)
    sessions: int = Field(default=20_000, ge=10, le=10_000_000, description="distinct sessions traffic comes from")

    @field_validator("intent_mix")
    @classmethod
    def _mix_sums_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if any(share < 0 for share in value.values()):
            raise ValueError("shares must not be negative")
        total = math.fsum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1, got {total:.4f}")
        return value


class Fault(_Strict):
    """Something going wrong at a scenario time (minutes since its phase started)."""

    kind: Literal[
        "error_spike",
        "latency_regression",
        "throttling",
        "hallucination_spike",
        "quality_drop",
        "srm_assignment_bug",
        "missing_metrics",
        "rollback_function_failure",
    ]
    at_minute: float = Field(ge=0, le=100_000)
    duration_minutes: float | None = Field(default=None, gt=0, description="until the end of the phase when unset")
    target: Literal["canary", "primary", "treatment", "control"] = "canary"
    rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="error / throttle / hallucination rate, or the share of treatment units the SRM bug loses",
    )
    latency_factor: float | None = Field(default=None, gt=0, le=100)
    warm_after_requests: int | None = Field(
        default=None,
        ge=1,
        description="cold start: the latency factor fades out linearly over this many requests of the target",
    )
    quality_score: float | None = Field(default=None, ge=0, le=1, description="quality_drop: the mean quality score")
    intents: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="only requests of these intents are affected (default: all)"
    )
    failures: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="rollback_function_failure: the deployed "
        "rollback function raises on this many invocations while the fault is active",
    )
    description: str = ""

    @model_validator(mode="after")
    def _parameters(self) -> "Fault":
        needs = {
            "error_spike": "rate",
            "throttling": "rate",
            "hallucination_spike": "rate",
            "srm_assignment_bug": "rate",
            "latency_regression": "latency_factor",
            "quality_drop": "quality_score",
            "rollback_function_failure": "failures",
        }
        needed = needs.get(self.kind)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"{needed}: required for a {self.kind} fault")
        return self

    def active(self, minute: float, intent: str | None = None) -> bool:
        """Whether the fault is in effect at this phase minute (for a request of `intent`, when given)."""
        end = math.inf if self.duration_minutes is None else self.at_minute + self.duration_minutes
        if self.intents is not None and intent is not None and intent not in self.intents:
            return False
        return self.at_minute <= minute < end


class ExperimentPhase(_Strict):
    """An A/B experiment between two configurations, decided by the scheduled analysis."""

    id: str = Field(pattern=ID_PATTERN)
    description: str = Field(min_length=1)
    hypothesis: str = Field(min_length=1)
    control: str
    treatment: str
    intents: tuple[str, ...] = Field(min_length=1)
    primary_metric: str = "quality_score"
    mde: float = Field(gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    method: Literal["fixed", "obf", "always_valid"] = "obf"
    planned_n_per_variant: int = Field(default=2000, ge=20, le=1_000_000)
    guardrails: tuple[dict[str, Any], ...] = ()
    tier: Literal["standard", "revenue_critical"] = "standard"
    minutes: float = Field(gt=0, le=100_000, description="scenario minutes of traffic at most")
    analysis_every_minutes: float = Field(default=60, gt=0)
    max_observations: int = Field(default=4000, ge=50, le=200_000, description="cap on observations sent")
    expect_decision: tuple[str, ...] = Field(
        default=(), description="decisions the analysis may reach (any of them is as expected; empty: any decision)"
    )
    faults: tuple[Fault, ...] = ()

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; expected one of {sorted(METRICS)}")
        return value

    @field_validator("expect_decision", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("expect_decision")
    @classmethod
    def _known_decisions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in DECISIONS]
        if unknown:
            raise ValueError(f"unknown decision {unknown[0]!r}; expected one of {list(DECISIONS)}")
        return value


class StageSpec(_Strict):
    """One canary stage on the scenario clock."""

    percent: int = Field(ge=1, le=99)
    minutes: float = Field(gt=0, le=100_000)
    gates: dict[str, Any] = Field(
        default_factory=dict, description="StageGates fields of this stage only (on top of the rollout's gates)"
    )


class OfflineEvaluationSpec(_Strict):
    """Stage 0 for real: before the rollout the rehearsal runs the offline evaluation (offline adapter) of the
    candidate on a golden dataset and stores it in the deployed evaluation bucket and table."""

    dataset: str = Field(
        min_length=1,
        max_length=300,
        description="golden dataset (JSON lines), relative to the repository root or absolute",
    )
    intents: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description="intents the candidate serves (evaluated and checked by stage 0); default: every profiled intent",
    )

    @field_validator("dataset")
    @classmethod
    def _jsonl(cls, value: str) -> str:
        if not value.endswith(".jsonl"):
            raise ValueError(f"a golden dataset is a .jsonl file, got {value!r}")
        return value

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from kanaria.evaluation.configs import served_intents

        known = served_intents()
        unknown = [i for i in value or () if i not in known]
        if unknown:
            raise ValueError(f"unknown intent(s) {unknown}; known: {known}")
        return value


class RolloutPhase(_Strict):
    """A canary rollout of `candidate` over `baseline` through the deployed state machine."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    description: str = ""
    baseline: str
    candidate: str
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=10)
    check_minutes: float = Field(default=1, gt=0, description="how often the judge and gates look")
    approval: Literal["auto", "reject"] = "auto"
    warmup_requests: int | None = Field(
        default=None,
        ge=1,
        le=5000,
        description="synthetic requests the state machine's warm-up step sends to the canary before live traffic",
    )
    link_experiment: bool = Field(
        default=False,
        description="the candidate is the experiment's variant of the same "
        "name (gates with require_significance read the experiment's analysis)",
    )
    gates: dict[str, Any] = Field(default_factory=dict, description="StageGates fields applied to every stage")
    judge: dict[str, Any] = Field(default_factory=dict, description="JudgeSettings fields of the rollout's judge")
    faults: tuple[Fault, ...] = ()
    offline_evaluation: OfflineEvaluationSpec | None = Field(
        default=None, description="run and store the candidate's offline evaluation; stage 0 reads it"
    )
    expect: Literal["completed", "rolled_back", "refused"]
    max_minutes: float = Field(default=600, gt=0, description="the rehearsal gives up after this")

    @field_validator("stages")
    @classmethod
    def _increasing(cls, value: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
        percents = [s.percent for s in value]
        if any(b <= a for a, b in zip(percents, percents[1:])):
            raise ValueError(f"percents must increase strictly, got {percents}")
        return value


class Clock(_Strict):
    """How fast scenario time runs."""

    speed: float = Field(default=60, ge=1, le=3600, description="scenario seconds per wall second")


class Scenario(_Strict):
    """A whole rehearsal."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,60}$")
    description: str = Field(min_length=1)
    design_note: str = ""
    seed: int = 7
    clock: Clock = Field(default_factory=Clock)
    traffic: Traffic
    configurations: dict[str, Configuration] = Field(min_length=1)
    experiment: ExperimentPhase | None = None
    rollouts: tuple[RolloutPhase, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        self._check_experiment()
        for index, rollout in enumerate(self.rollouts):
            self._check_rollout(index, rollout)
        for config_name, config in self.configurations.items():
            for intent in config.per_intent:
                if intent not in self.traffic.intent_mix:
                    raise ValueError(
                        f"configurations.{config_name}.per_intent: {intent!r} is not in traffic.intent_mix"
                    )
        if self.experiment is None and not self.rollouts:
            raise ValueError("experiment: a scenario needs an experiment or at least one rollout")
        return self

    def _check_known(self, where: str, name: str) -> None:
        known = set(self.configurations)
        if name not in known:
            raise ValueError(f"{where}: unknown configuration {name!r}; defined: {sorted(known)}")

    def _check_experiment(self) -> None:
        """The experiment's variants are configurations, its intents traffic intents."""
        if self.experiment is None:
            return
        self._check_known("experiment.control", self.experiment.control)
        self._check_known("experiment.treatment", self.experiment.treatment)
        for intent in self.experiment.intents:
            if intent != "*" and intent not in self.traffic.intent_mix:
                raise ValueError(f"experiment.intents: {intent!r} is not in traffic.intent_mix")

    def _check_rollout(self, index: int, rollout: RolloutPhase) -> None:
        """A linked rollout's candidate is a variant of the experiment; its faults' intents are traffic intents;
        its baseline and candidate are configurations."""
        if rollout.link_experiment and (
            self.experiment is None or rollout.candidate not in (self.experiment.control, self.experiment.treatment)
        ):
            raise ValueError(f"rollouts.{index}.link_experiment: the candidate must be a variant of the experiment")
        for f_index, fault in enumerate(rollout.faults):
            unknown = [i for i in fault.intents or () if i not in self.traffic.intent_mix]
            if unknown:
                raise ValueError(f"rollouts.{index}.faults.{f_index}.intents: {unknown} are not in traffic.intent_mix")
        self._check_known(f"rollouts.{index}.baseline", rollout.baseline)
        self._check_known(f"rollouts.{index}.candidate", rollout.candidate)

    def faults(self) -> list[tuple[str, Fault]]:
        """Every fault with the phase it belongs to."""
        found = [("experiment", f) for f in (self.experiment.faults if self.experiment else ())]
        for rollout in self.rollouts:
            found.extend((rollout.name, f) for f in rollout.faults)
        return found


def parse_scenario(document: Any, source: str = "scenario") -> Scenario:
    """Validate a scenario; ValidationError naming the first bad field."""
    if not isinstance(document, dict):
        raise ValidationError(f"{source} must be a JSON object", field="scenario")
    try:
        return Scenario.model_validate(document)
    except PydanticValidationError as exc:
        error = from_pydantic(exc)
        raise ValidationError(f"{source}: {error.reason}", field=error.field, details=error.details) from None


def scenarios_dir() -> Path:
    """The shipped scenarios: scenarios/ in the Kanaria checkout."""
    return repository_root() / "scenarios"


def resolve_path(name_or_path: str) -> Path:
    """A scenario file: a path, or a name in scenarios/ (with or without .json)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = scenarios_dir()
    for candidate in (shipped / name_or_path, shipped / f"{name_or_path}.json"):
        if candidate.exists():
            return candidate
    available = ", ".join(sorted(p.stem for p in shipped.glob("*.json"))) or "none"
    raise ValidationError(f"no scenario file {name_or_path!r} (scenarios: {available})", field="scenario")


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario file."""
    path = resolve_path(name_or_path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path.name} is not valid JSON: {exc}", field="scenario") from None
    return parse_scenario(document, path.name)


def list_scenarios() -> list[Path]:
    """Shipped scenario files."""
    return sorted(scenarios_dir().glob("*.json"))
