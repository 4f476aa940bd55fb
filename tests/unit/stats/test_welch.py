"""Welch's t test from sufficient statistics, checked against scipy on raw data and on summary statistics."""

import math

import numpy as np
import pytest
from scipy import stats

from kanaria.stats import MeanSummary, welch_statistics, welch_t_test

CONTROL = [0.81, 0.77, 0.92, 0.85, 0.64, 0.88, 0.79, 0.90, 0.73, 0.86, 0.95, 0.70]
TREATMENT = [0.91, 0.84, 0.97, 0.88, 0.93, 0.79, 0.99, 0.86, 0.94, 0.90]


def test_welch_matches_scipy_on_raw_data():
    # Given fixed raw observations with unequal sizes and variances
    control, treatment = MeanSummary.from_values(CONTROL), MeanSummary.from_values(TREATMENT)
    # When we test from the sufficient statistics only
    result = welch_t_test(control, treatment, alpha=0.05)
    # Then statistic, p-value, df and CI equal scipy's Welch test on the raw data
    reference = stats.ttest_ind(TREATMENT, CONTROL, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df == pytest.approx(reference.df, rel=1e-10)
    ci = reference.confidence_interval(confidence_level=0.95)
    assert result.ci[0] == pytest.approx(ci.low, rel=1e-9)
    assert result.ci[1] == pytest.approx(ci.high, rel=1e-9)
    assert result.effect == pytest.approx(np.mean(TREATMENT) - np.mean(CONTROL), rel=1e-12)
    assert result.significant is bool(reference.pvalue < 0.05)


def test_welch_matches_scipy_from_stats_on_large_samples():
    rng = np.random.default_rng(7)
    control = rng.gamma(2.0, 800.0, size=20_000)  # skewed, latency-like
    treatment = rng.gamma(2.0, 760.0, size=18_000)
    result = welch_t_test(MeanSummary.from_values(control), MeanSummary.from_values(treatment))
    reference = stats.ttest_ind_from_stats(
        treatment.mean(),
        treatment.std(ddof=1),
        treatment.size,
        control.mean(),
        control.std(ddof=1),
        control.size,
        equal_var=False,
    )
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-8)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6, abs=1e-300)


def test_welch_ci_matches_statsmodels_unequal_variance_interval():
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    compare = CompareMeans(DescrStatsW(np.array(TREATMENT)), DescrStatsW(np.array(CONTROL)))
    low, high = compare.tconfint_diff(alpha=0.10, usevar="unequal")
    result = welch_t_test(MeanSummary.from_values(CONTROL), MeanSummary.from_values(TREATMENT), alpha=0.10)
    assert result.ci == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_vectorised_statistics_equal_scalar_results():
    rng = np.random.default_rng(3)
    groups = [(rng.normal(0.8, 0.1, 50), rng.normal(0.82, 0.12, 70)) for _ in range(5)]
    sums = [(MeanSummary.from_values(c), MeanSummary.from_values(t)) for c, t in groups]
    vector = welch_statistics(
        [c.n for c, _ in sums],
        [c.sum for c, _ in sums],
        [c.sum_sq for c, _ in sums],
        [t.n for _, t in sums],
        [t.sum for _, t in sums],
        [t.sum_sq for _, t in sums],
    )
    for i, (c, t) in enumerate(groups):
        assert vector.p_value[i] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-9)


@pytest.mark.parametrize(
    "control, treatment",
    [
        (MeanSummary(1, 0.8, 0.64), MeanSummary(30, 24.0, 19.5)),  # n < 2
        (MeanSummary(0, 0.0, 0.0), MeanSummary(0, 0.0, 0.0)),  # no data
    ],
)
def test_undefined_tests_report_no_p_value_and_no_significance(control, treatment):
    result = welch_t_test(control, treatment)
    assert result.p_value is None and result.significant is None and result.ci == (None, None)


@pytest.mark.parametrize("treatment_mean, p_value", [(0.8, 1.0), (0.9, 0.0), (0.7, 0.0)])
def test_two_arms_without_spread_are_the_limit_of_the_test(treatment_mean, p_value):
    # constant arms: the difference is certain (p = 0) or absent (p = 1) — the limit of Welch's p as SD → 0
    control, treatment = MeanSummary(10, 8.0, 6.4), MeanSummary(10, 10 * treatment_mean, 10 * treatment_mean**2)
    result = welch_t_test(control, treatment)
    assert result.p_value == pytest.approx(p_value) and result.significant is (p_value == 0.0)
    if p_value == 0.0:  # a tiny spread gives (almost) the same answer
        near = stats.ttest_ind(
            [treatment_mean] * 9 + [treatment_mean + 1e-4], [0.8] * 9 + [0.8 + 1e-4], equal_var=False
        )
        assert near.pvalue < 1e-20


def test_variance_from_sums_is_the_unbiased_sample_variance():
    summary = MeanSummary.from_values(CONTROL)
    assert summary.variance == pytest.approx(np.var(CONTROL, ddof=1), rel=1e-12)
    assert math.isnan(MeanSummary(1, 3.0, 9.0).variance)
