"""Rollback path findings, each reproduced deterministically on in-memory dependencies (a listener gateway that
runs the competing trigger inside its write): the listener moves before the execution is stopped, a stage write
racing a rollback undoes itself, a repeated rollback verifies and repairs the listener, and the approved promotion
re-checks the critical alarm."""

from __future__ import annotations

from typing import Any

import pytest

from kanaria.domain.rollout_state import RollbackTrigger, RolloutState
from kanaria.domain.rollout_status import PromotionBlockedError, RolledBackError
from kanaria.errors import ConflictError, OperationalError
from kanaria.logic.rollback import rollback, trigger_from_state
from kanaria.logic.rollout_steps import complete, set_weights, verify_weights
from tests.support.rollout_fakes import CANARY, DEPLOYMENT, EXECUTION, PRIMARY, services, started

ABORT = RollbackTrigger(kind="manual_abort", source="cli", actor="alice", summary="aborted by alice")
ALARM = RollbackTrigger(kind="alarm", source="alarm", summary="kanaria-canary-critical is in ALARM")


def _next_stage(state: RolloutState) -> RolloutState:
    return state.model_copy(update={"progress": state.progress.model_copy(update={"stage_index": 1})})


def test_the_listener_moves_before_the_execution_is_stopped() -> None:
    svc = services()
    started(svc, stage=0)
    order: list[str] = []
    svc.listener.order = svc.executions.order = order
    rollback(svc, DEPLOYMENT, "r-1", ALARM)
    assert order == ["listener", "stop"]
    assert svc.executions.stopped == [EXECUTION + "r-1"]


def test_a_listener_that_cannot_be_written_leaves_the_execution_running() -> None:
    """ELB throttled through every retry: the canary still has traffic, so the execution (its gate, its own
    rollback path) must keep running, and nothing may claim a rollback happened."""
    svc = services()
    started(svc, stage=0)
    real = svc.listener

    class Throttled:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def set_default_actions(self, listener_arn: str, actions: list) -> None:
            raise OperationalError(
                "ELB modify_listener still failing with Throttling after 8 attempts", field="listener"
            )

    svc.listener = Throttled()
    with pytest.raises(OperationalError):
        rollback(svc, DEPLOYMENT, "r-1", ALARM)
    assert svc.executions.stopped == [] and svc.executions.status(EXECUTION + "r-1") == "RUNNING"
    assert svc.store.rollback_lock("r-1") is None and svc.notifier.messages == []
    # the rollback began for good: the lock is free for the next attempt, but no step goes on
    meta = svc.store.get("r-1")
    assert meta.status == "rolling_back" and meta.rollback_trigger == ALARM
    with pytest.raises(RolledBackError, match="rolling_back"):
        set_weights(svc, _next_stage(meta.state()))


def test_a_stage_write_landing_after_a_rollback_undoes_itself() -> None:
    """set_weights checked the lock, then ELB backoff; meanwhile a rollback completed. Its write lands last."""
    svc = services()
    state = started(svc, stage=0)
    real = svc.listener
    raced: list[Any] = []

    class RollbackDuringBackoff:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def set_default_actions(self, listener_arn: str, actions: list) -> None:
            if not raced:
                raced.append("started")
                svc.listener = real  # the rollback (another Lambda) writes through its own client
                raced.append(rollback(svc, DEPLOYMENT, "r-1", ABORT))  # completes during our backoff
            real.set_default_actions(listener_arn, actions)  # then our stage write lands

    svc.listener = RollbackDuringBackoff()
    stage_writer = svc.listener
    with pytest.raises(RolledBackError, match="while its weights were being written"):
        set_weights(svc, _next_stage(state))
    assert raced[1]["status"] == "rolled_back" and stage_writer is not real
    assert real.forward().weights == {PRIMARY: 100} and not real.forward().stickiness_enabled
    assert svc.store.get("r-1").status == "rolled_back"
    assert len(svc.notifier.subjects("[Kanaria] ROLLBACK ")) == 1


def test_a_rollback_in_progress_also_wins_over_a_stage_write() -> None:
    """The alarm's rollback began and took the lock while the stage write was in flight (it will write
    primary-only)."""
    svc = services()
    state = started(svc, stage=0)
    real = svc.listener

    class LockTakenDuringWrite:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def set_default_actions(self, listener_arn: str, actions: list) -> None:
            svc.store.begin_rollback("r-1", ALARM, svc.clock())
            svc.store.acquire_rollback_lock("r-1", "the-alarm-trigger", svc.clock(), 120)
            real.set_default_actions(listener_arn, actions)

    svc.listener = LockTakenDuringWrite()
    with pytest.raises(RolledBackError, match="rolling_back"):
        set_weights(svc, _next_stage(state))
    assert real.forward().weights == {PRIMARY: 100}


def test_a_repeated_rollback_repairs_a_listener_that_reaches_the_canary_again() -> None:
    svc = services()
    started(svc, stage=1)
    rollback(svc, DEPLOYMENT, "r-1", ALARM)
    svc.listener.set_canary(25)  # e.g. a stage write that raced the rollback before this fix, or a hand edit
    again = rollback(svc, DEPLOYMENT, "r-1", ABORT)  # `kanaria rollout abort`
    assert again["status"] == "already_rolled_back"
    assert again["listener"]["repaired"] is True and again["listener"]["found"] == [
        "default action: 25% to the canary (sticky)"
    ]
    assert svc.listener.forward().weights == {PRIMARY: 100}
    assert svc.notifier.subjects("[Kanaria] ROLLBACK REPAIRED") == ["[Kanaria] ROLLBACK REPAIRED r-1"]
    assert svc.store.rollback_record("r-1").trigger.kind == "alarm"  # the record stays the first one
    # a clean listener is verified, not rewritten
    writes = svc.listener.writes
    third = rollback(svc, DEPLOYMENT, "r-1", ABORT)
    assert third["listener"] == {"verified": True, "repaired": False} and svc.listener.writes == writes


def test_a_repeated_rollback_does_not_touch_the_next_rollouts_canary() -> None:
    svc = services()
    started(svc, stage=0)
    rollback(svc, DEPLOYMENT, "r-1", ALARM)
    svc.store.history.clear()  # no cooldown for this test: another configuration starts on the same listener
    started(svc, rollout_id="r-2", stage=1, config_hash="cfg-0002")
    again = rollback(svc, DEPLOYMENT, "r-1", ABORT)
    assert again["listener"]["verified"] is False and "held by rollout 'r-2'" in again["listener"]["reason"]
    assert svc.listener.forward().weights == {PRIMARY: 75, CANARY: 25}


def test_the_approved_promotion_rechecks_the_critical_alarm() -> None:
    svc = services()
    state = started(svc, stage=2)
    svc.metrics.critical_state = "ALARM"
    with pytest.raises(PromotionBlockedError, match="is in ALARM"):
        set_weights(svc, state, full=True)
    assert svc.listener.forward().weights == {PRIMARY: 50, CANARY: 50}  # never 100% canary
    trigger = trigger_from_state({"Error": "PromotionBlockedError", "Cause": "alarm"}, state.progress)
    assert trigger.kind == "gate_failed" and "promotion to 100% refused" in trigger.summary
    svc.metrics.critical_state = "OK"
    full = verify_weights(svc, set_weights(svc, state, full=True), full=True)
    assert svc.listener.forward().weights == {CANARY: 100} and full.progress.percent == 100


def test_a_request_cannot_name_any_target_group_as_its_canary() -> None:
    from dataclasses import replace

    from kanaria.errors import ValidationError
    from kanaria.logic.rollout_prepare import prepare
    from tests.support.rollout_world import request

    svc = services()
    stranger = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/payments/9"
    document = request()
    document["candidate"]["target_group"] = stranger
    with pytest.raises(ValidationError, match="not a canary target group of this deployment") as caught:
        prepare(svc, DEPLOYMENT, document, EXECUTION + "r-x", "r-x")
    assert caught.value.field == "candidate.target_group" and svc.listener.writes == 0
    allowed = replace(DEPLOYMENT, other_canary_target_groups=(stranger,))
    state = prepare(svc, allowed, document, EXECUTION + "r-y", "r-y")
    assert state.rollout.canary_target_group == stranger


def _at_full(svc: Any) -> RolloutState:
    """A rollout approved and verified at 100%, waiting for Complete."""
    state = started(svc, stage=2)
    return verify_weights(svc, set_weights(svc, state, full=True), full=True)


def test_an_abort_that_began_first_makes_complete_refuse() -> None:
    # Given the abort's rollback began (its listener write still to come) while Complete was about to run
    svc = services()
    full = _at_full(svc)
    svc.store.begin_rollback("r-1", ABORT, svc.clock())
    # When Complete runs, then it refuses (the execution routes to its own Rollback) and nothing says completed
    with pytest.raises(RolledBackError, match="rolling_back"):
        complete(svc, full)
    assert svc.store.get("r-1").status == "rolling_back"
    assert svc.store.history.get("cfg-0001", []) == []
    # and the rollback then finishes with the abort as its trigger
    assert (
        rollback(svc, DEPLOYMENT, "r-1", trigger_from_state({"Error": "RolledBackError"}, full.progress))["record"][
            "trigger"
        ]["kind"]
        == "manual_abort"
    )
    assert svc.listener.forward().weights == {PRIMARY: 100}


def test_a_complete_landing_between_the_aborts_read_and_its_begin_wins() -> None:
    # Given the abort read the rollout (promoting), then Complete wrote completed before the abort's begin
    svc = services()
    full = _at_full(svc)
    begin = svc.store.begin_rollback

    def completed_meanwhile(*args: Any) -> Any:
        complete(svc, full)
        return begin(*args)

    svc.store.begin_rollback = completed_meanwhile  # type: ignore[method-assign]
    # When the abort goes on, then it refuses: the rollout stays completed at 100%, no rollback was recorded
    with pytest.raises(ConflictError, match="completed"):
        rollback(svc, DEPLOYMENT, "r-1", ABORT)
    assert svc.store.get("r-1").status == "completed" and svc.store.rollback_record("r-1") is None
    assert svc.listener.forward().weights == {CANARY: 100}
    assert [e.kind for e in svc.store.history["cfg-0001"]] == ["completed"]
