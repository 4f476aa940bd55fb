"""Rollout steps invoked by the canary rollout state machine: {"action": ..., ...state} -> the next state."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from kanaria.domain.rollout_state import Progress, Rollout, RolloutState
from kanaria.errors import ValidationError, from_pydantic
from kanaria.handlers.observability import observability
from kanaria.handlers.rollout_env import deployment, rollout_services
from kanaria.logic.rollout_prepare import prepare
from kanaria.logic.rollout_steps import complete, evaluate_gate, request_approval, set_weights, verify_weights
from kanaria.names import DIM_TARGET, METRIC_CANARY_WEIGHT, TARGET_CANARY

# metrics: dimension set exactly {target}, as the rollout dashboard reads CanaryWeight
logger, tracer, metrics = observability(service_dimension=False)


class PrepareEvent(BaseModel):
    """Stage 0: the execution input as the request, plus the execution's identity."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["prepare"]
    request: dict[str, Any]
    execution_arn: str = Field(min_length=1)
    execution_name: str = Field(min_length=1)


class StepEvent(BaseModel):
    """Any later step: the state (rollout_id, rollout, progress) plus the action's own flags."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["set_weights", "verify_weights", "evaluate_gate", "request_approval", "complete"]
    rollout_id: str
    rollout: Rollout
    progress: Progress
    full: bool = False  # set_weights / verify_weights of the 100% step after the approval
    task_token: str | None = Field(default=None, min_length=1)


def _parse(event: Any, model: type[BaseModel]) -> Any:
    try:
        return parse(event=event, model=model)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, "event") from None


def _emit_weight(percent: int) -> None:
    metrics.add_dimension(DIM_TARGET, TARGET_CANARY)
    metrics.add_metric(METRIC_CANARY_WEIGHT, MetricUnit.Percent, percent)


@tracer.capture_method
def _step(event: dict[str, Any]) -> dict[str, Any]:
    services = rollout_services()
    if event.get("action") == "prepare":
        started = _parse(event, PrepareEvent)
        state = prepare(services, deployment(), started.request, started.execution_arn, started.execution_name)
        logger.info("rollout prepared", rollout_id=state.rollout_id, reason=state.progress.reason)
        _emit_weight(0)
        return state.to_state()
    step: StepEvent = _parse(event, StepEvent)
    state = RolloutState(rollout_id=step.rollout_id, rollout=step.rollout, progress=step.progress)
    logger.append_keys(rollout_id=state.rollout_id, stage=state.progress.stage_name)
    if step.action == "request_approval":
        if step.task_token is None:
            raise ValidationError("request_approval needs the task token", field="event.task_token")
        return request_approval(services, state, step.task_token)
    if step.action == "set_weights":
        state = set_weights(services, state, step.full)
    elif step.action == "verify_weights":
        state = verify_weights(services, state, step.full)
    elif step.action == "evaluate_gate":
        state = evaluate_gate(services, state)
    else:
        state = complete(services, state)
    logger.info("rollout step", action=step.action, decision=state.progress.decision, reason=state.progress.reason)
    _emit_weight(state.progress.percent)
    return state.to_state()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _step(event)
