"""The rollback Lambda against moto (ELBv2, DynamoDB, SNS, Step Functions): ELB throttling, concurrent triggers,
what the listener looks like afterwards, the alert, the record and anti-flapping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kanaria.dal.elb import ElbListenerGateway, elbv2_client
from kanaria.domain.rollout_status import RollbackInProgressError
from kanaria.errors import ConflictError, OperationalError
from kanaria.handlers import rollback
from kanaria.handlers.rollout_env import deployment
from kanaria.logic.rollout_prepare import prepare
from kanaria.logic.rollout_steps import complete, set_weights, verify_weights
from tests.integration.test_rollout_paths import alarm_event
from tests.support.moto_lambda import FakeContext
from tests.support.rollout_world import World, request, world  # noqa: F401

CONTEXT = FakeContext("kanaria-rollback")
EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:kanaria-canary-rollout:"  # + name (never started)


def seed(
    w: World, rollout_id: str = "r-1", stage: int = 1, config_hash: str = "cfg-0001", experiment: bool = False
) -> dict[str, Any]:
    """A rollout prepared and shifted to `stage` through the real steps (no state machine needed)."""
    services = w.services()
    state = prepare(
        services,
        deployment(),
        request(config_hash=config_hash, experiment=experiment),
        EXECUTION + rollout_id,
        rollout_id,
    )
    for index in range(stage + 1):
        state = state.model_copy(update={"progress": state.progress.model_copy(update={"stage_index": index})})
        state = verify_weights(services, set_weights(services, state))
    return state.to_state()


def abort(rollout_id: str = "r-1", reason: str = "latency looks wrong") -> dict[str, Any]:
    return rollback.handler({"source": "cli", "rollout_id": rollout_id, "reason": reason, "actor": "alice"}, CONTEXT)


def assert_no_path_to_canary(w: World) -> None:
    forward = w.forward()
    assert forward.weights == {w.primary_tg: 100}, forward
    assert not forward.stickiness_enabled and not forward.reaches(w.canary_tg)
    for rule in w.elb.describe_rules(ListenerArn=w.listener_arn)["Rules"]:
        for action in rule["Actions"]:
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
            assert w.canary_tg not in {g["TargetGroupArn"] for g in groups} | {action.get("TargetGroupArn")}, rule


def rollback_alerts(w: World) -> list[dict[str, Any]]:
    return [a for a in w.alerts() if a["Subject"].startswith("[Kanaria] ROLLBACK")]


def test_manual_abort_leaves_no_path_to_the_canary_and_alerts_once(world: World) -> None:
    seed(world, stage=1)
    assert world.forward().weights == {world.primary_tg: 75, world.canary_tg: 25}
    # a listener rule (e.g. header-based canary testing) must be closed too: stickiness beats weights
    world.elb.create_rule(
        ListenerArn=world.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/canary/*"]}],
        Actions=[
            {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": world.canary_tg, "Weight": 1}]}}
        ],
    )
    result = abort()
    assert result["status"] == "rolled_back"
    assert_no_path_to_canary(world)
    record = result["record"]
    assert record["weights_before"] == {world.primary_tg: 75, world.canary_tg: 25} and record["stickiness_before"]
    assert record["weights_after"] == {world.primary_tg: 100}
    assert len(record["rules_fixed"]) == 1
    assert record["trigger"] == {
        "kind": "manual_abort",
        "source": "cli",
        "actor": "alice",
        "details": {},
        "summary": "aborted by alice: latency looks wrong",
    }
    (alert,) = rollback_alerts(world)
    assert alert["Subject"] == "[Kanaria] ROLLBACK r-1 at canary-25 (manual_abort)"
    for fragment in (
        "WHAT: canary rollout r-1 was ROLLED BACK at stage canary-25 (25% canary)",
        "WHY (manual_abort, via cli): aborted by alice: latency looks wrong",
        "METRICS (canary vs primary, this stage):",
        "error rate",
        "canary target group removed from the forward action (stickiness off)",
        "Listener rules that still forwarded to the canary were fixed",
        "WHAT NEXT:",
        "cannot start again before",
        "first stage lasts 2x",
    ):
        assert fragment in alert["Message"], fragment
    meta = world.meta("r-1")
    assert meta.status == "rolled_back" and meta.progress.percent == 0
    assert world.services().store.active(world.listener_arn) is None


def test_rollback_stops_the_variant_so_units_move_to_control(world: World) -> None:
    world.create_experiment()
    seed(world, experiment=True)
    record = abort()["record"]
    assert record["variant_stopped"] is True and record["variant_stop_error"] is None
    stopped = world.experiment()
    assert stopped.stopped_variants == {"treatment": "canary_rollback"}
    # the assignment path moves a stopped variant's sticky units to control and excludes them
    from kanaria.logic.assignments import StickyRecord, assign_unit

    class Store:
        moved: list[tuple[str, str]] = []

        def get(self, experiment_id: str, unit: str) -> StickyRecord:
            return StickyRecord(experiment_id, unit, "treatment", "2026-01-01T00:00:00+00:00", 2_000_000_000)

        def put_if_absent(self, record: StickyRecord) -> StickyRecord:
            return record

        def move_to_control(self, record: StickyRecord, control: str, reason: str) -> None:
            self.moved.append((control, reason))

        def count_exposure(self, *args: Any) -> None:
            raise AssertionError("an excluded unit is not counted")

    from kanaria.domain.profiles import DEFAULT_PROFILES

    result = assign_unit(stopped, "session-1", None, DEFAULT_PROFILES, Store(), datetime.now(timezone.utc))
    assert result.variant == "control" and result.excluded
    assert Store.moved == [("control", "canary_rollback")]


def test_a_failed_variant_stop_is_in_the_record_and_the_alert_not_raised(world: World) -> None:
    world.create_experiment()
    seed(world, experiment=True)
    world.table("experiments").delete_item(Key={"experiment_id": "exp-canary", "record": "META"})
    record = abort()["record"]
    assert record["variant_stopped"] is False and "unknown experiment" in record["variant_stop_error"]
    assert_no_path_to_canary(world)
    assert "Stop it by hand" in rollback_alerts(world)[0]["Message"]


class ThrottlingElb:
    """An ELBv2 client whose first `fail` ModifyListener calls are throttled (then it is moto's)."""

    def __init__(self, fail: int):
        self._real = elbv2_client()
        self.fail = fail
        self.modify_calls = 0

    def modify_listener(self, **kwargs: Any) -> dict[str, Any]:
        self.modify_calls += 1
        if self.modify_calls <= self.fail:
            raise ClientError(
                {
                    "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "ModifyListener",
            )
        return self._real.modify_listener(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_elb_throttling_is_retried_with_backoff(world: World) -> None:
    seed(world)
    sleeps: list[float] = []
    client = ThrottlingElb(fail=3)
    world.services().listener = gateway = ElbListenerGateway(client=client, sleep=sleeps.append)
    assert abort()["status"] == "rolled_back"
    assert client.modify_calls == 4 and gateway.retries == 3
    assert len(sleeps) == 3 and all(0 <= s <= 4.0 for s in sleeps)
    assert_no_path_to_canary(world)
    assert len(rollback_alerts(world)) == 1


def test_persistent_throttling_fails_and_frees_the_lock_for_a_retry(world: World) -> None:
    seed(world)
    world.services().listener = ElbListenerGateway(client=ThrottlingElb(fail=100), sleep=lambda s: None, max_attempts=4)
    with pytest.raises(OperationalError, match="still failing with Throttling after 4 attempts"):
        abort()
    assert world.services().store.rollback_lock("r-1") is None  # released: the next trigger can redo it
    assert rollback_alerts(world) == []
    world.services().listener = ElbListenerGateway(sleep=lambda s: None)
    assert abort()["status"] == "rolled_back"
    assert len(rollback_alerts(world)) == 1


def test_a_trigger_arriving_during_a_rollback_does_nothing(world: World) -> None:
    seed(world)
    real = world.services().listener
    nested: list[Any] = []

    class Interleaving:
        """Delivers the alarm trigger while the CLI trigger is changing the listener."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def set_default_actions(self, listener_arn: str, actions: list) -> None:
            if not nested:
                try:
                    nested.append(rollback.handler(alarm_event("ALARM"), CONTEXT))
                except RollbackInProgressError as exc:
                    nested.append(exc)
            real.set_default_actions(listener_arn, actions)

    world.services().listener = Interleaving()
    assert abort()["status"] == "rolled_back"
    assert isinstance(nested[0], RollbackInProgressError)  # retried later by Lambda/Step Functions
    # the retry (or the state machine's own catch path) finds the rollback done: no second rollback, no alert
    again = rollback.handler(
        {
            "source": "state_machine",
            "execution_arn": "arn:x",
            "state": {
                "rollout_id": "r-1",
                "progress": world.meta("r-1").progress.model_dump(mode="json"),
                "failure": {"Error": "X", "Cause": "y"},
            },
        },
        CONTEXT,
    )
    assert again["status"] == "already_rolled_back"
    assert again["record"]["trigger"]["kind"] == "manual_abort"
    assert rollback.handler(alarm_event("ALARM"), CONTEXT)["status"] == "no_active_rollout"
    assert len(rollback_alerts(world)) == 1


def test_concurrent_triggers_give_one_rollback_and_one_alert(world: World) -> None:
    seed(world)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def trigger(event: dict[str, Any]) -> None:
        barrier.wait()
        try:
            results.append(rollback.handler(event, CONTEXT)["status"])
        except RollbackInProgressError:
            results.append("in_progress")

    cli = {"source": "cli", "rollout_id": "r-1", "reason": "abort", "actor": "alice"}
    threads = [threading.Thread(target=trigger, args=(e,)) for e in (alarm_event("ALARM"), cli, cli)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results).count("rolled_back") == 1, results
    assert set(results) <= {"rolled_back", "in_progress", "already_rolled_back", "no_active_rollout"}
    assert len(rollback_alerts(world)) == 1
    assert_no_path_to_canary(world)


def test_alarm_not_in_alarm_state_and_alarm_without_rollout_change_nothing(world: World) -> None:
    assert rollback.handler(alarm_event("OK"), CONTEXT)["status"] == "ignored"
    assert rollback.handler(alarm_event("ALARM"), CONTEXT)["status"] == "no_active_rollout"
    assert world.forward().weights == {world.primary_tg: 100, world.canary_tg: 0}
    assert world.alerts() == []


def test_alarm_trigger_records_the_alarm_and_a_fresh_metrics_snapshot(world: World) -> None:
    seed(world)
    result = rollback.handler(alarm_event("ALARM"), CONTEXT)
    record = result["record"]
    assert (
        record["trigger"]["kind"] == "alarm" and "kanaria-canary-critical is in ALARM" in record["trigger"]["summary"]
    )
    assert record["trigger"]["details"]["alarm_rule"].startswith("ALARM(kanaria-canary-error-rate)")
    assert record["metrics_snapshot"]["canary"]["observations"] == 1000  # read at rollback time
    assert record["execution_stopped"] is False  # the seeded execution does not exist in Step Functions


def test_metrics_outage_does_not_block_the_rollback(world: World) -> None:
    from tests.support.rollout_world import ScriptedMetrics

    seed(world)
    world.services().metrics = ScriptedMetrics(OperationalError("CloudWatch read failed: throttled", field="metrics"))
    record = abort()["record"]
    assert record["metrics_snapshot"] == {"error": "metrics unavailable: metrics: CloudWatch read failed: throttled"}
    assert_no_path_to_canary(world)
    assert "metrics unavailable" in rollback_alerts(world)[0]["Message"]


def test_the_rollback_record_is_immutable(world: World) -> None:
    seed(world)
    abort(reason="first")
    store = world.services().store
    first = store.rollback_record("r-1")
    assert store.put_rollback_record(first.model_copy(update={"at": "2099-01-01T00:00:00+00:00"})) is False
    assert store.rollback_record("r-1") == first


def test_a_completed_rollout_is_not_rolled_back(world: World) -> None:
    state = seed(world, stage=2)
    from kanaria.domain.rollout_state import RolloutState

    services = world.services()
    full = verify_weights(services, set_weights(services, RolloutState.model_validate(state), True), True)
    complete(services, full)
    with pytest.raises(ConflictError, match="completed"):
        abort()
    assert world.forward().weights == {world.canary_tg: 100}


def test_anti_flapping_cooldown_doubling_and_rejection_through_the_store(world: World) -> None:
    services = world.services()
    real_clock = services.clock
    start = datetime.now(timezone.utc)
    for attempt in range(3):
        services.clock = lambda attempt=attempt: start + timedelta(hours=25 * attempt)
        state = seed(world, rollout_id=f"flap-{attempt}", stage=0, config_hash="cfg-flappy")
        assert state["rollout"]["admission"]["first_stage_multiplier"] == (1 if attempt == 0 else 2)
        abort(f"flap-{attempt}")
        if attempt == 0:
            with pytest.raises(ConflictError, match="cooldown"):  # 24 h cooldown
                seed(world, rollout_id="too-soon", config_hash="cfg-flappy")
    services.clock = lambda: start + timedelta(days=30)
    with pytest.raises(ConflictError, match="rejected for good"):
        seed(world, rollout_id="flap-3", config_hash="cfg-flappy")
    events, rejected = services.store.candidate_history("cfg-flappy")
    assert rejected and [e.kind for e in events] == ["rollback"] * 3
    assert "REJECTED for good (3 rollbacks in 7 days)" in rollback_alerts(world)[-1]["Message"]
    services.clock = real_clock
    seed(world, rollout_id="other-config", config_hash="cfg-different")  # other configurations are unaffected


def test_doubling_applies_to_the_first_stage_minimum(world: World) -> None:
    services = world.services()
    document = request(config_hash="cfg-double")
    document["plan"]["stages"][0]["min_duration_seconds"] = 60
    start = datetime.now(timezone.utc)
    services.clock = lambda: start
    prepare(services, deployment(), document, EXECUTION + "d-0", "d-0")
    abort("d-0")
    services.clock = lambda: start + timedelta(hours=24, seconds=1)
    state = prepare(services, deployment(), document, EXECUTION + "d-1", "d-1")
    assert [s.min_duration_seconds for s in state.rollout.plan.stages] == [120, 0, 0]


def test_prepare_refuses_a_busy_listener_and_a_second_rollout(world: World) -> None:
    world.set_forward({world.primary_tg: 90, world.canary_tg: 10})
    with pytest.raises(ConflictError, match="already sends 10% to the canary"):
        seed(world, rollout_id="busy")
    world.set_forward({world.primary_tg: 100, world.canary_tg: 0})
    prepare(world.services(), deployment(), request(), EXECUTION + "one", "one")
    with pytest.raises(ConflictError, match="'one' is active on this listener"):
        prepare(world.services(), deployment(), request(config_hash="cfg-0002"), EXECUTION + "two", "two")


def test_no_write_access_to_experiments_is_recorded_not_raised(world: World) -> None:
    world.create_experiment()
    seed(world, experiment=True)
    experiments = world.services().experiments
    client = experiments._client

    class ReadOnly:
        """The experiments table's client as a role with read-only grants sees it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def transact_write_items(self, **kwargs: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "TransactWriteItems"
            )

    experiments._client = ReadOnly()
    result = abort()
    assert result["status"] == "rolled_back"
    assert "AccessDeniedException: not authorized" in result["record"]["variant_stop_error"]
    assert_no_path_to_canary(world)
    assert "Stop it by hand" in rollback_alerts(world)[0]["Message"]
