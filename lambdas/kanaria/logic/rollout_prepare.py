"""Stage 0 of a canary rollout: validate the request, check the offline evaluation, the experiment, the
anti-flapping history, the listener and the critical alarm, warm the canary up, then take the listener's
active-rollout slot and record the rollout. Everything is refused before any traffic moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kanaria.domain.rollout import Admission, admission, forward_of
from kanaria.domain.rollout_plan import (
    Candidate,
    OfflineEvaluation,
    Warmup,
    check_offline_evaluation,
    parse_rollout_request,
    with_first_stage_multiplier,
)
from kanaria.domain.rollout_ports import ListenerGateway, MetricsReader
from kanaria.domain.rollout_state import Progress, Rollout, RolloutState
from kanaria.domain.rollout_status import RolloutStatus
from kanaria.errors import ConflictError, OperationalError, ValidationError
from kanaria.logic.experiments import get_experiment
from kanaria.logic.rollout_services import Deployment, RolloutServices, iso_seconds


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
    canary = _canary_target_group(deployment, candidate)
    offline_evaluation = _stage0(services, candidate, request.offline_evaluation)
    if any(s.gates.require_significance for s in request.plan.stages) and services.analysis is None:
        raise OperationalError(
            "the significance gate needs AGGREGATES_TABLE in the rollout-steps environment", field="plan"
        )
    _check_experiment(services, candidate.experiment_id, candidate.variant)
    verdict = _admission(services, candidate, now)
    _check_listener_idle(services.listener, deployment, canary)
    _check_critical_alarm_clear(services.metrics)
    rollout = Rollout(
        rollout_id=rollout_id,
        execution_arn=execution_arn,
        listener_arn=deployment.listener_arn,
        primary_target_group=deployment.primary_target_group,
        canary_target_group=canary,
        candidate=candidate,
        plan=with_first_stage_multiplier(request.plan, verdict.first_stage_multiplier),
        offline_evaluation=offline_evaluation,
        warmup=request.warmup,
        warmup_result=_warm_up(services, request.warmup),
        admission=verdict,
        requested_by=request.requested_by,
        created_at=iso_seconds(now),
    )
    return _record(services, rollout, now)


def _canary_target_group(deployment: Deployment, candidate: Candidate) -> str:
    """The request's canary target group, which must be one this deployment allows (never the primary)."""
    canary = deployment.canary_target_group if candidate.target_group == "default" else candidate.target_group
    if canary == deployment.primary_target_group:
        raise ValidationError("the canary target group is the primary one", field="candidate.target_group")
    if not deployment.allows_canary(canary):
        raise ValidationError(
            f"{canary} is not a canary target group of this deployment (allowed: "
            f"{', '.join((deployment.canary_target_group, *deployment.other_canary_target_groups))})",
            field="candidate.target_group",
        )
    return canary


def _admission(services: RolloutServices, candidate: Candidate, now: datetime) -> Admission:
    """Anti-flapping: refused in the cooldown or once rejected for good."""
    events, rejected = services.store.candidate_history(candidate.config_hash)
    verdict = admission(events, rejected, now)
    if not verdict.allowed:
        raise ConflictError(verdict.reason, field="candidate.config_hash")
    return verdict


def _record(services: RolloutServices, rollout: Rollout, now: datetime) -> RolloutState:
    """Take the listener's slot, then record the rollout (the slot is given back when the record fails)."""
    state = RolloutState(
        rollout_id=rollout.rollout_id,
        rollout=rollout,
        progress=Progress(stage_name=rollout.plan.stages[0].name, decision="start", reason=rollout.admission.reason),
    )
    services.store.acquire_active(rollout.listener_arn, rollout.rollout_id, rollout.execution_arn, now)
    recorded = False
    try:
        services.store.put_new(state, RolloutStatus.RUNNING, now)
        recorded = True
    finally:
        if not recorded:
            services.store.release_active(rollout.listener_arn, rollout.rollout_id)
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
