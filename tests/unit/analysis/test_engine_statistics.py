"""The numbers in an analysis result agree with scipy and statsmodels computed independently."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from .builders import analyze, snapshot, variant


@pytest.fixture(scope="module")
def result():
    control = variant(4_000, quality=0.84, quality_sd=0.15, task_completed=0.78)
    treatment = variant(3_950, quality=0.848, quality_sd=0.17, task_completed=0.80)
    return analyze(snapshot(control, treatment, planned_n=3_950)), control, treatment


def test_welch_numbers_match_scipy_from_stats(result):
    out, control, treatment = result
    q = out["metrics"]["quality_score"]["B"]
    c, t = control["quality_score"], treatment["quality_score"]
    sd = lambda s: math.sqrt((s["sum_sq"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1))  # noqa: E731
    ref = stats.ttest_ind_from_stats(
        t["sum"] / t["n"], sd(t), t["n"], c["sum"] / c["n"], sd(c), c["n"], equal_var=False
    )
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
    # the interval is Newcombe's hybrid score interval (a Wald interval is [−1, −1] for 1/1 vs 0/1)
    low, high = confint_proportions_2indep(t["successes"], t["n"], c["successes"], c["n"], method="newcomb")
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


def test_relative_cost_guardrail_is_judged_on_t_minus_one_and_a_half_c_with_the_delta_method(result):
    out, control, treatment = result
    cost = next(g for g in out["evidence"]["guardrails"]["B"] if g["metric"] == "cost_usd")
    c, t = control["cost_usd"], treatment["cost_usd"]
    mean = lambda s: s["sum"] / s["n"]  # noqa: E731
    var_mean = lambda s: (s["sum_sq"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1) / s["n"]  # noqa: E731
    # D = T̄ − 1.5·C̄, Var D = Var T̄ + 1.5²·Var C̄ (the control's uncertainty counts); reported as the worsening
    d = mean(t) - 1.5 * mean(c)
    half = stats.norm.ppf(0.975) * math.sqrt(var_mean(t) + 2.25 * var_mean(c))
    check = cost["checks"][0]
    margin = 0.5 * mean(c)
    assert check["limit"] == pytest.approx(margin) and check["relative"] is True
    assert check["ci"] == [pytest.approx(d - half + margin, abs=1e-12), pytest.approx(d + half + margin, abs=1e-12)]
    assert check["status"] == "pass"
