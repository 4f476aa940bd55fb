"""The evaluation report's data: gate policy, per intent x configuration metrics, routing and projection, the
report itself and the per-configuration summary stored for the stage-0 gate (pydantic models, no logic beyond
their validation), and the defaults of the cost projection."""

from __future__ import annotations

from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from kanaria.domain import pricing
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile, profile_for
from kanaria.evaluation.scoring import SCORER_VERSION, WEIGHTS

# Traffic mix mapped from the design notes' intent distribution onto Kanaria's intents (sums to 1).
DEFAULT_INTENT_MIX: dict[str, float] = {
    "order_status": 0.15,
    "shipping_info": 0.15,
    "product_search": 0.20,
    "manga_qa": 0.17,
    "recommendation": 0.25,
    "chitchat": 0.08,
}
DEFAULT_REQUESTS_PER_MONTH = 30_000_000  # 1M messages a day
DEFAULT_LATENCY_LIMIT_MS = 3000.0  # the chatbot's 3-second SLA, on p95
MAX_ROUTING_COMBINATIONS = 200_000


class GatePolicy(BaseModel):
    """What an intent x configuration needs to pass, beyond the per-case quality target of the intent's profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pass_rate: dict[str, float] = Field(
        default_factory=lambda: {"high": 0.90, "medium": 0.80, "low": 0.80}, description="by profile severity"
    )
    max_hallucination_rate: dict[str, float] = Field(
        default_factory=lambda: {"high": 0.0}, description="by severity; absent = no limit beyond pass rate"
    )
    min_cases: int = Field(default=5, ge=1)

    def for_intent(self, intent: str, profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> "IntentGate":
        """The thresholds that apply to one intent."""
        profile = profile_for(intent, profiles)
        return IntentGate(
            quality_target=profile.quality_target,
            severity=profile.severity,
            min_pass_rate=self.min_pass_rate.get(profile.severity, 0.80),
            max_hallucination_rate=self.max_hallucination_rate.get(profile.severity),
            min_cases=self.min_cases,
        )


class IntentGate(BaseModel):
    """Thresholds of one intent."""

    model_config = ConfigDict(frozen=True)

    quality_target: float
    severity: str
    min_pass_rate: float
    max_hallucination_rate: float | None
    min_cases: int


class CellMetrics(BaseModel):
    """One configuration on one intent (or on every intent when intent is "*")."""

    model_config = ConfigDict(frozen=True)

    config: str
    intent: str
    n: int
    passed_cases: int
    errors: int
    hallucinations: int
    throttles: int
    mean_quality: float
    pass_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None
    cost_per_satisfactory_usd: float | None
    token_efficiency: float | None = Field(description="mean quality per 1K tokens (input + output)")
    latency_quality_ratio: float | None = Field(description="p95 latency ms / mean quality (lower is better)")
    quality_target: float | None = None
    min_pass_rate: float | None = None
    gate_passed: bool | None = None
    gate_reasons: tuple[str, ...] = ()


class ConfigSummary(BaseModel):
    """Identity of one evaluated configuration."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    config_hash: str
    intent_hashes: dict[str, str]
    model_ids: list[str]
    offline: bool


class RouteChoice(BaseModel):
    """The configuration recommended for one intent (None when nothing qualifies, with the reasons)."""

    model_config = ConfigDict(frozen=True)

    intent: str
    config: str | None
    share: float
    mean_quality: float | None = None
    mean_cost_usd: float | None = None
    latency_p95_ms: float | None = None
    reasons: tuple[str, ...] = ()


class Routing(BaseModel):
    """Intent -> configuration under a latency limit (p95) and an optional monthly budget."""

    model_config = ConfigDict(frozen=True)

    latency_limit_ms: float
    monthly_budget_usd: float | None
    objective: Literal["min_cost", "max_quality_within_budget"]
    choices: tuple[RouteChoice, ...]
    monthly_cost_usd: float | None
    within_budget: bool | None
    notes: tuple[str, ...] = ()


class Projection(BaseModel):
    """Monthly cost of the intent mix on each configuration alone and on the recommended routing."""

    model_config = ConfigDict(frozen=True)

    requests_per_month: int
    intent_mix: dict[str, float]
    per_configuration_usd: dict[str, float | None]
    routed_usd: float | None
    covered_share: float = Field(description="share of the mix the projection covers (intents evaluated)")
    savings_vs_usd: dict[str, float | None]


class DatasetInfo(BaseModel):
    """Which dataset the report ran on."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    sha256: str
    uri: str | None
    cases: int
    intents: list[str]


class GraderInfo(BaseModel):
    """Which LLM grader scored (the hash pins model, prompt, rubric and settings)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    judge_hash: str


class EvaluationReport(BaseModel):
    """Everything one evaluation run produced except the per-case records (stored next to it)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    created_at: str
    dataset: DatasetInfo
    scorer_version: str = SCORER_VERSION
    weights: dict[str, float] = Field(default_factory=lambda: dict(WEIGHTS))
    judge: GraderInfo | None = None
    price_table_version: str = pricing.PRICE_TABLE_VERSION
    policy: GatePolicy = Field(default_factory=GatePolicy)
    configurations: tuple[ConfigSummary, ...]
    cells: tuple[CellMetrics, ...]
    overall: tuple[CellMetrics, ...]
    pareto: dict[str, list[str]]
    routing: Routing
    projection: Projection

    def cell(self, config: str, intent: str) -> CellMetrics | None:
        """The metrics of one configuration on one intent."""
        return next((c for c in self.cells if c.config == config and c.intent == intent), None)


class IntentResult(BaseModel):
    """Stored per intent for the gate."""

    model_config = ConfigDict(frozen=True)

    n: int
    pass_rate: float
    mean_quality: float
    quality_target: float
    min_pass_rate: float
    hallucinations: int
    errors: int
    passed: bool
    reasons: tuple[str, ...] = ()


class EvaluationSummary(BaseModel):
    """What the evaluations table keeps per config hash (EVAL#<ts>#<dataset version> and LATEST)."""

    model_config = ConfigDict(frozen=True)

    config_hash: str
    config_name: str
    run_id: str
    created_at: str
    dataset_version: str
    report_uri: str | None = None
    scorer_version: str
    judge_hash: str | None = None
    price_table_version: str
    offline: bool
    per_intent: dict[str, IntentResult]

    @property
    def passed(self) -> bool:
        """Every evaluated intent passed."""
        return bool(self.per_intent) and all(r.passed for r in self.per_intent.values())
