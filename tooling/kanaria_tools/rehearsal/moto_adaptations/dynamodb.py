"""DynamoDB: conditional writes and transactions as AWS does them, atomic across threads."""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any, Callable, Iterator

from kanaria_tools.rehearsal.moto_adaptations.catalogue import check_moto_version
from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher


def _adapt_dynamodb(patcher: Patcher) -> None:  # noqa: C901 - mirrors moto's own DynamoDB backend methods it replaces
    """dynamodb-transaction-backup: TransactWriteItems backs up the items it touches, not whole tables.

    Same logic as moto 5.2.5's DynamoDBBackend.transact_write_items; only the backup differs (moto deep-copies
    every table involved on every transaction, so recording observations slows down as the tables grow)."""
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: C901 - moto's transact_write_items, line for line, plus the atomicity lock
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

        def restore() -> None:
            for table_name, key, attributes in reversed(backups):
                if attributes is None:
                    table = self.get_table(table_name)
                    hash_value, range_value = self.get_keys_value(table, key)
                    if table.get_item(hash_value, range_value) is not None:
                        table.delete_item(hash_value, range_value)
                else:
                    self.get_table(table_name).put_item(attributes)

        target_items: set[tuple[str, str]] = set()
        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                unique = (str(table_name), str(dict(sorted(key.items()))))
                if unique in target_items:
                    raise MultipleTransactionsException()
                target_items.add(unique)
                current = self.get_item(table_name, key)
                if op_type != "ConditionCheck":
                    backups.append(
                        (table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
                    )
                if condition_expression is not None:
                    condition = get_filter_expression(condition_expression, names, values)
                    if not condition.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition_expression,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition_expression,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                restore()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - as moto: reported per item
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            restore()
            raise TransactionCanceledException(errors)

    patcher.setattr(ddb_models.DynamoDBBackend, "transact_write_items", transact_write_items)


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")  # BatchWriteItem: puts/deletes
_DYNAMODB_WRITE_LOCK = threading.RLock()  # re-entrant: a transaction calls put_item/update_item/delete_item


def _serialize_dynamodb_writes(patcher: Patcher) -> None:
    """dynamodb-atomic-writes: one write at a time, so a write's condition is checked against what it replaces."""
    from moto.dynamodb import models as ddb_models

    backend = ddb_models.DynamoDBBackend
    for name in _DYNAMODB_WRITES:

        def serialized(self: Any, *args: Any, _write: Callable[..., Any] = vars(backend)[name], **kwargs: Any) -> Any:
            with _DYNAMODB_WRITE_LOCK:
                return _write(self, *args, **kwargs)

        patcher.setattr(backend, name, serialized)


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """Only the dynamodb-atomic-writes adaptation, for tests that race triggers against moto in one process."""
    check_moto_version()
    patcher = Patcher()
    _serialize_dynamodb_writes(patcher)
    try:
        yield
    finally:
        patcher.revert()
