"""Chi-squared test of independence and the sample-ratio-mismatch check."""

import numpy as np
import pytest
from scipy import stats

from kanaria.stats import chi2_independence, srm_check


@pytest.mark.parametrize(
    "table",
    [[[120, 880], [150, 850]], [[30, 70, 50], [45, 55, 60], [20, 80, 40]], [[5, 995], [14, 986], [9, 991]]],
)
@pytest.mark.parametrize("correction", [False, True])
def test_chi2_independence_matches_scipy(table, correction):
    result = chi2_independence(table, correction=correction)
    reference = stats.chi2_contingency(table, correction=correction)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df == reference.dof
    np.testing.assert_allclose(result.expected, reference.expected_freq)


def test_chi2_independence_rejects_tables_with_an_empty_row():
    with pytest.raises(ValueError):
        chi2_independence([[0, 0], [10, 20]])


def test_srm_detects_a_one_point_skew_at_100k_units():
    # Given a 50/50 experiment whose treatment got 51% of 100,000 units (a 1-percentage-point split bug)
    result = srm_check({"A": 49_000, "B": 51_000}, {"A": 0.5, "B": 0.5})
    # Then chi2 = 2·1000²/50000 = 40 and the mismatch is flagged (p ≈ 2.5e-10 < 0.001)
    assert result.statistic == pytest.approx(40.0)
    assert result.p_value == pytest.approx(stats.chi2.sf(40.0, 1))
    assert result.mismatch is True


def test_srm_boundary_half_point_skew_at_100k_is_not_flagged_at_p_0_001():
    # 50.5/49.5 is a 1-point gap between arms but only 0.5 points off each: chi2 = 10, p = 0.00157 > 0.001
    result = srm_check({"A": 49_500, "B": 50_500}, {"A": 0.5, "B": 0.5})
    assert result.statistic == pytest.approx(10.0)
    assert result.p_value == pytest.approx(0.0015654, rel=1e-4)
    assert result.mismatch is False


def test_srm_fair_split_is_not_flagged():
    result = srm_check({"A": 50_100, "B": 49_900}, {"A": 0.5, "B": 0.5})
    assert result.p_value == pytest.approx(stats.chisquare([50_100, 49_900]).pvalue)
    assert result.mismatch is False


def test_srm_uneven_weights_match_scipy_chisquare():
    units = {"A": 89_400, "B": 5_350, "C": 5_250}
    weights = {"A": 0.9, "B": 0.05, "C": 0.05}
    result = srm_check(units, weights)
    reference = stats.chisquare(list(units.values()), f_exp=[100_000 * w for w in weights.values()])
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.df == 2


def test_srm_units_in_a_zero_weight_variant_is_a_mismatch():
    assert srm_check({"A": 100, "B": 1}, {"A": 1.0, "B": 0.0}).mismatch is True


def test_srm_without_units_is_unknown_not_a_pass():
    result = srm_check({}, {"A": 0.5, "B": 0.5})
    assert result.mismatch is None and result.p_value is None
