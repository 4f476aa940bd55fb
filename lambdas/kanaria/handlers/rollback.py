"""Rollback of a canary rollout, from four triggers: the state machine's failure path, the critical composite
alarm's Lambda action (CloudWatchAlarmEvent), the EventBridge rule on the rollout execution ending ABORTED/FAILED/
TIMED_OUT, and `kanaria rollout abort`. (The reconciler rolls back through the same logic in its own function.)"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import CloudWatchAlarmEvent, EventBridgeEvent
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from kanaria.domain.rollout_state import Progress, RollbackTrigger
from kanaria.errors import ValidationError, from_pydantic
from kanaria.handlers.observability import observability
from kanaria.handlers.rollout_env import deployment, rollout_services
from kanaria.logic import reconciler
from kanaria.logic.rollback import rollback, trigger_from_state
from kanaria.names import DIM_TARGET, METRIC_CANARY_WEIGHT, TARGET_CANARY

logger, tracer, metrics = observability(service_dimension=False)


class StateMachineRollback(BaseModel):
    """From the state machine: its whole state ($), which carries $.failure when a task failed."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["state_machine"]
    execution_arn: str = Field(min_length=1)
    state: dict[str, Any]


class ManualRollback(BaseModel):
    """From `kanaria rollout abort`."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["cli"]
    rollout_id: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=1000)
    actor: str = Field(default="unknown", max_length=512)


def _parse(event: Any, model: type[BaseModel]) -> Any:
    try:
        return parse(event=event, model=model)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, "event") from None


def _from_alarm(event: dict[str, Any]) -> dict[str, Any]:
    alarm = CloudWatchAlarmEvent(event)
    data = alarm.alarm_data
    if data.state.value != "ALARM":
        logger.info("alarm not in ALARM: nothing to do", alarm=data.alarm_name, state=data.state.value)
        return {"status": "ignored", "alarm": data.alarm_name, "state": data.state.value}
    env_deployment = deployment()
    active = rollout_services().store.active(env_deployment.listener_arn)
    if active is None:
        logger.warning("alarm without an active rollout on the listener: nothing to roll back", alarm=data.alarm_name)
        return {"status": "no_active_rollout", "alarm": data.alarm_name}
    trigger = RollbackTrigger(
        kind="alarm",
        source="alarm",
        summary=f"{data.alarm_name} is in ALARM: {data.state.reason}"[:1000],
        details={
            "alarm_arn": alarm.alarm_arn,
            "alarm_rule": data.configuration.alarm_rule,
            "reason": data.state.reason,
            "time": alarm.timestamp,
        },
    )
    return rollback(rollout_services(), env_deployment, active.rollout_id, trigger)


def _from_execution_status(event: dict[str, Any]) -> dict[str, Any]:
    """Step Functions Execution Status Change (EventBridge): the rollout's execution ended without completing."""
    detail = EventBridgeEvent(event).detail
    execution_arn, status = detail.get("executionArn"), detail.get("status")
    if not isinstance(execution_arn, str) or not execution_arn or not isinstance(status, str):
        raise ValidationError(
            "an execution status event needs detail.executionArn and detail.status", field="event.detail"
        )
    cause = " ".join(str(detail.get(key) or "") for key in ("error", "cause")).strip()
    return reconciler.rollback_ended_execution(rollout_services(), deployment(), execution_arn, status, cause)


@tracer.capture_method
def _rollback(event: dict[str, Any]) -> dict[str, Any]:
    source = event.get("source")
    if source == "aws.cloudwatch":
        return _from_alarm(event)
    if source == "aws.states":
        return _from_execution_status(event)
    if source == "state_machine":
        request = _parse(event, StateMachineRollback)
        state = request.state
        if "rollout_id" not in state:
            raise ValidationError("the state has no rollout_id (did prepare run?)", field="event.state.rollout_id")
        progress = Progress.model_validate(state["progress"]) if state.get("progress") else None
        trigger = trigger_from_state(state.get("failure"), progress)
        return rollback(rollout_services(), deployment(), state["rollout_id"], trigger, progress)
    if source == "cli":
        request = _parse(event, ManualRollback)
        trigger = RollbackTrigger(
            kind="manual_abort",
            source="cli",
            actor=request.actor,
            summary=f"aborted by {request.actor}: {request.reason}",
        )
        return rollback(rollout_services(), deployment(), request.rollout_id, trigger)
    raise ValidationError(
        f"unknown trigger source {source!r}; expected aws.cloudwatch, aws.states, state_machine or cli",
        field="event.source",
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = _rollback(event)
    logger.info("rollback", status=result["status"], rollout_id=result.get("rollout_id"))
    if result["status"] == "rolled_back":
        metrics.add_dimension(DIM_TARGET, TARGET_CANARY)
        metrics.add_metric(METRIC_CANARY_WEIGHT, MetricUnit.Percent, 0)
    return result
