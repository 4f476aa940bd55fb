"""Pure helpers of the Analysis section: simulated counters equal the domain's own merge, replayed reads."""

from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest

from kanaria.dal.observations import DynamoAnalysisStore
from kanaria.domain.observation import AGG_SHARDS, Statistics, latency_bucket
from kanaria_tools.bench.analysis_data import (
    INTENTS,
    VARIANTS,
    Counters,
    latency_buckets,
    raw_items,
    read_raw_observations,
    replay_resource,
    response_pages,
    simulate,
)

DAYS = ["2026-11-01", "2026-11-02"]


def test_vectorised_latency_buckets_equal_the_domain_function():
    values = np.concatenate(
        [[0.0, 0.5, 0.999, 1.0, 1.04, 1.0816, 3_600_000.0], np.random.default_rng(1).lognormal(6.9, 1.5, 2000)]
    )
    assert latency_buckets(values).tolist() == [latency_bucket(float(v)) for v in values]


@pytest.fixture(scope="module")
def sample():
    columns = simulate(np.random.default_rng(7), 400, len(DAYS))
    counters = Counters(len(DAYS))
    counters.add(columns)
    raws = raw_items(columns, 0, DAYS, datetime.now(timezone.utc), "exp-bench")
    return columns, counters.items("exp-bench", DAYS), raws


def test_counter_items_equal_the_domain_merge_of_the_raw_observations(sample):
    _, items, raws = sample
    assert len(items) <= len(VARIANTS) * len(INTENTS) * len(DAYS) * AGG_SHARDS
    from_counters, from_raw = defaultdict(Statistics), defaultdict(Statistics)
    for item in items:
        from_counters[(item["variant"], item["intent"], item["day"])].add_item(item)
    for raw in raws:
        values = {
            k: raw[k]
            for k in (
                "quality_score",
                "relevance_score",
                "latency_ms",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "csat",
                "error",
                "hallucination",
                "safety_filtered",
                "task_completed",
            )
            if k in raw
        }
        from_raw[(raw["variant_id"], raw["intent"], raw["day"])].add_values(values)
    assert from_counters.keys() == from_raw.keys()
    for key, expected in from_raw.items():
        got = from_counters[key]
        assert got.observations == expected.observations and got.histogram == expected.histogram
        assert got.binaries == expected.binaries
        for metric, (n, total, squares) in expected.means.items():
            n2, total2, squares2 = got.means[metric]
            assert n2 == n
            assert float(total2) == pytest.approx(float(total), rel=1e-12, abs=1e-9)
            assert float(squares2) == pytest.approx(float(squares), rel=1e-12, abs=1e-9)


def test_replayed_pages_read_back_through_the_real_store(sample):
    _, items, raws = sample
    ordered = sorted(items, key=lambda i: i["sk"])
    pages, sizes = response_pages(ordered, ("experiment_id", "sk"))
    assert len(pages) == len(sizes) == 1
    read = DynamoAnalysisStore("t", dynamodb_resource=replay_resource(pages)).counters("exp-bench")
    assert read == ordered

    paged, sizes = response_pages(ordered, ("experiment_id", "sk"), page_bytes=20_000)
    assert len(paged) == len(sizes) > 2 and max(sizes) <= 20_000
    assert DynamoAnalysisStore("t", dynamodb_resource=replay_resource(paged)).counters("exp-bench") == ordered
    small = raws[:50]
    raw_pages, _ = response_pages(small, ("observation_id",), page_bytes=5_000)
    table = replay_resource(raw_pages).Table("observations")
    assert len(raw_pages) > 2 and read_raw_observations(table, "exp-bench") == small
