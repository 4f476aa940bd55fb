"""Domain errors with a field, a reason and the HTTP status / CLI exit code they map to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

Model = TypeVar("Model", bound="BaseModel")


class KanariaError(Exception):
    """Base error: `field` names the offending input, `reason` says why."""

    status_code = 400
    exit_code = 2
    code = "bad_request"

    def __init__(self, reason: str, field: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        """JSON body for an API response or CLI error line."""
        body: dict[str, Any] = {"code": self.code, "message": str(self)}
        if self.field:
            body["field"] = self.field
        body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(KanariaError):
    """Input that does not satisfy the schema or a domain rule."""

    code = "validation_error"


class NotFoundError(KanariaError):
    """A referenced experiment, rollout or unit does not exist."""

    status_code = 404
    code = "not_found"


class ConflictError(KanariaError):
    """Illegal state transition or a concurrent modification (optimistic lock)."""

    status_code = 409
    code = "conflict"


class OperationalError(KanariaError):
    """A dependency failed (AWS call, emulator); not the caller's fault."""

    status_code = 502
    exit_code = 1
    code = "operational_error"


def from_pydantic(exc: Any, prefix: str = "") -> ValidationError:
    """Turn a pydantic ValidationError into one naming the first bad field (all fields in details)."""
    details = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc and ": " in reason:
            # model-level rules name their field as "field: reason"
            loc, reason = reason.split(": ", 1)
        if err.get("type") == "missing":
            reason = "required field is missing"
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        details.append({"field": field, "reason": reason})
    first: dict[str, Any] = details[0] if details else {"field": prefix or None, "reason": "invalid"}
    return ValidationError(first["reason"], field=first["field"], details=details)


def validate(model: type[Model], document: Any, prefix: str = "") -> Model:
    """`model.model_validate(document)`, or the ValidationError naming the first bad field (under `prefix`)."""
    from pydantic import ValidationError as PydanticValidationError

    try:
        return model.model_validate(document)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix) from None


def validate_strict(model: type[Model], document: Any, prefix: str = "") -> Model:
    """`validate` without coercion: the document is read as JSON in pydantic's strict mode, so "0.25" is not a
    number and 1 is not a boolean (JSON arrays still fill tuples, JSON strings enums)."""
    import json

    from pydantic import ValidationError as PydanticValidationError

    try:
        text = json.dumps(document, allow_nan=False, default=_json_number)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"not a JSON document: {exc}", field=prefix or None) from None
    try:
        return model.model_validate_json(text, strict=True)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix) from None


def _json_number(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):  # a number read from DynamoDB or parsed with parse_float=Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
