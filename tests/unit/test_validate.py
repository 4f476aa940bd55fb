"""kanaria.errors.validate: the one "validate or raise Kanaria's ValidationError naming the field"."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from kanaria.errors import ValidationError, validate


class _Inner(BaseModel):
    rate: float = Field(ge=0, le=1)


class _Doc(BaseModel):
    name: str
    inner: _Inner


def test_a_valid_document_becomes_the_model() -> None:
    assert validate(_Doc, {"name": "x", "inner": {"rate": 0.5}}) == _Doc(name="x", inner=_Inner(rate=0.5))


def test_a_bad_field_is_named_under_the_prefix_with_every_problem_in_details() -> None:
    with pytest.raises(ValidationError) as err:
        validate(_Doc, {"inner": {"rate": 2}}, prefix="request")
    assert err.value.field == "request.name" and err.value.reason == "required field is missing"
    assert [d["field"] for d in err.value.details] == ["request.name", "request.inner.rate"]
