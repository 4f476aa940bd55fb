"""The actors of the rollout protocol, each running the real code: the state machine execution (the real ASL), the
critical alarm and its Lambda action (asynchronous: 2 retries, then the on-failure destination), the execution
status rule (same), `kanaria rollout abort` (synchronous, nobody retries), a human approving with the stored task
token, an operator stopping the execution from the console, and the reconciler's sweeps."""

from __future__ import annotations

import json
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from tests.support.simulation import fake_aws
from tests.support.simulation.asl import Execution, Interpreter
from tests.support.simulation.scheduler import Fault, Point
from tests.support.simulation.world import (
    ASL,
    CRITICAL,
    EXECUTION_PREFIX,
    QUEUE,
    STATE_MACHINE,
    TOPIC,
    InvokeResult,
    World,
)

ROLLBACK_FUNCTION = "kanaria-rollback"
ASYNC_RETRY_DELAYS = (60.0, 120.0)  # Lambda's asynchronous retries: 2, about 1 and 2 minutes apart


def _steps(event: dict[str, Any]) -> Any:
    from kanaria.handlers import rollout_steps

    return rollout_steps._step(event)


def _rollback(event: dict[str, Any]) -> Any:
    from kanaria.handlers import rollback

    return rollback._rollback(event)


def execution(world: World, document: dict[str, Any], rollout_id: str) -> Callable[[], None]:
    """StartExecution with `document`; the status event afterwards (EventBridge, which may lose it)."""
    arn = EXECUTION_PREFIX + rollout_id
    run = Execution(arn=arn, name=rollout_id, input_text=json.dumps(document))
    world.executions[arn] = run
    world.rollout_id = rollout_id

    def body() -> None:
        functions = {"${RolloutStepsFunctionArn}": ("steps", _steps), "${RollbackFunctionArn}": ("rollback", _rollback)}
        interpreter = Interpreter(world, ASL, run, functions, TOPIC)
        world.interpreters.append(interpreter)
        interpreter.run(document)
        if run.status in {"ABORTED", "FAILED", "TIMED_OUT"}:
            fault = world.sched.park(
                Point("call", f"events.StatusChange {run.status}", service="events", faults=(Fault.LOST,))
            )
            if fault is not Fault.LOST:
                world.sched.spawn("status-event", async_lambda(world, status_event(run), "status-event"))

    return body


def status_event(run: Execution) -> dict[str, Any]:
    """Step Functions Execution Status Change, as EventBridge delivers it (with the execution's input)."""
    return {
        "version": "0",
        "id": f"evt-{run.name}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": "ap-northeast-1",
        "resources": [run.arn],
        "detail": {
            "executionArn": run.arn,
            "stateMachineArn": STATE_MACHINE,
            "name": run.name,
            "status": run.status,
            "input": run.input_text,
            "error": run.error or None,
            "cause": run.cause or None,
        },
    }


def alarm_event(state: str = "ALARM") -> dict[str, Any]:
    """The critical composite alarm's Lambda action event."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:{CRITICAL}",
        "accountId": "123456789012",
        "time": "2026-03-01T12:00:00.000+0000",
        "region": "ap-northeast-1",
        "alarmData": {
            "alarmName": CRITICAL,
            "state": {"value": state, "reason": "kanaria-canary-error-rate transitioned to ALARM", "timestamp": "t"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "t"},
            "configuration": {"alarmRule": "ALARM(kanaria-canary-error-rate)", "description": "Canary is unhealthy"},
        },
    }


def destination_record(event: Any, outcome: InvokeResult, attempts: int) -> dict[str, Any]:
    """What Lambda sends to the on-failure destination after the last attempt."""
    return {
        "version": "1.0",
        "timestamp": "2026-03-01T12:00:00.000Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": f"arn:aws:lambda:ap-northeast-1:123456789012:function:{ROLLBACK_FUNCTION}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": outcome.error_type, "errorMessage": outcome.message},
    }


def async_lambda(world: World, event: dict[str, Any], kind: str) -> Callable[[], None]:
    """An asynchronous invocation of the rollback function: 3 attempts, then the on-failure destination."""

    def body() -> None:
        outcome = InvokeResult(False)
        for attempt, delay in enumerate((*ASYNC_RETRY_DELAYS, None)):
            outcome = world.invoke(_rollback, event, kind=kind, role="rollback")
            if outcome.ok:
                return
            if delay is not None:
                world.sched.sleep(delay, f"{kind}: Lambda retries in {delay:.0f}s")
            else:
                world.queue_send(destination_record(event, outcome, attempt + 1))

    return body


def alarm(world: World, fires: Callable[[], bool], clears_after: float = 30.0) -> Callable[[], None]:
    """The critical alarm goes to ALARM when `fires()`, its Lambda action is invoked, and it clears later."""

    def body() -> None:
        world.sched.wait("alarm: waiting for the canary to misbehave", fires)
        world.alarms[CRITICAL] = "ALARM"
        world.sched.spawn("alarm-lambda", async_lambda(world, alarm_event(), "alarm"))
        world.sched.sleep(clears_after, "alarm: in ALARM")
        world.alarms[CRITICAL] = "OK"

    return body


def abort(world: World, when: Callable[[], bool], rollout_id: str) -> Callable[[], None]:
    """`kanaria rollout abort` (a synchronous invocation: its error is printed and nobody retries)."""

    def body() -> None:
        world.sched.wait("operator: deciding to abort", when)
        event = {"source": "cli", "rollout_id": rollout_id, "reason": "looks wrong", "actor": "alice"}
        world.invoke(_rollback, event, kind="abort", role="rollback")

    return body


def approver(world: World, think: float = 20.0, tries: int = 5) -> Callable[[], None]:
    """A human who approves once an approval is pending (kanaria rollout approve: the stored token)."""

    def pending() -> bool:
        meta = world.meta()
        return bool(meta and meta.get("approval_token"))

    def body() -> None:
        world.sched.wait("human: waiting for an approval request", pending)
        world.sched.sleep(think, "human: reading the A/B summary")
        sfn = fake_aws.FakeStepFunctions(world)
        for _ in range(tries):
            try:
                meta = world.services.store.get(world.rollout_id)
                token = meta and meta.approval_token
                if not token:
                    return  # no longer waiting ("not waiting for an approval")
                output = {"approved": True, "approver": "bob", "comment": "lgtm", "at": world.clock().isoformat()}
                sfn.send_task_success(taskToken=token, output=json.dumps(output))
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] in {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}:
                    return
            except BotoCoreError:
                pass
            world.sched.sleep(60.0, "human: trying again")

    return body


def console_stop(world: World, when: Callable[[], bool], rollout_id: str) -> Callable[[], None]:
    """Someone stops the execution from the console (StopExecution)."""

    def body() -> None:
        world.sched.wait("console: operator about to stop the execution", when)
        try:
            fake_aws.FakeStepFunctions(world).stop_execution(
                executionArn=EXECUTION_PREFIX + rollout_id, error="Console", cause="stopped by hand"
            )
        except (ClientError, BotoCoreError):
            pass

    return body


def _sweep(world: World) -> Callable[[Any], Any]:
    def sweep(_: Any) -> Any:
        from kanaria.errors import OperationalError
        from kanaria.logic import reconciler

        result = reconciler.reconcile(world.services, world.deployment, world.failed_invocations(), ROLLBACK_FUNCTION)
        if result["errors"]:
            raise OperationalError("; ".join(result["errors"]), field="reconciler")
        return result

    return sweep


def reconciler(world: World, sweeps: int = 3, every: float = 60.0) -> Callable[[], None]:
    """The reconciler's schedule: `sweeps` sweeps, one every `every` seconds."""

    def body() -> None:
        for _ in range(sweeps):
            world.sched.sleep(every, "reconciler: next minute")
            world.invoke(_sweep(world), {"source": "aws.events"}, kind="reconcile", role="reconciler")

    return body


def settle(world: World, limit: int = 12) -> Callable[[], None]:
    """After the faults: sweeps until two in a row change nothing (what the deployment converges to)."""

    def body() -> None:
        quiet, last = 0, world.fingerprint()
        for _ in range(limit):
            world.sched.sleep(60.0, "reconciler (settling): next minute")
            world.invoke(_sweep(world), {"source": "aws.events"}, kind="reconcile", role="reconciler")
            now = world.fingerprint()
            quiet = quiet + 1 if now == last else 0
            last = now
            if quiet >= 2 and not world.queue:
                return

    return body


__all__ = ["QUEUE", "abort", "alarm", "approver", "console_stop", "execution", "reconciler", "settle"]
