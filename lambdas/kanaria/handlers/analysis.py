"""Scheduled analysis (EventBridge rule): every running experiment analysed from its counter items.

Runs with the analysis layer (numpy/scipy); the engine is imported on first use, never by the request path.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from kanaria.dal.experiment_store import DynamoExperimentRepository
from kanaria.dal.observations import DynamoAnalysisStore, json_default
from kanaria.domain.experiment import Status
from kanaria.errors import KanariaError, OperationalError
from kanaria.handlers.env import AnalysisEnvironment, load_environment, load_profiles
from kanaria.handlers.observability import observability
from kanaria.logic.analysis_run import AnalysisOutcome, Analyze, analyse_experiment
from kanaria.names import DIM_EXPERIMENT, METRIC_ANALYSIS_RUNS, METRIC_DECISION_CHANGES, METRIC_SRM_MISMATCH

# metrics: dimension set exactly {experiment_id}, as the alarms and dashboards expect
logger, tracer, metrics = observability(service_dimension=False)


@cache
def environment() -> AnalysisEnvironment:
    """Parsed once per execution environment."""
    return load_environment(AnalysisEnvironment)


@cache
def _repository() -> DynamoExperimentRepository:
    return DynamoExperimentRepository(environment().experiments_table)


@cache
def _store() -> DynamoAnalysisStore:
    return DynamoAnalysisStore(environment().aggregates_table)


@cache
def _sns() -> Any:
    return boto3.client("sns")


@cache
def engine() -> Analyze:
    """The analysis engine (numpy/scipy, from the analysis layer)."""
    from kanaria.analysis import analyze_snapshot

    return analyze_snapshot


def publish_alert(subject: str, message: dict[str, Any]) -> None:
    """One message on the on-call alerts topic."""
    _sns().publish(
        TopicArn=environment().alerts_topic_arn,
        Subject=subject,
        Message=json.dumps(message, sort_keys=True, default=json_default),
    )


def _emit(outcome: AnalysisOutcome) -> None:
    metrics.add_dimension(DIM_EXPERIMENT, outcome.experiment_id)
    metrics.add_metric(METRIC_ANALYSIS_RUNS, MetricUnit.Count, 1)
    metrics.add_metric(METRIC_SRM_MISMATCH, MetricUnit.Count, 1 if outcome.srm_mismatch else 0)
    metrics.add_metric(METRIC_DECISION_CHANGES, MetricUnit.Count, 1 if outcome.decision_changed else 0)
    metrics.flush_metrics()


@tracer.capture_method
def run(now: datetime) -> dict[str, Any]:
    """Analyse every running experiment; a domain error in one does not stop the others but fails the run."""
    profiles = load_profiles(environment().profiles_parameter)
    analysed, failed = [], []
    for record in _repository().list():
        if record.status is not Status.RUNNING:
            continue
        try:
            outcome = analyse_experiment(record, _store(), _repository(), engine(), publish_alert, profiles, now)
        except KanariaError as exc:
            logger.error("analysis failed", experiment_id=record.experiment.id, error=exc.to_dict())
            failed.append({"experiment_id": record.experiment.id, "error": exc.to_dict()})
            continue
        _emit(outcome)
        logger.info("experiment analysed", **outcome.__dict__)
        analysed.append(outcome.__dict__)
    if failed:
        raise OperationalError(f"analysis failed for {len(failed)} experiment(s)", field="experiments", details=failed)
    return {"analysed": analysed}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    return run(datetime.now(timezone.utc))
