"""Scheduled analysis of one running experiment: counter items -> snapshot -> analysis engine -> versioned result,
decision-change alerts, and a pause on sample-ratio mismatch.

No numpy here: the engine is injected (kanaria.analysis.analyze_snapshot in the Lambda).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Protocol

from kanaria.domain.analysis_result import AnalysisResult, StoredResult, coerce_stored
from kanaria.domain.assignment import configuration
from kanaria.domain.observation import (
    COUNT_ATTRIBUTE,
    KIND_COUNTED,
    KIND_EXCLUDED,
    KIND_EXPOSURE,
    KIND_MISMATCH,
    NO_INTENT,
    Statistics,
)
from kanaria.domain.profiles import FALLBACK_INTENT, IntentProfile, profile_for
from kanaria.domain.records import AuditEntry, ExperimentRecord, ExperimentRepository
from kanaria.errors import ConflictError
from kanaria.logic.experiments import get_experiment, stop_variant, transition

ANALYSIS_ACTOR = "kanaria-analysis"
STOP_REASON = "analysis: harmful (always-valid harm test), stopped while the other treatments continue"

Analyze = Callable[[dict[str, Any]], AnalysisResult]
Alert = Callable[[str, dict[str, Any]], None]  # (subject, message)


class ResultStore(Protocol):
    """Counter items in, versioned results out (DynamoAnalysisStore)."""

    def counters(self, experiment_id: str) -> list[dict[str, Any]]: ...
    def latest_result(self, experiment_id: str) -> StoredResult | None: ...
    def put_result(
        self,
        experiment_id: str,
        computed_at: str,
        decision: str | None,
        result: Mapping[str, Any],
        snapshot: Mapping[str, Any],
    ) -> bool: ...


def _kind(item: Mapping[str, Any]) -> str:
    return str(item.get("kind") or str(item["sk"]).split("#", 1)[0])


def config_hashes(record: ExperimentRecord, profiles: Mapping[str, IntentProfile]) -> dict[str, dict[str, str]]:
    """Hash of every variant's resolved configuration per targeted intent (what exactly was compared)."""
    experiment = record.experiment
    intents = [i for i in profiles if i != FALLBACK_INTENT] if "*" in experiment.intents else list(experiment.intents)
    return {
        variant.id: {
            intent: configuration(experiment, variant.id, profile_for(intent, profiles))[1] for intent in intents
        }
        for variant in experiment.variants
    }


def build_snapshot(
    record: ExperimentRecord, counters: Iterable[Mapping[str, Any]], profiles: Mapping[str, IntentProfile]
) -> dict[str, Any]:
    """The analysis engine's input: definition, per-variant and per-intent sufficient statistics, units, flags."""
    experiment = record.experiment
    variants = [v.id for v in experiment.variants]
    overall = {v: Statistics() for v in variants}
    by_intent: dict[str, dict[str, Statistics]] = defaultdict(lambda: {v: Statistics() for v in variants})
    units: dict[str, int] = defaultdict(int)
    intent_units: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    flagged: dict[str, dict[str, int]] = {"mismatched": defaultdict(int), "excluded": defaultdict(int)}
    for item in counters:
        kind, variant, intent = _kind(item), str(item.get("variant")), str(item.get("intent") or NO_INTENT)
        if variant not in overall:
            continue  # a counter of a variant the definition does not have (cannot happen through the API)
        if kind == KIND_COUNTED:
            overall[variant].add_item(item)
            by_intent[intent][variant].add_item(item)
        elif kind == KIND_EXPOSURE:
            units[variant] += int(item.get("units", 0))
            intent_units[intent][variant] += int(item.get("units", 0))
        elif kind == KIND_MISMATCH:
            flagged["mismatched"][variant] += int(item.get(COUNT_ATTRIBUTE, 0))
        elif kind == KIND_EXCLUDED:
            flagged["excluded"][variant] += int(item.get(COUNT_ATTRIBUTE, 0))
    decision = experiment.decision
    return {
        "experiment": {
            "id": experiment.id,
            "control": experiment.control,
            "weights": dict(record.weights or experiment.weights),
            "primary_metric": experiment.primary_metric,
            "alpha": decision.alpha,
            "power": decision.power,
            "mde": decision.mde,
            "method": decision.method,
            "planned_n_per_variant": decision.planned_n_per_variant,
            "guardrails": [g.model_dump(mode="json") for g in experiment.guardrails],
            "tier": experiment.tier,
            "config_hashes": config_hashes(record, profiles),
            "stopped_variants": dict(record.stopped_variants),
            "bandit": experiment.bandit,
        },
        "aggregates": {v: overall[v].to_snapshot(units.get(v, 0)) for v in variants},
        "intents": {
            # intents with exposures but no observations yet appear too (their units count towards SRM)
            intent: {v: by_intent[intent][v].to_snapshot(intent_units[intent].get(v, 0)) for v in variants}
            for intent in sorted(set(by_intent) | set(intent_units))
        },
        "flagged": {name: dict(counts) for name, counts in flagged.items()},
    }


def previous_looks(previous: StoredResult | Mapping[str, Any] | None) -> list[float]:
    """Information fractions of the earlier scheduled reads' looks (group-sequential history); none before the first."""
    stored = coerce_stored(previous)
    return stored.result.looks if stored is not None and stored.result is not None else []


def efficacy_shown(previous: StoredResult | Mapping[str, Any] | None) -> dict[str, float]:
    """Treatments whose win the earlier reads showed (their claim holds while the guardrails are proven)."""
    stored = coerce_stored(previous)
    if stored is None or stored.result is None:
        return {}
    shown = stored.result.evidence.get("efficacy_shown") or {}
    return {str(v): float(t) for v, t in shown.items() if t is not None}


def decision_of(result: AnalysisResult) -> str:
    """The engine's decision as one string."""
    return result.decision.value


def srm_mismatch(result: AnalysisResult) -> bool:
    """Whether the engine found a sample-ratio mismatch."""
    return result.srm.get("mismatch") is True


@dataclass(frozen=True)
class AnalysisOutcome:
    """What one analysis of one experiment did."""

    experiment_id: str
    computed_at: str
    decision: str | None
    previous_decision: str | None
    stored: bool
    decision_changed: bool
    srm_mismatch: bool
    paused: bool
    weights_updated: bool = False
    frozen: bool = False  # the stored decision is final (obf/fixed at the planned sample): nothing was tested
    final: bool = False  # this run made the final decision (stored and audited)
    stopped_variants: tuple[str, ...] = ()  # harmful arms stopped by this run


def analyse_experiment(
    record: ExperimentRecord,
    store: ResultStore,
    repo: ExperimentRepository,
    analyze: Analyze,
    alert: Alert,
    profiles: Mapping[str, IntentProfile],
    now: datetime,
) -> AnalysisOutcome:
    """Analyse one experiment from its counters, store the result, alert on a new decision, pause on SRM."""
    experiment_id = record.experiment.id
    previous = coerce_stored(store.latest_result(experiment_id))
    computed_at = now.isoformat(timespec="milliseconds")
    previous_decision = previous["decision"] if previous else None
    if previous is not None and previous.result is not None and previous.result.final:
        # the decision at the planned sample is final: read again, it would be tested again (issue #13)
        return AnalysisOutcome(
            experiment_id, computed_at, previous_decision, previous_decision, False, False, False, False, frozen=True
        )
    snapshot = build_snapshot(record, store.counters(experiment_id), profiles)
    snapshot["experiment"]["looks"] = previous_looks(previous)
    snapshot["experiment"]["efficacy_shown"] = efficacy_shown(previous)
    result = analyze(snapshot)
    if not isinstance(result, AnalysisResult):
        result = AnalysisResult.model_validate(result)
    decision = decision_of(result)
    body = result.to_json()
    stored = store.put_result(experiment_id, computed_at, decision, body, snapshot)
    changed = stored and decision != previous_decision
    mismatch = srm_mismatch(result)
    paused = False
    if mismatch:
        try:
            transition(repo, experiment_id, "pause", ANALYSIS_ACTOR, now)
            paused = True
        except ConflictError:
            paused = False  # paused or completed meanwhile by an operator: nothing left to stop
        alert(
            f"Kanaria: sample-ratio mismatch in {experiment_id}"[:100],
            {
                "kind": "srm_mismatch",
                "experiment_id": experiment_id,
                "paused": paused,
                "computed_at": computed_at,
                "srm": result.srm,
                "units": {v: a["units"] for v, a in snapshot["aggregates"].items()},
                "weights": snapshot["experiment"]["weights"],
            },
        )
    if changed:
        alert(
            f"Kanaria: {experiment_id} decision {previous_decision or 'none'} -> {decision}"[:100],
            {
                "kind": "decision_changed",
                "experiment_id": experiment_id,
                "previous_decision": previous_decision,
                "decision": decision,
                "computed_at": computed_at,
                "result": body,
            },
        )
    stopped: list[str] = []
    if stored and not mismatch:
        stopped = stop_harmful_variants(repo, record, result.stop_variants, now)
    final = stored and result.final and audit_final_decision(repo, experiment_id, result, computed_at, now)
    weights_updated = False
    if stored and not mismatch and record.experiment.bandit and "update_weights" in result.actions:
        weights_updated = update_bandit_weights(repo, record, result.weights or {}, now)
    return AnalysisOutcome(
        experiment_id,
        computed_at,
        decision,
        previous_decision,
        stored,
        changed,
        mismatch,
        paused,
        weights_updated,
        final=final,
        stopped_variants=tuple(stopped),
    )


def stop_harmful_variants(
    repo: ExperimentRepository, record: ExperimentRecord, variants: list[str], now: datetime
) -> list[str]:
    """Stop each harmful arm (its units go to control, as a rollback does) while the others continue; audited."""
    stopped = []
    for variant in variants:
        if variant in record.stopped_variants:
            continue
        try:
            stop_variant(repo, record.experiment.id, variant, STOP_REASON, ANALYSIS_ACTOR, now)
        except ConflictError:
            continue  # changed by an operator meanwhile: the next run sees the new state
        stopped.append(variant)
    return stopped


def audit_final_decision(
    repo: ExperimentRepository, experiment_id: str, result: AnalysisResult, computed_at: str, now: datetime
) -> bool:
    """Record in the experiment's audit trail that the analysis decision is final (later runs do not test again)."""
    try:
        current = get_experiment(repo, experiment_id)
        stamp = now.isoformat(timespec="milliseconds")
        updated = replace(current, version=current.version + 1, updated_at=stamp)
        detail = {
            "decision": result.decision.value,
            "winner": result.winner,
            "computed_at": computed_at,
            "information_fraction": result.evidence.get("information_fraction"),
            "reasons": result.evidence.get("reasons", []),
        }
        repo.replace(
            updated,
            current.version,
            AuditEntry(experiment_id, updated.version, stamp, ANALYSIS_ACTOR, "analysis_final", detail),
        )
    except ConflictError:
        return True  # the result is stored as final either way; an operator changed the record meanwhile
    return True


def update_bandit_weights(
    repo: ExperimentRepository, record: ExperimentRecord, weights: Mapping[str, float], now: datetime
) -> bool:
    """Write the engine's Thompson-sampling allocation back to the experiment (optimistic lock, audited)."""
    variants = set(record.experiment.weights)
    new = {v: float(weights[v]) for v in variants if v in weights}
    if set(new) != variants or abs(sum(new.values()) - 1.0) > 1e-6 or new == (record.weights or {}):
        return False
    stamp = now.isoformat(timespec="milliseconds")
    updated = replace(record, weights=new, version=record.version + 1, updated_at=stamp)
    audit = AuditEntry(
        record.experiment.id,
        updated.version,
        stamp,
        ANALYSIS_ACTOR,
        "update_weights",
        {"from": record.weights or record.experiment.weights, "to": new},
    )
    try:
        repo.replace(updated, record.version, audit)
    except ConflictError:
        return False  # changed by an operator meanwhile: the next run recomputes from the new state
    return True
