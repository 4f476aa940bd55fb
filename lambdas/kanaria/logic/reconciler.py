"""The rollback's safety net: a periodic sweep that finds a canary left with traffic and rolls it back through the
same rollback logic (lock and record make it idempotent: one record, one alert), and pages on-call with every
rollback invocation Lambda gave up on (the rollback function's on-failure destination).

A rollout holding the listener is stranded when
* its rollback began and did not finish (every attempt failed, and Lambda gave up on its retries),
* the listener still sends its canary traffic while the critical composite alarm is in ALARM (its Lambda action
  fires once, on the transition: if that invocation failed through Lambda's retries, nothing fires again), or
* its execution is over (ABORTED, FAILED, TIMED_OUT, or unknown to Step Functions) without a completed promotion
  (a console StopExecution, States.Runtime, a rollback task that failed, a lost status event), with or without
  canary traffic: the rollback verifies the listener and frees the slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol

from kanaria.domain.rollout import forward_of
from kanaria.domain.rollout_state import RollbackTrigger, failed_invocation_page
from kanaria.domain.rollout_status import ROLLBACK_BEGUN, RollbackInProgressError, RolloutStatus, StoredRollout
from kanaria.errors import KanariaError
from kanaria.logic.rollback import rollback
from kanaria.logic.rollout_services import Deployment, RolloutServices

# Execution statuses after which nothing drives the rollout any more (SUCCEEDED only after Complete).
ENDED_STATUSES = frozenset({"ABORTED", "FAILED", "TIMED_OUT"})


class FailedInvocations(Protocol):
    """The rollback function's on-failure destination (an SQS queue of Lambda destination records)."""

    def receive(self) -> list[tuple[str, Any]]:
        """(receipt, record) of every waiting record; a record is a dict, or the raw text when not JSON."""
        ...

    def delete(self, receipt: str) -> None: ...


@dataclass(frozen=True)
class Stranded:
    """A rollout whose canary still gets traffic although nothing will take it away."""

    rollout_id: str
    kind: Literal["alarm", "execution_ended", "rollback_unfinished"]
    summary: str
    percent: int
    details: dict[str, Any]


def find_stranded(services: RolloutServices, deployment: Deployment) -> Stranded | None:
    """The listener's active rollout when nothing will finish it: a rollback that began and did not finish, its
    canary with traffic while the critical alarm is in ALARM, or its execution over without a completed promotion
    (with or without traffic: the rollback verifies the weights and frees the slot). None otherwise (also when no
    rollout is active)."""
    active = services.store.active(deployment.listener_arn)
    if active is None:
        return None
    meta = services.store.get(active.rollout_id)
    if meta is None or meta.status is RolloutStatus.COMPLETED:
        return None
    rollout = meta.rollout
    forward = forward_of(services.listener.default_actions(rollout.listener_arn))
    percent = forward.share(rollout.canary_target_group) if forward else 0
    if meta.status in ROLLBACK_BEGUN:
        return Stranded(
            meta.rollout_id,
            "rollback_unfinished",
            f"reconciler: the rollback of {meta.rollout_id} began at {meta.rollback_begun_at} "
            f"({meta.rollback_trigger.kind if meta.rollback_trigger else 'unknown trigger'}) and did not finish "
            f"(status {meta.status.value}, canary {percent}%)",
            percent,
            {"rollout_status": meta.status.value, "canary_percent": percent},
        )
    critical = services.metrics.critical_alarm_state()
    if (
        critical is not None
        and critical[1] == "ALARM"
        and forward is not None
        and forward.weight(rollout.canary_target_group)
    ):
        return Stranded(
            meta.rollout_id,
            "alarm",
            f"reconciler: {critical[0]} is in ALARM while the canary still receives "
            f"{percent}% (the alarm's rollback did not happen)",
            percent,
            {"alarm": critical[0], "state": critical[1], "canary_percent": percent},
        )
    return _ended(services, meta, percent)


def free_unrecorded_slot(services: RolloutServices, deployment: Deployment) -> str | None:
    """Free the listener's slot held by a rollout that was never recorded (its prepare failed after taking the slot
    and could not give it back) once its execution is over and no canary target group of this deployment has
    weight: nothing moved, nothing to roll back. The rollout id freed, or None."""
    active = services.store.active(deployment.listener_arn)
    if active is None or services.store.get(active.rollout_id) is not None:
        return None
    status = services.executions.status(active.execution_arn)
    if status is not None and status not in ENDED_STATUSES:
        return None
    forward = forward_of(services.listener.default_actions(deployment.listener_arn))
    canaries = (deployment.canary_target_group, *deployment.other_canary_target_groups)
    if forward is None or any(forward.weight(group) > 0 for group in canaries):
        return None
    services.store.release_active(deployment.listener_arn, active.rollout_id)
    return active.rollout_id


def _ended(services: RolloutServices, meta: StoredRollout, percent: int) -> Stranded | None:
    """The rollout when its execution is over (or unknown to Step Functions) without a completed promotion."""
    status = services.executions.status(meta.execution_arn)
    if status is not None and status not in ENDED_STATUSES:
        return None
    what = "does not exist" if status is None else f"ended {status}"
    return Stranded(
        meta.rollout_id,
        "execution_ended",
        f"reconciler: execution {meta.execution_arn} {what} "
        f"while the canary still receives {percent}% (status {meta.status.value}, no completed promotion)",
        percent,
        {
            "execution_arn": meta.execution_arn,
            "execution_status": status,
            "rollout_status": meta.status.value,
            "canary_percent": percent,
        },
    )


def _rollout_of_failure(
    services: RolloutServices, deployment: Deployment, request: Any, outcome: Mapping[str, Any] | None
) -> str | None:
    """Which rollout a failed rollback event was about: named by the CLI, the execution's input or name for an
    execution-status event, else (an alarm event names no rollout) the one this sweep just found stranded, the
    listener's active rollout, or the listener's latest rolled-back rollout."""
    if isinstance(request, Mapping):
        if request.get("source") == "cli" and request.get("rollout_id"):
            return str(request["rollout_id"])
        if request.get("source") == "aws.states":
            detail = request.get("detail") or {}
            try:
                document = json.loads(detail.get("input") or "{}")
            except (TypeError, ValueError):
                document = {}
            named = document.get("rollout_id") if isinstance(document, dict) else None
            if named or detail.get("name"):
                return str(named or detail["name"])
    if outcome is not None:
        return str(outcome["rollout_id"])
    active = services.store.active(deployment.listener_arn)
    if active:
        return active.rollout_id
    last = services.store.last_rollback(deployment.listener_arn)  # rolled back meanwhile (e.g. by the reconciler)
    return last.rollout_id if last else None


def _situation(services: RolloutServices, rollout_id: str | None, outcome: Mapping[str, Any] | None) -> list[str]:
    """What the reconciler found and did about the rollout, for the page."""
    if rollout_id is None:
        return ["no rollout is active on the listener: nothing to roll back now"]
    lines = []
    if outcome is not None and outcome.get("rollout_id") == rollout_id:
        lines.append(f"the reconciler's rollback of {rollout_id}: {outcome['status']}")
    meta = services.store.get(rollout_id)
    if meta is None:
        return [*lines, f"rollout {rollout_id} is unknown to the rollouts table"]
    record = services.store.rollback_record(rollout_id)
    lines.append(f"rollout {rollout_id} status: {meta.status.value}")
    if record is not None:
        lines.append(
            f"rolled back at {record.at} by {record.trigger.source} ({record.trigger.kind}); weights now "
            f"{record.weights_after}"
        )
    else:
        rollout = meta.rollout
        forward = forward_of(services.listener.default_actions(rollout.listener_arn))
        share = forward.share(rollout.canary_target_group) if forward else 0
        lines.append(f"NOT rolled back yet: the canary receives {share}% (the reconciler retries every minute)")
    return lines


def reconcile(
    services: RolloutServices,
    deployment: Deployment,
    failures: FailedInvocations | None = None,
    function_name: str = "rollback",
) -> dict[str, Any]:
    """One sweep: roll back a stranded rollout (idempotent with every other trigger), then page on-call once per
    failed rollback invocation waiting in the on-failure destination. A record is deleted only after its page."""
    outcome: dict[str, Any] | None = None
    errors: list[str] = []
    try:
        stranded = find_stranded(services, deployment)
        if stranded is None and (freed := free_unrecorded_slot(services, deployment)) is not None:
            outcome = {"rollout_id": freed, "found": "unrecorded_slot", "status": "slot_freed"}
    except KanariaError as exc:
        stranded, errors = None, [f"looking for a stranded canary failed: {exc}"]
    if stranded is not None:
        trigger = RollbackTrigger(
            kind=stranded.kind,
            source="reconciler",
            summary=stranded.summary[:1000],
            details=stranded.details,
            actor="kanaria-reconciler",
        )
        try:
            result = rollback(services, deployment, stranded.rollout_id, trigger)
            outcome = {"rollout_id": stranded.rollout_id, "found": stranded.kind, "status": result["status"]}
        except RollbackInProgressError:
            outcome = {"rollout_id": stranded.rollout_id, "found": stranded.kind, "status": "in_progress"}
        except Exception as exc:  # noqa: BLE001 - the failed invocations are still paged; the handler then fails
            outcome = {
                "rollout_id": stranded.rollout_id,
                "found": stranded.kind,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
            }
            errors.append(f"rollback of {stranded.rollout_id} failed: {exc}")
    paged = [] if failures is None else _page_failures(services, deployment, failures, outcome, function_name)
    return {"rolled_back": outcome, "failed_invocations_paged": paged, "errors": errors}


def _page_failures(
    services: RolloutServices,
    deployment: Deployment,
    failures: FailedInvocations,
    outcome: Mapping[str, Any] | None,
    function_name: str,
) -> list[str | None]:
    """Page once per failed rollback invocation waiting in the queue; a record is deleted only after its page."""
    paged = []
    for receipt, record in failures.receive():
        failure = record if isinstance(record, Mapping) else {"requestPayload": record}
        rollout_id = _rollout_of_failure(services, deployment, failure.get("requestPayload"), outcome)
        subject, message = failed_invocation_page(
            failure, rollout_id, _situation(services, rollout_id, outcome), function_name
        )
        services.notifier.publish(subject, message)
        failures.delete(receipt)
        paged.append(rollout_id)
    return paged


def rollback_ended_execution(
    services: RolloutServices, deployment: Deployment, execution_arn: str, status: str, cause: str = ""
) -> dict[str, Any]:
    """The execution-status rule: an execution that ended ABORTED/FAILED/TIMED_OUT while its rollout still holds
    the listener is rolled back (a rollout it already rolled back, or one that never started, holds nothing)."""
    if status not in ENDED_STATUSES:
        return {"status": "ignored", "execution_status": status}
    active = services.store.active(deployment.listener_arn)
    if active is None or active.execution_arn != execution_arn:
        return {"status": "no_active_rollout", "execution_arn": execution_arn}
    trigger = RollbackTrigger(
        kind="execution_ended",
        source="execution_status",
        actor="kanaria-execution-status-rule",
        summary=f"execution {execution_arn.rsplit(':', 1)[-1]} ended {status} with the rollout still holding the "
        f"listener{': ' + cause[:500] if cause else ''}",
        details={"execution_arn": execution_arn, "execution_status": status, "cause": cause[:2000]},
    )
    return rollback(services, deployment, active.rollout_id, trigger)
