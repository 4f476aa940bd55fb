"""The rollout reconciler, every minute (EventBridge schedule): rolls back a canary left with traffic (critical
alarm in ALARM, or execution over) and pages on-call with each rollback invocation Lambda gave up on."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from kanaria import names
from kanaria.errors import OperationalError
from kanaria.handlers.observability import observability
from kanaria.handlers.rollout_env import deployment, failed_invocations, rollout_services
from kanaria.logic import reconciler

logger, tracer, metrics = observability()


def _rollback_function_name() -> str:
    """The rollback function of this deployment (same prefix as this function's name), for the page."""
    own = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    prefix = own.removesuffix(f"-{names.FUNCTION_RECONCILER}") if own.endswith(names.FUNCTION_RECONCILER) else ""
    return names.function_name(prefix or names.DEFAULT_PREFIX, names.FUNCTION_ROLLBACK)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.debug("reconcile", detail_type=event.detail_type, time=event.time)
    result = reconciler.reconcile(rollout_services(), deployment(), failed_invocations(), _rollback_function_name())
    done = result["rolled_back"]
    if done is not None:
        logger.warning("stranded canary", **done)
        if done["status"] == "rolled_back":
            metrics.add_metric(names.METRIC_RECONCILER_ROLLBACKS, MetricUnit.Count, 1)
    if result["failed_invocations_paged"]:
        logger.error("failed rollback invocations paged", rollouts=result["failed_invocations_paged"])
        metrics.add_metric(
            names.METRIC_FAILED_ROLLBACK_INVOCATIONS, MetricUnit.Count, len(result["failed_invocations_paged"])
        )
    if result["errors"]:
        # Fails the invocation (Errors metric, alarm) after the pages went out; the next minute tries again.
        raise OperationalError("; ".join(result["errors"]), field="reconciler")
    return result
