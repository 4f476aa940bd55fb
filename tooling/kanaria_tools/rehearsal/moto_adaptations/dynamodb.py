"""DynamoDB: conditional writes and transactions as AWS does them, atomic across threads."""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any, Callable, Iterator

from kanaria_tools.rehearsal.moto_adaptations.catalogue import check_moto_version
from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


class _Transaction:
    """One TransactWriteItems on moto's DynamoDB backend, as moto 5.2.5's DynamoDBBackend.transact_write_items
    runs it, except the backup: the items it touches, not whole tables."""

    def __init__(self, backend: Any):
        self._backend = backend
        self._backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        self._targets: set[tuple[str, str]] = set()
        self._returned: dict[str, Any] | None = None  # the item a failed condition returns (ALL_OLD)
        self.errors: list[tuple[Any, Any, Any]] = []  # per item: (code, message, item), (None, None, None) if fine

    def restore(self) -> None:
        """Put back what the transaction's writes replaced, newest first."""
        for table_name, key, attributes in reversed(self._backups):
            if attributes is None:
                table = self._backend.get_table(table_name)
                hash_value, range_value = self._backend.get_keys_value(table, key)
                if table.get_item(hash_value, range_value) is not None:
                    table.delete_item(hash_value, range_value)
            else:
                self._backend.get_table(table_name).put_item(attributes)

    def apply(self, item: dict[str, Any]) -> None:
        """One TransactItem: its outcome recorded in `errors`; a repeated item or an invalid one restores and
        raises."""
        from moto.dynamodb.exceptions import (
            ConditionalCheckFailed,
            MockValidationException,
            MultipleTransactionsException,
        )

        self._returned = None
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in _OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            self._apply(op_type, op)
            self.errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            self.restore()
            raise
        except ConditionalCheckFailed as e:
            self.errors.append(("ConditionalCheckFailed", str(e.message), self._returned))
        except Exception as e:  # noqa: BLE001 - as moto: reported per item
            self.errors.append((type(e).__name__, str(e), self._returned))

    def _apply(self, op_type: str, op: dict[str, Any]) -> None:
        backend = self._backend
        table_name = op["TableName"]
        condition_expression = op.get("ConditionExpression")
        expressions = {
            "condition_expression": condition_expression,
            "expression_attribute_names": op.get("ExpressionAttributeNames"),
            "expression_attribute_values": op.get("ExpressionAttributeValues"),
        }
        key = self._key(op_type, op, table_name)
        self._check_unique(table_name, key)
        current = backend.get_item(table_name, key)
        if op_type != "ConditionCheck":
            self._backups.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        if condition_expression is not None:
            self._check_condition(op, current, expressions)
        if op_type == "Put":
            backend.put_item(table_name, op["Item"], **expressions)
        elif op_type == "Delete":
            backend.delete_item(table_name, key, **expressions)
        elif op_type == "Update":
            backend.update_item(table_name, key, update_expression=op["UpdateExpression"], **expressions)

    def _key(self, op_type: str, op: dict[str, Any], table_name: str) -> dict[str, Any]:
        if op_type != "Put":
            key: dict[str, Any] = op["Key"]
            return key
        attrs = op["Item"]
        table = self._backend.get_table(table_name)
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
        return key

    def _check_unique(self, table_name: str, key: dict[str, Any]) -> None:
        from moto.dynamodb.exceptions import MultipleTransactionsException

        unique = (str(table_name), str(dict(sorted(key.items()))))
        if unique in self._targets:
            raise MultipleTransactionsException()
        self._targets.add(unique)

    def _check_condition(self, op: dict[str, Any], current: Any, expressions: dict[str, Any]) -> None:
        from moto.dynamodb.comparisons import get_filter_expression
        from moto.dynamodb.exceptions import ConditionalCheckFailed

        condition = get_filter_expression(
            expressions["condition_expression"],
            expressions["expression_attribute_names"],
            expressions["expression_attribute_values"],
        )
        if not condition.expr(current):
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                self._returned = current.to_json()["Attributes"]
            raise ConditionalCheckFailed(item=self._returned)


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's transact_write_items with the item-level backup (see _Transaction)."""
    from moto.dynamodb.exceptions import (
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    transaction = _Transaction(self)
    for item in transact_items:
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        transaction.apply(item)
    if any(code is not None for code, _, _ in transaction.errors):
        transaction.restore()
        raise TransactionCanceledException(transaction.errors)


def _adapt_dynamodb(patcher: Patcher) -> None:
    """dynamodb-transaction-backup: TransactWriteItems backs up the items it touches, not whole tables.

    Same logic as moto 5.2.5's DynamoDBBackend.transact_write_items; only the backup differs (moto deep-copies
    every table involved on every transaction, so recording observations slows down as the tables grow)."""
    from moto.dynamodb import models as ddb_models

    patcher.setattr(ddb_models.DynamoDBBackend, "transact_write_items", _transact_write_items)


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
