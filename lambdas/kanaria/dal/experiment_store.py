"""DynamoDB data access for experiments, sticky assignments and exposure counters."""

from __future__ import annotations

import builtins  # `list` is also a repository method: annotations after it name the builtin
import json
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from kanaria.dal.pages import query_items, scan_items
from kanaria.domain.experiment import Experiment, Status
from kanaria.domain.records import AuditEntry, ExperimentRecord, StickyRecord
from kanaria.errors import ConflictError, OperationalError

META = "META"


def _unavailable(exc: ClientError, table: str) -> OperationalError:
    """A failed DynamoDB call on the experiments table as Kanaria's operational error (code and message kept)."""
    error = exc.response.get("Error", {})
    return OperationalError(f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}", field=table)


def _plain(value: Any) -> Any:
    """DynamoDB Decimals back to int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class DynamoExperimentRepository:
    """Experiments table: META item per experiment plus one AUDIT item per change, written in one transaction."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None):
        self._resource = dynamodb_resource or boto3.resource("dynamodb")
        self._table = self._resource.Table(table_name)
        self._client = self._table.meta.client
        self._name = table_name

    def _meta_item(self, record: ExperimentRecord) -> dict[str, Any]:
        return {
            "experiment_id": record.experiment.id,
            "record": META,
            # Stored as JSON text: floats stay exact and the definition is immutable anyway.
            "definition": record.experiment.model_dump_json(),
            "status": record.status.value,
            "version": record.version,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "created_by": record.created_by,
            "stopped_variants": json.dumps(record.stopped_variants),
            "weights": json.dumps(record.weights) if record.weights else None,
        }

    def _audit_item(self, audit: AuditEntry) -> dict[str, Any]:
        return {
            "experiment_id": audit.experiment_id,
            "record": f"AUDIT#{audit.at}#{audit.version:08d}",
            "version": audit.version,
            "at": audit.at,
            "actor": audit.actor,
            "action": audit.action,
            "detail": json.dumps(audit.detail, ensure_ascii=False),
        }

    def _transact(self, meta_put: dict[str, Any], audit: AuditEntry) -> None:
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._name, **meta_put}},
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": self._audit_item(audit),
                            "ConditionExpression": "attribute_not_exists(experiment_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"TransactionCanceledException", "ConditionalCheckFailedException"}:
                raise ConflictError(
                    f"experiment {audit.experiment_id!r} was changed or created concurrently; reload and retry",
                    field="version",
                ) from None
            raise _unavailable(exc, self._name) from exc

    def create(self, record: ExperimentRecord, audit: AuditEntry) -> None:
        """Insert a new experiment; ConflictError if the id exists (conditional write)."""
        item = {k: v for k, v in self._meta_item(record).items() if v is not None}
        self._transact({"Item": item, "ConditionExpression": "attribute_not_exists(experiment_id)"}, audit)

    def replace(self, record: ExperimentRecord, expected_version: int, audit: AuditEntry) -> None:
        """Overwrite the META item only if nobody changed it since `expected_version`."""
        item = {k: v for k, v in self._meta_item(record).items() if v is not None}
        self._transact(
            {
                "Item": item,
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": expected_version},
            },
            audit,
        )

    def get(self, experiment_id: str) -> ExperimentRecord | None:
        """One experiment (strongly consistent), or None."""
        try:
            item = self._table.get_item(Key={"experiment_id": experiment_id, "record": META}, ConsistentRead=True)
        except ClientError as exc:
            raise _unavailable(exc, self._name) from exc
        return self._record(item["Item"]) if "Item" in item else None

    def list(self) -> list[ExperimentRecord]:
        """Every experiment (META items)."""
        items = scan_items(
            self._table,
            FilterExpression="#r = :meta",
            ExpressionAttributeNames={"#r": "record"},
            ExpressionAttributeValues={":meta": META},
        )
        return sorted((self._record(i) for i in items), key=lambda r: r.experiment.id)

    def audit_trail(self, experiment_id: str) -> builtins.list[AuditEntry]:
        """Changes in order."""
        items = query_items(
            self._table,
            KeyConditionExpression=Key("experiment_id").eq(experiment_id) & Key("record").begins_with("AUDIT#"),
        )
        return [
            AuditEntry(i["experiment_id"], int(i["version"]), i["at"], i["actor"], i["action"], json.loads(i["detail"]))
            for i in items
        ]

    @staticmethod
    def _record(item: dict[str, Any]) -> ExperimentRecord:
        return ExperimentRecord(
            experiment=Experiment.model_validate_json(item["definition"]),
            status=Status(item["status"]),
            version=int(item["version"]),
            created_at=item["created_at"],
            updated_at=item["updated_at"],
            created_by=item["created_by"],
            stopped_variants=json.loads(item.get("stopped_variants") or "{}"),
            weights=json.loads(item["weights"]) if item.get("weights") else None,
        )


class DynamoAssignmentStore:
    """Sticky assignments (assignments table, TTL) and sharded exposure counters (aggregates table)."""

    def __init__(self, assignments_table: str, aggregates_table: str, dynamodb_resource: Any | None = None):
        resource = dynamodb_resource or boto3.resource("dynamodb")
        self._assignments = resource.Table(assignments_table)
        self._aggregates = resource.Table(aggregates_table)

    @staticmethod
    def _pk(experiment_id: str, unit: str) -> str:
        return f"{experiment_id}#{unit}"

    def get(self, experiment_id: str, unit: str) -> StickyRecord | None:
        """The unit's sticky record, if any."""
        item = self._assignments.get_item(Key={"pk": self._pk(experiment_id, unit)}, ConsistentRead=True).get("Item")
        return self._sticky(item) if item else None

    def put_if_absent(self, record: StickyRecord) -> StickyRecord:
        """First writer wins; a loser reads the winner's record."""
        item = {
            "pk": self._pk(record.experiment_id, record.unit),
            "experiment_id": record.experiment_id,
            "unit": record.unit,
            "variant": record.variant,
            "assigned_at": record.assigned_at,
            "expires_at": record.expires_at,
            "excluded": False,
        }
        try:
            self._assignments.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            return record
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        winner = self.get(record.experiment_id, record.unit)
        return winner or record

    def move_to_control(self, record: StickyRecord, control: str, reason: str) -> None:
        """Reassign a unit of a stopped variant to control, keeping where it came from."""
        self._assignments.update_item(
            Key={"pk": self._pk(record.experiment_id, record.unit)},
            UpdateExpression="SET excluded = :t, reassigned_reason = :r, previous_variant = :p, variant = :c",
            ExpressionAttributeValues={":t": True, ":r": reason, ":p": record.variant, ":c": control},
        )

    def count_exposure(
        self, experiment_id: str, variant: str, intent: str | None, day: str, shard: int, new_unit: bool
    ) -> None:
        """ADD one exposure (and one unit when first seen) to the sharded daily counter."""
        self._aggregates.update_item(
            Key={"experiment_id": experiment_id, "sk": f"EXPOSURE#{variant}#{intent or '-'}#{day}#{shard:02d}"},
            UpdateExpression="ADD exposures :one, units :new SET variant = :v, intent = :i, #d = :d",
            ExpressionAttributeNames={"#d": "day"},
            ExpressionAttributeValues={
                ":one": 1,
                ":new": 1 if new_unit else 0,
                ":v": variant,
                ":i": intent or "-",
                ":d": day,
            },
        )

    def exposures(self, experiment_id: str) -> builtins.list[dict[str, Any]]:
        """Every exposure counter item of an experiment (a few per variant, intent and day)."""
        items = query_items(
            self._aggregates,
            KeyConditionExpression=Key("experiment_id").eq(experiment_id) & Key("sk").begins_with("EXPOSURE#"),
        )
        return [_plain(i) for i in items]

    @staticmethod
    def _sticky(item: dict[str, Any]) -> StickyRecord:
        return StickyRecord(
            experiment_id=item["experiment_id"],
            unit=item["unit"],
            variant=item["variant"],
            assigned_at=item["assigned_at"],
            expires_at=int(item["expires_at"]),
            excluded=bool(item.get("excluded", False)),
            reassigned_reason=item.get("reassigned_reason"),
        )
