"""One-sided always-valid test (half-normal mixture SPRT): formula, validity under repeated reading, power."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from kanaria.stats.sequential import msprt_one_sided


@pytest.mark.parametrize(
    "effect, variance, tau2",
    [(0.3, 0.04, 0.01), (-0.1, 0.01, 0.04), (0.02, 1e-4, 4e-4), (0.0, 0.5, 0.2), (1.2, 0.09, 0.25)],
)
def test_e_value_is_the_half_normal_mixture_of_likelihood_ratios(effect, variance, tau2):
    # independent: numerical quadrature of ∫₀^∞ exp((θΔ − θ²/2)/V) · 2·N(θ; 0, τ²) dθ
    tau = math.sqrt(tau2)

    def integrand(theta: float) -> float:
        return math.exp((theta * effect - theta * theta / 2) / variance) * 2 * stats.norm.pdf(theta, 0, tau)

    expected, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
    got = msprt_one_sided(effect, variance, tau2)
    assert math.exp(float(got.log_e_value)) == pytest.approx(expected, rel=1e-8)
    assert float(got.p_value) == pytest.approx(min(1.0, 1.0 / expected), rel=1e-8)


def test_zero_variance_is_decided_by_the_sign_and_bad_input_is_invalid():
    got = msprt_one_sided([0.1, 0.0, -0.1, np.nan, 0.1], [0.0, 0.0, 0.0, 0.01, 0.01], [0.01, 0.01, 0.01, 0.01, 0.0])
    assert got.p_value[:3].tolist() == [0.0, 1.0, 1.0]
    assert got.valid.tolist() == [True, True, True, False, False] and np.isnan(got.p_value[3:]).all()


def _ever_rejects(
    effect_per_unit: float, alpha: float, runs: int = 4000, looks: int = 200, per_look: int = 10, seed: int = 7
) -> np.ndarray:
    """Unit-variance observations in two arms read after every look; rejects of H0: θ ≤ 0 at any look."""
    rng = np.random.default_rng(seed)
    n = per_look * np.arange(1, looks + 1)
    diff = rng.normal(effect_per_unit, math.sqrt(2.0), size=(runs, looks * per_look))  # x_T − x_C per pair
    means = np.cumsum(diff, axis=1)[:, per_look - 1 :: per_look] / n
    p = msprt_one_sided(means, 2.0 / n, 0.1**2).p_value
    return (p <= alpha).any(axis=1)


def test_false_rejection_over_200_looks_stays_below_alpha_where_a_fixed_test_does_not():
    ever = _ever_rejects(0.0, 0.05)
    assert ever.mean() <= 0.05  # 4,000 runs: Monte-Carlo SE ≈ 0.003 at 0.03
    rng = np.random.default_rng(7)
    diff = rng.normal(0.0, math.sqrt(2.0), size=(4000, 2000))
    n = 10 * np.arange(1, 201)
    z = np.cumsum(diff, axis=1)[:, 9::10] / n / np.sqrt(2.0 / n)
    assert (z >= stats.norm.isf(0.05)).any(axis=1).mean() > 0.2  # the same data read with a one-sided z test


def test_a_negative_effect_is_rejected_less_often_than_the_null():
    assert _ever_rejects(-0.05, 0.05).mean() < 0.005


def test_a_real_positive_effect_is_found():
    assert _ever_rejects(0.15, 0.05).mean() > 0.95
