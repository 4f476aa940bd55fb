"""DynamoDB access for canary rollouts (rollouts table).

Rollouts table layout (rollout_id + record):
    <rollout_id>            META            status, execution_arn, config_hash, rollout/progress (JSON text),
                                            approval_token while awaiting approval; once a rollback began:
                                            status rolling_back, rollback_trigger (JSON text, the first one)
                                            and rollback_begun_at, never removed
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

from kanaria.dal.pages import query_items
from kanaria.domain.rollout import CandidateEvent
from kanaria.domain.rollout_state import Progress, RollbackRecord, RollbackTrigger, Rollout, RolloutState
from kanaria.domain.rollout_status import (
    ActiveRollout,
    LastRollback,
    LockAttempt,
    LockState,
    RollbackLock,
    RolledBackError,
    RolloutStatus,
    StoredRollout,
    refused_before,
)
from kanaria.errors import ConflictError

META = "META"
LOCK = "ROLLBACK#LOCK"
ROLLBACK = "ROLLBACK"
ACTIVE = "ACTIVE"
LAST_ROLLBACK = "LAST_ROLLBACK"
REJECTED = "REJECTED"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _allowed_from(status: RolloutStatus, values: dict[str, Any]) -> str:
    """The condition of a write moving a rollout to `status` (its refused statuses added to `values`)."""
    condition = "attribute_exists(rollout_id)"
    for index, before in enumerate(refused_before(status)):
        condition += f" AND #s <> :refused{index}"
        values[f":refused{index}"] = before.value
    return condition


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class DynamoRolloutStore:
    """RolloutStore on the rollouts table."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    # --- META ------------------------------------------------------------------------------------------------

    def get(self, rollout_id: str) -> StoredRollout | None:
        """The rollout's META item, or None."""
        item = self._table.get_item(Key={"rollout_id": rollout_id, "record": META}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return StoredRollout(
            rollout_id=item["rollout_id"],
            status=RolloutStatus(item["status"]),
            execution_arn=item["execution_arn"],
            rollout=Rollout.model_validate_json(item["rollout"]),
            progress=Progress.model_validate_json(item["progress"]),
            approval_token=item.get("approval_token"),
            approval_requested_at=item.get("approval_requested_at"),
            created_at=item.get("created_at"),
            updated_at=item.get("updated_at"),
            rollback_trigger=(
                RollbackTrigger.model_validate_json(item["rollback_trigger"]) if item.get("rollback_trigger") else None
            ),
            rollback_begun_at=item.get("rollback_begun_at"),
        )

    def put_new(self, state: RolloutState, status: RolloutStatus, now: datetime) -> None:
        """Insert META; ConflictError if the rollout id is taken."""
        dumped = state.model_dump(mode="json")
        item = {
            "rollout_id": state.rollout_id,
            "record": META,
            "status": status.value,
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
        self,
        rollout_id: str,
        status: RolloutStatus,
        progress: Progress,
        now: datetime,
        approval_token: str | None = None,
    ) -> None:
        """New status and progress, conditional on the rollout's state: once a rollback began only the rollback
        writes it (to rolled_back), and a completed rollout takes only a retried completion."""
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":s": status.value,
            ":p": _json(progress.model_dump(mode="json")),
            ":u": now.isoformat(timespec="seconds"),
        }
        expression = "SET #s = :s, progress = :p, updated_at = :u"
        if approval_token is not None:
            expression += ", approval_token = :t, approval_requested_at = :u"
            values[":t"] = approval_token
        elif status is not RolloutStatus.AWAITING_APPROVAL:
            expression += " REMOVE approval_token"
        condition = _allowed_from(status, values)
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
                    f"rollout {rollout_id!r} is rolling back, was rolled back or completed, or does not exist",
                    field="rollout_id",
                ) from None
            raise

    def begin_rollback(self, rollout_id: str, trigger: RollbackTrigger, now: datetime) -> StoredRollout | None:
        """Mark the rollout rolling back (the first trigger kept) unless it completed or was rolled back: one
        conditional write, the only transition a completion can race. The rollout as it now is."""
        values: dict[str, Any] = {
            ":rolling": RolloutStatus.ROLLING_BACK.value,
            ":t": trigger.model_dump_json(),
            ":u": now.isoformat(timespec="seconds"),
        }
        try:
            self._table.update_item(
                Key={"rollout_id": rollout_id, "record": META},
                UpdateExpression=(
                    "SET #s = :rolling, rollback_trigger = if_not_exists(rollback_trigger, :t), "
                    "rollback_begun_at = if_not_exists(rollback_begun_at, :u), updated_at = :u REMOVE approval_token"
                ),
                ConditionExpression=_allowed_from(RolloutStatus.ROLLING_BACK, values),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        return self.get(rollout_id)

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
            holder = self.active(listener_arn)
            raise ConflictError(
                f"rollout {holder.rollout_id if holder else None!r} is active on this listener since "
                f"{holder.since if holder else None}; "
                "one rollout at a time (wait for it, or `kanaria rollout abort` it)",
                field="rollout_id",
            ) from None

    def active(self, listener_arn: str) -> ActiveRollout | None:
        """The rollout holding the listener, or None."""
        item = self._table.get_item(Key=self._active_key(listener_arn), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return ActiveRollout(
            rollout_id=item["active_rollout_id"], execution_arn=item["execution_arn"], since=item.get("since")
        )

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

    def last_rollback(self, listener_arn: str) -> LastRollback | None:
        """The listener's latest rolled-back rollout, or None."""
        item = self._table.get_item(
            Key={"rollout_id": f"ACTIVE#{listener_arn}", "record": LAST_ROLLBACK}, ConsistentRead=True
        ).get("Item")
        return LastRollback(rollout_id=item["last_rollout_id"], at=item["at"]) if item else None

    # --- rollback lock and record ----------------------------------------------------------------------------

    def acquire_rollback_lock(self, rollout_id: str, owner: str, now: datetime, lease_seconds: int) -> LockAttempt:
        """ACQUIRED for the first trigger (or after an expired lease), else DONE or IN_PROGRESS."""
        epoch = int(now.timestamp())
        try:
            self._table.put_item(
                Item={
                    "rollout_id": rollout_id,
                    "record": LOCK,
                    "state": LockState.IN_PROGRESS.value,
                    "owner": owner,
                    "lease_until": epoch + lease_seconds,
                    "at": now.isoformat(timespec="seconds"),
                },
                ConditionExpression="attribute_not_exists(rollout_id) OR (#st = :busy AND lease_until < :now)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":busy": LockState.IN_PROGRESS.value, ":now": epoch},
            )
            return LockAttempt.ACQUIRED
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        lock = self.rollback_lock(rollout_id)
        return LockAttempt.DONE if lock is not None and lock.state is LockState.DONE else LockAttempt.IN_PROGRESS

    def finish_rollback_lock(self, rollout_id: str, owner: str, now: datetime) -> None:
        """Mark the rollback done (only by its owner)."""
        self._table.update_item(
            Key={"rollout_id": rollout_id, "record": LOCK},
            UpdateExpression="SET #st = :done, finished_at = :at",
            ConditionExpression="#o = :me",
            ExpressionAttributeNames={"#st": "state", "#o": "owner"},
            ExpressionAttributeValues={
                ":done": LockState.DONE.value,
                ":at": now.isoformat(timespec="seconds"),
                ":me": owner,
            },
        )

    def release_rollback_lock(self, rollout_id: str, owner: str) -> None:
        """Give up an unfinished rollback so that a retry or another trigger can redo it."""
        try:
            self._table.delete_item(
                Key={"rollout_id": rollout_id, "record": LOCK},
                ConditionExpression="#o = :me AND #st = :busy",
                ExpressionAttributeNames={"#o": "owner", "#st": "state"},
                ExpressionAttributeValues={":me": owner, ":busy": LockState.IN_PROGRESS.value},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def rollback_lock(self, rollout_id: str) -> RollbackLock | None:
        """The lock, or None when nobody ever started a rollback of this rollout (or the last one gave up)."""
        item = self._table.get_item(Key={"rollout_id": rollout_id, "record": LOCK}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return RollbackLock(
            state=LockState(item["state"]),
            owner=item["owner"],
            lease_until=int(item["lease_until"]),
            at=item.get("at"),
            finished_at=item.get("finished_at"),
        )

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
        for item in map(dict, items):  # projected attributes are strings
            progress = json.loads(item.pop("progress", None) or "{}")
            rows.append({**item, "stage": progress.get("stage_name"), "percent": progress.get("percent")})
        return sorted(rows, key=lambda r: (r.get("created_at") or "", r["rollout_id"]), reverse=True)
