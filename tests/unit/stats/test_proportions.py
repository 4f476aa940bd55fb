"""Two-proportion z test (pooled SE) with unpooled Wald CI; Newcombe and Clopper–Pearson intervals."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from kanaria.stats import (
    ProportionSummary,
    clopper_pearson_interval,
    newcombe_difference_interval,
    two_proportion_z_test,
)


def test_textbook_example_by_hand():
    # Given 750/1000 satisfied in control and 820/1000 in treatment (the A/B guide's example)
    result = two_proportion_z_test(ProportionSummary(1000, 750), ProportionSummary(1000, 820))
    # Then z = 0.07 / sqrt(0.785·0.215·(2/1000)) and p = 2·(1 − Φ(|z|))
    z = 0.07 / math.sqrt(0.785 * 0.215 * 2 / 1000)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.statistic == pytest.approx(3.8100, abs=5e-5)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    assert result.p_value == pytest.approx(0.000139, abs=5e-7)
    assert result.significant is True
    half = stats.norm.ppf(0.975) * math.sqrt(0.75 * 0.25 / 1000 + 0.82 * 0.18 / 1000)
    assert result.ci == (pytest.approx(0.07 - half, rel=1e-12), pytest.approx(0.07 + half, rel=1e-12))


@pytest.mark.parametrize(
    "control, treatment",
    [((1000, 750), (1000, 820)), ((5321, 4120), (5198, 4101)), ((220, 3), (240, 9)), ((80_000, 400), (20_000, 121))],
)
def test_matches_statsmodels_ztest_and_wald_interval(control, treatment):
    (n_c, x_c), (n_t, x_t) = control, treatment
    result = two_proportion_z_test(ProportionSummary(n_c, x_c), ProportionSummary(n_t, x_t), alpha=0.05)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])  # pooled variance under H0 (statsmodels default)
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=0.05)
    assert result.ci == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_no_events_in_either_arm_is_not_a_test():
    result = two_proportion_z_test(ProportionSummary(500, 0), ProportionSummary(500, 0))
    assert result.p_value is None and result.significant is None


@pytest.mark.parametrize("x_c, n_c, x_t, n_t", [(5, 100, 2, 120), (0, 50, 0, 50), (0, 2000, 7, 2100), (40, 40, 38, 41)])
def test_newcombe_interval_matches_statsmodels(x_c, n_c, x_t, n_t):
    low, high = newcombe_difference_interval(x_c, n_c, x_t, n_t, alpha=0.05)
    ref_low, ref_high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff")
    assert float(low) == pytest.approx(ref_low, abs=1e-12)
    assert float(high) == pytest.approx(ref_high, abs=1e-12)


def test_newcombe_interval_is_wide_when_there_are_no_events_yet():
    # A Wald interval would be [0, 0] here and "pass" any non-inferiority margin
    low, high = newcombe_difference_interval(0, 50, 0, 50)
    assert float(high) > 0.05


@pytest.mark.parametrize("x, n", [(0, 1000), (3, 1000), (999, 1000), (12, 40), (40, 40)])
def test_clopper_pearson_matches_statsmodels_beta_interval(x, n):
    low, high = clopper_pearson_interval(x, n, alpha=0.05)
    ref_low, ref_high = proportion_confint(x, n, alpha=0.05, method="beta")
    assert float(low) == pytest.approx(ref_low, abs=1e-12)
    assert float(high) == pytest.approx(ref_high, abs=1e-12)


def test_clopper_pearson_is_vectorised():
    low, high = clopper_pearson_interval(np.array([0, 5]), np.array([100, 100]))
    assert low.shape == (2,) and low[0] == 0.0 and high[1] > 0.05
