"""Cost per satisfactory response, token efficiency, latency-to-quality ratio and the Pareto front."""

import pytest

from kanaria.analysis import pareto_front, variant_efficiency
from kanaria.analysis.schema import VariantAggregate

from .builders import analyze, mean_stats, rate_stats, snapshot, variant


def aggregate(quality, tokens_in, tokens_out, cost=0.012, latency=2000.0, satisfactory=None):
    body = {
        "units": 100,
        "quality_score": mean_stats(100, quality, 0.1),
        "input_tokens": mean_stats(100, tokens_in, 10),
        "output_tokens": mean_stats(100, tokens_out, 10),
        "cost_usd": mean_stats(100, cost, 0.001),
        "latency_ms": mean_stats(100, latency, 100),
    }
    if satisfactory is not None:
        body["satisfactory"] = rate_stats(100, satisfactory)
    return VariantAggregate.model_validate(body)


@pytest.mark.parametrize(
    "quality, tokens_in, tokens_out, per_1k",
    [
        (0.84, 1800, 450, 0.3733),
        (0.88, 2200, 300, 0.3520),
        (0.82, 1400, 200, 0.5125),
        (0.91, 800, 150, 0.9579),
        (0.81, 1200, 250, 0.5586),
    ],
)
def test_token_efficiency_is_quality_per_thousand_tokens(quality, tokens_in, tokens_out, per_1k):
    # Design notes 001, scenario C (its table says 0.27 for faq and 0.47 for promotion: 0.352 and 0.559 are right)
    result = variant_efficiency(aggregate(quality, tokens_in, tokens_out), quality_target=None)
    assert result["quality_per_1k_tokens"] == pytest.approx(per_1k, abs=5e-5)


def test_cost_per_satisfactory_response_and_latency_to_quality():
    result = variant_efficiency(
        aggregate(0.8, 1000, 200, cost=0.012, latency=2000.0, satisfactory=0.8), quality_target=0.78
    )
    assert result["cost_per_satisfactory_response"] == pytest.approx(0.015)  # 0.012 / 0.8
    assert result["latency_to_quality_ms"] == pytest.approx(2500.0)  # 2000 ms / 0.8
    assert result["meets_quality_target"] is True


def test_cost_per_satisfactory_response_needs_satisfactory_counts():
    assert variant_efficiency(aggregate(0.8, 1000, 200), quality_target=0.78)["cost_per_satisfactory_response"] is None


def test_pareto_front_minimises_cost_and_latency_and_maximises_quality():
    points = {
        "cheap": (1.0, 1.0, 0.80),
        "best": (2.0, 2.0, 0.90),
        "dominated": (2.0, 2.0, 0.80),  # worse than "cheap" on cost and latency, equal quality
        "twin": (1.0, 1.0, 0.80),  # identical to "cheap": neither dominates the other
        "fast": (3.0, 0.5, 0.70),
    }
    assert pareto_front(points) == ["cheap", "best", "twin", "fast"]


def test_analysis_reports_efficiency_overall_and_per_intent():
    body = snapshot(variant(1_000, cost=0.008, latency=2000), variant(1_000, cost=0.006, latency=1500, quality=0.86))
    body["intents"] = {"chitchat": {"A": variant(500), "B": variant(500, cost=0.009)}}
    efficiency = analyze(body)["evidence"]["efficiency"]
    assert efficiency["overall"]["pareto_optimal"] == ["B"]
    assert efficiency["intents"]["chitchat"]["variants"]["A"]["quality_target"] == 0.78
    assert efficiency["intents"]["chitchat"]["pareto_optimal"] == ["A"]
