"""The canary judge's statistic against direct computations (scipy, statsmodels, explicit sums)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from kanaria.canary import evidence


@pytest.mark.parametrize(
    ("x_c", "n_c", "x_p", "n_p", "k", "r"),
    [
        (3, 30, 2, 570, 1.5, 7.5),
        (0, 150, 4, 450, 1.5, 3.0),
        (12, 300, 1, 300, 2.0, 68.0),
        (5, 1, 5, 1, 1.0, 1.5),
    ],
)
def test_likelihood_ratio_is_the_conditional_binomial_ratio(x_c, n_c, x_p, n_p, k, r):
    # Given the minute's total events m, the canary's share is Binomial(m, theta(r)) for Poisson counts.
    m = x_c + x_p
    theta = lambda ratio: ratio * n_c / (ratio * n_c + n_p)  # noqa: E731 - the definition under test
    direct = stats.binom.logpmf(x_c, m, theta(r)) - stats.binom.logpmf(x_c, m, theta(k))

    assert evidence.log_likelihood_ratio(x_c, n_c, x_p, n_p, k, r) == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize(("n_c", "n_p", "p_p", "k"), [(30, 570, 0.01, 1.5), (150, 450, 0.2, 1.5), (300, 300, 0.3, 2.0)])
@pytest.mark.parametrize("sampling", ["binomial", "poisson"])
def test_expected_likelihood_ratio_is_at_most_one_under_the_null(n_c, n_p, p_p, k, sampling):
    # Given the canary at the tolerance boundary (p_c = k p_p) or below it, E[LR] <= 1 for every alternative:
    # the exact expectation over both sides' count distributions.
    for p_c in (k * p_p, p_p, 0.5 * p_p):
        xs_c, xs_p = np.arange(0, n_c + 1), np.arange(0, n_p + 1)
        if sampling == "binomial":
            pmf_c, pmf_p = stats.binom.pmf(xs_c, n_c, p_c), stats.binom.pmf(xs_p, n_p, p_p)
        else:
            pmf_c, pmf_p = stats.poisson.pmf(xs_c, n_c * p_c), stats.poisson.pmf(xs_p, n_p * p_p)
        for r in evidence.alternatives(k):
            lr = np.exp([[evidence.log_likelihood_ratio(a, n_c, b, n_p, k, r) for b in xs_p] for a in xs_c])
            expectation = float(pmf_c @ lr @ pmf_p)
            assert expectation <= 1.0 + 1e-9, (p_c, r, expectation)


def test_shiryaev_roberts_update_is_the_sum_over_change_points():
    # Given a few minutes, R_t = sum over s <= t of prod_{i=s..t} LR_i for each alternative.
    minutes = [(1, 30, 3, 570), (0, 30, 1, 570), (4, 150, 2, 450), (6, 150, 1, 450)]
    k = 1.5
    log_r = evidence.initial_log_r(k)
    for x_c, n_c, x_p, n_p in minutes:
        log_r, counted = evidence.sr_update(log_r, x_c, n_c, x_p, n_p, k)
        assert counted
    for j, ratio in enumerate(evidence.alternatives(k)):
        lrs = [math.exp(evidence.log_likelihood_ratio(*m, k, ratio)) for m in minutes]
        direct = sum(math.prod(lrs[s:]) for s in range(len(lrs)))
        assert math.exp(log_r[j]) == pytest.approx(direct, rel=1e-9)


def test_a_minute_without_events_or_traffic_is_skipped():
    log_r = evidence.initial_log_r(1.5)
    for minute in [(0, 30, 0, 570), (3, 0, 2, 600), (2, 30, 1, 0)]:
        updated, counted = evidence.sr_update(log_r, *minute, 1.5)
        assert not counted and updated == log_r


def test_mixture_and_threshold():
    assert evidence.log_mixture([0.0] * 8) == pytest.approx(0.0)
    assert evidence.log_mixture([math.log(8.0)] + [evidence.LOG_ZERO] * 7) == pytest.approx(0.0, abs=1e-12)
    assert evidence.log_threshold(100, 0.01) == pytest.approx(math.log(100 / 0.01))


def test_false_alarm_probability_over_a_horizon_is_bounded_by_simulation():
    # Given identical arms with rates of a few percent for T = 60 minutes, the detector at alpha = 5%
    # crosses log(T / alpha) in at most 5% of 4,000 runs (Ville's inequality on M_t + T - t).
    rng = np.random.default_rng(7)
    runs, horizon, alpha, k = 4000, 60, 0.05, 1.0
    n_c, n_p, p = 30, 570, 0.03
    x_c = rng.binomial(n_c, p, size=(runs, horizon))
    x_p = rng.binomial(n_p, p, size=(runs, horizon))
    threshold = evidence.log_threshold(horizon, alpha)
    alarms = 0
    for run in range(runs):
        log_r = evidence.initial_log_r(k)
        for t in range(horizon):
            log_r, _ = evidence.sr_update(log_r, x_c[run, t], n_c, x_p[run, t], n_p, k)
            if evidence.log_mixture(log_r) >= threshold:
                alarms += 1
                break
    # binomial upper tail: with a true rate of 5%, more than 240 of 4,000 has probability < 1e-3
    assert alarms <= 240


@pytest.mark.parametrize(("events", "trials"), [(0, 10), (3, 600), (57, 11400), (30, 30), (12, 144)])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.975])
def test_wilson_bounds_match_statsmodels(events, trials, confidence):
    low, high = proportion_confint(events, trials, alpha=2 * (1 - confidence), method="wilson")
    assert evidence.wilson_bounds(events, trials, confidence) == pytest.approx((low, high), abs=1e-12)


def test_wilson_bounds_without_trials_are_uninformative():
    assert evidence.wilson_bounds(0, 0, 0.9) == (0.0, 1.0)
