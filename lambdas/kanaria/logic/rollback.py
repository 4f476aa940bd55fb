"""The rollback of a canary rollout, from any trigger (the state machine's failure path, the critical alarm,
`kanaria rollout abort`, the execution-status rule, the reconciler): every path to the canary closed and read back,
the execution and the experiment variant stopped, one immutable record, one alert. A rollback lock makes it
idempotent across triggers; a rollback asked again re-verifies the listener instead of trusting the record."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from kanaria.domain.rollout import (
    Admission,
    CandidateEvent,
    Forward,
    admission,
    forward_differences,
    forward_of,
    primary_only,
    with_forward,
    without_target_group,
)
from kanaria.domain.rollout_gates import GateResult, Outcome
from kanaria.domain.rollout_ports import ListenerGateway
from kanaria.domain.rollout_state import Progress, RollbackRecord, RollbackTrigger, Rollout, rollback_alert
from kanaria.domain.rollout_status import (
    LockAttempt,
    PromotionBlockedError,
    RollbackInProgressError,
    RolloutStatus,
    StoredRollout,
    WeightsMismatchError,
)
from kanaria.errors import ConflictError, KanariaError, NotFoundError, OperationalError
from kanaria.logic.experiments import stop_variant
from kanaria.logic.rollout_services import Deployment, RolloutServices, iso_seconds

ROLLBACK_LEASE_SECONDS = 120  # a rollback Lambda (timeout 60 s) that died mid-way is taken over after this
ROLLBACK_REASON = "canary_rollback"


def trigger_from_state(failure: Mapping[str, Any] | None, progress: Progress | None) -> RollbackTrigger:
    """Why the state machine routes to the rollback: a caught failure ($.failure) or the gate's decision."""
    if failure:
        error, cause = str(failure.get("Error", "")), str(failure.get("Cause", ""))
        details = {"error": error, "cause": cause[:2000]}
        if error == "Kanaria.Rejected":
            return RollbackTrigger(
                kind="approval_rejected",
                source="state_machine",
                details=details,
                summary=f"promotion to 100% rejected by a human: {cause or 'no reason given'}",
            )
        if error == PromotionBlockedError.__name__:
            return RollbackTrigger(
                kind="gate_failed",
                source="state_machine",
                details=details,
                summary=f"promotion to 100% refused after the approval: {cause[:500]}",
            )
        if (
            error in {"States.Timeout", "States.HeartbeatTimeout"}
            and progress
            and progress.decision == "await_approval"
        ):
            return RollbackTrigger(
                kind="approval_timeout",
                source="state_machine",
                details=details,
                summary="no approval before the approval timeout (traffic held at the last stage)",
            )
        return RollbackTrigger(
            kind="task_failed",
            source="state_machine",
            details=details,
            summary=f"a rollout step failed: {error}: {cause[:500]}",
        )
    gate = progress.gate if progress else None
    kind = "gate_failed" if gate is not None and gate.outcome is Outcome.FAIL else "hold_exceeded"
    return RollbackTrigger(
        kind=kind,
        source="state_machine",
        summary=(progress.reason if progress else "") or kind,
        details={"decision": progress.decision if progress else None},
    )


def rollback(
    services: RolloutServices,
    deployment: Deployment,
    rollout_id: str,
    trigger: RollbackTrigger,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """All traffic to primary with the canary out of the forward action, verified; stop the execution (when
    triggered outside it), stop the experiment variant, record, alert once. Idempotent across triggers: the
    rollback begins for good (status rolling_back, the first trigger kept) before the listener is touched, and
    whichever trigger holds the lock finishes it; a failed attempt leaves it begun for the next one."""
    meta = _begin(services, rollout_id, trigger)
    rollout = meta.rollout
    progress = progress or meta.progress
    owner = services.new_owner()
    lock = services.store.acquire_rollback_lock(rollout_id, owner, services.clock(), ROLLBACK_LEASE_SECONDS)
    if lock is LockAttempt.DONE:
        return _already_rolled_back(services, rollout, trigger)
    if lock is LockAttempt.IN_PROGRESS:
        raise RollbackInProgressError(f"another trigger is rolling back {rollout_id!r} right now", field="rollout_id")
    finished = False
    try:
        # the record names the trigger that began the rollback; only a trigger outside the execution stops it
        first = meta.rollback_trigger or trigger
        record = _roll_back(services, deployment, rollout, progress, first, trigger.source != "state_machine")
        services.store.finish_rollback_lock(rollout_id, owner, services.clock())
        finished = True
    finally:
        if not finished:
            services.store.release_rollback_lock(rollout_id, owner)  # let a retry (or another trigger) redo it
    return {"status": "rolled_back", "rollout_id": rollout_id, "record": record.model_dump(mode="json")}


def _begin(services: RolloutServices, rollout_id: str, trigger: RollbackTrigger) -> StoredRollout:
    """The rollout, its rollback begun: refused (ConflictError) when it completed, before or racing this call."""
    meta = services.store.get(rollout_id)
    if meta is None:
        raise NotFoundError(f"unknown rollout {rollout_id!r}", field="rollout_id")
    if meta.status not in {RolloutStatus.COMPLETED, RolloutStatus.ROLLED_BACK}:
        meta = services.store.begin_rollback(rollout_id, trigger, services.clock()) or meta
    if meta.status is RolloutStatus.COMPLETED:
        raise ConflictError(
            f"rollout {rollout_id!r} completed (canary at 100%); a rollback would now move all "
            "traffic off the promoted configuration: start a new rollout instead",
            field="rollout_id",
        )
    return meta


def _already_rolled_back(services: RolloutServices, rollout: Rollout, trigger: RollbackTrigger) -> dict[str, Any]:
    """A finished rollback asked again: the listener verified (repaired if need be), the slot freed if still held."""
    record = services.store.rollback_record(rollout.rollout_id)
    listener = _verify_rolled_back(services, rollout, trigger)
    if listener.get("verified"):
        services.store.release_active(rollout.listener_arn, rollout.rollout_id)
    return {
        "status": "already_rolled_back",
        "rollout_id": rollout.rollout_id,
        "listener": listener,
        "record": record.model_dump(mode="json") if record else None,
    }


def _roll_back(
    services: RolloutServices,
    deployment: Deployment,
    rollout: Rollout,
    progress: Progress,
    trigger: RollbackTrigger,
    stop_execution: bool,
) -> RollbackRecord:
    store = services.store
    before, after, rules_fixed = _primary_only(services.listener, rollout)
    execution_stopped = False
    if stop_execution:
        execution_stopped = services.executions.stop(rollout.execution_arn, "Kanaria.RolledBack", trigger.summary[:256])
    stopped, stop_error = _stop_variant(services, rollout, trigger)
    snapshot, gate = _evidence(services, rollout, progress, trigger)
    now = services.clock()
    candidate = rollout.candidate
    event = CandidateEvent(kind="rollback", at=now, rollout_id=rollout.rollout_id, trigger=trigger.kind)
    events, rejected = store.candidate_history(candidate.config_hash)
    events = [e for e in events if e.rollout_id != rollout.rollout_id] + [event]
    verdict_after: Admission = admission(events, rejected, now)
    record = RollbackRecord(
        rollout_id=rollout.rollout_id,
        at=iso_seconds(now),
        trigger=trigger,
        stage_name=progress.stage_name,
        stage_index=progress.stage_index,
        percent_before=before.share(rollout.canary_target_group),
        config_hash=candidate.config_hash,
        model_id=candidate.model_id,
        canary_target_group=rollout.canary_target_group,
        primary_target_group=rollout.primary_target_group,
        weights_before=before.weights,
        weights_after=after.weights if after else {},
        stickiness_before=before.stickiness_enabled,
        metrics_snapshot=snapshot,
        gate=gate,
        experiment_id=candidate.experiment_id,
        variant=candidate.variant,
        variant_stopped=stopped,
        variant_stop_error=stop_error,
        execution_arn=rollout.execution_arn,
        execution_stopped=execution_stopped,
        rules_fixed=rules_fixed,
        admission_after=verdict_after,
    )
    if not store.put_rollback_record(record):
        record = store.rollback_record(rollout.rollout_id) or record  # a retry: the first record stands
    store.add_candidate_event(candidate.config_hash, event)
    if verdict_after.rejected and not rejected:
        store.mark_rejected(candidate.config_hash, verdict_after.reason, now)
    _finish(services, rollout, progress, record, trigger, now)
    return record


def _primary_only(listener: ListenerGateway, rollout: Rollout) -> tuple[Forward, Forward | None, list[str]]:
    """All traffic to primary, every rule off the canary, read back: (forward before, forward after, rules fixed).

    The listener first: while ELB is throttled the execution keeps running (its gate or the reconciler can still
    act) instead of being stopped with the canary still at its weight. A stage write of the execution landing
    after ours sees our lock and undoes itself (set_weights)."""
    before_actions = listener.default_actions(rollout.listener_arn)
    before = forward_of(before_actions) or Forward(weights={})
    target = primary_only(rollout.primary_target_group)
    listener.set_default_actions(rollout.listener_arn, with_forward(before_actions, target))
    rules_fixed = _close_rules(listener, rollout)
    after = forward_of(listener.default_actions(rollout.listener_arn))
    problems = forward_differences(target, after) + [
        f"rule {rule['RuleArn']} still reaches the canary"
        for rule in listener.rules(rollout.listener_arn)
        if (fwd := forward_of(rule.get("Actions", []))) is not None and fwd.reaches(rollout.canary_target_group)
    ]
    if problems:
        raise WeightsMismatchError(
            "after the rollback the canary is still reachable: " + "; ".join(problems), field="listener"
        )
    return before, after, rules_fixed


def _finish(
    services: RolloutServices,
    rollout: Rollout,
    progress: Progress,
    record: RollbackRecord,
    trigger: RollbackTrigger,
    now: datetime,
) -> None:
    """The rollout rolled back, the listener freed, then the one alert (of the record that stands)."""
    store = services.store
    rolled = progress.model_copy(
        update={
            "decision": "rollback",
            "weights": record.weights_after,
            "percent": 0,
            "reason": f"rolled back: {trigger.summary}"[:1000],
        }
    )
    store.update(rollout.rollout_id, RolloutStatus.ROLLED_BACK, rolled, now)
    store.release_active(rollout.listener_arn, rollout.rollout_id)
    store.note_last_rollback(rollout.listener_arn, rollout.rollout_id, now)
    services.notifier.publish(*rollback_alert(record))


def _canary_paths(listener: ListenerGateway, rollout: Rollout) -> tuple[Forward | None, list[str]]:
    """The default forward action, and every way a request can still reach the canary (empty: none)."""
    forward = forward_of(listener.default_actions(rollout.listener_arn))
    paths = []
    if forward is not None and forward.reaches(rollout.canary_target_group):
        paths.append(
            f"default action: {forward.share(rollout.canary_target_group)}% to the canary"
            + (" (sticky)" if forward.stickiness_enabled else "")
        )
    paths += [
        f"rule {rule['RuleArn']}"
        for rule in listener.rules(rollout.listener_arn)
        if (fwd := forward_of(rule.get("Actions", []))) is not None and fwd.reaches(rollout.canary_target_group)
    ]
    return forward, paths


def _verify_rolled_back(services: RolloutServices, rollout: Rollout, trigger: RollbackTrigger) -> dict[str, Any]:
    """A rollback asked again (a late trigger, `kanaria rollout abort`) reads the listener instead of trusting the
    record: a canary path that came back (a stage write racing the rollback, a hand edit) is closed again, verified,
    and paged once per repair. A listener that another rollout holds now is not touched."""
    listener = services.listener
    active = services.store.active(rollout.listener_arn)
    if active is not None and active.rollout_id != rollout.rollout_id:
        return {
            "verified": False,
            "reason": f"the listener is held by rollout {active.rollout_id!r} now; not touched",
        }
    before, paths = _canary_paths(listener, rollout)
    if not paths:
        return {"verified": True, "repaired": False}
    if before is not None and before.reaches(rollout.canary_target_group):
        actions = listener.default_actions(rollout.listener_arn)
        listener.set_default_actions(
            rollout.listener_arn, with_forward(actions, primary_only(rollout.primary_target_group))
        )
    rules_fixed = _close_rules(listener, rollout)
    after, left = _canary_paths(listener, rollout)
    if left:
        raise WeightsMismatchError(
            "after repairing the rollback the canary is still reachable: " + "; ".join(left), field="listener"
        )
    services.notifier.publish(
        f"[Kanaria] ROLLBACK REPAIRED {rollout.rollout_id}".encode("ascii", "replace").decode()[:100],
        "\n".join(
            [
                f"WHAT: rollout {rollout.rollout_id} was already rolled back, but the listener reached the canary again: "
                + "; ".join(paths)
                + ".",
                f"DONE: primary-only again (weights {after.weights if after else {}}), verified by reading the listener "
                f"back; rules fixed: {', '.join(rules_fixed) or 'none'}.",
                f"WHO ASKED: {trigger.kind} via {trigger.source} ({trigger.summary[:300]}).",
                "NEXT: find what wrote the listener after the rollback (CloudTrail ModifyListener).",
            ]
        ),
    )
    return {
        "verified": True,
        "repaired": True,
        "found": paths,
        "weights_after": after.weights if after else {},
        "rules_fixed": rules_fixed,
    }


def _close_rules(listener: ListenerGateway, rollout: Rollout) -> list[str]:
    fixed = []
    for rule in listener.rules(rollout.listener_arn):
        actions = rule.get("Actions", [])
        forward = forward_of(actions)
        if forward is not None and forward.reaches(rollout.canary_target_group):
            closed = without_target_group(forward, rollout.canary_target_group, rollout.primary_target_group)
            listener.set_rule_actions(rule["RuleArn"], with_forward(actions, closed))
            fixed.append(rule["RuleArn"])
    return fixed


def _stop_variant(services: RolloutServices, rollout: Rollout, trigger: RollbackTrigger) -> tuple[bool, str | None]:
    """Stop the candidate's experiment variant; a failure is recorded and put in the alert, not raised (the
    traffic is already safe and the alert tells a human to finish this by hand)."""
    candidate = rollout.candidate
    if candidate.experiment_id is None or candidate.variant is None:
        return False, None
    if services.experiments is None:
        return False, "EXPERIMENTS_TABLE is not configured"
    try:
        stop_variant(
            services.experiments,
            candidate.experiment_id,
            candidate.variant,
            ROLLBACK_REASON,
            trigger.actor,
            services.clock(),
        )
    except KanariaError as exc:  # e.g. AccessDenied on the experiments table: recorded, alerted, finished by hand
        return False, str(exc)
    return True, None


def _evidence(
    services: RolloutServices, rollout: Rollout, progress: Progress, trigger: RollbackTrigger
) -> tuple[dict[str, Any] | None, GateResult | None]:
    """The metrics snapshot for the record: the deciding gate's for gate triggers, else a fresh read of the
    stage's window (a metrics outage must not block the rollback: the error goes into the record instead)."""
    gate = progress.gate
    if trigger.kind in {"gate_failed", "hold_exceeded"} and gate is not None and gate.snapshot is not None:
        return gate.snapshot.model_dump(mode="json"), gate
    start = datetime.fromisoformat(progress.stage_started_at or rollout.created_at)
    try:
        return services.metrics.read(start, services.clock()).model_dump(mode="json"), gate
    except OperationalError as exc:
        return {"error": f"metrics unavailable: {exc}"}, gate
