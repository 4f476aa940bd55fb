"""Per-intent model parameter profiles and the resolved configuration handed to Bedrock."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_STOP_SEQUENCES = ("\n\nUser:", "\n\nHuman:")
DEFAULT_MODEL_ID = "anthropic.claude-3-sonnet-20240229-v1:0"

# Revenue-critical intents: a regression here blocks a promotion even when the composite improves.
REVENUE_CRITICAL_INTENTS = ("product_search", "recommendation")
FALLBACK_INTENT = "_fallback"


class ModelParameters(BaseModel):
    """Generation parameters of one configuration, range-checked for Bedrock (Anthropic Claude)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(default=DEFAULT_MODEL_ID, min_length=1, max_length=256)
    temperature: float = Field(ge=0.0, le=1.0)
    top_k: int = Field(ge=0, le=500)
    top_p: float = Field(ge=0.0, le=1.0)
    max_tokens: int = Field(ge=1, le=8192)
    stop_sequences: tuple[str, ...] = Field(default=DEFAULT_STOP_SEQUENCES, max_length=8)
    frequency_penalty: float = Field(default=0.0, ge=0.0, le=2.0)
    system_prompt_version: str = Field(default="v1", min_length=1, max_length=64)
    few_shot_count: int = Field(default=0, ge=0, le=10)

    @field_validator("stop_sequences")
    @classmethod
    def _non_empty_stops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return value


class ParameterOverrides(BaseModel):
    """A variant's changes to the intent profile; every field optional, same ranges as ModelParameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str | None = Field(default=None, min_length=1, max_length=256)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0, le=500)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    stop_sequences: tuple[str, ...] | None = Field(default=None, max_length=8)
    frequency_penalty: float | None = Field(default=None, ge=0.0, le=2.0)
    system_prompt_version: str | None = Field(default=None, min_length=1, max_length=64)
    few_shot_count: int | None = Field(default=None, ge=0, le=10)


class IntentProfile(BaseModel):
    """Default parameters and quality target for one chatbot intent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: str
    parameters: ModelParameters
    quality_target: float = Field(ge=0.0, le=1.0)
    severity: Literal["low", "medium", "high"] = "medium"


def _profile(
    intent: str,
    t: float,
    k: int,
    p: float,
    mx: int,
    fp: float,
    prompt: str,
    shots: int,
    q: float,
    severity: Literal["low", "medium", "high"],
) -> IntentProfile:
    return IntentProfile(
        intent=intent,
        parameters=ModelParameters(
            temperature=t,
            top_k=k,
            top_p=p,
            max_tokens=mx,
            frequency_penalty=fp,
            system_prompt_version=prompt,
            few_shot_count=shots,
        ),
        quality_target=q,
        severity=severity,
    )


# Defaults from the design notes (per-intent parameter table), severity from how costly a wrong answer is.
DEFAULT_PROFILES: dict[str, IntentProfile] = {
    p.intent: p
    for p in (
        _profile("order_status", 0.15, 40, 0.70, 256, 0.0, "order_status_v3", 2, 0.95, "high"),
        _profile("shipping_info", 0.20, 40, 0.80, 384, 0.0, "shipping_info_v2", 2, 0.93, "high"),
        _profile("product_search", 0.45, 100, 0.90, 512, 0.1, "product_search_v4", 3, 0.88, "high"),
        _profile("manga_qa", 0.50, 100, 0.90, 768, 0.1, "manga_qa_v3", 2, 0.85, "medium"),
        _profile("recommendation", 0.80, 250, 0.95, 1024, 0.3, "recommendation_v5", 3, 0.80, "medium"),
        _profile("chitchat", 0.75, 200, 0.95, 128, 0.2, "chitchat_v2", 1, 0.78, "low"),
        # Unknown intents get the most conservative sampling (order_status-like) with a generic prompt.
        _profile(FALLBACK_INTENT, 0.15, 40, 0.70, 256, 0.0, "generic_v1", 0, 0.90, "high"),
    )
}


def profiles_from_json(document: dict[str, Any]) -> dict[str, IntentProfile]:
    """Parse a stored profiles document {intent: {parameters, quality_target, severity}}."""
    return {intent: IntentProfile(intent=intent, **body) for intent, body in document.items()}


def profiles_to_json(profiles: dict[str, IntentProfile]) -> dict[str, Any]:
    """Serialise profiles to the stored document form."""
    return {intent: p.model_dump(mode="json", exclude={"intent"}) for intent, p in profiles.items()}


def profile_for(intent: str | None, profiles: Mapping[str, IntentProfile]) -> IntentProfile:
    """The intent's profile, or the conservative fallback for unknown or missing intents."""
    if intent and intent in profiles:
        return profiles[intent]
    return profiles.get(FALLBACK_INTENT, DEFAULT_PROFILES[FALLBACK_INTENT])


def resolve(profile: IntentProfile, overrides: ParameterOverrides | None) -> ModelParameters:
    """Intent profile with the variant's overrides applied."""
    if overrides is None:
        return profile.parameters
    changes = overrides.model_dump(exclude_none=True)
    return profile.parameters.model_copy(update=changes)


def bedrock_config(parameters: ModelParameters) -> dict[str, Any]:
    """The resolved configuration in the shape passed to Bedrock (inference parameters + prompt identity)."""
    return {
        "model_id": parameters.model_id,
        "inference": {
            "temperature": parameters.temperature,
            "top_k": parameters.top_k,
            "top_p": parameters.top_p,
            "max_tokens": parameters.max_tokens,
            "stop_sequences": list(parameters.stop_sequences),
        },
        "frequency_penalty": parameters.frequency_penalty,
        "system_prompt_version": parameters.system_prompt_version,
        "few_shot_count": parameters.few_shot_count,
    }


def config_hash(config: dict[str, Any]) -> str:
    """Stable SHA-256 (first 16 hex digits) of a configuration in canonical JSON form."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
