"""The reconciler's logic on in-memory dependencies: what counts as a stranded canary, that it rolls back through
the same (idempotent) rollback, and that each failed rollback invocation is paged once with its rollout id."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kanaria.domain.rollout_state import RollbackTrigger
from kanaria.errors import OperationalError
from kanaria.logic import reconciler
from kanaria.logic.rollback import rollback
from tests.support.rollout_fakes import CANARY, DEPLOYMENT, EXECUTION, PRIMARY, MemoryFailures, services, started
from tests.support.rollout_world import CRITICAL_ALARM


def _alarm(svc, state: str = "ALARM") -> None:
    svc.metrics.critical_state = state


def test_nothing_to_do_without_an_active_rollout_or_without_canary_traffic() -> None:
    svc = services()
    _alarm(svc)
    assert reconciler.find_stranded(svc, DEPLOYMENT) is None  # no rollout at all
    _alarm(svc, "OK")
    started(svc, stage=0)
    _alarm(svc)
    svc.listener.set_canary(0)  # e.g. prepared, no weights yet
    assert reconciler.find_stranded(svc, DEPLOYMENT) is None


def test_a_healthy_running_rollout_is_left_alone() -> None:
    svc = services()
    started(svc, stage=1)
    assert reconciler.find_stranded(svc, DEPLOYMENT) is None
    assert reconciler.reconcile(svc, DEPLOYMENT) == {"rolled_back": None, "failed_invocations_paged": [], "errors": []}
    assert svc.listener.forward().weights == {PRIMARY: 75, CANARY: 25}


def test_critical_alarm_with_canary_traffic_is_rolled_back_once() -> None:
    svc = services()
    started(svc, stage=1)
    _alarm(svc)
    found = reconciler.find_stranded(svc, DEPLOYMENT)
    assert found is not None and found.kind == "alarm" and found.percent == 25
    assert f"{CRITICAL_ALARM} is in ALARM while the canary still receives 25%" in found.summary
    result = reconciler.reconcile(svc, DEPLOYMENT)
    assert result["rolled_back"] == {"rollout_id": "r-1", "found": "alarm", "status": "rolled_back"}
    assert svc.listener.forward().weights == {PRIMARY: 100}
    record = svc.store.rollback_record("r-1")
    assert record.trigger.source == "reconciler" and record.trigger.kind == "alarm"
    assert record.execution_stopped  # the execution was still running: listener first, then stopped
    # the next minute: the listener is primary-only and the rollout released, nothing more happens
    assert reconciler.reconcile(svc, DEPLOYMENT)["rolled_back"] is None
    assert svc.notifier.subjects("[Kanaria] ROLLBACK ") == ["[Kanaria] ROLLBACK r-1 at canary-25 (alarm)"]


@pytest.mark.parametrize("status", ["ABORTED", "FAILED", "TIMED_OUT", None])
def test_an_ended_execution_with_canary_traffic_is_rolled_back(status: str | None) -> None:
    svc = services()
    started(svc, stage=0)
    svc.executions.statuses[EXECUTION + "r-1"] = status
    found = reconciler.find_stranded(svc, DEPLOYMENT)
    assert found is not None and found.kind == "execution_ended"
    assert ("does not exist" if status is None else f"ended {status}") in found.summary
    assert reconciler.reconcile(svc, DEPLOYMENT)["rolled_back"]["status"] == "rolled_back"
    assert svc.listener.forward().weights == {PRIMARY: 100}
    assert svc.store.rollback_record("r-1").trigger.kind == "execution_ended"


def test_a_succeeded_or_completed_rollout_is_not_touched() -> None:
    svc = services()
    started(svc, stage=0)
    svc.executions.statuses[EXECUTION + "r-1"] = "SUCCEEDED"
    assert reconciler.find_stranded(svc, DEPLOYMENT) is None
    svc.store.meta["r-1"]["status"] = "completed"
    _alarm(svc)
    assert reconciler.find_stranded(svc, DEPLOYMENT) is None


def test_a_rollback_in_progress_elsewhere_is_not_duplicated() -> None:
    svc = services()
    started(svc, stage=1)
    _alarm(svc)
    assert svc.store.acquire_rollback_lock("r-1", "the-alarm-trigger", svc.clock(), 120) == "acquired"
    result = reconciler.reconcile(svc, DEPLOYMENT)
    assert result["rolled_back"]["status"] == "in_progress" and result["errors"] == []
    assert svc.listener.forward().weights == {PRIMARY: 75, CANARY: 25}  # the lock holder does it
    assert svc.notifier.messages == []


def test_a_failing_rollback_is_reported_and_the_failed_invocations_still_paged() -> None:
    svc = services()
    started(svc, stage=1)
    _alarm(svc)

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("ELB unreachable")

    svc.listener = Broken()
    failures = MemoryFailures({"requestPayload": {"source": "cli", "rollout_id": "r-1"}, "responsePayload": {}})
    with pytest.raises(RuntimeError):  # the failing listener also breaks the page's situation read
        reconciler.reconcile(svc, DEPLOYMENT, failures)


def _destination_record(event: dict, error: str = "RuntimeError", count: int = 3) -> dict:
    """What Lambda sends to an on-failure destination after the retries."""
    return {
        "version": "1.0",
        "timestamp": "2026-03-01T12:00:00.000Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:...:function:kanaria-rollback",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": count,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": error, "errorMessage": "injected: the rollback function is broken"},
    }


ALARM_EVENT = {
    "source": "aws.cloudwatch",
    "alarmArn": f"arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:{CRITICAL_ALARM}",
    "alarmData": {"alarmName": CRITICAL_ALARM, "state": {"value": "ALARM", "reason": "error rate"}},
}


def test_each_failed_invocation_is_paged_once_with_the_rollout_id_and_the_event() -> None:
    svc = services()
    started(svc, stage=1)
    _alarm(svc)
    failures = MemoryFailures(_destination_record(ALARM_EVENT))
    result = reconciler.reconcile(svc, DEPLOYMENT, failures, "kanaria-rollback")
    assert result["rolled_back"]["status"] == "rolled_back" and result["failed_invocations_paged"] == ["r-1"]
    assert failures.waiting == {} and failures.deleted == ["r0"]
    ((subject, body),) = [(s, m) for s, m in svc.notifier.messages if "INVOCATION FAILED" in s]
    assert subject == "[Kanaria] ROLLBACK INVOCATION FAILED r-1"
    for fragment in (
        "FAILED after 3 attempts (RetriesExhausted)",
        "error: RuntimeError: injected: the rollback",
        "the reconciler's rollback of r-1: rolled_back",
        "rolled back at",
        "by reconciler (alarm)",
        "/aws/lambda/kanaria-rollback",
        "FAILED EVENT (its identity; inputs and outputs are never paged):",
        '"source": "aws.cloudwatch"',
        f'"alarmName": "{CRITICAL_ALARM}"',
        '"state": "ALARM"',
    ):
        assert fragment in body, fragment
    # one rollback alert, one failure page
    assert len(svc.notifier.messages) == 2
    assert reconciler.reconcile(svc, DEPLOYMENT, failures)["failed_invocations_paged"] == []


def test_the_rollout_of_a_failed_event_comes_from_the_cli_or_the_execution() -> None:
    svc = services()
    cli = {"source": "cli", "rollout_id": "r-9", "reason": "x"}
    execution = {
        "source": "aws.states",
        "detail": {
            "executionArn": EXECUTION + "exec-7",
            "name": "exec-7",
            "input": json.dumps({"rollout_id": "r-7"}),
            "status": "ABORTED",
        },
    }
    unnamed = {
        "source": "aws.states",
        "detail": {"executionArn": EXECUTION + "exec-8", "name": "exec-8", "input": "not json"},
    }
    failures = MemoryFailures(
        _destination_record(cli),
        _destination_record(execution),
        _destination_record(unnamed),
        "a body that is not JSON",
    )
    result = reconciler.reconcile(svc, DEPLOYMENT, failures)
    assert result["failed_invocations_paged"] == ["r-9", "r-7", "exec-8", None]
    subjects = [s for s, _ in svc.notifier.messages]
    assert subjects[-1] == "[Kanaria] ROLLBACK INVOCATION FAILED (no active rollout)"
    assert "rollout r-9 is unknown to the rollouts table" in svc.notifier.messages[0][1]


def test_the_page_of_a_failed_execution_status_event_never_copies_the_execution_input() -> None:
    # Given an execution-status event whose input carries a credential (an execution started before literal
    # secret headers were refused), failed through Lambda's retries
    secret = "Bearer s3cr3t-in-an-old-execution-input"
    document = {"rollout_id": "r-7", "warmup": {"url": "http://canary/x", "headers": {"Authorization": secret}}}
    execution = {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "resources": [EXECUTION + "exec-7"],
        "detail": {
            "executionArn": EXECUTION + "exec-7",
            "name": "exec-7",
            "status": "FAILED",
            "input": json.dumps(document),
            "inputDetails": {"included": True},
            "output": json.dumps(document),
            "cause": json.dumps(document),
        },
    }
    svc = services()
    # When the reconciler pages it
    reconciler.reconcile(svc, DEPLOYMENT, MemoryFailures(_destination_record(execution)))
    ((subject, body),) = [(s, m) for s, m in svc.notifier.messages if "INVOCATION FAILED" in s]
    # Then the page names the execution and its status, and says what it left out, but holds no input
    assert subject == "[Kanaria] ROLLBACK INVOCATION FAILED r-7"
    assert f'"executionArn": "{EXECUTION}exec-7"' in body and '"status": "FAILED"' in body
    assert '"omitted": ["cause", "input", "inputDetails", "output"]' in body
    assert "s3cr3t" not in body and "Authorization" not in body and "warmup" not in body


def test_not_rolled_back_yet_is_said_in_the_page() -> None:
    svc = services()
    started(svc, stage=1)
    failures = MemoryFailures(_destination_record(ALARM_EVENT))
    reconciler.reconcile(svc, DEPLOYMENT, failures)  # alarm OK now, execution running: nothing stranded
    ((_, body),) = svc.notifier.messages
    assert "NOT rolled back yet: the canary receives 25%" in body


def test_ended_execution_rule_rolls_back_only_the_rollout_holding_the_listener() -> None:
    svc = services()
    started(svc, stage=1)
    assert (
        reconciler.rollback_ended_execution(svc, DEPLOYMENT, EXECUTION + "other", "ABORTED")["status"]
        == "no_active_rollout"
    )
    assert reconciler.rollback_ended_execution(svc, DEPLOYMENT, EXECUTION + "r-1", "SUCCEEDED")["status"] == "ignored"
    result = reconciler.rollback_ended_execution(svc, DEPLOYMENT, EXECUTION + "r-1", "ABORTED", "stopped in console")
    assert result["status"] == "rolled_back"
    record = svc.store.rollback_record("r-1")
    assert (record.trigger.kind, record.trigger.source) == ("execution_ended", "execution_status")
    assert "ended ABORTED" in record.trigger.summary and "stopped in console" in record.trigger.summary
    assert svc.listener.forward().weights == {PRIMARY: 100}
    # the rollout no longer holds the listener: a second event changes nothing
    assert (
        reconciler.rollback_ended_execution(svc, DEPLOYMENT, EXECUTION + "r-1", "ABORTED")["status"]
        == "no_active_rollout"
    )
    assert len(svc.notifier.subjects("[Kanaria] ROLLBACK ")) == 1


def test_reconciler_and_alarm_trigger_share_one_record() -> None:
    svc = services()
    started(svc, stage=1)
    _alarm(svc)
    reconciler.reconcile(svc, DEPLOYMENT)
    again = rollback(svc, DEPLOYMENT, "r-1", RollbackTrigger(kind="alarm", source="alarm", summary="late alarm"))
    assert again["status"] == "already_rolled_back"
    assert again["record"]["trigger"]["source"] == "reconciler"
    assert len(svc.notifier.subjects("[Kanaria] ROLLBACK ")) == 1


ALARM = RollbackTrigger(kind="alarm", source="alarm", summary=f"{CRITICAL_ALARM} is in ALARM")


def test_a_rollback_whose_every_attempt_failed_is_finished_by_the_next_sweep() -> None:
    # Given the alarm's rollback moved the listener, then StopExecution failed through every retry
    svc = services()
    started(svc, stage=1)
    executions = svc.executions

    class Throttled:
        def __getattr__(self, name: str) -> Any:
            return getattr(executions, name)

        def stop(self, *args: Any) -> bool:
            raise OperationalError("StopExecution: ThrottlingException", field="execution")

    svc.executions = Throttled()
    with pytest.raises(OperationalError):
        rollback(svc, DEPLOYMENT, "r-1", ALARM)
    svc.executions = executions
    # Then the rollback stays begun (the lock is free for the next attempt) and no page claims it done
    assert svc.store.get("r-1").status == "rolling_back" and svc.store.rollback_lock("r-1") is None
    assert svc.notifier.messages == []
    # When the reconciler sweeps, then it finishes it, recording the alarm that began it
    found = reconciler.find_stranded(svc, DEPLOYMENT)
    assert found is not None and found.kind == "rollback_unfinished"
    assert reconciler.reconcile(svc, DEPLOYMENT)["rolled_back"]["status"] == "rolled_back"
    record = svc.store.rollback_record("r-1")
    assert record.trigger.kind == "alarm" and record.trigger.source == "alarm" and record.execution_stopped
    assert svc.store.get("r-1").status == "rolled_back" and svc.store.active(DEPLOYMENT.listener_arn) is None
    assert svc.notifier.subjects("[Kanaria] ROLLBACK ") == ["[Kanaria] ROLLBACK r-1 at canary-25 (alarm)"]


def test_a_rollout_whose_execution_is_gone_frees_the_listener_without_canary_traffic() -> None:
    # Given a rollout holding the listener with no canary traffic whose execution no longer exists
    svc = services()
    started(svc, stage=0)
    svc.listener.set_canary(0)
    svc.executions.statuses[EXECUTION + "r-1"] = None
    # When the reconciler sweeps, then it rolls it back: the listener verified, the slot free for the next rollout
    found = reconciler.find_stranded(svc, DEPLOYMENT)
    assert found is not None and found.kind == "execution_ended" and found.percent == 0
    assert reconciler.reconcile(svc, DEPLOYMENT)["rolled_back"]["status"] == "rolled_back"
    assert svc.listener.forward().weights == {PRIMARY: 100}
    assert svc.store.active(DEPLOYMENT.listener_arn) is None and svc.store.get("r-1").status == "rolled_back"


def test_a_slot_taken_by_a_prepare_that_never_recorded_its_rollout_is_freed_once_its_execution_ended() -> None:
    # Given prepare took the listener's slot, then failed to record the rollout and to give the slot back
    svc = services()
    svc.store.acquire_active(DEPLOYMENT.listener_arn, "r-0", EXECUTION + "r-0", svc.clock())
    # When the execution is still running, then the slot is left alone
    assert reconciler.reconcile(svc, DEPLOYMENT)["rolled_back"] is None
    assert svc.store.active(DEPLOYMENT.listener_arn) is not None
    # When it has ended (no canary weight anywhere), then the sweep frees the slot
    svc.executions.statuses[EXECUTION + "r-0"] = "FAILED"
    result = reconciler.reconcile(svc, DEPLOYMENT)
    assert result["rolled_back"] == {"rollout_id": "r-0", "found": "unrecorded_slot", "status": "slot_freed"}
    assert svc.store.active(DEPLOYMENT.listener_arn) is None and svc.listener.forward().weights[CANARY] == 0
