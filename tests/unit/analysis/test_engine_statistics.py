"""The numbers in an analysis result agree with scipy and statsmodels computed independently."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from kanaria.analysis import analyze_snapshot

from .builders import snapshot, variant


@pytest.fixture(scope="module")
def result():
    control = variant(4_000, quality=0.84, quality_sd=0.15, task_completed=0.78)
    treatment = variant(3_950, quality=0.848, quality_sd=0.17, task_completed=0.80)
    return analyze_snapshot(snapshot(control, treatment, planned_n=3_950)), control, treatment


def test_welch_numbers_match_scipy_from_stats(result):
    out, control, treatment = result
    q = out["metrics"]["quality_score"]["B"]
    c, t = control["quality_score"], treatment["quality_score"]
    sd = lambda s: math.sqrt((s["sum_sq"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1))  # noqa: E731
    ref = stats.ttest_ind_from_stats(t["sum"] / t["n"], sd(t), t["n"], c["sum"] / c["n"], sd(c), c["n"], equal_var=False)
    assert q["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert q["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
    se = math.sqrt(sd(c) ** 2 / c["n"] + sd(t) ** 2 / t["n"])
    half = stats.t.ppf(0.975, q["df"]) * se
    assert q["ci"] == [pytest.approx(q["effect"] - half, rel=1e-9), pytest.approx(q["effect"] + half, rel=1e-9)]


def test_two_proportion_numbers_match_statsmodels(result):
    out, control, treatment = result
    r = out["metrics"]["task_completed"]["B"]
    c, t = control["task_completed"], treatment["task_completed"]
    z, p = proportions_ztest([t["successes"], c["successes"]], [t["n"], c["n"]])
    low, high = confint_proportions_2indep(t["successes"], t["n"], c["successes"], c["n"], method="wald")
    assert (r["statistic"], r["p_value"]) == (pytest.approx(z, rel=1e-9), pytest.approx(p, rel=1e-8))
    assert r["ci"] == [pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9)]


def test_srm_matches_scipy_chisquare(result):
    out, _, _ = result
    ref = stats.chisquare([4_000, 3_950])
    assert out["srm"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)


def test_error_guardrail_interval_is_clopper_pearson(result):
    from statsmodels.stats.proportion import proportion_confint

    out, _, treatment = result
    error = next(g for g in out["evidence"]["guardrails"]["B"] if g["metric"] == "error")
    e = treatment["error"]
    low, high = proportion_confint(e["successes"], e["n"], method="beta")
    assert error["checks"][0]["ci"] == [pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10)]


def test_cost_guardrail_interval_is_the_welch_interval_of_the_increase(result):
    out, control, treatment = result
    cost = next(g for g in out["evidence"]["guardrails"]["B"] if g["metric"] == "cost_usd")
    c, t = control["cost_usd"], treatment["cost_usd"]
    sd = lambda s: math.sqrt((s["sum_sq"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1))  # noqa: E731
    se2 = np.array([sd(c) ** 2 / c["n"], sd(t) ** 2 / t["n"]])
    df = se2.sum() ** 2 / (se2[0] ** 2 / (c["n"] - 1) + se2[1] ** 2 / (t["n"] - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(se2.sum())
    increase = t["sum"] / t["n"] - c["sum"] / c["n"]
    low, high = cost["checks"][0]["ci"]
    assert (low, high) == (pytest.approx(increase - half, abs=1e-12), pytest.approx(increase + half, abs=1e-12))
    assert cost["checks"][0]["limit"] == pytest.approx(0.5 * c["sum"] / c["n"])  # +50% of the control mean
