"""Gate evaluation: canary vs primary snapshot -> PASS / FAIL / INCONCLUSIVE with reasons; missing is never 0."""

from __future__ import annotations

import pytest

from kanaria.domain.rollout_gates import MetricSnapshot, Outcome, SideMetrics, Significance, evaluate_gates
from kanaria.domain.rollout_plan import StageGates

CRIT, WARN = "kanaria-canary-critical", "kanaria-canary-warning"


def side(**over: float | None) -> SideMetrics:
    base = dict(
        observations=1000,
        errors=2,
        throttles=0,
        hallucinations=10,
        latency_p99_ms=2000,
        csat_sum=350.0,
        csat_count=100,
        quality_sum=850.0,
        quality_count=1000,
    )
    return SideMetrics(**{**base, **over})


def snap(
    canary: SideMetrics | None = None,
    primary: SideMetrics | None = None,
    crit: str | None = "OK",
    warn: str | None = "OK",
) -> MetricSnapshot:
    alarms = {k: v for k, v in ((CRIT, crit), (WARN, warn)) if v is not None}
    return MetricSnapshot(
        window_start="2026-01-01T00:00:00+00:00",
        window_end="2026-01-01T04:00:00+00:00",
        canary=canary or side(),
        primary=primary or side(),
        alarms=alarms,
        critical_alarm=CRIT,
        warning_alarm=WARN,
    )


STAGE1 = StageGates(max_error_rate=0.005, max_latency_p99_increase=0.10)
ALL = StageGates(
    max_error_rate=0.005,
    max_latency_p99_increase=0.10,
    max_hallucination_rate_increase=0.01,
    max_throttle_rate=0.05,
    max_csat_drop=0.01,
    max_quality_drop=0.05,
)


def check(result, gate: str):  # noqa: ANN001, ANN201
    return next(c for c in result.checks if c.gate == gate)


def test_healthy_canary_passes_every_gate() -> None:
    result = evaluate_gates(ALL, snap())
    assert result.outcome is Outcome.PASS, result.checks
    assert {c.gate for c in result.checks} == {
        "error_rate",
        "latency_p99",
        "hallucination_rate",
        "throttle_rate",
        "csat",
        "quality",
    }


@pytest.mark.parametrize(
    ("gates", "canary", "gate", "fragment"),
    [
        (STAGE1, side(errors=5), "error_rate", "0.500% >= 0.500%"),  # strictly below 0.5%
        (STAGE1, side(latency_p99_ms=2201), "latency_p99", "2201 ms > 2200 ms"),
        (ALL, side(hallucinations=21), "hallucination_rate", "more than +1.00%"),
        (ALL, side(throttles=50), "throttle_rate", "5.000% >= 5.000%"),
        (ALL, side(csat_sum=346.0), "csat", "3.460 < 3.465"),
        (ALL, side(quality_sum=800.0), "quality", "0.800 < 0.807"),
    ],
)
def test_a_regression_fails_its_gate_with_the_numbers(
    gates: StageGates, canary: SideMetrics, gate: str, fragment: str
) -> None:
    result = evaluate_gates(gates, snap(canary=canary))
    assert result.outcome is Outcome.FAIL
    failed = check(result, gate)
    assert failed.outcome is Outcome.FAIL and fragment in failed.reason, failed.reason
    assert result.reasons == [f"{gate}: {failed.reason}"]


def test_latency_exactly_at_the_bound_passes() -> None:
    assert evaluate_gates(STAGE1, snap(canary=side(latency_p99_ms=2200))).outcome is Outcome.PASS


@pytest.mark.parametrize(
    ("canary", "primary", "gate"),
    [
        (side(errors=None), None, "error_rate"),
        (side(observations=None), None, "error_rate"),
        (side(latency_p99_ms=None), None, "latency_p99"),
        (None, side(latency_p99_ms=None), "latency_p99"),
        (side(hallucinations=None), None, "hallucination_rate"),
        (side(csat_count=None, csat_sum=None), None, "csat"),
    ],
)
def test_missing_datapoints_are_inconclusive_never_zero(
    canary: SideMetrics | None, primary: SideMetrics | None, gate: str
) -> None:
    result = evaluate_gates(ALL, snap(canary=canary, primary=primary))
    assert result.outcome is Outcome.INCONCLUSIVE
    assert check(result, gate).outcome is Outcome.INCONCLUSIVE
    assert "missing" in check(result, gate).reason or "no datapoints" in check(result, gate).reason


def test_too_few_observations_are_inconclusive() -> None:
    result = evaluate_gates(STAGE1, snap(canary=side(observations=150, errors=0)))
    assert result.outcome is Outcome.INCONCLUSIVE
    assert check(result, "error_rate").reason == "only 150 canary observations, need at least 200"


def test_a_failure_wins_over_missing_data() -> None:
    result = evaluate_gates(ALL, snap(canary=side(errors=50, csat_sum=None, csat_count=None)))
    assert result.outcome is Outcome.FAIL


def test_critical_alarm_fails_and_warning_alarm_holds() -> None:
    assert evaluate_gates(STAGE1, snap(crit="ALARM")).outcome is Outcome.FAIL
    held = evaluate_gates(STAGE1, snap(warn="ALARM"))
    assert held.outcome is Outcome.INCONCLUSIVE and "holding" in check(held, "warning_alarm").reason
    assert evaluate_gates(STAGE1, snap(warn="INSUFFICIENT_DATA")).outcome is Outcome.INCONCLUSIVE
    assert evaluate_gates(StageGates(max_error_rate=0.005, alarms=False), snap(crit="ALARM")).outcome is Outcome.PASS


def test_significance_gate_uses_the_analysis_result() -> None:
    gates = StageGates(max_error_rate=0.005, require_significance=True)
    passed = Significance(outcome=Outcome.PASS, reason="promote")
    assert evaluate_gates(gates, snap(), passed).outcome is Outcome.PASS
    assert evaluate_gates(gates, snap(), None).outcome is Outcome.INCONCLUSIVE
