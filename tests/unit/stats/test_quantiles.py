"""Distribution-free quantile intervals: fixed-n ranks against exact binomial computations, time-uniform ranks
against the exact probability that a binomial path ever leaves them."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from kanaria.stats.quantiles import _log_mixture, quantile_rank_bounds_sequential, quantile_rank_interval


def _cdf_by_enumeration(k: int, n: int, q: float) -> float:
    """P(S ≤ k), S ~ Binomial(n, q), by summing the probability mass (independent of scipy)."""
    return math.fsum(math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(0, k + 1)) if k >= 0 else 0.0


@pytest.mark.parametrize(
    "n, q, alpha",
    [(20, 0.5, 0.05), (30, 0.9, 0.05), (59, 0.95, 0.1), (120, 0.99, 0.05), (300, 0.99, 0.01), (1000, 0.99, 0.05)],
)
def test_fixed_n_ranks_are_the_tightest_equal_tailed_interval(n, q, alpha):
    lower, upper = (int(x) for x in quantile_rank_interval(n, q, alpha))
    miss_low = _cdf_by_enumeration(lower - 1, n, q)  # P(S < l) = P(Q < X_(l))
    miss_high = 1.0 - _cdf_by_enumeration(upper - 1, n, q) if upper <= n else 0.0  # P(S ≥ u) = P(Q ≥ X_(u))
    assert miss_low <= alpha / 2 + 1e-12 and miss_high <= alpha / 2 + 1e-12
    assert stats.binom.cdf(upper - 1, n, q) - stats.binom.cdf(lower - 1, n, q) >= 1 - alpha - 1e-12
    # one rank tighter on either side breaks its tail
    assert _cdf_by_enumeration(lower, n, q) > alpha / 2
    if upper <= n:
        assert 1.0 - _cdf_by_enumeration(upper - 2, n, q) > alpha / 2


def test_fixed_n_ranks_cover_real_order_statistics():
    # Monte Carlo with actual samples: [X_(l), X_(u)) contains the true p90 of an exponential at the stated rate
    rng = np.random.default_rng(11)
    n, q, alpha = 80, 0.9, 0.1
    lower, upper = (int(x) for x in quantile_rank_interval(n, q, alpha))
    x = np.sort(rng.exponential(size=(20000, n)), axis=1)
    true = -math.log(1 - q)
    low = x[:, lower - 1] if lower >= 1 else np.full(len(x), -np.inf)
    high = x[:, upper - 1] if upper <= n else np.full(len(x), np.inf)
    exact = stats.binom.cdf(upper - 1, n, q) - stats.binom.cdf(lower - 1, n, q)
    assert ((low <= true) & (true < high)).mean() == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize(
    "s, n, q, side", [(3, 40, 0.9, "low"), (38, 40, 0.9, "high"), (95, 100, 0.99, "low"), (100, 100, 0.99, "high")]
)
def test_mixture_equals_the_integral_of_likelihood_ratios(s, n, q, side):
    c = 100.0
    prior = stats.beta(c * q, c * (1 - q))
    bounds = (0.0, q) if side == "low" else (q, 1.0)

    def ratio(p: float) -> float:
        return math.exp(s * math.log(p / q) + (n - s) * math.log((1 - p) / (1 - q))) * prior.pdf(p)

    value, _ = integrate.quad(ratio, *bounds, epsabs=0, epsrel=1e-10, limit=200, points=[q])
    mass = prior.cdf(q) if side == "low" else prior.sf(q)
    assert float(_log_mixture(np.array(float(s)), np.array(float(n)), q, side, c)) == pytest.approx(
        math.log(value / mass), abs=1e-7
    )


def _ever_leaves(q: float, horizon: int, alpha_low: float, alpha_high: float) -> tuple[float, float]:
    """Exact P(∃ n ≤ horizon: S_n < l_n) and P(∃ n ≤ horizon: S_n ≥ u_n) for S_n ~ Binomial(n, q) paths."""
    n = np.arange(1, horizon + 1)
    lower, upper = quantile_rank_bounds_sequential(n, q, alpha_low, alpha_high)
    crossed = []
    for bound, leaves in ((lower, lambda s, b: s < b), (upper, lambda s, b: s >= b)):
        alive = np.zeros(horizon + 1)
        alive[0] = 1.0
        out = 0.0
        for i in range(horizon):
            alive[1:] = alive[1:] * (1 - q) + alive[:-1] * q
            alive[0] *= 1 - q
            gone = leaves(np.arange(horizon + 1), bound[i])
            out += alive[gone].sum()
            alive[gone] = 0.0
        crossed.append(out)
    return crossed[0], crossed[1]


@pytest.mark.parametrize("q, horizon, alpha", [(0.9, 600, 0.05), (0.99, 3000, 0.05), (0.5, 400, 0.01)])
def test_time_uniform_ranks_are_left_with_probability_at_most_alpha_over_every_n(q, horizon, alpha):
    low, high = _ever_leaves(q, horizon, alpha / 2, alpha / 2)
    assert low <= alpha / 2 and high <= alpha / 2
    # and a fixed-n interval read at every n is left far more often: what the sequential ranks are for
    n = np.arange(1, horizon + 1)
    fixed_low, _ = quantile_rank_interval(n, q, alpha)
    assert max(stats.binom.cdf(fixed_low - 1, n, q)) <= alpha / 2  # each n alone is fine…
    assert _ever_leaves_fixed(q, fixed_low) > 2 * alpha / 2  # …but not all of them together


def _ever_leaves_fixed(q: float, lower: np.ndarray) -> float:
    horizon = len(lower)
    alive = np.zeros(horizon + 1)
    alive[0] = 1.0
    out = 0.0
    for i in range(horizon):
        alive[1:] = alive[1:] * (1 - q) + alive[:-1] * q
        alive[0] *= 1 - q
        gone = np.arange(horizon + 1) < lower[i]
        out += alive[gone].sum()
        alive[gone] = 0.0
    return out


def test_sequential_ranks_widen_slowly_and_bound_nothing_too_early():
    n = np.array([50, 1000, 100_000])
    lower, upper = quantile_rank_bounds_sequential(n, 0.99, 0.01, 0.01)
    assert upper[0] == 51  # 50 observations cannot bound a p99 from above
    sd = np.sqrt(n * 0.99 * 0.01)
    assert np.all((0.99 * n[1:] - lower[1:]) / sd[1:] < 4.5) and np.all((upper[1:] - 0.99 * n[1:]) / sd[1:] < 4.5)
