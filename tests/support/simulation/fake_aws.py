"""In-memory AWS for the simulation, at the boto3 client level, so the real adapters (kanaria.dal.*) run over it:
DynamoDB (the resource's Table: conditional put/update/delete, query, TransactWriteItems, numbers as Decimal),
ELBv2 listener actions, the Step Functions API (describe/stop executions, task tokens), SNS, SQS and CloudWatch.

Every call is a step of the scheduler (scheduler.Point); the fault the scheduler picks decides whether the call
is refused before its effect, applied twice, applied with its response lost, or kills the Lambda making it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError, ReadTimeoutError

from tests.support.simulation.expressions import apply_update, evaluate_condition
from tests.support.simulation.scheduler import READ_FAULTS, WRITE_FAULTS, Fault, Point

if TYPE_CHECKING:
    from tests.support.simulation.world import World

THROTTLE_CODES = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "elbv2": "Throttling",
    "stepfunctions": "ThrottlingException",
    "sns": "Throttled",
    "sqs": "RequestThrottled",
    "cloudwatch": "Throttling",
}
ENDPOINTS = {s: f"https://{s}.ap-northeast-1.amazonaws.com/" for s in THROTTLE_CODES}


def client_error(code: str, message: str, operation: str, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


def call(world: World, service: str, operation: str, label: str, effect: Callable[[], Any], write: bool = False) -> Any:
    """One AWS call as a scheduler step: park, then apply the chosen fault around `effect`."""
    sched = world.sched
    fault = sched.park(
        Point(
            "call",
            f"{service}.{operation} {label}".strip(),
            service=service,
            faults=WRITE_FAULTS if write else READ_FAULTS,
        )
    )
    if fault in {Fault.THROTTLE, Fault.OUTAGE} or sched.in_outage(service):
        raise client_error(THROTTLE_CODES[service], "Rate exceeded", operation)
    result = effect()
    if fault is Fault.DUPLICATE:
        result = effect()
    if fault is Fault.LOST:
        raise ReadTimeoutError(endpoint_url=ENDPOINTS[service])
    return result


# --- DynamoDB ----------------------------------------------------------------------------------------------


def to_stored(value: Any) -> Any:
    """As the boto3 resource serializes: ints become Decimal, floats are refused."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes, Decimal)):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    if isinstance(value, dict):
        return {k: to_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_stored(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {to_stored(v) for v in value}
    raise TypeError(f"Unsupported type {type(value)} for value {value!r}")


@dataclass
class Table:
    """One table's items by (hash key, range key)."""

    name: str
    hash_key: str
    range_key: str | None
    items: dict[tuple[Any, Any], dict[str, Any]] = field(default_factory=dict)

    def key(self, key_or_item: dict[str, Any]) -> tuple[Any, Any]:
        return key_or_item[self.hash_key], key_or_item.get(self.range_key) if self.range_key else None


def _check(condition: Any, item: dict[str, Any] | None, names: Any, values: Any) -> bool:
    if condition is None:
        return True
    if not isinstance(condition, str):
        raise NotImplementedError("the fake takes condition expressions as strings")
    return evaluate_condition(condition, item, names, to_stored(values or {}))


class FakeTable:
    """boto3's dynamodb.Table on a world's table."""

    def __init__(self, world: World, table: Table):
        self._world = world
        self._table = table
        self.name = table.name
        self.meta = _Meta(_FakeDynamoClient(world))

    def _label(self, key: dict[str, Any]) -> str:
        return "/".join(
            str(key.get(k)).split(":listener/")[0] for k in (self._table.hash_key, self._table.range_key) if k
        )

    def get_item(self, Key: dict[str, Any], ConsistentRead: bool = False, **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            item = self._table.items.get(self._table.key(Key))
            return {} if item is None else {"Item": copy.deepcopy(item)}

        return call(self._world, "dynamodb", "GetItem", self._label(Key), effect)

    def put_item(self, Item: dict[str, Any], **kw: Any) -> dict[str, Any]:
        stored = to_stored(Item)
        return call(
            self._world, "dynamodb", "PutItem", self._label(Item), lambda: _put(self._table, stored, kw), write=True
        )

    def update_item(self, Key: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return call(
            self._world, "dynamodb", "UpdateItem", self._label(Key), lambda: _update(self._table, Key, kw), write=True
        )

    def delete_item(self, Key: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return call(
            self._world, "dynamodb", "DeleteItem", self._label(Key), lambda: _delete(self._table, Key, kw), write=True
        )


def _failed(operation: str, old: dict[str, Any] | None, kw: dict[str, Any]) -> ClientError:
    extra = {"Item": copy.deepcopy(old)} if old and kw.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else {}
    return client_error("ConditionalCheckFailedException", "The conditional request failed", operation, **extra)


def _guarded(table: Table, key_attrs: dict[str, Any], kw: dict[str, Any], operation: str) -> tuple[Any, Any]:
    """The item's key and current value, once the request's condition holds on it (else DynamoDB's error)."""
    key = table.key(key_attrs)
    old = table.items.get(key)
    if not _check(
        kw.get("ConditionExpression"), old, kw.get("ExpressionAttributeNames"), kw.get("ExpressionAttributeValues")
    ):
        raise _failed(operation, old, kw)
    return key, old


def _all_old(old: dict[str, Any] | None, kw: dict[str, Any]) -> dict[str, Any]:
    return {"Attributes": copy.deepcopy(old)} if old and kw.get("ReturnValues") == "ALL_OLD" else {}


def _put(table: Table, item: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    key, old = _guarded(table, item, kw, "PutItem")
    table.items[key] = copy.deepcopy(item)
    return _all_old(old, kw)


def _update(table: Table, key_attrs: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    key, old = _guarded(table, key_attrs, kw, "UpdateItem")
    names, values = kw.get("ExpressionAttributeNames"), to_stored(kw.get("ExpressionAttributeValues") or {})
    base = copy.deepcopy(old) if old is not None else to_stored(dict(key_attrs))
    new = apply_update(kw["UpdateExpression"], base, names, values)
    table.items[key] = new
    returned = kw.get("ReturnValues", "NONE")
    if returned == "ALL_NEW":
        return {"Attributes": copy.deepcopy(new)}
    return _all_old(old, kw)


def _delete(table: Table, key_attrs: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    key, old = _guarded(table, key_attrs, kw, "DeleteItem")
    table.items.pop(key, None)
    return _all_old(old, kw)


@dataclass
class _Meta:
    client: Any


class _Paginator:
    def __init__(self, world: World, operation: str):
        self._world = world
        self._operation = operation

    def paginate(self, TableName: str, KeyConditionExpression: Any = None, **_: Any) -> list[dict[str, Any]]:
        if self._operation != "query":
            raise NotImplementedError(f"{self._operation} pages are not supported by the fake")
        table = self._world.tables[TableName]
        expression = KeyConditionExpression.get_expression()
        if expression["operator"] != "=":
            raise NotImplementedError("only hash-key equality queries are supported by the fake")
        name, value = expression["values"][0].name, expression["values"][1]

        def effect() -> list[dict[str, Any]]:
            items = [
                copy.deepcopy(i)
                for k, i in sorted(table.items.items(), key=lambda kv: str(kv[0]))
                if i.get(name) == value
            ]
            return [{"Items": items}]

        return call(self._world, "dynamodb", "Query", str(value), effect)


class _FakeDynamoClient:
    """The resource Table's own client (Python values in and out, as the resource's hooks make it)."""

    def __init__(self, world: World):
        self._world = world

    def get_paginator(self, operation: str) -> _Paginator:
        return _Paginator(self._world, operation)

    def transact_write_items(self, TransactItems: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        label = ", ".join(
            f"{kind}:" + "/".join(str(v) for v in (body.get("Key") or body.get("Item") or {}).values())
            for entry in TransactItems
            for kind, body in entry.items()
        )
        return call(
            self._world,
            "dynamodb",
            "TransactWriteItems",
            label,
            lambda: _transact(self._world, TransactItems),
            write=True,
        )


def _transact(world: World, entries: list[dict[str, Any]]) -> dict[str, Any]:
    reasons, plans = [], []
    for entry in entries:
        ((kind, body),) = entry.items()
        table = world.tables[body["TableName"]]
        key = table.key(body.get("Key") or body["Item"])
        old = table.items.get(key)
        ok = _check(
            body.get("ConditionExpression"),
            old,
            body.get("ExpressionAttributeNames"),
            body.get("ExpressionAttributeValues"),
        )
        reasons.append(
            {"Code": "None"} if ok else {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
        )
        plans.append((kind, body, table, key))
    if any(r["Code"] != "None" for r in reasons):
        codes = ", ".join(r["Code"] for r in reasons)
        raise client_error(
            "TransactionCanceledException",
            f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            "TransactWriteItems",
            CancellationReasons=reasons,
        )
    for kind, body, table, key in plans:
        if kind == "Put":
            table.items[key] = to_stored(copy.deepcopy(body["Item"]))
        elif kind == "Update":
            base = copy.deepcopy(table.items.get(key)) or to_stored(dict(body["Key"]))
            values = to_stored(body.get("ExpressionAttributeValues") or {})
            table.items[key] = apply_update(
                body["UpdateExpression"], base, body.get("ExpressionAttributeNames"), values
            )
        elif kind == "Delete":
            table.items.pop(key, None)
        elif kind != "ConditionCheck":
            raise NotImplementedError(kind)
    return {}


class FakeDynamoResource:
    """boto3.resource("dynamodb") on the world's tables."""

    def __init__(self, world: World):
        self._world = world

    def Table(self, name: str) -> FakeTable:  # noqa: N802 - boto3's name
        return FakeTable(self._world, self._world.tables[name])


# --- ELBv2 -------------------------------------------------------------------------------------------------


class FakeElb:
    """The listener's default actions and its default rule."""

    def __init__(self, world: World):
        self._world = world

    def describe_listeners(self, ListenerArns: list[str], **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            return {
                "Listeners": [
                    {"ListenerArn": arn, "DefaultActions": copy.deepcopy(self._world.listeners[arn])}
                    for arn in ListenerArns
                    if arn in self._world.listeners
                ]
            }

        return call(self._world, "elbv2", "DescribeListeners", "", effect)

    def modify_listener(self, ListenerArn: str, DefaultActions: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        actions = copy.deepcopy(DefaultActions)

        def effect() -> dict[str, Any]:
            if ListenerArn not in self._world.listeners:
                raise client_error("ListenerNotFound", "listener not found", "ModifyListener")
            self._world.listener_written(ListenerArn, actions)
            return {"Listeners": [{"ListenerArn": ListenerArn, "DefaultActions": copy.deepcopy(actions)}]}

        weights = {
            g["TargetGroupArn"].rsplit("/", 2)[-2]: g.get("Weight")
            for a in actions
            for g in (a.get("ForwardConfig") or {}).get("TargetGroups", [])
        }
        return call(self._world, "elbv2", "ModifyListener", str(weights), effect, write=True)

    def describe_rules(self, ListenerArn: str, **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            default = self._world.listeners[ListenerArn]
            return {
                "Rules": [{"RuleArn": f"{ListenerArn}/default", "IsDefault": True, "Actions": copy.deepcopy(default)}]
            }

        return call(self._world, "elbv2", "DescribeRules", "", effect)

    def modify_rule(self, RuleArn: str, Actions: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        raise NotImplementedError("the simulated listener has no rules but its default one")


# --- Step Functions API -------------------------------------------------------------------------------------


class FakeStepFunctions:
    """The Step Functions API the adapters and people call; the executions themselves run in asl.Execution."""

    def __init__(self, world: World):
        self._world = world

    def describe_execution(self, executionArn: str, **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            execution = self._world.executions.get(executionArn)
            if execution is None or execution.expunged:
                raise client_error(
                    "ExecutionDoesNotExist", f"Execution Does Not Exist: '{executionArn}'", "DescribeExecution"
                )
            return {"executionArn": executionArn, "status": execution.status, "input": execution.input_text}

        return call(self._world, "stepfunctions", "DescribeExecution", executionArn.rsplit(":", 1)[-1], effect)

    def stop_execution(self, executionArn: str, error: str = "", cause: str = "", **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            execution = self._world.executions.get(executionArn)
            if execution is None or execution.expunged:
                raise client_error(
                    "ExecutionDoesNotExist", f"Execution Does Not Exist: '{executionArn}'", "StopExecution"
                )
            execution.stop(error, cause)
            return {"stopDate": self._world.clock().isoformat()}

        return call(self._world, "stepfunctions", "StopExecution", executionArn.rsplit(":", 1)[-1], effect, write=True)

    def send_task_success(self, taskToken: str, output: str, **_: Any) -> dict[str, Any]:
        return call(
            self._world,
            "stepfunctions",
            "SendTaskSuccess",
            taskToken,
            lambda: self._world.answer_token(taskToken, ("success", json.loads(output))),
            write=True,
        )

    def send_task_failure(self, taskToken: str, error: str = "", cause: str = "", **_: Any) -> dict[str, Any]:
        return call(
            self._world,
            "stepfunctions",
            "SendTaskFailure",
            taskToken,
            lambda: self._world.answer_token(taskToken, ("failure", (error, cause))),
            write=True,
        )


# --- SNS, SQS, CloudWatch -----------------------------------------------------------------------------------


class FakeSns:
    def __init__(self, world: World):
        self._world = world

    def publish(self, TopicArn: str, Message: str, Subject: str | None = None, **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            if Subject is not None and (len(Subject) > 100 or not Subject.isascii() or "\n" in Subject):
                raise client_error("InvalidParameter", "Invalid parameter: Subject", "Publish")
            self._world.page_published(Subject or "", Message)
            return {"MessageId": f"m-{len(self._world.pages)}"}

        return call(self._world, "sns", "Publish", (Subject or "")[:60], effect, write=True)


class FakeSqs:
    def __init__(self, world: World):
        self._world = world

    def receive_message(
        self, QueueUrl: str, MaxNumberOfMessages: int = 1, VisibilityTimeout: int = 30, **_: Any
    ) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            return {"Messages": self._world.queue_receive(MaxNumberOfMessages, VisibilityTimeout)}

        return call(self._world, "sqs", "ReceiveMessage", "", effect, write=True)

    def delete_message(self, QueueUrl: str, ReceiptHandle: str, **_: Any) -> dict[str, Any]:
        return call(
            self._world,
            "sqs",
            "DeleteMessage",
            ReceiptHandle,
            lambda: self._world.queue_delete(ReceiptHandle),
            write=True,
        )


HEALTHY = {
    "observations": 1000.0,
    "errors": 1.0,
    "throttles": 0.0,
    "hallucinations": 5.0,
    "latency_p99_ms": 1000.0,
    "csat_sum": 350.0,
    "csat_count": 100.0,
    "quality_sum": 850.0,
    "quality_count": 1000.0,
}


class FakeCloudWatch:
    """GetMetricData (both sides healthy) and DescribeAlarms (the world's alarm states)."""

    def __init__(self, world: World):
        self._world = world

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            results = []
            for query in MetricDataQueries:
                side, metric = query["Id"].split("_", 1)
                value = HEALTHY[metric]
                if side == "c" and metric == "errors" and self._world.canary_unhealthy:
                    value = 100.0  # 10% errors: the error-rate gate fails
                results.append({"Id": query["Id"], "Values": [value], "StatusCode": "Complete"})
            return {"MetricDataResults": results}

        return call(self._world, "cloudwatch", "GetMetricData", "", effect)

    def describe_alarms(self, AlarmNames: list[str], **_: Any) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            return {
                "CompositeAlarms": [
                    {"AlarmName": n, "StateValue": self._world.alarms[n]} for n in AlarmNames if n in self._world.alarms
                ],
                "MetricAlarms": [],
            }

        return call(self._world, "cloudwatch", "DescribeAlarms", "", effect)
