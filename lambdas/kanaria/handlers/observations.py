"""Observations API: record one response's outcome metrics exactly once (single and batch of up to 100).

Exactly-once comes from the conditional Put inside the recording transaction (not Powertools Idempotency, which
would add two more writes per observation). Kept free of numpy/scipy.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from kanaria.dal.experiment_store import DynamoAssignmentStore, DynamoExperimentRepository
from kanaria.dal.observations import DynamoObservationStore
from kanaria.domain.assignment import configuration
from kanaria.domain.canary_evidence import CanaryEvidence, CanaryObservers, canary_evidence
from kanaria.domain.observation import Observation
from kanaria.domain.profiles import profile_for
from kanaria.domain.records import ExperimentRecord
from kanaria.errors import KanariaError
from kanaria.handlers.env import ObservationsEnvironment, load_environment, load_profiles
from kanaria.handlers.http import caller, json_body, new_resolver
from kanaria.handlers.models import parse_body
from kanaria.handlers.observability import observability
from kanaria.logic.experiments import get_experiment
from kanaria.logic.observations import RecordResult, record_observation
from kanaria.names import (
    DIM_EXPERIMENT,
    DIM_INTENT,
    DIM_TARGET,
    DIM_VARIANT,
    METRIC_COST,
    METRIC_CSAT,
    METRIC_ERRORS,
    METRIC_FLAGGED_OBSERVATIONS,
    METRIC_HALLUCINATIONS,
    METRIC_LATENCY,
    METRIC_OBSERVATIONS,
    METRIC_QUALITY,
    METRIC_REJECTED_CANARY_OBSERVATIONS,
    METRIC_SAFETY_STOPS,
    METRIC_THROTTLES,
)

EXPERIMENT_CACHE_SECONDS = 30  # definitions are immutable; stopped variants are seen within this delay

# No "service" dimension: dashboards match exactly {experiment_id, variant} and canary alarms exactly {target}.
logger, tracer, metrics = observability(service_dimension=False)

# (metric name, observation field, unit) emitted per variant and, during a canary rollout, per target.
_OUTCOME_METRICS = (
    (METRIC_QUALITY, "quality_score", MetricUnit.NoUnit),
    (METRIC_LATENCY, "latency_ms", MetricUnit.Milliseconds),
    (METRIC_CSAT, "csat", MetricUnit.NoUnit),
    (METRIC_COST, "cost_usd", MetricUnit.NoUnit),
    (METRIC_ERRORS, "error", MetricUnit.Count),
    (METRIC_HALLUCINATIONS, "hallucination", MetricUnit.Count),
)
app = new_resolver()

_experiments: dict[str, tuple[float, ExperimentRecord]] = {}


class ObservationBatchRequest(BaseModel):
    """Up to 100 observations; each item is validated on its own so one bad item does not sink the rest."""

    model_config = ConfigDict(extra="forbid")

    observations: list[Any] = Field(min_length=1, max_length=100)


@cache
def environment() -> ObservationsEnvironment:
    """Parsed once per execution environment."""
    return load_environment(ObservationsEnvironment)


@cache
def _repository() -> DynamoExperimentRepository:
    return DynamoExperimentRepository(environment().experiments_table)


@cache
def _stickies() -> DynamoAssignmentStore:
    env = environment()
    return DynamoAssignmentStore(env.assignments_table, env.aggregates_table)


@cache
def _store() -> DynamoObservationStore:
    env = environment()
    return DynamoObservationStore(env.observations_table, env.aggregates_table)


def _experiment(experiment_id: str) -> ExperimentRecord:
    hit = _experiments.get(experiment_id)
    if hit and time.monotonic() - hit[0] < EXPERIMENT_CACHE_SECONDS:
        return hit[1]
    record = get_experiment(_repository(), experiment_id)
    _experiments[experiment_id] = (time.monotonic(), record)
    return record


def _model_for(record: ExperimentRecord, variant_id: str, intent: str | None) -> str | None:
    """Model of the variant's resolved configuration for the intent (profiles from SSM, cached)."""
    profiles = load_profiles(environment().profiles_parameter)
    config, _ = configuration(record.experiment, variant_id, profile_for(intent, profiles))
    return config["model_id"]


def _record(observation: Observation) -> RecordResult:
    record = _experiment(observation.experiment_id)
    return record_observation(record, observation, _stickies(), _store(), datetime.now(timezone.utc), _model_for)


def _add_outcomes(result: RecordResult) -> None:
    metrics.add_metric(METRIC_OBSERVATIONS, MetricUnit.Count, 1)
    for name, metric, unit in _OUTCOME_METRICS:
        if metric in result.values:
            metrics.add_metric(name, unit, float(result.values[metric]))


def _add_canary_outcomes(result: RecordResult) -> None:
    _add_outcomes(result)
    observation = result.observation
    if observation.throttled is not None:
        metrics.add_metric(METRIC_THROTTLES, MetricUnit.Count, int(observation.throttled))
    if observation.safety_filtered is not None:
        metrics.add_metric(METRIC_SAFETY_STOPS, MetricUnit.Count, int(observation.safety_filtered))


@cache
def _observers() -> CanaryObservers:
    return environment().canary_observers


def _emit(result: RecordResult, evidence: CanaryEvidence) -> None:
    """EMF metrics of one newly recorded observation, flushed right after its write (a later item of the batch
    failing cannot lose them, and a retry sees a duplicate and emits nothing twice): one metric set for its
    experiment and variant (a flagged one counts only as FlaggedObservations there) and, during a canary rollout,
    one for its target ({target: canary|primary}, what the canary alarms watch) and one for its target and judged
    intent ({target, intent}, what the canary judge reads per intent). The target sets count every response the
    target served, flagged ones included (flags concern the experiment's statistics, not the canary's health),
    but a target canary counts only from the canary deployment itself: from anyone else it is
    RejectedCanaryObservations in the variant's set and nothing in the canary's."""
    if result.duplicate:
        return
    observation = result.observation
    metrics.add_dimension(DIM_EXPERIMENT, observation.experiment_id)
    metrics.add_dimension(DIM_VARIANT, observation.variant_id)
    if result.flag:
        metrics.add_metric(METRIC_FLAGGED_OBSERVATIONS, MetricUnit.Count, 1)
    else:
        _add_outcomes(result)
    if evidence is CanaryEvidence.REJECTED:
        metrics.add_metric(METRIC_REJECTED_CANARY_OBSERVATIONS, MetricUnit.Count, 1)
    metrics.flush_metrics()
    target = observation.target
    if not target or evidence is CanaryEvidence.REJECTED:
        return
    metrics.add_dimension(DIM_TARGET, target)
    _add_canary_outcomes(result)
    metrics.flush_metrics()
    if observation.intent in environment().judged_intent_set:
        metrics.add_dimension(DIM_TARGET, target)
        metrics.add_dimension(DIM_INTENT, observation.intent)
        _add_canary_outcomes(result)
        metrics.flush_metrics()


def _acknowledge(result: RecordResult, evidence: CanaryEvidence) -> dict[str, Any]:
    body = result.to_dict()
    if evidence is not CanaryEvidence.NOT_CANARY:
        body["canary"] = evidence.value
    return body


REJECTED_CANARY = "target canary from a caller that is not the canary deployment: not counted in the canary series"


@app.post("/observations")
@tracer.capture_method
def record_one() -> tuple[dict, int]:
    observation = parse_body(json_body(app), Observation)
    evidence = canary_evidence(observation.target, caller(app), _observers())
    result = _record(observation)
    _emit(result, evidence)
    if evidence is CanaryEvidence.REJECTED and not result.duplicate:
        logger.warning(REJECTED_CANARY, caller=caller(app), experiment_id=observation.experiment_id)
    return _acknowledge(result, evidence), 200 if result.duplicate else 201


@app.post("/observations/batch")
@tracer.capture_method
def record_batch() -> dict:
    batch = parse_body(json_body(app), ObservationBatchRequest)
    identity = caller(app)
    items, recorded, canary_rejected = [], [], 0
    for index, body in enumerate(batch.observations):
        try:
            observation = parse_body(body, Observation, f"observations.{index}")
            result = _record(observation)
        except KanariaError as exc:
            items.append({"index": index, "ok": False, "error": exc.to_dict()})
            continue
        evidence = canary_evidence(observation.target, identity, _observers())
        _emit(result, evidence)
        canary_rejected += evidence is CanaryEvidence.REJECTED and not result.duplicate
        recorded.append(result)
        items.append({"index": index, "ok": True, **_acknowledge(result, evidence)})
    summary = {
        "recorded": sum(1 for r in recorded if not r.duplicate),
        "duplicates": sum(1 for r in recorded if r.duplicate),
        "rejected": len(items) - len(recorded),
        "canary_rejected": canary_rejected,
    }
    logger.info("observation batch", extra=summary)
    if canary_rejected:
        logger.warning(REJECTED_CANARY, caller=identity, count=canary_rejected)
    return {"results": items, **summary}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
