"""Every item of a DynamoDB Query or Scan, over all its pages, with boto3's paginator.

The paginator comes from the resource Table's own client, which the DynamoDB resource has hooked to take
`Key(...)`/`Attr(...)` conditions and Python values and to return items as Python values (Decimal numbers), so
callers keep the resource's types and no loop over LastEvaluatedKey is written by hand.
"""

from __future__ import annotations

from typing import Any


def query_items(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a Query returns (all pages); `kwargs` as for Table.query."""
    return _all(table, "query", kwargs)


def scan_items(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a Scan returns (all pages); `kwargs` as for Table.scan."""
    return _all(table, "scan", kwargs)


def _all(table: Any, operation: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    paginator = table.meta.client.get_paginator(operation)
    return [item for page in paginator.paginate(TableName=table.name, **kwargs) for item in page.get("Items", [])]
