"""Evidence that the canary's event rate exceeds the primary's by more than a ratio: a one-sided change detector
valid at every look (pure math, standard library only: it runs in the rollout-steps function).

One stream (a metric on one intent, or overall) brings per minute t: x_c events out of n_c canary trials and
x_p out of n_p primary trials, over the same minute. The hypothesis of no harm is H0: p_c <= k * p_p at every
minute, with k >= 1 the ratio tolerance.

Likelihood ratio of minute t for an alternative ratio r > k, on the share of events that fall on the canary
(the Poisson-process form of Lindon, Sanden & Shirikian, "Rapid Regression Detection in Software Deployments
through Sequential Testing", KDD 2022):

    theta(r) = r n_c / (r n_c + n_p)
    LR_t(r)  = (theta(r) / theta(k)) ** x_c  *  ((1 - theta(r)) / (1 - theta(k))) ** x_p

Under H0, E[LR_t(r) | past] <= 1 whatever p_p is, for Poisson and for binomial counts: for Poisson counts
E[a**X_c b**X_p] = exp((theta(r) - theta(k)) * n_c / theta(k) * (p_c - k p_p)) <= 1, and a binomial factor
1 + p(a - 1) is at most exp(p(a - 1)). The trial counts may change every minute (stage weights), so the evidence
survives weight changes.

Change point (a fault that starts late must not be diluted by healthy minutes): the Shiryaev-Roberts statistic
R_t(r) = (R_{t-1}(r) + 1) LR_t(r), R_0 = 0, mixed over a grid of alternatives, M_t = sum_j w_j R_t(r_j). M_t - t
is a supermartingale under H0, so by Ville's inequality on M_t + (T - t),

    P(max over t <= T of M_t >= T / a) <= a       (T: the number of minutes the judge can run)

A minute without events has LR = 1 and is skipped (its +1 is not added): the bound still holds.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

# Alternatives as multiples of the tolerance k: from just above it to a 34x jump, equally weighted.
ALTERNATIVE_MULTIPLES = (1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0)
LOG_ZERO = -700.0  # log R for R = 0 (exp(-700) is below any threshold and keeps the state JSON-safe)


def alternatives(tolerance: float) -> tuple[float, ...]:
    """Alternative ratios r_j > k mixed by the detector."""
    return tuple(tolerance * m for m in ALTERNATIVE_MULTIPLES)


def log_likelihood_ratio(x_c: float, n_c: float, x_p: float, n_p: float, tolerance: float, ratio: float) -> float:
    """log LR of one minute for the alternative `ratio` against the boundary `tolerance` (0 without data)."""
    if n_c <= 0 or n_p <= 0 or (x_c <= 0 and x_p <= 0):
        return 0.0
    theta0 = tolerance * n_c / (tolerance * n_c + n_p)
    theta1 = ratio * n_c / (ratio * n_c + n_p)
    return x_c * math.log(theta1 / theta0) + x_p * (math.log1p(-theta1) - math.log1p(-theta0))


def initial_log_r(tolerance: float) -> list[float]:
    """Shiryaev-Roberts statistics before any minute (R = 0 for every alternative)."""
    return [LOG_ZERO] * len(alternatives(tolerance))


def sr_update(
    log_r: Sequence[float], x_c: float, n_c: float, x_p: float, n_p: float, tolerance: float
) -> tuple[list[float], bool]:
    """One minute into the Shiryaev-Roberts statistics; returns (new log R_j, whether the minute counted)."""
    if n_c <= 0 or n_p <= 0 or (x_c <= 0 and x_p <= 0):
        return list(log_r), False
    updated = []
    for value, ratio in zip(log_r, alternatives(tolerance)):
        step = log_likelihood_ratio(x_c, n_c, x_p, n_p, tolerance, ratio)
        updated.append(max(LOG_ZERO, _log1p_exp(value) + step))
    return updated, True


def log_mixture(log_r: Sequence[float]) -> float:
    """log M = log sum_j w_j R_j with equal weights w_j."""
    top = max(log_r)
    return top + math.log(sum(math.exp(v - top) for v in log_r)) - math.log(len(log_r))


def best_alternative(log_r: Sequence[float], tolerance: float) -> float:
    """The alternative ratio with the most evidence (what the stream most looks like)."""
    ratios = alternatives(tolerance)
    return ratios[max(range(len(log_r)), key=lambda j: log_r[j])]


def log_threshold(horizon_periods: int, alpha: float) -> float:
    """log(T / a): crossing it has probability <= a over T periods under H0."""
    return math.log(max(1, horizon_periods)) - math.log(alpha)


def _log1p_exp(value: float) -> float:
    """log(exp(value) + 1), stable for large and very negative values."""
    return value + math.log1p(math.exp(-value)) if value > 0 else math.log1p(math.exp(value))


def wilson_bounds(events: float, trials: float, confidence: float) -> tuple[float, float]:
    """One-sided Wilson score bounds (lower, upper) of a proportion, each at `confidence`; (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(confidence)
    p = min(1.0, max(0.0, events / trials))
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
