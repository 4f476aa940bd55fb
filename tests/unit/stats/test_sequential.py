"""Group-sequential OBF-type boundaries and the always-valid mixture SPRT."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from kanaria.stats import group_sequential_boundaries, information_schedule, msprt_normal, obf_alpha_spent, obf_look


@pytest.mark.parametrize("t", [0.1, 0.25, 0.5, 0.9, 1.0])
def test_spending_function_is_lan_demets_obf(t):
    assert obf_alpha_spent(t, 0.05) == pytest.approx(2 - 2 * stats.norm.cdf(stats.norm.ppf(0.975) / math.sqrt(t)))


def test_single_final_look_is_the_fixed_horizon_test():
    assert group_sequential_boundaries([1.0], 0.05)[0] == pytest.approx(stats.norm.ppf(0.975), abs=1e-9)


def test_first_look_spends_alpha_of_t_as_a_single_test():
    first = group_sequential_boundaries([0.4, 1.0], 0.05)[0]
    assert 2 * stats.norm.sf(first) == pytest.approx(obf_alpha_spent(0.4, 0.05), rel=1e-8)


def test_recursion_reproduces_published_five_look_boundaries():
    # ldbounds/gsDesign example: 5 equal looks, two-sided 0.05 with O'Brien–Fleming-type spending of 0.025 per
    # side, α_side(t) = 2 − 2Φ(z_{1−0.0125}/√t): 4.8769, 3.3569, 2.6803, 2.2898, 2.0310
    z = stats.norm.ppf(1 - 0.025 / 2)
    per_side_total = lambda t: 2 * (2 - 2 * stats.norm.cdf(z / math.sqrt(t)))  # noqa: E731
    bounds = group_sequential_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], spending=per_side_total)
    assert bounds == pytest.approx([4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-4)


@pytest.mark.parametrize("looks", [[0.3, 0.6, 1.0], [0.15, 0.5, 0.55, 0.9], [0.3, 0.32, 0.34, 0.9]])
def test_cumulative_crossing_probability_equals_alpha_spent_under_the_joint_normal(looks):
    # Independent check with scipy's multivariate normal on the canonical joint distribution corr = √(t_i/t_j)
    bounds = np.array(group_sequential_boundaries(looks, 0.05))
    t = np.array(looks)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for k in range(1, len(looks) + 1):
        inside = stats.multivariate_normal.cdf(
            bounds[:k],
            mean=np.zeros(k),
            cov=corr[:k, :k],
            lower_limit=-bounds[:k],
            maxpts=2_000_000,
            abseps=1e-7,
            releps=1e-7,
            rng=np.random.default_rng(0),
        )
        assert 1 - inside == pytest.approx(obf_alpha_spent(t[k - 1], 0.05), abs=3e-6)


def test_banded_recursion_equals_the_full_kernel_for_close_looks(monkeypatch):
    # looks 0.005 apart make the grid fine enough for the banded kernel; the full kernel must agree
    import kanaria.stats.sequential as sequential

    looks = [0.3, 0.305, 0.31, 0.6, 0.605, 1.0]
    sequential._state_cache.clear()
    banded = group_sequential_boundaries(looks)

    def full_kernel(points, prev):
        sd = math.sqrt(prev.delta)
        x = (points[:, None] - prev.nodes[None, :]) / sd
        return np.exp(-0.5 * x * x) @ prev.mass / (math.sqrt(2 * math.pi) * sd)

    monkeypatch.setattr(sequential, "_density", full_kernel)
    sequential._state_cache.clear()
    assert banded == pytest.approx(group_sequential_boundaries(looks), abs=1e-10)
    sequential._state_cache.clear()


def test_without_history_previous_looks_are_equally_spaced():
    assert information_schedule(0.37, None, planned_looks=10) == pytest.approx((0.1, 0.2, 0.3, 0.37))
    assert information_schedule(1.4, None, planned_looks=4) == pytest.approx((0.25, 0.5, 0.75, 1.0))


def test_history_after_or_at_the_current_look_is_not_an_extra_look():
    assert information_schedule(0.5, [0.2, 0.4999, 0.7]) == (0.2, 0.5)


def test_obf_look_reports_boundary_nominal_alpha_and_spend():
    look = obf_look(0.5, [0.25], alpha=0.05)
    assert look.fractions == (0.25, 0.5)
    assert look.nominal_alpha == pytest.approx(2 * stats.norm.sf(look.boundary_z))
    assert look.alpha_spent == pytest.approx(obf_alpha_spent(0.5, 0.05))


def mixture_likelihood_ratio(effect, variance, tau2, theta0=0.0):
    """∫ N(Δ; θ, V)/N(Δ; θ0, V) · N(θ; θ0, τ²) dθ by quadrature."""
    sd, tau = math.sqrt(variance), math.sqrt(tau2)
    integrand = lambda th: (  # noqa: E731
        stats.norm.pdf(effect, th, sd) / stats.norm.pdf(effect, theta0, sd) * stats.norm.pdf(th, theta0, tau)
    )
    value, _ = integrate.quad(integrand, theta0 - 12 * tau, theta0 + 12 * tau, points=[effect], limit=200)
    return value


@pytest.mark.parametrize("effect, variance, tau2", [(0.05, 0.0004, 0.01), (-0.02, 0.0001, 0.0004), (1.3, 0.9, 2.0)])
def test_msprt_p_value_is_the_inverse_mixture_likelihood_ratio(effect, variance, tau2):
    result = msprt_normal(effect, variance, tau2, alpha=0.05)
    expected_lr = mixture_likelihood_ratio(effect, variance, tau2)
    assert math.exp(float(result.log_likelihood_ratio)) == pytest.approx(expected_lr, rel=1e-6)
    assert float(result.p_value) == pytest.approx(min(1.0, 1.0 / expected_lr), rel=1e-6)


def test_msprt_confidence_sequence_ends_where_the_likelihood_ratio_is_one_over_alpha():
    effect, variance, tau2 = 0.03, 0.0001, 0.0009
    result = msprt_normal(effect, variance, tau2, alpha=0.05)
    for end in (float(result.ci_low), float(result.ci_high)):
        assert mixture_likelihood_ratio(effect, variance, tau2, theta0=end) == pytest.approx(20.0, rel=1e-5)


def test_msprt_zero_variance_is_the_deterministic_limit_and_bad_input_is_not_a_result():
    result = msprt_normal([0.1, 0.0, np.nan, 0.1], [0.0, 0.0, 0.01, -1.0], [0.01, 0.01, 0.01, 0.01])
    assert result.valid.tolist() == [True, True, False, False]
    assert result.p_value[:2].tolist() == [0.0, 1.0] and np.isnan(result.p_value[2:]).all()
    assert [result.ci_low[0], result.ci_high[0]] == [0.1, 0.1]  # the limit of the sequence as V → 0
