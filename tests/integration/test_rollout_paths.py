"""The real ASL executed by moto's Step Functions, with both rollout handlers running in-process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Callable

from kanaria.domain.rollout_gates import MetricSnapshot
from kanaria.errors import OperationalError
from kanaria_tools.cli.rollout import approve, reject
from tests.support.rollout_world import MISSING, PREFIX, ScriptedMetrics, World, request, side, snapshot, world  # noqa: F401


def _once_asked(w: World, rollout_id: str, answer: Callable[[], object]) -> Callable[[], None]:
    """A poll that answers the approval request once, as soon as the token is stored."""
    answered: list[object] = []

    def poll() -> None:
        meta = w.meta(rollout_id)
        if not answered and meta and meta.approval_token:
            answered.append(answer())

    return poll


def _approve_when_asked(w: World, rollout_id: str) -> Callable[[], None]:
    return _once_asked(w, rollout_id, lambda: approve(PREFIX, rollout_id, None, "looks good"))


def test_promotes_through_every_stage_after_approval(world: World) -> None:
    world.create_experiment()
    world.put_analysis("exp-canary", "PROMOTE")
    execution = world.start(request(experiment=True), "promote-1")
    done = world.wait(execution, while_running=_approve_when_asked(world, "promote-1"))
    assert done["status"] == "SUCCEEDED", done
    assert world.decisions(execution) == ["advance", "advance", "await_approval"]
    forward = world.forward()
    assert forward.weights == {world.canary_tg: 100}
    meta = world.meta("promote-1")
    assert meta.status == "completed"
    assert meta.progress.approval["approved"] is True
    assert world.services().store.active(world.listener_arn) is None
    subjects = [a["Subject"] for a in world.alerts()]
    assert subjects == ["[Kanaria] APPROVAL needed: promote-1 to 100%"]


def _one_stage(**gates: object) -> list[dict]:
    return [
        {
            "name": "canary-5",
            "percent": 5,
            "min_duration_seconds": 0,
            "check_interval_seconds": 1,
            "max_hold_seconds": 30,
            "gates": {"max_error_rate": 0.005, "max_latency_p99_increase": 0.10, **gates},
        }
    ]


def _rolled_back(w: World, execution: str, rollout_id: str, trigger: str) -> dict:
    done = w.wait(execution)
    assert done["status"] == "FAILED", done
    assert done.get("error") == "Kanaria.RolledBack", done
    forward = w.forward()
    assert forward.weights == {w.primary_tg: 100} and not forward.stickiness_enabled
    record = w.services().store.rollback_record(rollout_id)
    assert record is not None and record.trigger.kind == trigger, record
    rollbacks = [a for a in w.alerts() if "ROLLBACK" in a["Subject"]]
    assert len(rollbacks) == 1, rollbacks
    assert w.meta(rollout_id).status == "rolled_back"
    assert w.services().store.active(w.listener_arn) is None
    return json.loads(json.dumps(record.model_dump(mode="json")))


def test_inconclusive_gate_holds_and_never_promotes_until_conclusive(world: World) -> None:
    world.services().metrics = ScriptedMetrics(MISSING, MISSING, snapshot())
    execution = world.start(request(stages=_one_stage()), "hold-1")
    done = world.wait(execution, while_running=_approve_when_asked(world, "hold-1"))
    assert done["status"] == "SUCCEEDED", done
    assert world.decisions(execution) == ["hold", "hold", "await_approval"]


def test_inconclusive_beyond_the_hold_bound_rolls_back(world: World) -> None:
    services = world.services()
    skew = [timedelta(0)]

    def an_hour_passes() -> MetricSnapshot:
        skew[0] += timedelta(hours=1)  # the next evaluation is past the 30 s hold bound, whatever the machine load
        return MISSING

    services.clock = lambda: datetime.now(timezone.utc) + skew[0]
    services.metrics = ScriptedMetrics(MISSING, MISSING, an_hour_passes)
    execution = world.start(request(stages=_one_stage()), "hold-bound-1")
    record = _rolled_back(world, execution, "hold-bound-1", "hold_exceeded")
    assert "hold bound 30s" in record["trigger"]["summary"]
    assert world.decisions(execution) == ["hold", "hold", "hold", "rollback"]


def test_failed_gate_rolls_back_and_stops_the_variant(world: World) -> None:
    world.create_experiment()
    world.put_analysis("exp-canary", "continue")
    world.services().metrics = ScriptedMetrics(snapshot(), snapshot(canary=side(errors=40)))  # 4% errors at 25%
    execution = world.start(request(experiment=True), "gate-fail-1")
    record = _rolled_back(world, execution, "gate-fail-1", "gate_failed")
    assert record["stage_name"] == "canary-25" and record["percent_before"] == 25
    assert record["weights_before"] == {world.primary_tg: 75, world.canary_tg: 25}
    assert record["variant_stopped"] is True
    assert world.experiment().stopped_variants == {"treatment": "canary_rollback"}
    assert any("error_rate" in c["gate"] and c["outcome"] == "FAIL" for c in record["gate"]["checks"])


def test_task_failure_is_caught_and_rolls_back(world: World) -> None:
    world.services().metrics = ScriptedMetrics(OperationalError("CloudWatch read failed: boom", field="metrics"))
    execution = world.start(request(stages=_one_stage()), "task-fail-1")
    record = _rolled_back(world, execution, "task-fail-1", "task_failed")
    assert record["trigger"]["details"]["error"] == "OperationalError"


def test_rejection_at_approval_rolls_back(world: World) -> None:
    execution = world.start(request(stages=_one_stage()), "reject-1")
    world.wait(
        execution,
        while_running=_once_asked(
            world, "reject-1", lambda: reject(PREFIX, "reject-1", None, "CSAT comments look worse")
        ),
    )
    record = _rolled_back(world, execution, "reject-1", "approval_rejected")
    # AWS passes SendTaskFailure's cause ("rejected by ...: <reason>") on as $.failure.Cause; moto 5.2.5 drops it.
    assert record["trigger"]["details"]["error"] == "Kanaria.Rejected"


def test_approval_timeout_holds_then_rolls_back(world: World) -> None:
    execution = world.start(request(stages=_one_stage(), approval_timeout=2), "timeout-1")
    record = _rolled_back(world, execution, "timeout-1", "approval_timeout")
    assert record["percent_before"] == 5  # traffic held at the last stage while waiting


def test_weights_read_back_wrong_roll_back(world: World) -> None:
    services = world.services()
    real = services.listener

    class Drifting:
        """A listener whose first write lands with other weights (a concurrent writer)."""

        def __init__(self) -> None:
            self.writes = 0

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def set_default_actions(self, listener_arn: str, actions: list) -> None:
            self.writes += 1
            if self.writes == 1:
                actions = json.loads(json.dumps(actions).replace('"Weight": 5}', '"Weight": 7}'))
            real.set_default_actions(listener_arn, actions)

    services.listener = Drifting()
    execution = world.start(request(stages=_one_stage()), "drift-1")
    record = _rolled_back(world, execution, "drift-1", "task_failed")
    assert record["trigger"]["details"]["error"] == "WeightsMismatchError"
    assert "expected weight 5 (5.0%), found 7 (6.9%)" in record["trigger"]["details"]["cause"]


def test_failed_offline_evaluation_refuses_to_start_without_moving_traffic(world: World) -> None:
    document = request(stages=_one_stage())
    document["offline_evaluation"]["per_intent"]["faq"]["passed"] = False
    execution = world.start(document, "refused-1")
    done = world.wait(execution)
    assert done["status"] == "FAILED" and done["error"] == "Kanaria.StartRefused"
    assert "failed intents: faq" in done["cause"]
    assert world.forward().weights == {world.primary_tg: 100, world.canary_tg: 0}
    assert world.alerts() == [] and world.meta("refused-1") is None


def test_alarm_rollback_stops_the_running_execution(world: World) -> None:
    from kanaria.handlers import rollback
    from tests.support.moto_lambda import FakeContext

    # Short approval window: moto does not interrupt the callback wait on StopExecution (see moto_lambda.py).
    execution = world.start(request(stages=_one_stage(), approval_timeout=4), "alarm-1")
    fired: list[dict] = []
    done = world.wait(
        execution,
        while_running=_once_asked(
            world,
            "alarm-1",
            lambda: fired.append(rollback.handler(alarm_event("ALARM"), FakeContext("kanaria-rollback"))),
        ),
    )
    # AWS reports ABORTED; moto 5.2.5 ends a stopped callback wait as FAILED/States.Timeout. Either way the
    # execution stopped where it was: it never reached its own Rollback state.
    assert (done["status"], done.get("error")) in {("ABORTED", None), ("FAILED", "States.Timeout")}, done
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in world.history(execution) if "stateEnteredEventDetails" in e
    ]
    assert entered[-1] == "RequestApproval" and "Rollback" not in entered
    assert fired[0]["status"] == "rolled_back"
    record = world.services().store.rollback_record("alarm-1")
    assert record.trigger.kind == "alarm" and record.execution_stopped
    assert world.forward().weights == {world.primary_tg: 100}
    assert len([a for a in world.alerts() if "ROLLBACK" in a["Subject"]]) == 1


def alarm_event(state: str) -> dict:
    """A composite alarm's Lambda action event."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:kanaria-canary-critical",
        "accountId": "123456789012",
        "time": "2026-01-01T00:00:00.000+0000",
        "region": "ap-northeast-1",
        "alarmData": {
            "alarmName": "kanaria-canary-critical",
            "state": {
                "value": state,
                "reason": "kanaria-canary-error-rate transitioned to ALARM",
                "timestamp": "2026-01-01T00:00:00.000+0000",
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-01-01T00:00:00.000+0000"},
            "configuration": {
                "alarmRule": "ALARM(kanaria-canary-error-rate) OR ALARM(kanaria-canary-latency-p99)",
                "description": "Canary is unhealthy",
            },
        },
    }
