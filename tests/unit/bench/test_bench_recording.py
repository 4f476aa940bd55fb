"""Pure helpers of the Recording section (DynamoDB sizing), no AWS."""

from decimal import Decimal

import pytest

from kanaria_tools.bench.dynamo_sizing import (
    dynamo_item_size,
    dynamo_value_size,
    page_sizes,
    read_units,
    significant_digits,
    write_units,
)


@pytest.mark.parametrize(
    "value, digits",
    [
        (0, 1),
        (7, 1),
        (100, 1),
        (Decimal("0.500000"), 1),
        (Decimal("123.456"), 6),
        (Decimal("-0.00012"), 2),
        (12345678901234567890, 19),
        (12345678901234567891, 20),
        (1.25, 3),
    ],
)
def test_significant_digits_trim_leading_and_trailing_zeros(value, digits):
    assert significant_digits(value) == digits


def test_value_sizes_follow_dynamodb_rules():
    assert dynamo_value_size(Decimal("123.456")) == 4  # ceil(6 / 2) + 1
    assert dynamo_value_size(1) == 2
    assert dynamo_value_size("héllo") == 6  # UTF-8 bytes
    assert dynamo_value_size(True) == dynamo_value_size(None) == 1
    assert dynamo_value_size([1, "ab"]) == 3 + (2 + 1) + (2 + 1)
    assert dynamo_value_size({"k": 1}) == 3 + 1 + 2 + 1
    with pytest.raises(TypeError):
        dynamo_value_size(object())


def test_item_size_counts_names_and_values():
    assert dynamo_item_size({"pk": "abc", "n": Decimal(10)}) == (2 + 3) + (1 + 2)


def test_pages_split_at_the_limit_and_capacity_rounds_per_page():
    assert page_sizes([600, 600, 600], page_bytes=1000) == [600, 600, 600]
    assert page_sizes([400, 400, 400], page_bytes=1000) == [800, 400]
    assert page_sizes([]) == [0]
    assert read_units([4096, 1]) == 1.0  # 1 + 1 units, halved when eventually consistent
    assert read_units([4097], consistent=True) == 2.0
    assert write_units(100) == 2 and write_units(1025) == 4 and write_units(1025, transactional=False) == 2
