"""Snapshot building from counter items and one analysis run with in-memory fakes (no AWS, no engine)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kanaria.domain.analysis_result import AnalysisResult
from kanaria.domain.experiment import Status, parse_experiment
from kanaria.domain.observation import Observation, prepare_write, resolve_cost
from kanaria.domain.profiles import DEFAULT_PROFILES
from kanaria.domain.records import ExperimentRecord
from kanaria.errors import ConflictError
from kanaria.logic.analysis_run import analyse_experiment, build_snapshot, config_hashes
from tests.unit.observations.support import NOW, definition, observation


def record(**changes: Any) -> ExperimentRecord:
    return ExperimentRecord(parse_experiment(definition(**changes)), Status.RUNNING, 2, "t0", "t0", "op")


def counter_item(write) -> dict[str, Any]:
    return {**write.counter_key, **write.counter_attributes, **write.increments}


def items_for(observations: list[dict], flag=None) -> list[dict]:
    merged: dict[str, dict] = {}
    for body in observations:
        obs = Observation.model_validate(body)
        write = prepare_write(obs, resolve_cost(obs, None), flag, NOW)
        item = merged.setdefault(write.counter_key["sk"], {**write.counter_key, **write.counter_attributes})
        for name, value in write.increments.items():
            item[name] = item.get(name, 0) + value
    return list(merged.values())


def exposure(variant: str, intent: str, units: int, shard: int = 0) -> dict[str, Any]:
    return {
        "experiment_id": "exp-obs",
        "sk": f"EXPOSURE#{variant}#{intent}#2026-01-01#{shard:02d}",
        "variant": variant,
        "intent": intent,
        "day": "2026-01-01",
        "exposures": units * 3,
        "units": units,
    }


def test_snapshot_follows_the_contract():
    rec = record()
    obs = [observation(i, variant_id="AB"[i % 2], intent=["chitchat", "recommendation"][i % 3 == 0]) for i in range(60)]
    items = items_for(obs) + items_for([observation(99, variant_id="B")], flag="variant_mismatch")
    items += items_for([observation(98, variant_id="B")], flag="excluded")
    items += [
        exposure("A", "chitchat", 20),
        exposure("A", "chitchat", 5, shard=3),
        exposure("B", "chitchat", 24),
        exposure("B", "order_status", 1),
        {"experiment_id": "exp-obs", "sk": "BANDIT#x", "variant": "A"},
    ]
    snap = build_snapshot(rec, items, DEFAULT_PROFILES)
    exp = snap["experiment"]
    assert exp["id"] == "exp-obs" and exp["control"] == "A" and exp["weights"] == {"A": 0.5, "B": 0.5}
    assert (exp["primary_metric"], exp["alpha"], exp["power"], exp["mde"], exp["method"]) == (
        "quality_score",
        0.05,
        0.8,
        0.02,
        "obf",
    )
    assert exp["guardrails"] == [{"metric": "latency_p99_ms", "max_degradation": 0.1, "relative": None}]
    assert exp["tier"] == "standard" and exp["planned_n_per_variant"] is None
    assert set(exp["config_hashes"]) == {"A", "B"} and set(exp["config_hashes"]["A"]) == {"chitchat", "recommendation"}
    assert exp["config_hashes"]["A"]["chitchat"] != exp["config_hashes"]["B"]["chitchat"]
    a, b = snap["aggregates"]["A"], snap["aggregates"]["B"]
    assert (a["units"], b["units"]) == (25, 25) and a["observations"] == b["observations"] == 30
    assert a["quality_score"]["n"] == 30 and set(a["error"]) == {"n", "successes"}
    assert set(a["latency_ms"]) == {"n", "sum", "sum_sq", "m2", "p50", "p95", "p99", "histogram"}
    assert a["latency_ms"]["p99"] > 0 and sum(a["latency_ms"]["histogram"].values()) == a["latency_ms"]["n"]
    assert a["cart_add"] == {"n": 0, "successes": 0}
    assert abs(a["quality_score"]["sum"] - sum(o["quality_score"] for o in obs[0::2])) < 1e-9
    assert set(snap["intents"]) == {"chitchat", "recommendation", "order_status"}
    assert (
        snap["intents"]["order_status"]["B"]["units"] == 1 and snap["intents"]["order_status"]["B"]["observations"] == 0
    )
    assert sum(snap["intents"][i]["A"]["observations"] for i in snap["intents"]) == 30
    assert snap["flagged"] == {"mismatched": {"B": 1}, "excluded": {"B": 1}}


def test_star_intents_hash_every_profile():
    hashes = config_hashes(record(intents=["*"]), DEFAULT_PROFILES)
    assert set(hashes["A"]) == set(DEFAULT_PROFILES) - {"_fallback"}


def result(decision: str, **fields: Any) -> AnalysisResult:
    return AnalysisResult(experiment_id="exp-obs", decision=decision, **fields)


class FakeStore:
    def __init__(self, items):
        self.items, self.results = items, []

    def counters(self, experiment_id):
        return self.items

    def latest_result(self, experiment_id):
        return self.results[-1] if self.results else None

    def put_result(self, experiment_id, computed_at, decision, result, snapshot):
        self.results.append({"decision": decision, "computed_at": computed_at, "result": result})
        return True


class FakeRepo:
    def __init__(self, rec, conflict=False):
        self.rec, self.conflict, self.replaced = rec, conflict, []

    def get(self, experiment_id):
        return self.rec

    def replace(self, record, expected_version, audit):
        if self.conflict:
            raise ConflictError("changed", field="version")
        self.replaced.append((record, audit))
        self.rec = record


def test_alerts_only_when_the_decision_changes_and_pauses_on_srm():
    rec, alerts = record(), []
    store, repo = FakeStore([]), FakeRepo(record())
    decisions = iter(["CONTINUE", "CONTINUE", "PROMOTE"])

    def engine(snapshot):
        return result(next(decisions), srm={"mismatch": False})

    runs = [
        analyse_experiment(
            rec, store, repo, engine, lambda s, m: alerts.append(m), DEFAULT_PROFILES, NOW + timedelta(minutes=5 * i)
        )
        for i in range(3)
    ]
    assert [r.decision_changed for r in runs] == [True, False, True]
    assert [a["decision"] for a in alerts] == ["CONTINUE", "PROMOTE"] and alerts[1]["previous_decision"] == "CONTINUE"
    srm = analyse_experiment(
        rec,
        store,
        repo,
        lambda s: result("NO_DECISION", srm={"mismatch": True, "p_value": 1e-9}, actions=["pause"]),
        lambda s, m: alerts.append(m),
        DEFAULT_PROFILES,
        NOW + timedelta(minutes=20),
    )
    assert srm.srm_mismatch and srm.paused
    assert repo.rec.status is Status.PAUSED and repo.replaced[-1][1].actor == "kanaria-analysis"
    assert [a["kind"] for a in alerts[-2:]] == ["srm_mismatch", "decision_changed"]


def test_srm_pause_racing_an_operator_still_alerts():
    alerts = []
    outcome = analyse_experiment(
        record(),
        FakeStore([]),
        FakeRepo(record(), conflict=True),
        lambda s: result("NO_DECISION", srm={"mismatch": True}),
        lambda s, m: alerts.append(m),
        DEFAULT_PROFILES,
        NOW,
    )
    assert outcome.srm_mismatch and not outcome.paused and alerts[0]["paused"] is False


def test_bandit_weights_are_written_back():
    rec = record(bandit=True, primary_metric="task_completed", decision={"mde": 0.02, "method": "always_valid"})
    repo = FakeRepo(rec)
    outcome = analyse_experiment(
        rec,
        FakeStore([]),
        repo,
        lambda s: result("CONTINUE", srm={"mismatch": None}, actions=["update_weights"], weights={"A": 0.3, "B": 0.7}),
        lambda s, m: None,
        DEFAULT_PROFILES,
        NOW,
    )
    assert outcome.weights_updated and repo.rec.weights == {"A": 0.3, "B": 0.7}
    assert repo.replaced[0][1].action == "update_weights"


def test_a_final_decision_is_stored_audited_and_never_tested_again():
    rec, store, repo, alerts = record(), FakeStore([]), FakeRepo(record()), []
    calls = []

    def engine(snapshot):
        calls.append(snapshot["experiment"]["looks"])
        return result("PROMOTE", winner="B", final=len(calls) == 2, evidence={"information_fraction": 1.0})

    outcomes = [
        analyse_experiment(
            rec, store, repo, engine, lambda s, m: alerts.append(m), DEFAULT_PROFILES, NOW + timedelta(minutes=5 * i)
        )
        for i in range(4)
    ]
    assert len(calls) == 2  # the third and fourth reads do not run the engine
    assert [o.final for o in outcomes] == [False, True, False, False]
    assert [o.frozen for o in outcomes] == [False, False, True, True]
    assert [o.stored for o in outcomes] == [True, True, False, False] and len(store.results) == 2
    assert outcomes[3].decision == "PROMOTE" and not outcomes[3].decision_changed
    audit = [a for _, a in repo.replaced if a.action == "analysis_final"]
    assert len(audit) == 1 and audit[0].actor == "kanaria-analysis" and audit[0].detail["decision"] == "PROMOTE"


def test_a_harmful_arm_is_stopped_while_the_others_continue():
    rec = record(variants=[{"id": "A", "weight": 0.34}, {"id": "B", "weight": 0.33}, {"id": "C", "weight": 0.33}])
    repo = FakeRepo(rec)
    outcome = analyse_experiment(
        rec,
        FakeStore([]),
        repo,
        lambda s: result("CONTINUE", stop_variants=["C"], actions=["stop_variant"], srm={"mismatch": False}),
        lambda s, m: None,
        DEFAULT_PROFILES,
        NOW,
    )
    assert outcome.stopped_variants == ("C",) and "C" in repo.rec.stopped_variants
    assert repo.replaced[0][1].action == "stop_variant" and repo.replaced[0][1].detail["variant"] == "C"
    # on a sample-ratio mismatch nothing is acted on
    repo2 = FakeRepo(rec)
    mismatch = analyse_experiment(
        rec,
        FakeStore([]),
        repo2,
        lambda s: result("NO_DECISION", stop_variants=["C"], actions=["pause"], srm={"mismatch": True}),
        lambda s, m: None,
        DEFAULT_PROFILES,
        NOW,
    )
    assert mismatch.stopped_variants == () and "C" not in repo2.rec.stopped_variants
