"""What one model call returns, whichever runtime answered it (Bedrock Converse or a SageMaker endpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from kanaria.errors import OperationalError


@dataclass(frozen=True)
class ModelResponse:
    """The text, usage and timing of one successful call (after `attempts` tries, `throttles` of them throttled)."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    stop_reason: str
    attempts: int
    throttles: int


class ThrottledError(OperationalError):
    """Still throttled after every attempt of the retry policy."""

    code = "throttled"

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason, field="model_id")
        self.attempts = attempts
