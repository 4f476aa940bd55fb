"""Assignment API: sticky variant and resolved model configuration for a unit (single and batch).

Kept free of numpy/scipy so its cold start stays small.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from kanaria.dal.experiment_store import DynamoAssignmentStore, DynamoExperimentRepository
from kanaria.errors import KanariaError
from kanaria.handlers.env import api_environment, load_profiles
from kanaria.handlers.http import json_body, new_resolver
from kanaria.handlers.models import AssignBatchRequest, AssignRequest, parse_body
from kanaria.handlers.observability import observability
from kanaria.logic.assignments import assign_unit
from kanaria.logic.experiments import get_experiment
from kanaria.names import DIM_EXPERIMENT, DIM_VARIANT, METRIC_ASSIGNMENTS

logger, tracer, metrics = observability()
app = new_resolver()


@cache
def _repository() -> DynamoExperimentRepository:
    return DynamoExperimentRepository(api_environment().experiments_table)


@cache
def _store() -> DynamoAssignmentStore:
    env = api_environment()
    return DynamoAssignmentStore(env.assignments_table, env.aggregates_table)


def _assign(request: AssignRequest) -> dict:
    record = get_experiment(_repository(), request.experiment_id)
    profiles = load_profiles(api_environment().profiles_parameter)
    result = assign_unit(record, request.unit, request.intent, profiles, _store(), datetime.now(timezone.utc))
    if result.in_experiment and not result.excluded:
        metrics.add_dimension(DIM_EXPERIMENT, result.experiment_id)
        metrics.add_dimension(DIM_VARIANT, result.variant or "")
        metrics.add_metric(METRIC_ASSIGNMENTS, MetricUnit.Count, 1)
        metrics.flush_metrics()
    return result.to_dict()


@app.post("/assign")
@tracer.capture_method
def assign_one() -> dict:
    return _assign(parse_body(json_body(app), AssignRequest))


@app.post("/assign/batch")
@tracer.capture_method
def assign_batch() -> dict:
    batch = parse_body(json_body(app), AssignBatchRequest)
    results = []
    for index, request in enumerate(batch.requests):
        try:
            results.append({"index": index, "ok": True, "assignment": _assign(request)})
        except KanariaError as exc:
            results.append({"index": index, "ok": False, "error": exc.to_dict()})
    return {"results": results}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
