"""Beta–Bernoulli Thompson sampling weights."""

import numpy as np
import pytest
from scipy import integrate, stats

from kanaria.stats import thompson_weights


def test_weights_sum_to_one_and_respect_the_ten_percent_floor():
    arms = {"A": (500, 1000), "B": (560, 1000), "C": (480, 1000)}
    result = thompson_weights(arms, np.random.default_rng(1))
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert min(result.weights.values()) >= 0.10 - 1e-12
    assert max(result.weights, key=result.weights.get) == "B"
    assert result.weights["B"] == pytest.approx(0.10 + 0.70 * result.prob_best["B"])


def test_removed_arms_get_nothing_and_the_rest_still_sum_to_one():
    arms = {"A": (50, 100), "B": (55, 100), "C": (90, 100)}
    result = thompson_weights(arms, np.random.default_rng(1), removed={"C"})
    assert result.weights["C"] == 0.0 and result.removed == ["C"]
    assert result.weights["A"] + result.weights["B"] == pytest.approx(1.0)


def test_same_seed_same_weights():
    arms = {"A": (30, 90), "B": (35, 91)}
    assert thompson_weights(arms, np.random.default_rng(42)) == thompson_weights(arms, np.random.default_rng(42))


def test_probability_best_matches_numerical_integration():
    # P(p_B > p_A) = ∫ f_B(x) F_A(x) dx for independent Beta posteriors under a uniform prior
    a, b = (40, 100), (48, 100)
    exact, _ = integrate.quad(
        lambda x: stats.beta.pdf(x, 1 + b[0], 1 + b[1] - b[0]) * stats.beta.cdf(x, 1 + a[0], 1 + a[1] - a[0]), 0, 1
    )
    draws = 200_000
    result = thompson_weights({"A": a, "B": b}, np.random.default_rng(5), draws=draws)
    tolerance = 4 * np.sqrt(exact * (1 - exact) / draws)
    assert result.prob_best["B"] == pytest.approx(exact, abs=tolerance)


def test_more_than_ten_arms_share_equally_at_minimum():
    arms = {f"v{i}": (10, 20) for i in range(12)}
    result = thompson_weights(arms, np.random.default_rng(0))
    assert all(w == pytest.approx(1 / 12) for w in result.weights.values())
