"""Recording observations against moto: exactly once, atomic raw + counter, flags, item-level batch results."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria.dal.experiment_store import DynamoAssignmentStore
from kanaria.dal.observations import DynamoObservationStore
from kanaria.domain.assignment import pick_variant
from kanaria.domain.observation import AGG_SHARDS, COUNT_ATTRIBUTE, Observation, Statistics, recompute, shard_of
from kanaria.domain.records import StickyRecord
from kanaria.handlers.models import parse_body
from kanaria.logic.observations import record_observation
from tests.unit.observations.support import (
    CANARY_CALLER,
    NOW,
    PREFIX,
    call,
    fresh_handler,
    observation,
    running_experiment,
    seeded_moto,
)

WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@pytest.fixture
def api(monkeypatch):
    """Tables, profiles, a running experiment and a freshly imported handler; counts DynamoDB calls."""
    with mock_aws():
        tables = seeded_moto(monkeypatch)
        record = running_experiment()
        calls: list[str] = []
        boto3.setup_default_session()  # handler clients are created from it, with this hook
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
        module = fresh_handler("kanaria.handlers.observations")
        yield tables, module, record, calls
        boto3.DEFAULT_SESSION = None


def matching(i: int, record, rng: random.Random | None = None, **changes):
    """An observation whose variant is the unit's deterministic assignment (counted without a sticky record)."""
    body = observation(i, rng, **changes)
    body["variant_id"] = pick_variant(record.experiment, body["unit"], record.weights)
    return body


def counters(tables, kind: str = "AGG") -> list[dict]:
    items = tables["aggregates"].scan()["Items"]
    return [i for i in items if i["sk"].startswith(f"{kind}#")]


def test_duplicate_is_acknowledged_and_counted_once(api):
    tables, module, record, calls = api
    body = matching(1, record)
    status, first = call(module.handler, "/observations", body)
    assert status == 201 and first["duplicate"] is False and first["counted"] is True
    assert first["cost_source"] == "computed" and first["price_table_version"]
    for _ in range(3):
        status, again = call(module.handler, "/observations", body)
        assert status == 200 and again["duplicate"] is True and again["cost_usd"] == first["cost_usd"]
    [agg] = counters(tables)
    assert agg["obs"] == 1 and agg["qs_n"] == 1 and agg["qs_s"] == Decimal(str(body["quality_score"]))
    assert tables["observations"].scan()["Count"] == 1
    raw = tables["observations"].get_item(Key={"observation_id": body["observation_id"]})["Item"]
    assert raw["expires_at"] >= int(NOW.timestamp()) + 90 * 24 * 3600 - 5 and raw["aggregate_sk"] == agg["sk"]


def test_reused_id_with_different_content_is_a_conflict(api):
    tables, module, record, _ = api
    body = matching(1, record)
    call(module.handler, "/observations", body)
    status, error = call(module.handler, "/observations", {**body, "quality_score": 0.01})
    assert status == 409 and error["error"]["field"] == "observation_id"
    assert counters(tables)[0]["obs"] == 1


def test_at_most_two_writes_per_new_observation(api):
    tables, module, record, calls = api
    call(module.handler, "/observations", matching(1, record))  # warm the experiment cache
    calls.clear()
    status, _ = call(module.handler, "/observations", matching(2, record))
    assert status == 201
    writes = [c for c in calls if c in WRITE_OPERATIONS]
    assert writes == ["TransactWriteItems"], calls  # one request: conditional Put + counter ADD
    calls.clear()
    status, _ = call(
        module.handler, "/observations/batch", {"observations": [matching(i, record) for i in range(3, 13)]}
    )
    assert Counter(c for c in calls if c in WRITE_OPERATIONS) == {"TransactWriteItems": 10}
    assert sum(i["obs"] for i in counters(tables)) == 12


def test_batch_reports_bad_items_and_keeps_the_good_ones(api):
    tables, module, record, _ = api
    good = [matching(i, record) for i in range(5)]
    bad = [
        {**matching(10, record), "quality_score": 1.2},
        {**matching(11, record), "csat": 9},
        "not an object",
        {**matching(12, record), "variant_id": "Z"},
        {**matching(13, record), "timestamp": (NOW + timedelta(hours=1)).isoformat()},
        {k: v for k, v in matching(14, record).items() if k != "unit"},
        {**matching(15, record), "experiment_id": "no-such-exp"},
    ]
    batch = [
        good[0],
        bad[0],
        good[1],
        bad[1],
        bad[2],
        good[2],
        bad[3],
        bad[4],
        good[3],
        bad[5],
        good[4],
        bad[6],
        good[0],
    ]
    status, body = call(module.handler, "/observations/batch", {"observations": batch})
    assert status == 200 and (body["recorded"], body["duplicates"], body["rejected"]) == (5, 1, 7)
    errors = {r["index"]: r["error"] for r in body["results"] if not r["ok"]}
    assert {i: (e["field"], e["code"]) for i, e in errors.items()} == {
        1: ("observations.1.quality_score", "validation_error"),
        3: ("observations.3.csat", "validation_error"),
        4: ("observations.4", "validation_error"),
        6: ("variant_id", "validation_error"),
        7: ("timestamp", "validation_error"),
        9: ("observations.9.unit", "validation_error"),
        11: ("experiment_id", "not_found"),
    }
    assert body["results"][12]["duplicate"] is True
    stored = {i["observation_id"] for i in tables["observations"].scan()["Items"]}
    assert stored == {g["observation_id"] for g in good}  # nothing of the bad items written
    assert sum(i["obs"] for i in counters(tables)) == 5 and not counters(tables, "MISMATCH")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"observations": []}, "observations"),
        ({"observations": [{}] * 101}, "observations"),
        ({"items": []}, "observations"),
    ],
)
def test_batch_envelope_errors(api, body, field):
    _, module, _, _ = api
    status, error = call(module.handler, "/observations/batch", body)
    assert status == 400 and error["error"]["field"] == field


def test_single_errors_name_the_field(api):
    tables, module, record, _ = api
    status, error = call(module.handler, "/observations", None, raw_body="{not json")
    assert status == 400 and error["error"]["field"] == "body"
    status, error = call(module.handler, "/observations", {**matching(1, record), "latency_ms": -5})
    assert status == 400 and error["error"]["field"] == "latency_ms"
    status, error = call(module.handler, "/observations", {**matching(1, record), "experiment_id": "missing"})
    assert status == 404 and error["error"]["field"] == "experiment_id"
    assert tables["observations"].scan()["Count"] == 0 and tables["aggregates"].scan()["Count"] == 0


def test_mismatched_and_excluded_units_are_flagged_not_counted(api):
    tables, module, record, _ = api
    stickies = DynamoAssignmentStore(names.table_name(PREFIX, "assignments"), names.table_name(PREFIX, "aggregates"))
    expires = int(NOW.timestamp()) + 3600
    stickies.put_if_absent(StickyRecord("exp-obs", "u-sticky-b", "B", NOW.isoformat(), expires))
    rolled_back = stickies.put_if_absent(StickyRecord("exp-obs", "u-rolled", "B", NOW.isoformat(), expires))
    stickies.move_to_control(rolled_back, "A", "canary_rollback")
    cases = {
        "sticky-says-B": (observation(1, unit="u-sticky-b", variant_id="A"), "variant_mismatch"),
        "sticky-agrees": (observation(2, unit="u-sticky-b", variant_id="B"), None),
        "rolled-back": (observation(3, unit="u-rolled", variant_id="B"), "excluded"),
        "untargeted-intent": (matching(4, record, intent="order_status"), "not_in_experiment"),
        "deterministic-match": (matching(5, record), None),
    }
    wrong = matching(6, record)
    wrong["variant_id"] = "B" if wrong["variant_id"] == "A" else "A"
    cases["deterministic-mismatch"] = (wrong, "variant_mismatch")
    status, body = call(module.handler, "/observations/batch", {"observations": [b for b, _ in cases.values()]})
    assert status == 200
    assert [r["flag"] for r in body["results"]] == [flag for _, flag in cases.values()]
    raws = {i["observation_id"]: i for i in tables["observations"].scan()["Items"]}
    for sent, flag in cases.values():
        assert raws[sent["observation_id"]].get("flag") == flag
    assert sum(i["obs"] for i in counters(tables)) == 2
    assert sum(i["obs"] for i in counters(tables, "MISMATCH")) == 3
    assert sum(i["obs"] for i in counters(tables, "EXCLUDED")) == 1
    assert sum(i.get("r_variant_mismatch", 0) for i in counters(tables, "MISMATCH")) == 2


def test_per_variant_metrics_are_emitted_without_service_dimension(api, capsys):
    _, module, record, _ = api
    capsys.readouterr()
    call(module.handler, "/observations/batch", {"observations": [matching(i, record, error=i == 0) for i in range(6)]})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    emf = [line for line in lines if "Observations" in line]
    assert emf and all(
        set(e["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == {"experiment_id", "variant"} for e in emf
    )
    metrics = {m["Name"] for e in emf for m in e["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"QualityScore", "LatencyMs", "Errors", "Hallucinations", "CostUsd", "Observations"} <= metrics
    assert sum(len(e["Observations"]) if isinstance(e["Observations"], list) else 1 for e in emf) == 6


def _store_and_record():
    store = DynamoObservationStore(names.table_name(PREFIX, "observations"), names.table_name(PREFIX, "aggregates"))
    stickies = DynamoAssignmentStore(names.table_name(PREFIX, "assignments"), names.table_name(PREFIX, "aggregates"))
    return store, stickies


def test_concurrent_writers_on_one_counter_item_lose_nothing(api):
    tables, _, record, _ = api
    store, stickies = _store_and_record()
    ids, i = [], 0
    while len(ids) < 40:  # every observation on the same aggregate item (same shard, variant, intent, day)
        if shard_of(f"c-{i}") == 0:
            ids.append(f"c-{i}")
        i += 1
    bodies = []
    for n, oid in enumerate(ids):
        body = matching(n, record, observation_id=oid, timestamp=NOW.isoformat())
        body["variant_id"], body["unit"] = "A", _unit_for(record, "A", n)
        bodies.append(parse_body(body, Observation))
    errors: list[BaseException] = []

    def worker(chunk):
        try:
            for obs in chunk:
                record_observation(record, obs, stickies, store, NOW, lambda *_: None)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # 8 threads; every observation is sent twice (by different threads) to race duplicates too
    chunks = [bodies[k::4] for k in range(4)] * 2
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    [agg] = counters(tables)
    assert agg["obs"] == 40 and agg["qs_n"] == 40
    assert agg["qs_s"] == sum(Decimal(str(b.quality_score)) for b in bodies)
    assert tables["observations"].scan()["Count"] == 40


def _unit_for(record, variant: str, n: int) -> str:
    k = 0
    while True:
        unit = f"cu-{n}-{k}"
        if pick_variant(record.experiment, unit, record.weights) == variant:
            return unit
        k += 1


def test_counters_equal_a_recomputation_from_raw_observations(api):
    tables, module, record, _ = api
    rng = random.Random(42)
    sent = [matching(i, record, rng, intent=rng.choice(["chitchat", "recommendation"])) for i in range(160)]
    optional = ["relevance_score", "latency_ms", "input_tokens", "error", "hallucination", "task_completed", "csat"]
    for body in sent:  # random subsets of metrics (each counter attribute gets its own n)
        for metric in optional:
            if rng.random() < 0.5:
                body.pop(metric, None)
        if rng.random() < 0.2:
            body["cost_usd"] = round(rng.random() / 100, 6)
        if rng.random() < 0.3:
            body.update(cart_add=rng.random() < 0.1, escalated=rng.random() < 0.05, safety_filtered=False)
    resent = rng.sample(sent, 16)
    for start in range(0, 160, 100):
        status, body = call(module.handler, "/observations/batch", {"observations": sent[start : start + 100]})
        assert status == 200 and body["recorded"] == len(sent[start : start + 100])
    status, body = call(module.handler, "/observations/batch", {"observations": resent})
    assert body["duplicates"] == 16 and body["recorded"] == 0
    by_key: dict[tuple, Statistics] = defaultdict(Statistics)
    for item in counters(tables):
        by_key[(item["variant"], item["intent"], item["day"])].add_item(item)
    raws: dict[tuple, list] = defaultdict(list)
    for raw in tables["observations"].scan()["Items"]:
        raws[(raw["variant_id"], raw["intent"], raw["day"])].append(raw)
    assert set(by_key) == set(raws)
    for key, stats in by_key.items():
        assert stats == recompute(raws[key]), key
    assert sum(s.observations for s in by_key.values()) == 160
    assert sum(sum(s.histogram.values()) for s in by_key.values()) == sum("latency_ms" in b for b in sent)
    items_per_key = Counter((i["variant"], i["intent"], i["day"]) for i in counters(tables))
    assert max(items_per_key.values()) <= AGG_SHARDS


def _target_counts(lines: list[dict]) -> dict[str, Counter]:
    """Per target: how many values of each metric the {target} EMF sets carried (over every line)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for entry in lines:
        if entry["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] != ["target"]:
            continue
        for metric in entry["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = entry[metric["Name"]]
            counts[entry["target"]][metric["Name"]] += len(value) if isinstance(value, list) else 1
            if metric["Name"] == "Throttles":
                counts[entry["target"]]["throttled"] += sum(value) if isinstance(value, list) else value
    return counts


def _emf(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_canary_rollout_targets_get_their_own_metric_set_for_the_alarms(api, capsys):
    # Given observations tagged with the deployment that answered (canary or primary) during a rollout
    _, module, record, _ = api
    capsys.readouterr()
    batch = [matching(i, record, target="canary" if i < 4 else "primary", throttled=i == 0) for i in range(7)]
    call(module.handler, "/observations/batch", {"observations": batch}, caller=CANARY_CALLER)
    # Then the EMF sets with exactly the {target} dimension the canary alarms match count each side
    counts = _target_counts(_emf(capsys))
    assert set(counts) == {"canary", "primary"}
    assert counts["canary"]["Observations"] == 4 and counts["primary"]["Observations"] == 3
    assert counts["canary"]["Throttles"] == 4 and counts["canary"]["throttled"] == 1
    assert counts["canary"]["LatencyMs"] and counts["primary"]["QualityScore"]


def test_flagged_canary_observations_still_count_for_the_canary(api, capsys):
    """A variant mismatch concerns the experiment's statistics; the canary served the response all the same (the
    canary deployment says so itself)."""
    _, module, record, _ = api
    capsys.readouterr()
    batch = []
    for i in range(20):
        body = matching(i, record, target="canary", error=True)
        if i % 2:
            body["variant_id"] = "B" if body["variant_id"] == "A" else "A"  # flagged variant_mismatch
        batch.append(body)
    status, body = call(module.handler, "/observations/batch", {"observations": batch}, caller=CANARY_CALLER)
    assert status == 200 and sum(1 for r in body["results"] if r["flag"]) == 10
    counts = _target_counts(_emf(capsys))
    assert counts["canary"]["Observations"] == 20 and counts["canary"]["Errors"] == 20


def test_metrics_of_written_items_survive_a_later_item_failing(api, capsys, monkeypatch):
    """Item 4 of 10 is throttled by DynamoDB (the invocation fails, the client retries the batch): the three written before
    it have their metrics out already, and the retry (duplicates for them) emits each item exactly once."""
    from botocore.exceptions import ClientError

    _, module, record, _ = api
    capsys.readouterr()
    batch = [matching(i, record, target="canary", error=True) for i in range(10)]
    real = module._store().record
    failed: list[str] = []

    def throttled_once(write):
        if write.raw["observation_id"] == batch[3]["observation_id"] and not failed:
            failed.append("once")
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "TransactWriteItems",
            )
        return real(write)

    monkeypatch.setattr(module._store(), "record", throttled_once)
    with pytest.raises(ClientError):  # the invocation fails: API Gateway answers 500 and the client retries
        call(module.handler, "/observations/batch", {"observations": batch}, caller=CANARY_CALLER)
    assert _target_counts(_emf(capsys))["canary"]["Errors"] == 3
    status, body = call(module.handler, "/observations/batch", {"observations": batch}, caller=CANARY_CALLER)
    assert status == 200 and body["duplicates"] == 3 and body["recorded"] == 7
    assert _target_counts(_emf(capsys))["canary"]["Errors"] == 7  # 3 + 7: each of the 10 errors exactly once


def test_canary_metrics_are_emitted_per_target_and_judged_intent(api, capsys, monkeypatch):
    # Given canary observations on a judged intent and on an intent outside the judged set,
    # then {target} gets every one, {target, intent} only the judged intent's, with throttles and safety stops.
    _, module, record, _ = api
    monkeypatch.setenv(names.ENV_JUDGED_INTENTS, "recommendation,order_status")
    module.environment.cache_clear()
    capsys.readouterr()
    bodies = [
        matching(
            i,
            record,
            target="canary",
            intent="recommendation" if i < 3 else "chitchat",
            throttled=i == 1,
            safety_filtered=i == 2,
        )
        for i in range(5)
    ]
    status, _ = call(module.handler, "/observations/batch", {"observations": bodies}, caller=CANARY_CALLER)
    assert status == 200
    lines = _emf(capsys)  # one EMF line per set and item (flushed right after each write)
    by_dims: dict[tuple, list[dict]] = defaultdict(list)
    for e in lines:
        by_dims[tuple(sorted(e["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]))].append(e)
    per_target, per_intent = by_dims[("target",)], by_dims[("intent", "target")]
    assert {(e["intent"], e["target"]) for e in per_intent} == {("recommendation", "canary")}

    def values(entries, name):
        out = []
        for e in entries:
            value = e.get(name, [])
            out += value if isinstance(value, list) else [value]
        return out

    assert len(values(per_target, "Observations")) == 5 and len(values(per_intent, "Observations")) == 3
    assert sorted(values(per_intent, "Throttles")) == [0, 0, 1] and sorted(values(per_intent, "SafetyStops")) == [
        0,
        0,
        1,
    ]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"latency_ms": 1e300}, "latency_ms"),  # would overflow the sums of squares: bounded at the door
        ({"quality_score": 1e300}, "quality_score"),
        ({"input_tokens": True}, "input_tokens"),  # strict: a boolean is not a count
        ({"output_tokens": 12.0}, "output_tokens"),
        ({"error": 1}, "error"),  # strict: a count is not a flag
        ({"cost_usd": -0.01}, "cost_usd"),  # never negative
        ({"quality_score": -0.1}, "quality_score"),
        ({"variant_id": None}, "variant_id"),
    ],
)
def test_issue_13_input_gaps_are_4xx_naming_the_field_and_write_nothing(api, change, field):
    tables, module, record, _ = api
    status, error = call(module.handler, "/observations", {**matching(1, record), **change})
    assert status == 400 and error["error"]["field"] == field
    assert tables["observations"].scan()["Count"] == 0 and tables["aggregates"].scan()["Count"] == 0


def test_a_small_variance_around_a_large_mean_survives_the_counters(api):
    # latencies 3,000,000.000 … 3,000,000.039 ms: the Decimal counters keep sum_sq exactly, build_snapshot's m2
    # keeps the variance (in floats, sum_sq − sum²/n of these is off by more than the variance itself)
    from kanaria.domain.profiles import DEFAULT_PROFILES
    from kanaria.logic.analysis_run import build_snapshot

    tables, module, record, _ = api
    values = [3_000_000 + i / 1000 for i in range(40)]
    bodies = [{**matching(i, record), "latency_ms": value} for i, value in enumerate(values)]
    status, result = call(module.handler, "/observations/batch", {"observations": bodies}, caller=CANARY_CALLER)
    assert status == 200 and result["recorded"] == 40
    snapshot = build_snapshot(record, counters(tables), DEFAULT_PROFILES)
    exact = {}
    for variant in "AB":
        xs = [Decimal(str(b["latency_ms"])) for b in bodies if b["variant_id"] == variant]
        mean = sum(xs) / len(xs)
        exact[variant] = float(sum((x - mean) ** 2 for x in xs))
        latency = snapshot["aggregates"][variant]["latency_ms"]
        assert latency["m2"] == pytest.approx(exact[variant], rel=1e-12)
        naive = latency["sum_sq"] - latency["sum"] ** 2 / latency["n"]
        assert abs(naive - exact[variant]) > 0.1 * exact[variant]  # what floats alone would give


def test_target_canary_from_a_caller_that_is_not_the_canary_deployment_is_not_canary_evidence(api, capsys):
    # Given someone allowed to call POST /observations (not the canary deployment) reporting made-up canary units
    tables, module, record, _ = api
    capsys.readouterr()
    forged = [matching(i, record, target="canary", error=False, latency_ms=100.0) for i in range(12)]
    genuine = [matching(100 + i, record, target="canary", error=True) for i in range(3)]
    # When both report
    status, forged_answer = call(module.handler, "/observations/batch", {"observations": forged})
    status_genuine, genuine_answer = call(
        module.handler, "/observations/batch", {"observations": genuine}, caller=CANARY_CALLER
    )
    lines = _emf(capsys)
    # Then only the canary deployment's own reports are in the canary series the judge and alarms read
    assert status == status_genuine == 200
    counts = _target_counts(lines)
    assert counts["canary"]["Observations"] == 3 and counts["canary"]["Errors"] == 3
    # And the forged ones are still recorded for the experiment, but visibly rejected as canary evidence
    assert forged_answer["recorded"] == 12 and forged_answer["canary_rejected"] == 12
    assert {r["canary"] for r in forged_answer["results"]} == {"rejected"}
    assert genuine_answer["canary_rejected"] == 0 and {r["canary"] for r in genuine_answer["results"]} == {"counted"}
    rejected = [e for e in lines if names.METRIC_REJECTED_CANARY_OBSERVATIONS in e]
    assert (
        sum(
            len(e[names.METRIC_REJECTED_CANARY_OBSERVATIONS])
            if isinstance(e[names.METRIC_REJECTED_CANARY_OBSERVATIONS], list)
            else 1
            for e in rejected
        )
        == 12
    )
    assert all(
        set(e["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == {"experiment_id", "variant"} for e in rejected
    )
    assert sum(int(c.get(COUNT_ATTRIBUTE, 0)) for c in counters(tables)) == 15  # the experiment statistics: all


def test_a_single_forged_canary_observation_is_answered_as_rejected(api, capsys):
    _, module, record, _ = api
    capsys.readouterr()
    status, body = call(module.handler, "/observations", matching(7, record, target="canary"))
    assert status == 201 and body["canary"] == "rejected" and body["counted"] is True
    assert "canary" not in _target_counts(_emf(capsys))
    status, body = call(module.handler, "/observations", matching(8, record, target="primary"))
    assert status == 201 and "canary" not in body
