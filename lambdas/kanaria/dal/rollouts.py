"""DynamoDB access for canary rollouts (rollouts table) and the latest analysis result (aggregates table).

Rollouts table layout (rollout_id + record):
    <rollout_id>            META            status, execution_arn, config_hash, rollout/progress (JSON text),
                                            approval_token while awaiting approval
    <rollout_id>            ROLLBACK#LOCK   state in_progress|done, owner, lease_until (epoch s): one rollback
    <rollout_id>            ROLLBACK        the immutable rollback record (JSON text), conditional put
    ACTIVE#<listener_arn>   ACTIVE          the rollout currently owning the listener (one at a time)
    ACTIVE#<listener_arn>   LAST_ROLLBACK   the listener's latest rolled-back rollout (for a failed alarm event's page)
    CANDIDATE#<config_hash> ROLLBACK#<id>   anti-flapping history: one item per ended attempt (or COMPLETED#<id>)
    CANDIDATE#<config_hash> REJECTED        three rollbacks in seven days: rejected for good
Nothing here expires (expires_at is never set): rollouts and rollbacks are audit records.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from kanaria.dal.experiment_store import _plain
from kanaria.dal.observations import read_latest_result
from kanaria.dal.pages import query_items
from kanaria.domain.analysis_result import StoredResult
from kanaria.domain.rollout import CandidateEvent
from kanaria.domain.rollout_state import Progress, RollbackRecord, RolloutState
from kanaria.errors import ConflictError
from kanaria.logic.rollouts import AWAITING_APPROVAL, ROLLED_BACK, RolledBackError

META = "META"
LOCK = "ROLLBACK#LOCK"
ROLLBACK = "ROLLBACK"
ACTIVE = "ACTIVE"
LAST_ROLLBACK = "LAST_ROLLBACK"
REJECTED = "REJECTED"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class DynamoRolloutStore:
    """RolloutStore on the rollouts table."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    # --- META ------------------------------------------------------------------------------------------------

    def get(self, rollout_id: str) -> dict[str, Any] | None:
        """The rollout's META item decoded (rollout and progress as dicts), or None."""
        item = self._table.get_item(Key={"rollout_id": rollout_id, "record": META}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        decoded = _plain(item)
        decoded["rollout"] = json.loads(decoded["rollout"])
        decoded["progress"] = json.loads(decoded["progress"])
        return decoded

    def put_new(self, state: RolloutState, status: str, now: datetime) -> None:
        """Insert META; ConflictError if the rollout id is taken."""
        dumped = state.model_dump(mode="json")
        item = {
            "rollout_id": state.rollout_id,
            "record": META,
            "status": status,
            "execution_arn": state.rollout.execution_arn,
            "config_hash": state.rollout.candidate.config_hash,
            "model_id": state.rollout.candidate.model_id,
            "rollout": _json(dumped["rollout"]),
            "progress": _json(dumped["progress"]),
            "created_at": now.isoformat(timespec="seconds"),
            "updated_at": now.isoformat(timespec="seconds"),
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(rollout_id)")
        except ClientError as exc:
            if _conditional_failed(exc):
                raise ConflictError(f"rollout {state.rollout_id!r} exists", field="rollout_id") from None
            raise

    def update(
        self, rollout_id: str, status: str, progress: Progress, now: datetime, approval_token: str | None = None
    ) -> None:
        """New status and progress. Nothing but the rollback itself may overwrite a rolled-back rollout."""
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":s": status,
            ":p": _json(progress.model_dump(mode="json")),
            ":u": now.isoformat(timespec="seconds"),
        }
        expression = "SET #s = :s, progress = :p, updated_at = :u"
        if approval_token is not None:
            expression += ", approval_token = :t, approval_requested_at = :u"
            values[":t"] = approval_token
        elif status != AWAITING_APPROVAL:
            expression += " REMOVE approval_token"
        condition = "attribute_exists(rollout_id)"
        if status != ROLLED_BACK:
            condition += " AND #s <> :rb"
            values[":rb"] = ROLLED_BACK
        try:
            self._table.update_item(
                Key={"rollout_id": rollout_id, "record": META},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise RolledBackError(
                    f"rollout {rollout_id!r} was rolled back or does not exist", field="rollout_id"
                ) from None
            raise

    # --- the listener's active rollout -----------------------------------------------------------------------

    @staticmethod
    def _active_key(listener_arn: str) -> dict[str, str]:
        return {"rollout_id": f"ACTIVE#{listener_arn}", "record": ACTIVE}

    def acquire_active(self, listener_arn: str, rollout_id: str, execution_arn: str, now: datetime) -> None:
        """Take the listener for this rollout; ConflictError naming the rollout that holds it."""
        try:
            self._table.put_item(
                Item={
                    **self._active_key(listener_arn),
                    "active_rollout_id": rollout_id,
                    "execution_arn": execution_arn,
                    "since": now.isoformat(timespec="seconds"),
                },
                ConditionExpression="attribute_not_exists(rollout_id) OR active_rollout_id = :me",
                ExpressionAttributeValues={":me": rollout_id},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            holder = self.active(listener_arn) or {}
            raise ConflictError(
                f"rollout {holder.get('active_rollout_id')!r} is active on this listener since {holder.get('since')}; "
                "one rollout at a time (wait for it, or `kanaria rollout abort` it)",
                field="rollout_id",
            ) from None

    def active(self, listener_arn: str) -> dict[str, Any] | None:
        """{"active_rollout_id", "execution_arn", "since"} or None."""
        return self._table.get_item(Key=self._active_key(listener_arn), ConsistentRead=True).get("Item")

    def release_active(self, listener_arn: str, rollout_id: str) -> None:
        """Free the listener if this rollout holds it."""
        try:
            self._table.delete_item(
                Key=self._active_key(listener_arn),
                ConditionExpression="active_rollout_id = :me",
                ExpressionAttributeValues={":me": rollout_id},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def note_last_rollback(self, listener_arn: str, rollout_id: str, now: datetime) -> None:
        """The listener's latest rolled-back rollout (overwritten by the next one)."""
        self._table.put_item(
            Item={
                "rollout_id": f"ACTIVE#{listener_arn}",
                "record": LAST_ROLLBACK,
                "last_rollout_id": rollout_id,
                "at": now.isoformat(timespec="seconds"),
            }
        )

    def last_rollback(self, listener_arn: str) -> dict[str, Any] | None:
        """{"rollout_id", "at"} or None."""
        item = self._table.get_item(
            Key={"rollout_id": f"ACTIVE#{listener_arn}", "record": LAST_ROLLBACK}, ConsistentRead=True
        ).get("Item")
        return {"rollout_id": item["last_rollout_id"], "at": item["at"]} if item else None

    # --- rollback lock and record ----------------------------------------------------------------------------

    def acquire_rollback_lock(self, rollout_id: str, owner: str, now: datetime, lease_seconds: int) -> str:
        """ "acquired" for the first trigger (or after an expired lease), else "done" or "in_progress"."""
        epoch = int(now.timestamp())
        try:
            self._table.put_item(
                Item={
                    "rollout_id": rollout_id,
                    "record": LOCK,
                    "state": "in_progress",
                    "owner": owner,
                    "lease_until": epoch + lease_seconds,
                    "at": now.isoformat(timespec="seconds"),
                },
                ConditionExpression="attribute_not_exists(rollout_id) OR (#st = :busy AND lease_until < :now)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":busy": "in_progress", ":now": epoch},
            )
            return "acquired"
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        lock = self.rollback_lock(rollout_id) or {}
        return "done" if lock.get("state") == "done" else "in_progress"

    def finish_rollback_lock(self, rollout_id: str, owner: str, now: datetime) -> None:
        """Mark the rollback done (only by its owner)."""
        self._table.update_item(
            Key={"rollout_id": rollout_id, "record": LOCK},
            UpdateExpression="SET #st = :done, finished_at = :at",
            ConditionExpression="#o = :me",
            ExpressionAttributeNames={"#st": "state", "#o": "owner"},
            ExpressionAttributeValues={":done": "done", ":at": now.isoformat(timespec="seconds"), ":me": owner},
        )

    def release_rollback_lock(self, rollout_id: str, owner: str) -> None:
        """Give up an unfinished rollback so that a retry or another trigger can redo it."""
        try:
            self._table.delete_item(
                Key={"rollout_id": rollout_id, "record": LOCK},
                ConditionExpression="#o = :me AND #st = :busy",
                ExpressionAttributeNames={"#o": "owner", "#st": "state"},
                ExpressionAttributeValues={":me": owner, ":busy": "in_progress"},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def rollback_lock(self, rollout_id: str) -> dict[str, Any] | None:
        """The lock item, or None when nobody ever started a rollback of this rollout."""
        item = self._table.get_item(Key={"rollout_id": rollout_id, "record": LOCK}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def put_rollback_record(self, record: RollbackRecord) -> bool:
        """Write the immutable record; False if one exists."""
        try:
            self._table.put_item(
                Item={
                    "rollout_id": record.rollout_id,
                    "record": ROLLBACK,
                    "at": record.at,
                    "trigger": record.trigger.kind,
                    "config_hash": record.config_hash,
                    "body": record.model_dump_json(),
                },
                ConditionExpression="attribute_not_exists(rollout_id)",
            )
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def rollback_record(self, rollout_id: str) -> RollbackRecord | None:
        """The rollback record, or None."""
        item = self._table.get_item(Key={"rollout_id": rollout_id, "record": ROLLBACK}, ConsistentRead=True).get("Item")
        return RollbackRecord.model_validate_json(item["body"]) if item else None

    # --- anti-flapping history -------------------------------------------------------------------------------

    @staticmethod
    def _candidate(config_hash: str) -> str:
        return f"CANDIDATE#{config_hash}"

    def candidate_history(self, config_hash: str) -> tuple[list[CandidateEvent], bool]:
        """Every ended attempt of the configuration and whether it is rejected for good."""
        items = query_items(
            self._table, KeyConditionExpression=Key("rollout_id").eq(self._candidate(config_hash)), ConsistentRead=True
        )
        rejected = any(i["record"] == REJECTED for i in items)
        events = [
            CandidateEvent(
                kind=i["kind"],
                at=datetime.fromisoformat(i["at"]),
                rollout_id=i["attempt"],
                trigger=i.get("trigger", ""),
            )
            for i in items
            if i["record"] != REJECTED
        ]
        return sorted(events, key=lambda e: e.at), rejected

    def add_candidate_event(self, config_hash: str, event: CandidateEvent) -> None:
        """One item per attempt (a retried write overwrites the same item)."""
        self._table.put_item(
            Item={
                "rollout_id": self._candidate(config_hash),
                "record": f"{event.kind.upper()}#{event.rollout_id}",
                "kind": event.kind,
                "at": event.at.isoformat(timespec="seconds"),
                "attempt": event.rollout_id,
                "trigger": event.trigger,
            }
        )

    def mark_rejected(self, config_hash: str, reason: str, now: datetime) -> None:
        """Reject the configuration for good (first marker wins)."""
        try:
            self._table.put_item(
                Item={
                    "rollout_id": self._candidate(config_hash),
                    "record": REJECTED,
                    "reason": reason,
                    "at": now.isoformat(timespec="seconds"),
                },
                ConditionExpression="attribute_not_exists(rollout_id)",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def list_rollouts(self) -> list[dict[str, Any]]:
        """Every rollout's META item (newest first), without its rollout/progress documents except the stage."""
        from kanaria.dal.pages import scan_items

        items = scan_items(
            self._table,
            FilterExpression="#r = :meta",
            ProjectionExpression="rollout_id, #s, model_id, config_hash, created_at, updated_at, progress",
            ExpressionAttributeNames={"#r": "record", "#s": "status"},
            ExpressionAttributeValues={":meta": META},
        )
        rows = []
        for item in map(_plain, items):
            progress = json.loads(item.pop("progress", None) or "{}")
            rows.append({**item, "stage": progress.get("stage_name"), "percent": progress.get("percent")})
        return sorted(rows, key=lambda r: (r.get("created_at") or "", r["rollout_id"]), reverse=True)


class DynamoAnalysisResults:
    """The scheduled analysis's latest result per experiment (aggregates item sk RESULT#LATEST), read by the one
    reader `kanaria.dal.observations.read_latest_result`."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def latest(self, experiment_id: str) -> StoredResult | None:
        """The decoded result ({decision, computed_at, result} by key too) or None before the first analysis."""
        return read_latest_result(self._table, experiment_id)
