"""Distribution-free intervals for a quantile from order statistics (ranks), fixed-n and time-uniform.

For a continuous distribution with q-quantile Q, S_n = #{X_i ≤ Q} ~ Binomial(n, q), and X_(l) ≤ Q ⇔ S_n ≥ l,
Q < X_(u) ⇔ S_n ≤ u − 1 (X_(0) = −∞, X_(n+1) = +∞). Intervals for Q are therefore intervals for a binomial count,
and need nothing of the distribution.

- `quantile_rank_interval`: the exact equal-tailed fixed-n interval: P(X_(l) ≤ Q < X_(u)) ≥ 1 − α for one n.
- `quantile_rank_bounds_sequential`: ranks l_n, u_n with P(∃ n: Q < X_(l_n) or Q ≥ X_(u_n)) ≤ α — valid however
  often it is read (Howard & Ramdas 2022, "Sequential estimation of quantiles": a confidence sequence for S_n).
  Each side is a beta-binomial mixture martingale over alternatives on that side only:
      M⁻_n(s) = ∫₀^q (p/q)^s ((1−p)/(1−q))^{n−s} π(p) dp / Π(q),   M⁺_n(s) likewise over (q, 1),
  with π = Beta(c·q, c·(1−q)); M±_n(S_n) are non-negative martingales under Binomial(n, q), so by Ville's
  inequality P(∃ n: M±_n(S_n) ≥ 1/α_side) ≤ α_side. M⁻ decreases and M⁺ increases in s, hence
  l_n = min{s : M⁻_n(s) < 1/α_side} and u_n = max{s : M⁺_n(s) < 1/α_side} + 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats

PRIOR_CONCENTRATION = 100.0  # c of the Beta(c·q, c·(1 − q)) mixing distribution: for p99 within ~4 SD of n·q from
# n = 1,000 to 10⁶ at α = 0.003 a side (a fixed-n interval would be ~2.7 SD)
_BISECTION_STEPS = 64


def quantile_rank_interval(n: Any, q: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (l, u) of the exact equal-tailed fixed-n interval [X_(l), X_(u)) for the q-quantile.

    l = max{l : P(S < l) ≤ α/2} (0 = no lower bound), u = min{u : P(S ≥ u) ≤ α/2} (n + 1 = no upper bound),
    S ~ Binomial(n, q); coverage P(l ≤ S ≤ u − 1) ≥ 1 − α exactly (not an approximation).
    """
    n = np.asarray(n, dtype=np.int64)
    half = alpha / 2.0
    k = stats.binom.ppf(half, n, q).astype(np.int64)  # smallest k with F(k) ≥ α/2
    lower = np.where(stats.binom.cdf(k, n, q) <= half, k + 1, k)  # F(l − 1) ≤ α/2 < F(l)
    m = stats.binom.isf(half, n, q).astype(np.int64)  # smallest m with P(S > m) ≤ α/2
    upper = np.where(stats.binom.sf(m - 1, n, q) <= half, m, m + 1)  # P(S ≥ u) ≤ α/2
    return lower, np.minimum(upper, n + 1)


def _log_mixture(s: np.ndarray, n: np.ndarray, q: float, side: str, concentration: float) -> np.ndarray:
    """log M⁻_n(s) (side "low") or log M⁺_n(s) (side "high")."""
    a, b = concentration * q, concentration * (1.0 - q)
    post_a, post_b = a + s, b + n - s
    with np.errstate(divide="ignore"):  # a posterior mass of 0 on the side: log 0 = −inf, no evidence at all
        if side == "low":
            log_mass, prior_mass = np.log(special.betainc(post_a, post_b, q)), math.log(special.betainc(a, b, q))
        else:
            log_mass, prior_mass = np.log(special.betaincc(post_a, post_b, q)), math.log(special.betaincc(a, b, q))
    return (
        special.betaln(post_a, post_b)
        + log_mass
        - special.betaln(a, b)
        - prior_mass
        - s * math.log(q)
        - (n - s) * math.log1p(-q)
    )


def quantile_rank_bounds_sequential(
    n: Any, q: float, alpha_low: float, alpha_high: float, concentration: float = PRIOR_CONCENTRATION
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (l_n, u_n): P(∃ n: Q < X_(l_n)) ≤ alpha_low and P(∃ n: Q ≥ X_(u_n)) ≤ alpha_high (time-uniform).

    l_n = 0 means no lower bound yet, u_n = n + 1 no upper bound. Either alpha may be 0 (that side unbounded).
    """
    n = np.asarray(n, dtype=float)
    lower = np.zeros(n.shape)
    upper = n + 1.0
    if alpha_low > 0:
        threshold = math.log(1.0 / alpha_low)
        # smallest s in [0, n] with log M⁻(s) < threshold (M⁻ decreasing in s; M⁻(n) < 1 always)
        lo, hi = np.full(n.shape, -1.0), n.copy()  # invariant: M⁻(lo) ≥ threshold (lo = −1: sentinel), M⁻(hi) <
        for _ in range(_BISECTION_STEPS):
            if np.all(hi - lo <= 1):
                break
            mid = np.floor((lo + hi) / 2.0)
            above = _log_mixture(np.maximum(mid, 0.0), n, q, "low", concentration) >= threshold
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        lower = hi
    if alpha_high > 0:
        threshold = math.log(1.0 / alpha_high)
        # largest s in [0, n] with log M⁺(s) < threshold (M⁺ increasing in s), u = that s + 1
        lo, hi = np.zeros(n.shape), n + 1.0  # invariant: M⁺(lo) < threshold, M⁺(hi) ≥ (hi = n + 1: sentinel)
        for _ in range(_BISECTION_STEPS):
            if np.all(hi - lo <= 1):
                break
            mid = np.floor((lo + hi) / 2.0)
            above = _log_mixture(np.minimum(mid, n), n, q, "high", concentration) >= threshold
            lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
        upper = lo + 1.0
    return lower.astype(np.int64), upper.astype(np.int64)
