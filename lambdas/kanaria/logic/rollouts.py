"""Canary rollout steps and the rollback, over injected dependencies (listener, metrics, stores, notifier).

One module on purpose (~700 lines): every step and the rollback share the rollback lock protocol (take, re-read
after each listener write, finish or release) and the ports below; splitting them would spread that protocol
over files that must change together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Protocol

from kanaria.canary.judge import (
    Judgement,
    JudgeSettings,
    JudgeState,
    MinuteCounts,
    arrived,
    judge,
    minutes_to_read,
)
from kanaria.canary.judge import new_stage as judge_new_stage
from kanaria.canary.judge import observe as judge_observe
from kanaria.canary.judge import start as judge_start
from kanaria.domain.rollout import (
    Admission,
    Candidate,
    CandidateEvent,
    Forward,
    GateResult,
    MetricSnapshot,
    OfflineEvaluation,
    Outcome,
    Stage,
    Warmup,
    admission,
    check_offline_evaluation,
    evaluate_gates,
    forward_differences,
    forward_of,
    judge_horizon_periods,
    next_step,
    parse_rollout_request,
    primary_only,
    significance_from_result,
    target_forward,
    with_first_stage_multiplier,
    with_forward,
    without_target_group,
)
from kanaria.domain.rollout_state import (
    Progress,
    RollbackRecord,
    RollbackTrigger,
    Rollout,
    RolloutState,
    approval_message,
    rollback_alert,
)
from kanaria.domain.rollout_status import (
    ActiveRollout,
    LastRollback,
    LockAttempt,
    PromotionBlockedError,
    RollbackInProgressError,
    RollbackLock,
    RolledBackError,
    RolloutStatus,
    StoredRollout,
    WeightsMismatchError,
)
from kanaria.errors import ConflictError, KanariaError, NotFoundError, OperationalError, ValidationError
from kanaria.logic.experiments import ExperimentRepository, get_experiment, stop_variant

ROLLBACK_LEASE_SECONDS = 120  # a rollback Lambda (timeout 60 s) that died mid-way is taken over after this
ROLLBACK_REASON = "canary_rollback"


class ListenerGateway(Protocol):
    """ALB listener access (ELBv2)."""

    def default_actions(self, listener_arn: str) -> list[dict[str, Any]]: ...
    def set_default_actions(self, listener_arn: str, actions: list[dict[str, Any]]) -> None: ...
    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        """Non-default rules with their actions."""
        ...

    def set_rule_actions(self, rule_arn: str, actions: list[dict[str, Any]]) -> None: ...


class CanaryMinutesReader(Protocol):
    """Per-minute canary and primary counts of every judged stream."""

    def read_minutes(self, start: datetime, end: datetime, settings: JudgeSettings) -> list[MinuteCounts]: ...


class MetricsReader(Protocol):
    """Canary vs primary aggregates over a window (missing datapoints stay None)."""

    def read(self, start: datetime, end: datetime) -> MetricSnapshot: ...
    def critical_alarm_state(self) -> tuple[str, str] | None:
        """(name, state) of the critical composite alarm, or None when none is configured."""
        ...


class AnalysisResults(Protocol):
    """The latest analysis result of an experiment (aggregates item RESULT#LATEST), decoded, or None."""

    def latest(self, experiment_id: str) -> dict[str, Any] | None: ...


class Notifier(Protocol):
    """The on-call alert topic."""

    def publish(self, subject: str, message: str) -> None: ...


class Executions(Protocol):
    """The rollout state machine's executions."""

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """Stop a running execution; False when it was not running any more."""
        ...

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or PENDING_REDRIVE); None when it does not exist."""
        ...


class WarmupSender(Protocol):
    """Sends synthetic requests to the canary target before it gets live traffic."""

    def send(self, warmup: Warmup) -> dict[str, Any]:
        """{"sent", "succeeded", "failed", "failure_rate", "seconds"}."""
        ...


class RolloutStore(Protocol):
    """Rollouts table: META per rollout, the active pointer per listener, the rollback lock and record, and the
    anti-flapping history per candidate config hash."""

    def get(self, rollout_id: str) -> StoredRollout | None: ...
    def put_new(self, state: RolloutState, status: RolloutStatus, now: datetime) -> None: ...
    def update(
        self,
        rollout_id: str,
        status: RolloutStatus,
        progress: Progress,
        now: datetime,
        approval_token: str | None = None,
    ) -> None: ...
    def acquire_active(self, listener_arn: str, rollout_id: str, execution_arn: str, now: datetime) -> None: ...
    def active(self, listener_arn: str) -> ActiveRollout | None: ...
    def release_active(self, listener_arn: str, rollout_id: str) -> None: ...
    def note_last_rollback(self, listener_arn: str, rollout_id: str, now: datetime) -> None:
        """Remember the listener's latest rolled-back rollout (a failed alarm event names no rollout)."""
        ...

    def last_rollback(self, listener_arn: str) -> LastRollback | None:
        """The listener's latest rollback, or None."""
        ...

    def acquire_rollback_lock(self, rollout_id: str, owner: str, now: datetime, lease_seconds: int) -> LockAttempt:
        """ACQUIRED, DONE (a rollback finished) or IN_PROGRESS (another trigger holds the lease)."""
        ...

    def finish_rollback_lock(self, rollout_id: str, owner: str, now: datetime) -> None: ...
    def release_rollback_lock(self, rollout_id: str, owner: str) -> None: ...
    def rollback_lock(self, rollout_id: str) -> RollbackLock | None: ...
    def put_rollback_record(self, record: RollbackRecord) -> bool:
        """Conditional put; False when a record exists already (kept as is: records are immutable)."""
        ...

    def rollback_record(self, rollout_id: str) -> RollbackRecord | None: ...
    def candidate_history(self, config_hash: str) -> tuple[list[CandidateEvent], bool]:
        """(ended attempts, rejected for good)."""
        ...

    def add_candidate_event(self, config_hash: str, event: CandidateEvent) -> None: ...
    def mark_rejected(self, config_hash: str, reason: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class Deployment:
    """The listener and target groups of this deployment (function environment)."""

    listener_arn: str
    primary_target_group: str
    canary_target_group: str
    # Target groups a request may name as its canary besides canary_target_group (an allow-list: a request must
    # not be able to send the listener's traffic to any target group of the account).
    other_canary_target_groups: tuple[str, ...] = ()

    def allows_canary(self, target_group: str) -> bool:
        return target_group == self.canary_target_group or target_group in self.other_canary_target_groups


@dataclass
class RolloutServices:
    """Everything the steps and the rollback talk to."""

    store: RolloutStore
    listener: ListenerGateway
    metrics: MetricsReader
    notifier: Notifier
    executions: Executions
    clock: Callable[[], datetime]
    canary: CanaryMinutesReader | None = None  # required when the plan has a judge
    analysis: AnalysisResults | None = None
    experiments: ExperimentRepository | None = None
    warmup: WarmupSender | None = None
    # stored offline evaluations by config hash (kanaria.dal.evaluations.latest_for); authoritative when present
    evaluations: Callable[[str], Any] | None = None
    allow_offline_evaluation: bool = False  # the local rehearsal evaluates with the offline model adapter
    new_owner: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)


def _iso(now: datetime) -> str:
    return now.isoformat(timespec="seconds")


# --- steps ---------------------------------------------------------------------------------------------------


def _stage0(services: RolloutServices, candidate: Candidate, claimed: OfflineEvaluation | None) -> OfflineEvaluation:
    """The stored evaluation of the candidate's configuration decides when there is one (a caller's claim cannot
    override it). Without one, a deployment that stores evaluations refuses: a request's own claim is evidence
    only where offline evaluations are allowed (the local rehearsal) or nothing is stored at all."""
    summary = services.evaluations(candidate.config_hash) if services.evaluations is not None else None
    if summary is None:
        if services.evaluations is not None and not services.allow_offline_evaluation:
            raise ValidationError(
                f"no offline evaluation of configuration {candidate.config_hash} is stored; run it on the golden "
                "dataset first (kanaria evaluate ... --table, or the evaluation state machine): a request's own "
                "claim is not evidence in this deployment",
                field="offline_evaluation",
            )
        return check_offline_evaluation(candidate, claimed)
    from kanaria.evaluation.gate import stage0

    gate = stage0(summary, candidate.config_hash, candidate.intents, allow_offline=services.allow_offline_evaluation)
    gate.raise_if_refused()
    return OfflineEvaluation.model_validate(gate.as_offline_evaluation())


def prepare(
    services: RolloutServices, deployment: Deployment, document: Any, execution_arn: str, execution_name: str
) -> RolloutState:
    """Stage 0: validate, check the offline evaluation, anti-flapping and the listener, warm up, take the
    listener's active-rollout slot and record the rollout. Refuses (raises) before any traffic moves."""
    request = parse_rollout_request(document)
    rollout_id = request.rollout_id or execution_name
    now = services.clock()
    existing = services.store.get(rollout_id)
    if existing is not None:
        if existing.execution_arn != execution_arn:
            raise ConflictError(
                f"rollout {rollout_id!r} exists (execution {existing.execution_arn}); use a new rollout_id",
                field="rollout_id",
            )
        return existing.state()  # a retried prepare
    candidate = request.candidate
    canary = deployment.canary_target_group if candidate.target_group == "default" else candidate.target_group
    if canary == deployment.primary_target_group:
        raise ValidationError("the canary target group is the primary one", field="candidate.target_group")
    if not deployment.allows_canary(canary):
        raise ValidationError(
            f"{canary} is not a canary target group of this deployment (allowed: "
            f"{', '.join((deployment.canary_target_group, *deployment.other_canary_target_groups))})",
            field="candidate.target_group",
        )
    offline_evaluation = _stage0(services, candidate, request.offline_evaluation)
    if any(s.gates.require_significance for s in request.plan.stages) and services.analysis is None:
        raise OperationalError(
            "the significance gate needs AGGREGATES_TABLE in the rollout-steps environment", field="plan"
        )
    _check_experiment(services, candidate.experiment_id, candidate.variant)
    events, rejected = services.store.candidate_history(candidate.config_hash)
    verdict = admission(events, rejected, now)
    if not verdict.allowed:
        raise ConflictError(verdict.reason, field="candidate.config_hash")
    plan = with_first_stage_multiplier(request.plan, verdict.first_stage_multiplier)
    _check_listener_idle(services.listener, deployment, canary)
    _check_critical_alarm_clear(services.metrics)
    warmup_result = _warm_up(services, request.warmup)
    rollout = Rollout(
        rollout_id=rollout_id,
        execution_arn=execution_arn,
        listener_arn=deployment.listener_arn,
        primary_target_group=deployment.primary_target_group,
        canary_target_group=canary,
        candidate=candidate,
        plan=plan,
        offline_evaluation=offline_evaluation,
        warmup=request.warmup,
        warmup_result=warmup_result,
        admission=verdict,
        requested_by=request.requested_by,
        created_at=_iso(now),
    )
    first = plan.stages[0]
    state = RolloutState(
        rollout_id=rollout_id,
        rollout=rollout,
        progress=Progress(stage_name=first.name, decision="start", reason=verdict.reason),
    )
    services.store.acquire_active(deployment.listener_arn, rollout_id, execution_arn, now)
    recorded = False
    try:
        services.store.put_new(state, RolloutStatus.RUNNING, now)
        recorded = True
    finally:
        if not recorded:
            services.store.release_active(deployment.listener_arn, rollout_id)
    return state


def _check_experiment(services: RolloutServices, experiment_id: str | None, variant: str | None) -> None:
    if experiment_id is None:
        return
    if services.experiments is None:
        raise OperationalError("EXPERIMENTS_TABLE is not configured", field="candidate.experiment_id")
    record = get_experiment(services.experiments, experiment_id)
    if variant not in record.experiment.weights:
        raise ValidationError(f"experiment {experiment_id!r} has no variant {variant!r}", field="candidate.variant")
    if variant == record.experiment.control:
        raise ValidationError("the candidate cannot be the experiment's control", field="candidate.variant")
    if variant in record.stopped_variants:
        raise ConflictError(
            f"variant {variant!r} was stopped ({record.stopped_variants[variant]})", field="candidate.variant"
        )
    if record.status.value == "completed":
        raise ConflictError(f"experiment {experiment_id!r} is completed", field="candidate.experiment_id")


def _check_listener_idle(listener: ListenerGateway, deployment: Deployment, canary: str) -> None:
    forward = forward_of(listener.default_actions(deployment.listener_arn))
    if forward is None:
        raise ValidationError("the listener's default action is not a forward action", field="listener")
    if forward.weight(deployment.primary_target_group) == 0:
        raise ConflictError(
            "the listener sends nothing to the primary target group; fix the listener first", field="listener"
        )
    if forward.weight(canary) > 0:
        raise ConflictError(
            f"the listener already sends {forward.share(canary)}% to the canary (another rollout, "
            "or a leftover): run `kanaria rollout abort` on it first",
            field="listener",
        )


def _check_critical_alarm_clear(metrics: MetricsReader) -> None:
    # An alarm already in ALARM does not fire again for the new canary, and the first gate would read it as this
    # canary failing: the rollout must start from OK.
    critical = metrics.critical_alarm_state()
    if critical is not None and critical[1] == "ALARM":
        raise ConflictError(
            f"{critical[0]} is in ALARM (a previous canary's alarm): start again once it is OK, "
            "one alarm period after that canary's traffic stopped",
            field="alarms",
        )


def _warm_up(services: RolloutServices, warmup: Warmup | None) -> dict[str, Any] | None:
    if warmup is None:
        return None
    if services.warmup is None:
        raise OperationalError("no warm-up sender configured", field="warmup")
    result = services.warmup.send(warmup)
    if result["failure_rate"] > warmup.max_failure_rate:
        raise OperationalError(
            f"warm-up failed: {result['failed']} of {warmup.requests} synthetic requests failed "
            f"({result['failure_rate']:.1%} > {warmup.max_failure_rate:.1%}); the canary is not healthy",
            field="warmup",
        )
    return result


def _ensure_not_rolled_back(services: RolloutServices, rollout_id: str) -> None:
    lock = services.store.rollback_lock(rollout_id)
    if lock is not None:
        raise RolledBackError(
            f"rollout {rollout_id!r} was rolled back ({lock.state.value}); stopping here", field="rollout_id"
        )


def _target(state: RolloutState, full: bool) -> tuple[int, Forward]:
    rollout = state.rollout
    index = len(rollout.plan.stages) if full else state.progress.stage_index
    percent = 100 if full else rollout.plan.stages[index].percent
    return index, target_forward(
        rollout.primary_target_group, rollout.canary_target_group, percent, rollout.plan.stickiness_seconds
    )


def set_weights(services: RolloutServices, state: RolloutState, full: bool = False) -> RolloutState:
    """Write the stage's weights (100% canary when `full`) into the listener's forward action.

    A rollback may complete while this write is in flight (ELB backoff): the lock is read again after the write,
    and if a rollback started meanwhile the listener is put back to primary-only before RolledBackError. Before
    the 100% write the critical alarm is read fresh (the approval can come hours after the last gate)."""
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
    services.store.update(state.rollout_id, status, progress, services.clock())
    return state.model_copy(update={"progress": progress})


def _undo_if_rolled_back(services: RolloutServices, state: RolloutState) -> None:
    """After a stage write: a rollback that took the lock meanwhile wins; primary-only again, then stop here."""
    lock = services.store.rollback_lock(state.rollout_id)
    if lock is None:
        return
    rollout = state.rollout
    actions = services.listener.default_actions(rollout.listener_arn)
    services.listener.set_default_actions(
        rollout.listener_arn, with_forward(actions, primary_only(rollout.primary_target_group))
    )
    raise RolledBackError(
        f"rollout {state.rollout_id!r} was rolled back ({lock.state.value}) while its weights were "
        "being written; the listener is primary-only again",
        field="rollout_id",
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
            "stage_started_at": _iso(now),
            "wait_seconds": wait,
            "decision": "promote" if full else "observe",
            "reason": f"weights verified: {state.progress.percent}% canary",
            "judge": None if full else _judge_for_stage(rollout, state.progress, now),
        }
    )
    services.store.update(state.rollout_id, RolloutStatus.PROMOTING if full else RolloutStatus.RUNNING, progress, now)
    return state.model_copy(update={"progress": progress})


def _judge_for_stage(rollout: Rollout, progress: Progress, now: datetime) -> JudgeState | None:
    """A fresh judge at the first stage; later stages keep its evidence and restart the stage totals."""
    settings = rollout.plan.judge
    if settings is None:
        return None
    if progress.judge is None:
        return judge_start(settings, now, judge_horizon_periods(rollout.plan))
    return judge_new_stage(progress.judge)


def _run_judge(
    services: RolloutServices, rollout: Rollout, progress: Progress, stage: Stage, now: datetime
) -> tuple[Judgement | None, JudgeState | None]:
    """Read the settled minutes since the last look into the judge; its verdict and new state."""
    settings = rollout.plan.judge
    if settings is None or progress.judge is None:
        return None, progress.judge
    if services.canary is None:
        raise OperationalError("the plan has a judge but no canary metrics reader is configured", field="plan.judge")
    state = progress.judge
    window = minutes_to_read(settings, state, now)
    if window is not None:
        minutes = arrived(settings, services.canary.read_minutes(window[0], window[1], settings), now)
        if minutes:
            until = minutes[-1].minute + timedelta(seconds=settings.period_seconds)
            state = judge_observe(settings, state, minutes, until)
    return judge(settings, state, stage.gates.min_observations), state


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
    """100% verified: record success, free the listener for the next rollout."""
    _ensure_not_rolled_back(services, state.rollout_id)
    now = services.clock()
    progress = state.progress.model_copy(update={"decision": "completed", "reason": "canary serves 100%"})
    services.store.update(state.rollout_id, RolloutStatus.COMPLETED, progress, now)
    services.store.add_candidate_event(
        state.rollout.candidate.config_hash, CandidateEvent(kind="completed", at=now, rollout_id=state.rollout_id)
    )
    services.store.release_active(state.rollout.listener_arn, state.rollout_id)
    return state.model_copy(update={"progress": progress})


# --- rollback ------------------------------------------------------------------------------------------------


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
    triggered outside it), stop the experiment variant, record, alert once. Idempotent across triggers."""
    meta = services.store.get(rollout_id)
    if meta is None:
        raise NotFoundError(f"unknown rollout {rollout_id!r}", field="rollout_id")
    if meta.status is RolloutStatus.COMPLETED:
        raise ConflictError(
            f"rollout {rollout_id!r} completed (canary at 100%); a rollback would now move all "
            "traffic off the promoted configuration: start a new rollout instead",
            field="rollout_id",
        )
    rollout = meta.rollout
    progress = progress or meta.progress
    owner = services.new_owner()
    lock = services.store.acquire_rollback_lock(rollout_id, owner, services.clock(), ROLLBACK_LEASE_SECONDS)
    if lock is LockAttempt.DONE:
        record = services.store.rollback_record(rollout_id)
        return {
            "status": "already_rolled_back",
            "rollout_id": rollout_id,
            "listener": _verify_rolled_back(services, rollout, trigger),
            "record": record.model_dump(mode="json") if record else None,
        }
    if lock is LockAttempt.IN_PROGRESS:
        raise RollbackInProgressError(f"another trigger is rolling back {rollout_id!r} right now", field="rollout_id")
    finished = False
    try:
        record = _roll_back(services, deployment, rollout, progress, trigger)
        services.store.finish_rollback_lock(rollout_id, owner, services.clock())
        finished = True
    finally:
        if not finished:
            services.store.release_rollback_lock(rollout_id, owner)  # let a retry (or another trigger) redo it
    return {"status": "rolled_back", "rollout_id": rollout_id, "record": record.model_dump(mode="json")}


def _roll_back(
    services: RolloutServices, deployment: Deployment, rollout: Rollout, progress: Progress, trigger: RollbackTrigger
) -> RollbackRecord:
    store, listener = services.store, services.listener
    # The listener first: while ELB is throttled the execution keeps running (its gate or the reconciler can still
    # act) instead of being stopped with the canary still at its weight. A stage write of the execution landing
    # after ours sees our lock and undoes itself (set_weights).
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
    execution_stopped = False
    if trigger.source != "state_machine":
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
        at=_iso(now),
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
    return record


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
