"""Stage-0 gate: a rollout starts only if its candidate has a passing offline evaluation for every intent it serves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict

from kanaria.errors import ValidationError
from kanaria.evaluation.configs import is_offline, served_intents
from kanaria.evaluation.records import CaseRecord
from kanaria.evaluation.report import (
    EvaluationReport,
    EvaluationSummary,
    GatePolicy,
    IntentResult,
    aggregate,
    intent_result,
    summaries_by_hash,
)

Evidence = EvaluationReport | EvaluationSummary | Sequence[CaseRecord] | None


class GateResult(BaseModel):
    """Whether the rollout may start, and every reason it may not."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: tuple[str, ...]
    config_hash: str
    run_id: str | None = None
    dataset_version: str | None = None
    report_uri: str | None = None
    per_intent: dict[str, IntentResult] = {}

    def message(self) -> str:
        """One line for a person (used as the refusal reason)."""
        if self.passed:
            return f"offline evaluation {self.run_id} on {self.dataset_version} passed for {self.config_hash}"
        return f"stage 0 refused for {self.config_hash}: " + "; ".join(self.reasons)

    def raise_if_refused(self, field: str = "offline_evaluation") -> None:
        """ValidationError with `message()` when the gate refused (what a rollout's prepare step raises)."""
        if not self.passed:
            raise ValidationError(self.message(), field=field)

    def as_offline_evaluation(self) -> dict[str, Any]:
        """The evidence in the rollout request's `offline_evaluation` shape (passed, report_uri, per_intent with
        passed/score/threshold, config_hash) plus run and dataset identity."""
        return {
            "passed": self.passed,
            "report_uri": self.report_uri or "none",
            "config_hash": self.config_hash,
            "run_id": self.run_id,
            "dataset_version": self.dataset_version,
            "reasons": list(self.reasons),
            "per_intent": {
                intent: {
                    "passed": r.passed,
                    "score": r.mean_quality,
                    "threshold": r.quality_target,
                    "pass_rate": r.pass_rate,
                    "min_pass_rate": r.min_pass_rate,
                    "n": r.n,
                }
                for intent, r in self.per_intent.items()
            },
        }


def _summary(evidence: Evidence, config_hash: str) -> EvaluationSummary | None:
    if evidence is None or isinstance(evidence, EvaluationSummary):
        return evidence
    if isinstance(evidence, EvaluationReport):
        return summaries_by_hash(evidence).get(config_hash)
    records = [r for r in evidence if config_hash in (r.config_hash, r.intent_hash)]
    if not records:
        return None
    cells, _ = aggregate(records, GatePolicy())
    first = records[0]
    return EvaluationSummary(
        config_hash=config_hash,
        config_name=first.config_name,
        run_id="records",
        created_at="",
        dataset_version="records",
        scorer_version="",
        price_table_version=first.price_table_version,
        offline=any(is_offline(r.model_id) for r in records),
        judge_hash=first.judge_hash,
        per_intent={c.intent: intent_result(c) for c in cells},
    )


def stage0(
    report_or_records: Evidence,
    config_hash: str,
    intents: Iterable[str] | None,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
    allow_offline: bool = False,
) -> GateResult:
    """Pass only when the evaluation of `config_hash` passed every intent in `intents` (None: every profiled
    intent). Refuses with reasons: no evaluation, an intent not evaluated or failed, an offline-adapter run
    (unless `allow_offline`, for the local rehearsal), or an evaluation older than `max_age`."""
    wanted = list(dict.fromkeys(intents)) if intents is not None else served_intents()
    summary = _summary(report_or_records, config_hash)
    if summary is None:
        return GateResult(
            passed=False,
            config_hash=config_hash,
            reasons=(
                f"no offline evaluation of configuration {config_hash}; run `kanaria evaluate` "
                "on the golden dataset first",
            ),
        )
    reasons: list[str] = []
    if summary.config_hash != config_hash:
        reasons.append(f"the evaluation is of {summary.config_hash}, not of {config_hash}")
    if not wanted:
        reasons.append("the candidate serves no intent")
    if summary.offline and not allow_offline:
        reasons.append("the evaluation used the offline adapter, not the real model")
    if max_age is not None and now is not None and summary.created_at:
        created = datetime.fromisoformat(summary.created_at.replace("Z", "+00:00"))
        if now - created > max_age:
            reasons.append(f"the evaluation from {summary.created_at} is older than {max_age}")
    for intent in wanted:
        result = summary.per_intent.get(intent)
        if result is None:
            reasons.append(f"{intent}: not evaluated")
        elif not result.passed:
            reasons.append(f"{intent}: " + ("; ".join(result.reasons) or "failed"))
    return GateResult(
        passed=not reasons,
        reasons=tuple(reasons),
        config_hash=config_hash,
        run_id=summary.run_id,
        dataset_version=summary.dataset_version,
        report_uri=summary.report_uri,
        per_intent={i: summary.per_intent[i] for i in wanted if i in summary.per_intent},
    )
