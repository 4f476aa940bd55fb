"""What one evaluation task produced: a CaseRecord per (configuration, case). Data only (no model client), so
the report, the rollout gate and the storage adapter read it without importing the runner's Bedrock adapter."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from kanaria.domain import pricing
from kanaria.evaluation.scoring import ScorePart


class CaseRecord(BaseModel):
    """The outcome of one configuration on one case (a failed call has `error` set and fails the case)."""

    model_config = ConfigDict(frozen=True)

    config_name: str
    config_hash: str  # the configuration's identity
    intent_hash: str  # the resolved configuration for this intent (what assignment would report)
    model_id: str
    case_id: str
    intent: str
    quality_target: float
    composite: float
    passed: bool
    parts: tuple[ScorePart, ...] = ()
    critical: tuple[str, ...] = ()
    response: str = ""
    stop_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float | None = None
    cost_usd: Decimal | None = None  # None: the price table has no price for the model
    price_table_version: str = pricing.PRICE_TABLE_VERSION
    attempts: int = 0
    throttles: int = 0
    judge_hash: str | None = None
    error: str | None = None

    @property
    def hallucinated(self) -> bool:
        """A forbidden or invented fact appeared."""
        return any(p.name == "grounding" and p.critical for p in self.parts)
