"""DynamoDB access for observations: one transaction per new observation, one Query per experiment's counters,
versioned analysis results."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal
from typing import Any, Callable, Mapping

import boto3
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from kanaria.dal.experiment_store import _plain
from kanaria.dal.pages import query_items
from kanaria.domain.analysis_result import StoredResult, decode_result_item
from kanaria.domain.observation import ObservationWrite
from kanaria.errors import OperationalError

# Transaction cancellations worth retrying: another transaction held the counter item, or a throttled shard.
RETRYABLE_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
MAX_ATTEMPTS = 6
RESULT_PREFIX = "RESULT#"
RESULT_LATEST = "RESULT#LATEST"
# Counter items sort before results: AGG# < EXCLUDED# < EXPOSURE# < MISMATCH# < "MISMATCH$" < RESULT#.
COUNTERS_FROM, COUNTERS_TO = "AGG#", "MISMATCH$"

_deserializer = TypeDeserializer()


def update_expression(increments: Mapping[str, Any], attributes: Mapping[str, str]) -> dict[str, Any]:
    """ADD every increment and SET the item's descriptive attributes (placeholders for every name)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds, sets = [], []
    for i, (name, value) in enumerate(increments.items()):
        names[f"#a{i}"], values[f":a{i}"] = name, value
        adds.append(f"#a{i} :a{i}")
    for i, (name, value) in enumerate(attributes.items()):
        names[f"#s{i}"], values[f":s{i}"] = name, value
        sets.append(f"#s{i} = :s{i}")
    expression = "ADD " + ", ".join(adds) + (" SET " + ", ".join(sets) if sets else "")
    return {"UpdateExpression": expression, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


class DynamoObservationStore:
    """Raw observations (observations table, TTL) and their sharded counters (aggregates table)."""

    def __init__(
        self,
        observations_table: str,
        aggregates_table: str,
        dynamodb_resource: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        resource = dynamodb_resource or boto3.resource("dynamodb")
        self._client = resource.meta.client
        self._observations = observations_table
        self._aggregates = aggregates_table
        self._sleep = sleep

    def record(self, write: ObservationWrite) -> dict[str, Any] | None:
        """One TransactWriteItems: conditional Put of the raw item + ADD to its counter. None when new, else the
        raw item already stored under that observation_id (nothing written)."""
        items = [
            {
                "Put": {
                    "TableName": self._observations,
                    "Item": write.raw,
                    "ConditionExpression": "attribute_not_exists(observation_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self._aggregates,
                    "Key": write.counter_key,
                    **update_expression(write.increments, write.counter_attributes),
                }
            },
        ]
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                first = reasons[0] if reasons else {}
                if first.get("Code") == "ConditionalCheckFailed":
                    return self._stored(write, first)
                codes = {r.get("Code") for r in reasons} - {"None", None}
                if not codes <= RETRYABLE_CANCELLATIONS:
                    raise
            self._sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))  # full jitter
        raise OperationalError(
            f"counter item {write.counter_key['sk']} stayed contended for {MAX_ATTEMPTS} attempts; "
            "retry with the same observation_id (recording is idempotent)",
            field="observation_id",
        )

    def _stored(self, write: ObservationWrite, reason: Mapping[str, Any]) -> dict[str, Any]:
        if reason.get("Item"):
            return {k: _deserializer.deserialize(v) for k, v in reason["Item"].items()}
        key = {"observation_id": write.raw["observation_id"]}
        return self._client.get_item(TableName=self._observations, Key=key, ConsistentRead=True).get("Item") or {}


class DynamoAnalysisStore:
    """Counter items and versioned analysis results of an experiment (aggregates table)."""

    def __init__(self, aggregates_table: str, dynamodb_resource: Any | None = None):
        resource = dynamodb_resource or boto3.resource("dynamodb")
        self._table = resource.Table(aggregates_table)
        self._client = self._table.meta.client
        self._name = aggregates_table

    def counters(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every counter item (observations, flags, exposures) of an experiment: one paginated Query."""
        return query_items(
            self._table,
            KeyConditionExpression=Key("experiment_id").eq(experiment_id)
            & Key("sk").between(COUNTERS_FROM, COUNTERS_TO),
        )

    def latest_result(self, experiment_id: str) -> StoredResult | None:
        """The newest stored result (decoded), or None."""
        return read_latest_result(self._table, experiment_id)

    def put_result(
        self,
        experiment_id: str,
        computed_at: str,
        decision: str | None,
        result: Mapping[str, Any],
        snapshot: Mapping[str, Any],
    ) -> bool:
        """Store RESULT#<computed_at> and move RESULT#LATEST to it unless a newer result is there already."""
        body = {
            "experiment_id": experiment_id,
            "computed_at": computed_at,
            "decision": decision or "-",
            "result": json.dumps(result, sort_keys=True, default=json_default),
            "snapshot": json.dumps(snapshot, sort_keys=True, default=json_default),
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._name, "Item": {**body, "sk": f"{RESULT_PREFIX}{computed_at}"}}},
                    {
                        "Put": {
                            "TableName": self._name,
                            "Item": {**body, "sk": RESULT_LATEST},
                            "ConditionExpression": "attribute_not_exists(sk) OR computed_at < :at",
                            "ExpressionAttributeValues": {":at": computed_at},
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                return False  # an overlapping run stored a newer result
            raise
        return True


def read_latest_result(table: Any, experiment_id: str) -> StoredResult | None:
    """The one reader of RESULT#LATEST (the scheduled analysis, the rollout gate and the CLI report use it)."""
    item = table.get_item(Key={"experiment_id": experiment_id, "sk": RESULT_LATEST}).get("Item")
    return decode_result_item(_plain(item)) if item else None


def json_default(value: Any) -> Any:
    """numpy scalars (from the analysis engine) as plain numbers; anything else is a bug worth failing on."""
    if isinstance(value, Decimal):
        return _plain(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class DynamoAnalysisResults:
    """AnalysisResults for the rollout's significance gate: the scheduled analysis's latest result per experiment
    (aggregates item sk RESULT#LATEST), read by `read_latest_result`."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def latest(self, experiment_id: str) -> StoredResult | None:
        """The decoded result ({decision, computed_at, result} by key too) or None before the first analysis."""
        return read_latest_result(self._table, experiment_id)
