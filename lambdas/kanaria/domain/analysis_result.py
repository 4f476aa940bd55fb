"""The analysis result as a type, and the one reader of a stored result (aggregates item RESULT#LATEST).

Importable without numpy/scipy: the rollout gate, the scheduled analysis's bookkeeping and the CLI report read
results through here, while only the engine (kanaria.analysis) computes them.

JSON shape (what `analyze_snapshot` returns and the scheduled analysis stores as text in RESULT#<at>/LATEST):
    {"experiment_id", "decision", "winner", "actions", "srm", "metrics", "evidence",
     "final", "stop_variants", ["weights", "bandit" — bandits only]}
`evidence.variants[variant]` = {"decision", "action", "reasons"} per active treatment.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError


class Decision(str, Enum):
    """What the platform should do with the experiment (or with one treatment)."""

    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"
    REVIEW = "REVIEW"
    CONTINUE = "CONTINUE"
    NO_DECISION = "NO_DECISION"


VariantAction = Literal["promote", "review", "stop", "continue", "none"]
ACTION_OF: dict[Decision, VariantAction] = {
    Decision.PROMOTE: "promote",
    Decision.REVIEW: "review",
    Decision.ROLLBACK: "stop",
    Decision.CONTINUE: "continue",
    Decision.NO_DECISION: "none",
}


class VariantOutcome(BaseModel):
    """One treatment's decision, the action it implies for that arm, and why."""

    model_config = ConfigDict(extra="allow")

    decision: Decision
    action: VariantAction | None = None
    reasons: list[str] = Field(default_factory=list)


class AnalysisResult(BaseModel):
    """What one analysis of one snapshot concluded (the engine's output; JSON via `to_json`)."""

    model_config = ConfigDict(extra="allow")

    experiment_id: str
    decision: Decision
    winner: str | None = None
    actions: list[str] = Field(default_factory=list)
    srm: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    final: bool = False  # obf/fixed at the planned sample: the decision is not tested again
    stop_variants: list[str] = Field(default_factory=list)  # harmful arms to stop while the others continue
    weights: dict[str, float] | None = None  # bandits only
    bandit: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict in the stored shape (bandit keys only for bandits)."""
        body = self.model_dump(mode="json")
        for key in ("weights", "bandit"):
            if body.get(key) is None:
                body.pop(key, None)
        return body

    def variant(self, variant: str) -> VariantOutcome | None:
        """The decision about one treatment (None for control, a stopped arm or an unknown variant)."""
        body = (self.evidence.get("variants") or {}).get(variant)
        if not isinstance(body, Mapping):
            return None
        try:
            return VariantOutcome.model_validate(body)
        except PydanticValidationError:
            return None

    @property
    def looks(self) -> list[float]:
        """Information fractions of the group-sequential looks taken so far (history for the next read)."""
        looks = (self.evidence.get("sequential") or {}).get("looks") or []
        return [float(t) for t in looks if t is not None]


class StoredResult(BaseModel):
    """A stored analysis result (RESULT#<computed_at> or RESULT#LATEST), decoded."""

    model_config = ConfigDict(extra="ignore")

    experiment_id: str
    computed_at: str | None = None
    decision: Decision | None = None
    result: AnalysisResult | None = None
    snapshot: dict[str, Any] | None = None
    raw_decision: str | None = None  # the stored decision when it is not one of Decision's values
    error: str | None = None  # why the stored result could not be read as an AnalysisResult

    def as_dict(self) -> dict[str, Any]:
        """{experiment_id, computed_at, decision, result (the engine's JSON), snapshot} as plain JSON values."""
        return {
            "experiment_id": self.experiment_id,
            "computed_at": self.computed_at,
            "decision": self["decision"],
            "result": self["result"],
            "snapshot": self.snapshot,
        }

    def __getitem__(self, key: str) -> Any:
        """Dict-style access for older callers (`previous["decision"]`)."""
        value = getattr(self, key)
        if key == "decision":
            return None if value is None else value.value
        if key == "result" and value is not None:
            return value.to_json()
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style get for older callers."""
        value = self[key] if key in type(self).model_fields else None
        return default if value is None else value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def decode_result_item(item: Mapping[str, Any]) -> StoredResult:
    """The one reader of a stored result item: {experiment_id, computed_at, decision ("-" = none), result (JSON
    text), snapshot (JSON text)}. A result that is not an AnalysisResult is reported in `error`, not raised."""
    raw = item.get("decision")
    raw = None if raw in (None, "-") else str(raw)
    try:
        decision = Decision(raw) if raw is not None else None
    except ValueError:
        decision = None
    result, error = None, None
    body = _json(item.get("result"))
    if body is not None:
        try:
            result = AnalysisResult.model_validate(body)
        except PydanticValidationError as exc:
            error = f"stored result is not an analysis result: {exc.errors()[0]['msg']}"
    snapshot = _json(item.get("snapshot"))
    return StoredResult(
        experiment_id=str(item.get("experiment_id", "")),
        computed_at=item.get("computed_at"),
        decision=decision,
        result=result,
        snapshot=snapshot if isinstance(snapshot, dict) else None,
        raw_decision=raw if decision is None else None,
        error=error,
    )


def coerce_stored(value: StoredResult | Mapping[str, Any] | None) -> StoredResult | None:
    """A StoredResult from itself or from a decoded-item mapping ({decision, computed_at, result})."""
    if value is None or isinstance(value, StoredResult):
        return value
    return decode_result_item({"experiment_id": value.get("experiment_id", ""), **value})


Verdict = Literal["pass", "fail", "inconclusive"]


class VariantVerdict(BaseModel):
    """What a stored result says about one variant, for the rollout gate."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    decision: str | None = None
    reason: str
    computed_at: str | None = None


def verdict_for_variant(stored: StoredResult | Mapping[str, Any] | None, variant: str) -> VariantVerdict:
    """pass: the analysis promotes this variant; fail: it rolls the experiment back or stops this variant;
    inconclusive otherwise (no result yet, another winner, CONTINUE/REVIEW/NO_DECISION, unreadable result)."""
    stored = coerce_stored(stored)
    if stored is None:
        return VariantVerdict(verdict="inconclusive", reason="no analysis result yet")
    at = stored.computed_at
    if stored.decision is None:
        if stored.raw_decision is not None:
            return VariantVerdict(
                verdict="inconclusive",
                decision=stored.raw_decision,
                computed_at=at,
                reason=f"analysis decision {stored.raw_decision!r} is not one of "
                f"{', '.join(d.value for d in Decision)}",
            )
        return VariantVerdict(verdict="inconclusive", computed_at=at, reason="the analysis has no decision yet")
    decision = stored.decision.value
    result = stored.result
    own = result.variant(variant) if result is not None else None
    if result is not None and variant in result.stop_variants:
        return VariantVerdict(
            verdict="fail",
            decision=decision,
            computed_at=at,
            reason=f"the analysis stops variant {variant!r} (computed {at})",
        )
    if stored.decision is Decision.ROLLBACK:
        return VariantVerdict(
            verdict="fail", decision=decision, computed_at=at, reason=f"analysis decision {decision!r} (computed {at})"
        )
    if stored.decision is Decision.PROMOTE:
        winner = result.winner if result is not None else None
        if winner is not None and winner != variant:
            return VariantVerdict(
                verdict="inconclusive",
                decision=decision,
                computed_at=at,
                reason=f"the analysis favours variant {winner!r}, not the candidate's {variant!r}",
            )
        return VariantVerdict(
            verdict="pass", decision=decision, computed_at=at, reason=f"analysis decision {decision!r} (computed {at})"
        )
    detail = f"; {variant}: {own.decision.value}" if own is not None else ""
    return VariantVerdict(
        verdict="inconclusive",
        decision=decision,
        computed_at=at,
        reason=f"analysis decision {decision!r} is not a promotion{detail}",
    )
