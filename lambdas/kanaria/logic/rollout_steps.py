"""The stage steps of a canary rollout, one per state-machine task: write the stage's weights, read them back,
evaluate the stage's gates (with the canary judge), ask a human for the promotion to 100%, complete.

Every step refuses once a rollback has begun (the rollout's status rolling_back, kept for good), and changes the
rollout only by a write conditional on no rollback having begun. A weight write re-reads the status after it lands:
a rollback that began meanwhile wins and the listener goes back to primary-only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kanaria.canary import judge
from kanaria.domain.rollout import (
    CandidateEvent,
    Forward,
    forward_differences,
    forward_of,
    next_step,
    primary_only,
    target_forward,
    with_forward,
)
from kanaria.domain.rollout_gates import Outcome, evaluate_gates, significance_from_result
from kanaria.domain.rollout_plan import Stage, judge_horizon_periods
from kanaria.domain.rollout_state import Progress, Rollout, RolloutState, approval_message
from kanaria.domain.rollout_status import (
    ROLLBACK_BEGUN,
    PromotionBlockedError,
    RolledBackError,
    RolloutStatus,
    WeightsMismatchError,
)
from kanaria.errors import OperationalError
from kanaria.logic.rollout_services import RolloutServices, iso_seconds


def _ensure_not_rolled_back(services: RolloutServices, rollout_id: str) -> None:
    meta = services.store.get(rollout_id)
    if meta is not None and meta.status in ROLLBACK_BEGUN:
        raise RolledBackError(f"rollout {rollout_id!r} is {meta.status.value}; stopping here", field="rollout_id")


def _target(state: RolloutState, full: bool) -> tuple[int, Forward]:
    rollout = state.rollout
    index = len(rollout.plan.stages) if full else state.progress.stage_index
    percent = 100 if full else rollout.plan.stages[index].percent
    return index, target_forward(
        rollout.primary_target_group, rollout.canary_target_group, percent, rollout.plan.stickiness_seconds
    )


def set_weights(services: RolloutServices, state: RolloutState, full: bool = False) -> RolloutState:
    """Write the stage's weights (100% canary when `full`) into the listener's forward action.

    A rollback may begin while this write is in flight (ELB backoff): the status is read again after the write
    (and the progress written only if no rollback began); a rollback that began meanwhile puts the listener back
    to primary-only before RolledBackError. Before the 100% write the critical alarm is read fresh (the approval
    can come hours after the last gate)."""
    _ensure_not_rolled_back(services, state.rollout_id)
    rollout = state.rollout
    if full:
        _check_promotion_safe(services, state)
    index, forward = _target(state, full)
    actions = services.listener.default_actions(rollout.listener_arn)
    services.listener.set_default_actions(rollout.listener_arn, with_forward(actions, forward))
    _undo_if_rolled_back(services, state)
    name = "full" if full else rollout.plan.stages[index].name
    progress = state.progress.model_copy(
        update={
            "stage_index": index,
            "stage_name": name,
            "percent": forward.share(rollout.canary_target_group),
            "weights": forward.weights,
            "stage_started_at": None,
            "checks": 0,
            "wait_seconds": 0,
            "decision": "promote" if full else "observe",
            "reason": f"weights set for {name}",
        }
    )
    status = RolloutStatus.PROMOTING if full else RolloutStatus.RUNNING
    try:
        services.store.update(state.rollout_id, status, progress, services.clock())
    except RolledBackError:
        _primary_only_again(services, rollout)
        raise
    return state.model_copy(update={"progress": progress})


def _undo_if_rolled_back(services: RolloutServices, state: RolloutState) -> None:
    """After a stage write: a rollback that began meanwhile wins; primary-only again, then stop here."""
    meta = services.store.get(state.rollout_id)
    if meta is None or meta.status not in ROLLBACK_BEGUN:
        return
    _primary_only_again(services, state.rollout)
    raise RolledBackError(
        f"rollout {state.rollout_id!r} is {meta.status.value}: a rollback began while its weights were "
        "being written; the listener is primary-only again",
        field="rollout_id",
    )


def _primary_only_again(services: RolloutServices, rollout: Rollout) -> None:
    """Undo a stage write that lost to a rollback."""
    actions = services.listener.default_actions(rollout.listener_arn)
    services.listener.set_default_actions(
        rollout.listener_arn, with_forward(actions, primary_only(rollout.primary_target_group))
    )


def _check_promotion_safe(services: RolloutServices, state: RolloutState) -> None:
    """The EvaluateGate-equivalent before PromoteFull: never 100% with the critical alarm in ALARM."""
    critical = services.metrics.critical_alarm_state()
    if critical is not None and critical[1] == "ALARM":
        raise PromotionBlockedError(
            f"{critical[0]} is in ALARM: the approved promotion of {state.rollout_id!r} to "
            "100% is refused and the canary rolls back",
            field="alarms",
        )


def verify_weights(services: RolloutServices, state: RolloutState, full: bool = False) -> RolloutState:
    """Read the listener back: WeightsMismatchError unless it reports exactly what was written."""
    _ensure_not_rolled_back(services, state.rollout_id)
    rollout = state.rollout
    index, expected = _target(state, full)
    actual = forward_of(services.listener.default_actions(rollout.listener_arn))
    differences = forward_differences(expected, actual)
    if differences:
        raise WeightsMismatchError(
            "listener weights differ from what was written: " + "; ".join(differences), field="listener"
        )
    now = services.clock()
    wait = 0 if full else rollout.plan.stages[index].check_interval_seconds
    progress = state.progress.model_copy(
        update={
            "stage_started_at": iso_seconds(now),
            "wait_seconds": wait,
            "decision": "promote" if full else "observe",
            "reason": f"weights verified: {state.progress.percent}% canary",
            "judge": None if full else _judge_for_stage(rollout, state.progress, now),
        }
    )
    services.store.update(state.rollout_id, RolloutStatus.PROMOTING if full else RolloutStatus.RUNNING, progress, now)
    return state.model_copy(update={"progress": progress})


def _judge_for_stage(rollout: Rollout, progress: Progress, now: datetime) -> judge.JudgeState | None:
    """A fresh judge at the first stage; later stages keep its evidence and restart the stage totals."""
    settings = rollout.plan.judge
    if settings is None:
        return None
    if progress.judge is None:
        return judge.start(settings, now, judge_horizon_periods(rollout.plan))
    return judge.new_stage(progress.judge)


def _run_judge(
    services: RolloutServices, rollout: Rollout, progress: Progress, stage: Stage, now: datetime
) -> tuple[judge.Judgement | None, judge.JudgeState | None]:
    """Read the settled minutes since the last look into the judge; its verdict and new state."""
    settings = rollout.plan.judge
    if settings is None or progress.judge is None:
        return None, progress.judge
    if services.canary is None:
        raise OperationalError("the plan has a judge but no canary metrics reader is configured", field="plan.judge")
    state = progress.judge
    window = judge.minutes_to_read(settings, state, now)
    if window is not None:
        minutes = judge.arrived(settings, services.canary.read_minutes(window[0], window[1], settings), now)
        if minutes:
            until = minutes[-1].minute + timedelta(seconds=settings.period_seconds)
            state = judge.observe(settings, state, minutes, until)
    return judge.judge(settings, state, stage.gates.min_observations), state


def evaluate_gate(services: RolloutServices, state: RolloutState) -> RolloutState:
    """Run the judge on the minutes since its last look, evaluate the stage's gates on the metrics since the
    stage started, and decide what comes next."""
    _ensure_not_rolled_back(services, state.rollout_id)
    rollout, progress = state.rollout, state.progress
    stage = rollout.plan.stages[progress.stage_index]
    if progress.stage_started_at is None:
        raise OperationalError("the stage has no verified start time", field="progress.stage_started_at")
    started = datetime.fromisoformat(progress.stage_started_at)
    now = services.clock()
    judgement, judge_state = _run_judge(services, rollout, progress, stage, now)
    snapshot = services.metrics.read(started, now)
    significance = None
    if stage.gates.require_significance:
        if services.analysis is None or rollout.candidate.experiment_id is None:
            raise OperationalError("the significance gate has no analysis results to read", field="plan")
        result = services.analysis.latest(rollout.candidate.experiment_id)
        significance = significance_from_result(result, rollout.candidate.variant or "")
    gate = evaluate_gates(stage.gates, snapshot, significance, judgement)
    last = progress.stage_index == len(rollout.plan.stages) - 1
    step = next_step(stage, gate.outcome, (now - started).total_seconds(), last)
    reasons = gate.reasons if gate.outcome is not Outcome.PASS else []
    update: dict[str, Any] = {
        "decision": step.decision,
        "wait_seconds": step.wait_seconds,
        "checks": progress.checks + 1,
        "gate": gate,
        "reason": "; ".join([step.reason, *reasons]),
        "judge": judge_state,
    }
    if step.decision == "advance":
        update["stage_index"] = progress.stage_index + 1
    new_progress = progress.model_copy(update=update)
    services.store.update(state.rollout_id, RolloutStatus.RUNNING, new_progress, services.clock())
    return state.model_copy(update={"progress": new_progress})


def request_approval(services: RolloutServices, state: RolloutState, task_token: str) -> dict[str, Any]:
    """Store the task token and send the A/B summary with how to approve or reject."""
    _ensure_not_rolled_back(services, state.rollout_id)
    subject, message = approval_message(state, task_token)
    services.store.update(
        state.rollout_id, RolloutStatus.AWAITING_APPROVAL, state.progress, services.clock(), approval_token=task_token
    )
    services.notifier.publish(subject, message)
    return {"approval_requested": True, "rollout_id": state.rollout_id}


def complete(services: RolloutServices, state: RolloutState) -> RolloutState:
    """100% verified: record success, free the listener for the next rollout. The write to completed is
    conditional on no rollback having begun, and a rollback begins only on a rollout not completed: of a
    completion and a rollback racing, exactly one wins."""
    _ensure_not_rolled_back(services, state.rollout_id)
    now = services.clock()
    progress = state.progress.model_copy(update={"decision": "completed", "reason": "canary serves 100%"})
    services.store.update(state.rollout_id, RolloutStatus.COMPLETED, progress, now)
    services.store.add_candidate_event(
        state.rollout.candidate.config_hash, CandidateEvent(kind="completed", at=now, rollout_id=state.rollout_id)
    )
    services.store.release_active(state.rollout.listener_arn, state.rollout_id)
    return state.model_copy(update={"progress": progress})
