"""Pure helpers of the Statistics section: schedules, exact shifts, stopping rules, gbstats evaluated in place."""

import numpy as np
import pytest

from scripts.bench_statistics import (
    GbstatsSequential,
    Reads,
    first_decision,
    kanaria_fixed_rule,
    read_schedule,
    shift,
    simulate_a_a,
    stopping_row,
)


def test_read_schedule_is_equally_spaced_and_ends_at_the_planned_size():
    assert read_schedule(883, 20)[[0, -1]].tolist() == [44, 883]
    assert read_schedule(2000, 20, run_on=4)[[19, -1]].tolist() == [2000, 8000]


def test_simulated_sums_are_cumulative_and_the_shift_is_exact():
    schedule = read_schedule(40, 4)
    rng = np.random.default_rng(3)
    sum_c, sq_c, sum_t, sq_t = simulate_a_a(rng, 5, schedule)
    assert sum_c.shape == (5, 4) and np.all(np.diff(sq_c, axis=1) > 0)
    x = np.random.default_rng(4).normal(0.8, 0.15, 30)
    total, squares = shift(np.array(x.sum()), np.array(x @ x), np.array(30.0), 0.02)
    assert total == pytest.approx((x + 0.02).sum(), rel=1e-12)
    assert squares == pytest.approx(((x + 0.02) ** 2).sum(), rel=1e-12)


def test_first_decision_and_stopping_rows():
    hits = np.array([[False, True, True], [False, False, False], [True, False, False]])
    index, any_hit = first_decision(hits, 3)
    assert index.tolist() == [1, 2, 0] and any_hit.tolist() == [True, False, True]
    positive = np.array([[True, True, True], [True, True, True], [False, False, False]])
    row = stopping_row("m", hits, hits, positive, np.array([10, 20, 30]), 3)
    assert row.false_positives == 2 and row.power == pytest.approx(1 / 3) and row.n_at_decision.tolist() == [20, 30, 10]


def test_kanaria_fixed_rule_rolls_back_early_and_promotes_only_at_n():
    fixed = np.array([[True, False], [False, True], [True, True]])
    positive = np.array([[False, False], [True, True], [True, True]])
    k = {"fixed": fixed, "positive": positive}
    row = kanaria_fixed_rule(k, k, np.array([50, 100]), 2)
    assert row.false_positives == 3  # a rollback at read 1, two promotions at n
    assert row.power == pytest.approx(2 / 3) and row.n_at_decision.tolist() == [50, 100, 100]


def test_gbstats_in_place_evaluation_equals_fresh_objects():
    pytest.importorskip("gbstats", reason="bench-only dependency (requirements-bench.txt, installed by make bench)")
    schedule = read_schedule(200, 4)
    sums = simulate_a_a(np.random.default_rng(5), 10, schedule)
    n = np.broadcast_to(schedule.astype(float), sums[0].shape)
    reads = Reads(n, *sums)
    gb = GbstatsSequential(5000.0)
    assert gb.check(reads, np.random.default_rng(6), points=20) == 0.0
    assert gb.hits(reads, stop_at_first=False).shape == (10, 4)
