"""Experiments API: create, get, list, lifecycle transitions and variant stops (IAM-authorized HTTP API)."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from kanaria.dal.experiment_store import DynamoExperimentRepository
from kanaria.handlers.env import api_environment
from kanaria.handlers.http import caller, json_body, new_resolver
from kanaria.handlers.models import StopVariantRequest, TransitionRequest, parse_body
from kanaria.handlers.observability import observability
from kanaria.logic import experiments as registry

logger, tracer, metrics = observability()
app = new_resolver()


@cache
def _repository() -> DynamoExperimentRepository:
    return DynamoExperimentRepository(api_environment().experiments_table)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@app.post("/experiments")
@tracer.capture_method
def create_experiment() -> tuple[dict, int]:
    record = registry.create_experiment(_repository(), json_body(app), caller(app), _now())
    logger.info("experiment created", experiment_id=record.experiment.id)
    return record.to_dict(), 201


@app.get("/experiments")
def list_experiments() -> dict:
    return {"experiments": [r.to_dict() for r in _repository().list()]}


@app.get("/experiments/<experiment_id>")
def get_experiment(experiment_id: str) -> dict:
    record = registry.get_experiment(_repository(), experiment_id)
    return {**record.to_dict(), "audit": [e.__dict__ for e in _repository().audit_trail(experiment_id)]}


@app.post("/experiments/<experiment_id>/transitions")
@tracer.capture_method
def transition(experiment_id: str) -> dict:
    request = parse_body(json_body(app), TransitionRequest)
    record = registry.transition(
        _repository(), experiment_id, request.action, caller(app), _now(), request.expected_version
    )
    logger.info("experiment transition", experiment_id=experiment_id, action=request.action, status=record.status.value)
    return record.to_dict()


@app.post("/experiments/<experiment_id>/variants/<variant_id>/stop")
@tracer.capture_method
def stop_variant(experiment_id: str, variant_id: str) -> dict:
    request = parse_body(json_body(app), StopVariantRequest)
    record = registry.stop_variant(
        _repository(), experiment_id, variant_id, request.reason, caller(app), _now(), request.expected_version
    )
    return record.to_dict()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
