"""Observation model, price table, stored values, counter increments and the latency histogram."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from kanaria.domain import pricing
from kanaria.domain.observation import (
    AGG_SHARDS,
    LATENCY_BUCKETS,
    Observation,
    Statistics,
    bucket_bounds,
    check_clock,
    histogram_quantile,
    latency_bucket,
    prepare_write,
    recompute,
    resolve_cost,
    shard_of,
)
from kanaria.errors import ValidationError
from kanaria.handlers.models import parse_body
from tests.unit.observations.support import NOW, observation


def parsed(**changes) -> Observation:
    return parse_body(observation(1, **changes), Observation)


def test_prices_are_per_1k_tokens_and_versioned():
    haiku = pricing.price_for("anthropic.claude-3-haiku-20240307-v1:0")
    assert pricing.call_cost(haiku, 1000, 1000) == Decimal("0.00150")
    sonnet = pricing.price_for("us.anthropic.claude-3-5-sonnet-20241022-v2:0")  # inference profile
    assert pricing.call_cost(sonnet, 2000, 500) == Decimal("0.0135")
    arn = "arn:aws:bedrock:ap-northeast-1::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0"
    assert pricing.price_for(arn) == pricing.price_for("anthropic.claude-3-sonnet-20240229-v1:0")
    assert pricing.price_for("meta.llama3-8b-instruct-v1:0") is None
    assert pricing.PRICE_TABLE_VERSION


def test_cost_is_computed_reported_unpriced_or_absent():
    computed = resolve_cost(parsed(input_tokens=1000, output_tokens=200), "anthropic.claude-3-haiku-20240307-v1:0")
    assert (computed.source, computed.usd, computed.price_table_version) == (
        "computed",
        Decimal("0.000500000"),
        pricing.PRICE_TABLE_VERSION,
    )
    reported = resolve_cost(parsed(cost_usd=0.0123), "anthropic.claude-3-haiku-20240307-v1:0")
    assert (reported.source, reported.usd, reported.price_table_version) == ("reported", Decimal("0.012300000"), None)
    assert resolve_cost(parsed(), "unknown-model").source == "unpriced"
    no_tokens = observation(1)
    del no_tokens["input_tokens"]
    assert resolve_cost(parse_body(no_tokens, Observation), "anthropic.claude-3-haiku-20240307-v1:0").source == "absent"


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("quality_score", 1.5, "less than or equal to 1"),
        ("relevance_score", -0.1, "greater than or equal to 0"),
        ("latency_ms", -1, "greater than or equal to 0"),
        ("input_tokens", 1.5, "valid integer"),
        ("output_tokens", -3, "greater than or equal to 0"),
        ("csat", 5, "less than or equal to 4"),
        ("csat", 0, "greater than or equal to 1"),
        ("error", "yes", "valid boolean"),
        ("cart_add", 1, "valid boolean"),
        ("timestamp", "2026-01-01T00:00:00", "timezone"),
        ("observation_id", "", "pattern"),
        ("experiment_id", "Bad Id", "pattern"),
        ("quality_score", "0.5", "valid number"),
        ("surprise", 1, "Extra inputs"),
    ],
)
def test_bad_fields_are_named(field, value, reason):
    with pytest.raises(ValidationError) as caught:
        parse_body(observation(1, **{field: value}), Observation, "observations.7")
    assert caught.value.field == f"observations.7.{field}"
    assert reason in caught.value.reason


def test_missing_required_field_and_no_metric_are_named():
    body = observation(1)
    del body["unit"]
    with pytest.raises(ValidationError) as caught:
        parse_body(body, Observation)
    assert (caught.value.field, caught.value.reason) == ("unit", "required field is missing")
    bare = {k: body[k] for k in ("observation_id", "experiment_id", "variant_id", "timestamp")} | {"unit": "u1"}
    with pytest.raises(ValidationError) as caught:
        parse_body(bare, Observation)
    assert caught.value.field == "metrics" and "at least one metric" in caught.value.reason


def test_future_timestamp_is_refused():
    check_clock(parsed(timestamp=(NOW + timedelta(minutes=4)).isoformat()), NOW)
    with pytest.raises(ValidationError) as caught:
        check_clock(parsed(timestamp=(NOW + timedelta(minutes=6)).isoformat()), NOW)
    assert caught.value.field == "timestamp"


def test_write_counts_a_clean_observation_and_flags_the_rest():
    obs = parsed(latency_ms=1234.5678, quality_score=0.123456789, csat=3, error=True)
    cost = resolve_cost(obs, "anthropic.claude-3-sonnet-20240229-v1:0")
    write = prepare_write(obs, cost, None, NOW)
    day = obs.timestamp.strftime("%Y-%m-%d")
    assert write.counter_key == {
        "experiment_id": "exp-obs",
        "sk": f"AGG#A#chitchat#{day}#{shard_of(obs.observation_id):02d}",
    }
    assert write.raw["quality_score"] == Decimal("0.123457") and write.raw["latency_ms"] == Decimal("1234.568")
    assert write.raw["expires_at"] == int(NOW.timestamp()) + 90 * 24 * 3600
    assert write.raw["price_table_version"] == pricing.PRICE_TABLE_VERSION and "flag" not in write.raw
    inc = write.increments
    assert inc["obs"] == 1 and inc["qs_n"] == 1 and inc["qs_s"] == Decimal("0.123457")
    assert inc["qs_q"] == Decimal("0.123457") ** 2 and inc["er_k"] == 1 and inc["cs_s"] == 3
    assert inc[f"lh{latency_bucket(1234.568):03d}"] == 1
    flagged = prepare_write(obs, cost, "variant_mismatch", NOW)
    assert flagged.counter_key["sk"].startswith("MISMATCH#A#chitchat#")
    assert flagged.increments == {"obs": 1, "r_variant_mismatch": 1} and flagged.raw["flag"] == "variant_mismatch"
    assert prepare_write(obs, cost, "excluded", NOW).counter_key["sk"].startswith("EXCLUDED#")


def test_digest_tells_a_retry_from_a_reused_id():
    assert parsed().digest() == parsed().digest()
    assert parsed().digest() != parsed(quality_score=0.01).digest()


def test_shards_spread_evenly():
    counts = [0] * AGG_SHARDS
    for i in range(16_000):
        counts[shard_of(f"o-{i}")] += 1
    assert max(counts) < 1.15 * 1000 and min(counts) > 0.85 * 1000


def test_histogram_buckets_cover_the_range():
    assert latency_bucket(0) == 0 and latency_bucket(0.99) == 0 and latency_bucket(1.0) == 1
    for value in (1.0, 3.3, 250.0, 1234.5, 99_999.0, 3_600_000.0):
        low, high = bucket_bounds(latency_bucket(value))
        assert low <= value < high
    assert latency_bucket(1e12) == LATENCY_BUCKETS - 1


@pytest.mark.parametrize("sigma", [0.3, 0.8, 1.5])
def test_histogram_quantiles_within_a_few_percent(sigma):
    rng = np.random.default_rng(7)
    values = rng.lognormal(6.5, sigma, 20_000)
    histogram: dict[int, int] = {}
    for v in values:
        histogram[latency_bucket(v)] = histogram.get(latency_bucket(v), 0) + 1
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(values, q))
        assert abs(histogram_quantile(histogram, q) - exact) / exact < 0.02


def test_statistics_from_counters_equal_recomputation():
    rng = random.Random(3)
    observations = [parse_body(observation(i, rng), Observation) for i in range(300)]
    raws = [
        prepare_write(o, resolve_cost(o, "anthropic.claude-3-haiku-20240307-v1:0"), None, NOW) for o in observations
    ]
    by_items = Statistics()
    for write in raws:
        by_items.add_item(write.increments)
    direct = recompute(w.raw for w in raws)
    assert by_items == direct and by_items.observations == 300
    snap = by_items.to_snapshot(units=123)
    n = snap["quality_score"]["n"]
    assert snap["units"] == 123 and n == 300
    qs = [float(w.raw["quality_score"]) for w in raws]
    assert math.isclose(snap["quality_score"]["sum"], math.fsum(qs), rel_tol=1e-12)
    assert snap["error"]["n"] == 300 and snap["latency_ms"]["p99"] > snap["latency_ms"]["p50"] > 0
