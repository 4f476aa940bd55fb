"""The canary simulation and the judge's rates on it: A/A false rollbacks within alpha, detection after the
fault and never before it, the oracle's calibration (fixed seeds, sizes that fail a wrong implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scripts import bench_canary as bench
from scripts import canary_sim as sim


def test_the_model_matches_its_definitions():
    assert sim.slow_rate(1.0) == pytest.approx(0.05)
    assert sim.poor_rate(sim.QUALITY_MEAN) == pytest.approx(0.10)
    assert sim.poor_rate(0.55) > 0.9  # 0.55 mean quality: ~all answers below the primary's p10
    assert [sim.percent_at(t) for t in (0, 19, 20, 39, 40, 54)] == [5, 5, 25, 25, 50, 50]
    minutes = sim.simulate(np.random.default_rng(1))
    assert len(minutes) == sim.minutes_total() == 55
    canary = sum(m.canary_requests for m in minutes[:20])
    assert 500 < canary < 700  # 5% of 600 a minute for 20 minutes


def test_the_judge_rolls_back_at_most_alpha_of_identical_rollouts():
    # Given 300 A/A rollouts, the judge's bound (alpha = 1%) allows at most 8: P(X >= 9 | 300, 1%) = 0.4%.
    rng = np.random.default_rng(2)
    rolled_back = sum(bench.kanaria(sim.simulate(rng), rng) is not None for _ in range(300))
    assert stats.binom.sf(8, 300, 0.01) < 0.005
    assert rolled_back <= 8


@pytest.mark.parametrize("fault", [bench.FAULTS[0], bench.FAULTS[4], bench.FAULTS[5]], ids=lambda f: f.name)
def test_the_judge_detects_after_the_fault_and_not_before(fault):
    rng = np.random.default_rng(3)
    for _ in range(15):
        start = fault.start if fault.start is not None else int(rng.integers(2, 40))
        decided = bench.kanaria(sim.simulate(rng, fault, start), rng)
        assert decided is not None and start <= decided <= start + 10, (start, decided)


def test_the_oracle_threshold_gives_its_false_alarm_rate():
    # Given a threshold calibrated on 4,000 healthy rollouts at 5%, 4,000 fresh ones alarm in about 5%.
    rng = np.random.default_rng(4)
    fault = bench.FAULTS[0]
    threshold = bench.oracle_threshold(fault, rng, 0.05, 4000)
    alarms = sum(bench.oracle(fault, threshold, sim.simulate(rng, None, 0)) is not None for _ in range(600))
    # binomial 99.9% band around 5% of 600: [15, 48]
    assert 15 <= alarms <= 48
