"""A rollback that cannot be lost, on moto: the rollback function fails through Lambda's retries, the failed event
lands in the on-failure queue, and the reconciler restores primary-only weights with one rollback record and one
rollback alert, and pages the failed invocation once. Also the execution-status rule's event."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from kanaria import names
from kanaria.handlers import reconciler as reconciler_handler
from kanaria.handlers import rollback, rollout_env
from kanaria_tools.rehearsal.invoke import AsyncPolicy, invoke_async, sqs_sender
from tests.integration.test_rollout_paths import alarm_event
from tests.integration.test_rollout_rollback import CONTEXT, EXECUTION, assert_no_path_to_canary, rollback_alerts, seed
from tests.support.moto_lambda import FakeContext, function_arn
from tests.support.rollout_world import REGION, ROLLBACK_FUNCTION, World, world  # noqa: F401

RECONCILER_CONTEXT = FakeContext(names.function_name(names.DEFAULT_PREFIX, names.FUNCTION_RECONCILER))


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": REGION,
        "resources": ["arn:aws:events:ap-northeast-1:123456789012:rule/kanaria-rollout-reconciler"],
        "detail": {},
    }


@pytest.fixture
def failures_queue(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=names.rollback_failures_queue_name(names.DEFAULT_PREFIX))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    monkeypatch.setenv(names.ENV_ROLLBACK_FAILURES_QUEUE_URL, url)
    rollout_env.rollout_environment.cache_clear()
    rollout_env.failed_invocations.cache_clear()
    return url, arn


def _break_rollback_function(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[Any]:
    """The rollback function raises on its first `failures` invocations (a bad deploy, a crashing dependency)."""
    calls: list[Any] = []
    real = rollback._rollback

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event)
        if len(calls) <= failures:
            raise RuntimeError("injected fault: the rollback function is broken")
        return real(event)

    monkeypatch.setattr(rollback, "_rollback", broken)
    return calls


def _waiting(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return sum(int(v) for v in attributes["Attributes"].values())


def test_failed_alarm_rollback_is_restored_by_the_reconciler(
    world: World, failures_queue: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, queue_arn = failures_queue
    seed(world, stage=1)
    calls = _break_rollback_function(monkeypatch, failures=3)
    world.services().metrics.critical_state = "ALARM"
    sleeps: list[float] = []
    attempts, error = invoke_async(
        boto3.client("lambda", region_name=REGION),
        function_arn(ROLLBACK_FUNCTION),
        alarm_event("ALARM"),
        AsyncPolicy(on_failure=queue_arn),
        sleep=sleeps.append,
        send=sqs_sender(boto3.client("sqs", region_name=REGION)),
    )
    # Lambda's three attempts all failed: the canary keeps its traffic, the event waits in the queue
    assert (attempts, len(calls), sleeps) == (3, 3, [60.0, 120.0])
    assert error["errorType"] == "RuntimeError"
    assert world.forward().weights == {world.primary_tg: 75, world.canary_tg: 25}
    assert _waiting(url) == 1 and rollback_alerts(world) == []

    result = reconciler_handler.handler(scheduled_event(), RECONCILER_CONTEXT)

    assert result["rolled_back"] == {"rollout_id": "r-1", "found": "alarm", "status": "rolled_back"}
    assert_no_path_to_canary(world)
    record = world.services().store.rollback_record("r-1")
    assert (record.trigger.kind, record.trigger.source) == ("alarm", "reconciler")
    assert record.weights_before == {world.primary_tg: 75, world.canary_tg: 25}
    alerts = world.alerts()
    assert [a["Subject"] for a in alerts] == [
        "[Kanaria] ROLLBACK r-1 at canary-25 (alarm)",
        "[Kanaria] ROLLBACK INVOCATION FAILED r-1",
    ]
    page = alerts[1]["Message"]
    assert "FAILED after 3 attempts (RetriesExhausted)" in page and "injected fault" in page
    assert '"alarmName": "kanaria-canary-critical"' in page  # the failed event itself
    assert _waiting(url) == 0
    meta = world.meta("r-1")
    assert meta.status == "rolled_back" and world.services().store.active(world.listener_arn) is None

    # the next minute, and the rollback function once fixed: nothing more happens
    assert reconciler_handler.handler(scheduled_event(), RECONCILER_CONTEXT)["rolled_back"] is None
    assert rollback.handler(alarm_event("ALARM"), CONTEXT)["status"] == "no_active_rollout"
    again = rollback.handler({"source": "cli", "rollout_id": "r-1", "reason": "again", "actor": "bob"}, CONTEXT)
    assert again["status"] == "already_rolled_back"
    assert [a["Subject"] for a in world.alerts()] == [
        "[Kanaria] ROLLBACK r-1 at canary-25 (alarm)",
        "[Kanaria] ROLLBACK INVOCATION FAILED r-1",
    ]


def test_execution_status_rule_rolls_back_a_stopped_execution(world: World) -> None:
    seed(world, stage=1)
    event = {
        "version": "0",
        "id": "e-2",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-03-01T12:00:00Z",
        "region": REGION,
        "resources": [EXECUTION + "r-1"],
        "detail": {
            "executionArn": EXECUTION + "r-1",
            "stateMachineArn": world.state_machine_arn,
            "name": "r-1",
            "status": "ABORTED",
            "input": json.dumps({"rollout_id": "r-1"}),
            "error": None,
            "cause": None,
        },
    }
    result = rollback.handler(event, CONTEXT)
    assert result["status"] == "rolled_back"
    assert result["record"]["trigger"]["kind"] == "execution_ended"
    assert_no_path_to_canary(world)
    assert rollback.handler(event, CONTEXT)["status"] == "no_active_rollout"
    assert len(rollback_alerts(world)) == 1
    with pytest.raises(Exception, match="detail.executionArn"):
        rollback.handler({**event, "detail": {"status": "FAILED"}}, CONTEXT)


def test_console_stop_of_a_running_execution_is_rolled_back_by_the_reconciler(world: World) -> None:
    """A StopExecution outside Kanaria (console) runs no Catch: the canary keeps its weight until the reconciler."""
    from tests.support.rollout_world import request

    stages = [
        {
            "name": "canary-5",
            "percent": 5,
            "min_duration_seconds": 0,
            "check_interval_seconds": 30,
            "max_hold_seconds": 600,
            "gates": {"max_error_rate": 0.005},
        }
    ]
    execution = world.start(request(stages=stages), "stop-1")
    deadline = 200
    while world.forward().weight(world.canary_tg) == 0 and deadline:
        import time

        time.sleep(0.05)
        deadline -= 1
    assert world.forward().weights == {world.primary_tg: 95, world.canary_tg: 5}
    world.sfn.stop_execution(executionArn=execution, error="Console", cause="stopped by hand")
    world.wait(execution)
    assert world.forward().weights == {world.primary_tg: 95, world.canary_tg: 5}  # nothing ran on the way out
    result = reconciler_handler.handler(scheduled_event(), RECONCILER_CONTEXT)
    assert result["rolled_back"] == {"rollout_id": "stop-1", "found": "execution_ended", "status": "rolled_back"}
    assert_no_path_to_canary(world)
    assert [a["Subject"] for a in world.alerts()] == ["[Kanaria] ROLLBACK stop-1 at canary-5 (execution_ended)"]


def test_an_approval_arriving_while_the_critical_alarm_is_in_alarm_rolls_back(world: World) -> None:
    """Between the last gate and PromoteFull the approval can take hours: PromoteFull reads the alarm fresh."""
    from kanaria_tools.cli.rollout import approve
    from tests.support.rollout_world import PREFIX, request

    answered: list[Any] = []

    def alarm_then_approve() -> None:
        meta = world.meta("late-alarm")
        if not answered and meta and meta.approval_token:
            world.services().metrics.critical_state = "ALARM"  # the canary went bad while waiting for a human
            answered.append(approve(PREFIX, "late-alarm", None, "looks good"))

    execution = world.start(request(), "late-alarm")
    done = world.wait(execution, while_running=alarm_then_approve)
    assert answered and done["status"] == "FAILED" and done.get("error") == "Kanaria.RolledBack", done
    assert_no_path_to_canary(world)
    record = world.services().store.rollback_record("late-alarm")
    assert record.trigger.kind == "gate_failed" and "promotion to 100% refused" in record.trigger.summary
    assert record.percent_before == 50  # it never reached 100%
