"""Report arithmetic checked against numbers computed by hand, Pareto frontier and routing on constructed examples."""

from __future__ import annotations

import pytest

from kanaria.errors import ValidationError
from kanaria.evaluation.report import (
    GatePolicy,
    aggregate,
    cell_metrics,
    check_mix,
    pareto_frontier,
    percentile,
    project,
    route,
)
from tests.unit.evaluation.support import cell, record


def test_nearest_rank_percentiles():
    values = [400, 100, 300, 200]
    assert percentile(values, 50) == 200  # rank ceil(0.50*4) = 2
    assert percentile(values, 95) == 400  # rank ceil(0.95*4) = 4
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 50) is None


def test_cell_arithmetic_by_hand():
    # chitchat: per-case target 0.78, low severity -> 80% pass rate needed.
    records = [
        record("A", "chitchat", 1.0, True, latency=100, tokens=(100, 50), cost="0.001"),
        record("A", "chitchat", 0.9, True, latency=200, tokens=(100, 50), cost="0.001"),
        record("A", "chitchat", 0.8, True, latency=300, tokens=(200, 100), cost="0.002"),
        record("A", "chitchat", 0.7, False, latency=400, tokens=(200, 100), cost="0.002"),
        record("A", "chitchat", 0.0, False, error="ThrottlingException on all 6 attempts"),
    ]
    cells, overall = aggregate(records, GatePolicy())
    c = cells[0]
    assert (c.n, c.passed_cases, c.errors) == (5, 3, 1)
    assert c.mean_quality == pytest.approx(0.68)  # (1.0 + 0.9 + 0.8 + 0.7 + 0) / 5; the failed call counts as 0
    assert c.pass_rate == pytest.approx(0.6)  # 3 / 5
    assert (c.latency_p50_ms, c.latency_p95_ms, c.latency_p99_ms) == (200, 400, 400)  # successful calls only
    assert (c.mean_input_tokens, c.mean_output_tokens) == (150, 75)
    assert c.mean_cost_usd == pytest.approx(0.0015)  # 0.006 / 4 successful calls
    assert c.cost_per_satisfactory_usd == pytest.approx(0.002)  # 0.006 / 3 passing cases
    assert c.token_efficiency == pytest.approx(0.68 / 225 * 1000)  # 3.0222 quality per 1K tokens
    assert c.latency_quality_ratio == pytest.approx(400 / 0.68)  # 588.2 ms per quality point
    assert c.gate_passed is False
    assert c.gate_reasons == ("pass rate 60% < required 80% (per-case quality target 0.78)",)
    assert overall[0].intent == "*" and overall[0].gate_passed is None


def test_high_severity_needs_ninety_percent_and_no_hallucination():
    # order_status (high): 10 cases, 9 pass (90% >= 90%) but the failing one invented a date.
    records = [record("A", "order_status", 1.0, True, target=0.95) for _ in range(9)]
    records.append(record("A", "order_status", 0.7, False, hallucinated=True, target=0.95))
    c = cell_metrics("A", "order_status", records, GatePolicy().for_intent("order_status"))
    assert c.pass_rate == pytest.approx(0.9) and c.hallucinations == 1
    assert c.gate_reasons == ("1 case(s) with forbidden or invented facts (allowed rate 0% for high-severity intents)",)


def test_too_few_cases_and_unpriced_models():
    c = cell_metrics(
        "A", "chitchat", [record("A", "chitchat", 1.0, True, cost=None)], GatePolicy().for_intent("chitchat")
    )
    assert c.gate_reasons == ("1 case(s), fewer than the 5 required",)
    assert c.mean_cost_usd is None and c.cost_per_satisfactory_usd is None


def test_pareto_frontier_on_a_constructed_example():
    cells = [
        cell("A", "x", quality=0.90, cost=0.002, p95=1000),
        cell("B", "x", quality=0.85, cost=0.001, p95=500),
        cell("C", "x", quality=0.80, cost=0.0015, p95=800),  # dominated by B on all three
        cell("D", "x", quality=0.90, cost=0.003, p95=1200),  # same quality as A, dearer and slower
        cell("E", "x", quality=0.95, cost=0.004, p95=900),  # best quality: on the frontier
        cell("F", "x", quality=0.99, cost=None, p95=100),  # unpriced: cannot be compared
    ]
    assert pareto_frontier(cells) == {"x": ["B", "A", "E"]}  # sorted by cost


def _routing_cells():
    return [
        cell("cheap", "order_status", quality=0.97, cost=0.0004, p95=600),
        cell("premium", "order_status", quality=0.99, cost=0.002, p95=1500),
        cell("cheap", "recommendation", quality=0.78, cost=0.0005, p95=700, passed=False),
        cell("premium", "recommendation", quality=0.95, cost=0.0025, p95=2100),
        cell("slow", "recommendation", quality=0.97, cost=0.003, p95=3500),
    ]


MIX = {"order_status": 0.5, "recommendation": 0.5}


def test_routing_without_budget_picks_the_cheapest_passing_configuration_within_the_latency_limit():
    routing = route(_routing_cells(), MIX, latency_limit_ms=3000, requests_per_month=1_000_000)
    assert {c.intent: c.config for c in routing.choices} == {"order_status": "cheap", "recommendation": "premium"}
    # 1,000,000 x (0.5 x 0.0004 + 0.5 x 0.0025) = 1,450
    assert routing.monthly_cost_usd == pytest.approx(1450.0)
    assert routing.objective == "min_cost" and routing.within_budget is None


def test_routing_with_a_budget_buys_quality_that_fits():
    routing = route(_routing_cells(), MIX, latency_limit_ms=3000, monthly_budget_usd=2500, requests_per_month=1_000_000)
    # premium everywhere: 1,000,000 x (0.5 x 0.002 + 0.5 x 0.0025) = 2,250 <= 2,500, weighted quality 0.97 > 0.96
    assert {c.intent: c.config for c in routing.choices} == {"order_status": "premium", "recommendation": "premium"}
    assert routing.monthly_cost_usd == pytest.approx(2250.0) and routing.within_budget is True


def test_routing_over_budget_keeps_the_cheapest_and_says_so():
    routing = route(_routing_cells(), MIX, latency_limit_ms=3000, monthly_budget_usd=1000, requests_per_month=1_000_000)
    assert {c.intent: c.config for c in routing.choices} == {"order_status": "cheap", "recommendation": "premium"}
    assert routing.within_budget is False and "over the budget of 1,000.00" in routing.notes[0]


def test_routing_latency_limit_and_unroutable_intents():
    loose = route(_routing_cells(), MIX, latency_limit_ms=4000, monthly_budget_usd=10_000, requests_per_month=1_000_000)
    assert {c.intent: c.config for c in loose.choices}["recommendation"] == "slow"  # now eligible and best quality
    strict = route(_routing_cells(), MIX, latency_limit_ms=1000, requests_per_month=1_000_000)
    rec = next(c for c in strict.choices if c.intent == "recommendation")
    assert rec.config is None
    assert "premium: p95 2100 ms > limit 1000 ms" in rec.reasons
    assert "cheap: pass rate 50% < required 80%" in rec.reasons


def test_monthly_projection_by_hand():
    cells = _routing_cells()
    routing = route(cells, MIX, latency_limit_ms=3000, requests_per_month=1_000_000)
    projection = project(cells, routing, MIX, requests_per_month=1_000_000)
    assert projection.per_configuration_usd["cheap"] == pytest.approx(450.0)  # 1e6 x (0.5x0.0004 + 0.5x0.0005)
    assert projection.per_configuration_usd["premium"] == pytest.approx(2250.0)
    assert projection.per_configuration_usd["slow"] is None  # not evaluated on order_status
    assert projection.routed_usd == pytest.approx(1450.0)
    assert projection.savings_vs_usd["premium"] == pytest.approx(800.0)
    assert projection.covered_share == 1.0


def test_intent_mix_must_be_shares_of_one():
    with pytest.raises(ValidationError) as err:
        check_mix({"chitchat": 0.5, "order_status": 0.4})
    assert "sum to 1" in err.value.reason
    with pytest.raises(ValidationError):
        check_mix({"chitchat": -0.1, "order_status": 1.1})
