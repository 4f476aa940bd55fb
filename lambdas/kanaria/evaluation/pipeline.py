"""One evaluation run, shared by the CLI (all cases locally) and the Step Functions run (plan, chunks, report)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile
from kanaria.errors import ValidationError, validate
from kanaria.evaluation.bedrock import ModelInvoker
from kanaria.evaluation.configs import EvalConfiguration, check_unique, parse_configuration
from kanaria.evaluation.dataset import Dataset
from kanaria.evaluation.grader import GraderSpec
from kanaria.evaluation.report import (
    DEFAULT_INTENT_MIX,
    DEFAULT_LATENCY_LIMIT_MS,
    DEFAULT_REQUESTS_PER_MONTH,
    EvaluationReport,
    build_report,
)
from kanaria.evaluation.runner import CaseRecord, chunk_bounds, evaluate_tasks, plan_tasks

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$"


class RunSettings(BaseModel):
    """What a run evaluates and how the report decides (everything but the dataset and the configurations)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intents: tuple[str, ...] = ()
    judge: GraderSpec | None = None  # the LLM grader (the stored and JSON name is "judge")
    intent_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_INTENT_MIX))
    latency_limit_ms: float = Field(default=DEFAULT_LATENCY_LIMIT_MS, gt=0)
    monthly_budget_usd: float | None = Field(default=None, ge=0)
    requests_per_month: int = Field(default=DEFAULT_REQUESTS_PER_MONTH, ge=1)
    chunk_size: int = Field(default=10, ge=1, le=200, description="cases per runner Lambda invocation")
    concurrency: int = Field(default=2, ge=1, le=16, description="model calls in flight per runner")


class RunRequest(BaseModel):
    """The Step Functions execution input: dataset object, configurations, settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    dataset_key: str = Field(min_length=1, max_length=1024, description="object key in the evaluation bucket")
    dataset_version_id: str | None = Field(default=None, max_length=1024, description="pinned by the plan step")
    configurations: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=10)
    settings: RunSettings = Field(default_factory=RunSettings)

    @field_validator("configurations")
    @classmethod
    def _valid_configurations(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        check_unique([parse_configuration(c, f"configurations.{i}") for i, c in enumerate(value)])
        return value

    def parsed_configurations(self) -> list[EvalConfiguration]:
        """The configurations as models."""
        return [parse_configuration(c, f"configurations.{i}") for i, c in enumerate(self.configurations)]


def parse_run_request(document: Any) -> RunRequest:
    """Validate an execution input; ValidationError naming the first bad field."""
    if not isinstance(document, dict):
        raise ValidationError("the evaluation request must be a JSON object", field="request")
    return validate(RunRequest, document)


def new_run_id(now: datetime) -> str:
    """Sortable unique run id: <UTC timestamp>-<8 hex>."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def iso(now: datetime) -> str:
    """UTC ISO timestamp (seconds) as stored."""
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_chunks(dataset: Dataset, chunk_size: int) -> list[dict[str, int]]:
    """Case-index chunks for the Map state: [{index, start, end}]."""
    return [{"index": i, "start": s, "end": e} for i, (s, e) in enumerate(chunk_bounds(len(dataset.cases), chunk_size))]


def evaluate_chunk(
    dataset: Dataset,
    configurations: list[EvalConfiguration],
    start: int,
    end: int,
    invoker: ModelInvoker,
    settings: RunSettings,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> list[CaseRecord]:
    """Every configuration on cases[start:end] (the runner Lambda's unit of work)."""
    if not 0 <= start < end <= len(dataset.cases):
        raise ValidationError(
            f"chunk [{start}, {end}) is outside the dataset's {len(dataset.cases)} cases", field="chunk"
        )
    tasks = plan_tasks(dataset, configurations, profiles, start=start, end=end)
    return evaluate_tasks(tasks, invoker, settings.judge, concurrency=settings.concurrency, profiles=profiles)


def evaluate_all(
    dataset: Dataset,
    configurations: list[EvalConfiguration],
    invoker: ModelInvoker,
    settings: RunSettings,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> list[CaseRecord]:
    """Every configuration on every case, locally (the CLI): the same task evaluation as the Lambda chunks."""
    return evaluate_tasks(
        plan_tasks(dataset, configurations, profiles),
        invoker,
        settings.judge,
        concurrency=settings.concurrency,
        profiles=profiles,
    )


def assemble_report(
    run_id: str,
    created_at: str,
    dataset: Dataset,
    configurations: list[EvalConfiguration],
    records: list[CaseRecord],
    settings: RunSettings,
    profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES,
) -> EvaluationReport:
    """The report of a run's records, ordered configuration-major like the tasks."""
    order = {c.name: i for i, c in enumerate(configurations)}
    case_order = {c.case_id: i for i, c in enumerate(dataset.cases)}
    ordered = sorted(records, key=lambda r: (order.get(r.config_name, len(order)), case_order.get(r.case_id, 0)))
    return build_report(
        run_id=run_id,
        created_at=created_at,
        dataset=dataset,
        configurations=configurations,
        records=ordered,
        grader=settings.judge,
        intent_mix=settings.intent_mix,
        latency_limit_ms=settings.latency_limit_ms,
        monthly_budget_usd=settings.monthly_budget_usd,
        requests_per_month=settings.requests_per_month,
        profiles=profiles,
    )
