"""Rollout operations against a deployed Kanaria (or the local rehearsal): start, status, approve, reject, abort.

Shared by the `kanaria rollout` CLI (kanaria_tools.cli.rollout, argument parsing only) and the rehearsal,
which drives its rollouts through the same calls an operator makes.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kanaria.errors import ConflictError, NotFoundError, OperationalError, ValidationError
from kanaria.names import function_name, rollout_state_machine_name, table_name
from kanaria_tools import aws

if TYPE_CHECKING:
    from kanaria.domain.rollout_status import StoredRollout

REJECTED_ERROR = "Kanaria.Rejected"  # what the state machine's approval Catch sees on `reject`


def new_rollout_id(model_id: str, now: datetime | None = None) -> str:
    """Unique execution name: <model slug>-<UTC stamp>-<random>, at most 80 characters."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model_id).strip("-").lower()[:40] or "rollout"
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{slug}-{stamp}-{secrets.token_hex(3)}"


def _caller() -> str:
    return aws.client("sts").get_caller_identity()["Arn"]


def _state_machine_arn(sfn: Any, prefix: str) -> str:
    name = rollout_state_machine_name(prefix)
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return machine["stateMachineArn"]
    raise NotFoundError(
        f"state machine {name!r} not found; is the rollout stack deployed with prefix {prefix!r}?", field="prefix"
    )


def start(prefix: str, document: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Validate locally (same rules as the state machine's prepare step), then start a uniquely named execution."""
    from kanaria.domain.rollout_plan import check_offline_evaluation, parse_rollout_request

    request = parse_rollout_request(document)
    if request.offline_evaluation is not None:
        check_offline_evaluation(request.candidate, request.offline_evaluation)
    # Without a claimed evaluation, stage 0 in the state machine reads the stored one (`kanaria evaluate --bucket
    # --table`) by config hash; it refuses when none is stored, before any traffic moves.
    rollout_id = request.rollout_id or new_rollout_id(request.candidate.model_id)
    if dry_run:
        return {"rollout_id": rollout_id, "valid": True, "request": request.model_dump(mode="json")}
    _check_admission(prefix, request.candidate.config_hash)
    document = {**document, "rollout_id": rollout_id}
    if not document.get("requested_by"):
        document["requested_by"] = _caller()
    sfn = aws.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=_state_machine_arn(sfn, prefix), name=rollout_id, input=json.dumps(document)
    )
    return {
        "rollout_id": rollout_id,
        "execution_arn": execution["executionArn"],
        "next": f"kanaria rollout status {rollout_id}",
    }


def _check_admission(prefix: str, config_hash: str) -> None:
    """Anti-flapping up front (the state machine's prepare step checks again, authoritatively)."""
    from kanaria.dal.rollouts import DynamoRolloutStore
    from kanaria.domain.rollout import admission

    events, rejected = DynamoRolloutStore(table_name(prefix, "rollouts")).candidate_history(config_hash)
    verdict = admission(events, rejected, datetime.now(timezone.utc))
    if not verdict.allowed:
        raise ConflictError(verdict.reason, field="candidate.config_hash")


def _meta(prefix: str, rollout_id: str) -> StoredRollout:
    from kanaria.dal.rollouts import DynamoRolloutStore

    meta = DynamoRolloutStore(table_name(prefix, "rollouts")).get(rollout_id)
    if meta is None:
        raise NotFoundError(f"unknown rollout {rollout_id!r} (not prepared yet, or another prefix)", field="rollout_id")
    return meta


def status(prefix: str, rollout_id: str) -> dict[str, Any]:
    """What the rollout is doing: status, stage, weights, last gate, approval, rollback record, execution."""
    from botocore.exceptions import ClientError

    from kanaria.dal.rollouts import DynamoRolloutStore

    meta = _meta(prefix, rollout_id)
    # the CLI prints JSON: the stored state as it is dumped
    progress, rollout = meta.progress.model_dump(mode="json"), meta.rollout.model_dump(mode="json")
    gate = progress.get("gate") or {}
    result: dict[str, Any] = {
        "rollout_id": rollout_id,
        "status": meta.status.value,
        "stage": progress.get("stage_name"),
        "percent": progress.get("percent"),
        "decision": progress.get("decision"),
        "reason": progress.get("reason"),
        "weights": progress.get("weights"),
        "gate": {"outcome": gate.get("outcome"), "checks": gate.get("checks", [])} if gate else None,
        "awaiting_approval": bool(meta.approval_token),
        "candidate": rollout.get("candidate"),
        "plan": [
            {"name": s["name"], "percent": s["percent"], "min_duration_seconds": s["min_duration_seconds"]}
            for s in rollout["plan"]["stages"]
        ],
        "admission": rollout.get("admission"),
        "updated_at": meta.updated_at,
        "execution_arn": meta.execution_arn,
    }
    record = DynamoRolloutStore(table_name(prefix, "rollouts")).rollback_record(rollout_id)
    if record is not None:
        result["rollback"] = record.model_dump(mode="json")
    try:
        execution = aws.client("stepfunctions").describe_execution(executionArn=meta.execution_arn)
        result["execution_status"] = execution["status"]
    except ClientError as exc:
        result["execution_status"] = f"unknown ({exc.response['Error']['Code']})"
    return result


def list_rollouts(prefix: str, status_filter: str | None = None) -> list[dict[str, Any]]:
    """Every rollout of the deployment, newest first: id, status, stage, percent, model, config hash, times."""
    from kanaria.dal.rollouts import DynamoRolloutStore

    rows = DynamoRolloutStore(table_name(prefix, "rollouts")).list_rollouts()
    return [r for r in rows if status_filter is None or r.get("status") == status_filter]


def _token(prefix: str, rollout_id: str | None, token: str | None) -> tuple[str, str | None]:
    if token:
        return token, rollout_id
    if not rollout_id:
        raise ValidationError("give the rollout id or --token", field="rollout_id")
    meta = _meta(prefix, rollout_id)
    if not meta.approval_token:
        raise ValidationError(
            f"rollout {rollout_id!r} is not waiting for an approval (status {meta.status.value})", field="rollout_id"
        )
    return meta.approval_token, rollout_id


def approve(prefix: str, rollout_id: str | None, token: str | None, comment: str = "") -> dict[str, Any]:
    """SendTaskSuccess with who approved and why: the state machine promotes to 100%."""
    task_token, rollout_id = _token(prefix, rollout_id, token)
    approver = _caller()
    output = {
        "approved": True,
        "approver": approver,
        "comment": comment,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _send(lambda sfn: sfn.send_task_success(taskToken=task_token, output=json.dumps(output)))
    return {"rollout_id": rollout_id, "approved": True, "approver": approver}


def reject(prefix: str, rollout_id: str | None, token: str | None, reason: str) -> dict[str, Any]:
    """SendTaskFailure (error Kanaria.Rejected): the state machine rolls back."""
    task_token, rollout_id = _token(prefix, rollout_id, token)
    rejecter = _caller()
    _send(
        lambda sfn: sfn.send_task_failure(
            taskToken=task_token, error=REJECTED_ERROR, cause=f"rejected by {rejecter}: {reason}"[:32768]
        )
    )
    return {"rollout_id": rollout_id, "rejected": True, "by": rejecter, "reason": reason}


def _send(call: Any) -> None:
    from botocore.exceptions import ClientError

    try:
        call(aws.client("stepfunctions"))
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}:
            raise ValidationError(
                f"the approval is no longer pending ({code}): it timed out, was answered, or the rollout ended",
                field="token",
            ) from None
        raise


def abort(prefix: str, rollout_id: str, reason: str) -> dict[str, Any]:
    """Invoke the rollback function synchronously (same path as the alarm), print what it did."""
    response = aws.client("lambda").invoke(
        FunctionName=function_name(prefix, "rollback"),
        Payload=json.dumps({"source": "cli", "rollout_id": rollout_id, "reason": reason, "actor": _caller()}).encode(),
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise OperationalError(f"rollback function failed: {message}", field="rollout_id")
    return payload
