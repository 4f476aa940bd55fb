"""The error of an alarm definition the rehearsal's evaluator cannot honour."""

from __future__ import annotations

from kanaria.errors import ValidationError


class AlarmDefinitionError(ValidationError):
    """An alarm in the template uses something the rehearsal's evaluator does not implement."""
