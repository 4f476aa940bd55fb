"""Request bodies of the experiments and assignment API."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from kanaria.domain.experiment import INTENT_PATTERN, UNIT_PATTERN
from kanaria.errors import ValidationError, from_pydantic


class AssignRequest(BaseModel):
    """One assignment: which experiment, which unit (session or user id), which intent."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str = Field(min_length=1, max_length=63)
    unit: str = Field(pattern=UNIT_PATTERN)
    intent: str | None = Field(default=None, pattern=INTENT_PATTERN)


class AssignBatchRequest(BaseModel):
    """Up to 100 assignments in one call."""

    model_config = ConfigDict(extra="forbid")

    requests: list[AssignRequest] = Field(min_length=1, max_length=100)


class TransitionRequest(BaseModel):
    """A lifecycle action with the version the operator last read (optimistic locking)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["start", "pause", "resume", "complete"]
    expected_version: int | None = Field(default=None, ge=1)


class StopVariantRequest(BaseModel):
    """Stop a treatment (rollback): its units move to control and are excluded from analysis."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="variant_stopped", min_length=1, max_length=128)
    expected_version: int | None = Field(default=None, ge=1)


def parse_body(body: Any, model: type[BaseModel], field_prefix: str = "") -> Any:
    """Powertools Parser validation; errors name the field."""
    if not isinstance(body, dict):
        raise ValidationError("must be a JSON object", field=field_prefix or "body")
    try:
        return parse(event=body, model=model)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, field_prefix) from None
