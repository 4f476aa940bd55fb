"""DynamoDB's sizing rules (item bytes, pages, read and write capacity), applied to the items the bench stores.

Pure: no AWS. moto does not meter capacity, so the Recording and Analysis sections model it from these rules.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

DYNAMO_PAGE_BYTES = 1024 * 1024  # Query/Scan read at most 1 MB of items per page


def dynamo_value_size(value: Any) -> int:
    """Bytes DynamoDB bills for one attribute value (AWS "item sizes" rules; names are counted by the caller).

    Numbers: 1 byte per two significant digits + 1; strings and binary: their bytes; booleans and null: 1;
    lists and maps: 3 bytes + 1 per element (+ the element names of a map); sets: the sum of their members.
    """
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        return math.ceil(significant_digits(value) / 2) + 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode("utf-8")) + dynamo_value_size(v) + 1 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 3 + sum(dynamo_value_size(v) + 1 for v in value)
    if isinstance(value, (set, frozenset)):
        return sum(dynamo_value_size(v) for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def significant_digits(value: int | float | Decimal) -> int:
    """Significant decimal digits of a number (leading and trailing zeros trimmed; 0 has one)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    digits = number.normalize().as_tuple().digits
    return max(1, len(digits)) if any(digits) else 1


def dynamo_item_size(item: Mapping[str, Any]) -> int:
    """Bytes of one item as DynamoDB counts them: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + dynamo_value_size(value) for name, value in item.items())


def page_sizes(sizes: list[int], page_bytes: int = DYNAMO_PAGE_BYTES) -> list[int]:
    """Split item sizes (in read order) into DynamoDB pages of at most `page_bytes`: bytes per page."""
    pages: list[int] = []
    current = 0
    for size in sizes:
        if current and current + size > page_bytes:
            pages.append(current)
            current = 0
        current += size
    if current or not pages:
        pages.append(current)
    return pages


def read_units(pages: list[int], consistent: bool = False) -> float:
    """Read capacity of a Query/Scan: each page's bytes rounded up to 4 KB, halved when eventually consistent."""
    units = sum(math.ceil(p / 4096) for p in pages)
    return float(units) if consistent else units / 2.0


def write_units(item_bytes: int, transactional: bool = True) -> int:
    """Write capacity of one item write: 1 per KB (rounded up), doubled inside a transaction."""
    return max(1, math.ceil(item_bytes / 1024)) * (2 if transactional else 1)
