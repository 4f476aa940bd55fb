"""Fixed-horizon tests from sufficient statistics: Welch t, two-proportion z, chi-squared, SRM, rate intervals.

The `*_statistics` functions are vectorised (numpy arrays in, arrays out) so that one snapshot's metrics, or a
simulation's runs, cost one scipy call; the scalar `*_test` functions wrap them for single comparisons.
Effects are always treatment − control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from kanaria.stats import distributions as dist
from kanaria.stats.summaries import MeanSummary, ProportionSummary

SRM_THRESHOLD = 0.001


def finite_or_none(value: Any) -> float | None:
    """Plain float, or None for nan/inf/None (JSON has no nan)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ComparisonResult:
    """One treatment-vs-control comparison of one metric."""

    test: str
    statistic: float | None
    p_value: float | None
    effect: float | None
    ci: tuple[float | None, float | None]
    significant: bool | None
    df: float | None = None
    se: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the analysis output shape (df only for t tests)."""
        body: dict[str, Any] = {
            "test": self.test,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "effect": finite_or_none(self.effect),
            "ci": [finite_or_none(self.ci[0]), finite_or_none(self.ci[1])],
            "significant": self.significant,
        }
        if self.df is not None:
            body["df"] = finite_or_none(self.df)
        body.update(self.extra)
        return body


class WelchStatistics(NamedTuple):
    """Arrays of Welch t statistics; `valid` is False where a test is undefined (n < 2 or zero SE)."""

    mean_control: np.ndarray
    mean_treatment: np.ndarray
    effect: np.ndarray
    se: np.ndarray
    df: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    valid: np.ndarray
    var_control: np.ndarray
    var_treatment: np.ndarray


class ProportionStatistics(NamedTuple):
    """Arrays of two-proportion z statistics (pooled SE for the test, unpooled SE for intervals)."""

    rate_control: np.ndarray
    rate_treatment: np.ndarray
    effect: np.ndarray
    se_pooled: np.ndarray
    se_unpooled: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    valid: np.ndarray


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def mean_and_variance(n: Any, total: Any, total_sq: Any) -> tuple[np.ndarray, np.ndarray]:
    """Means and unbiased variances from (n, sum, sum_sq); nan where undefined, variance clamped at 0."""
    n, total, total_sq = _arr(n), _arr(total), _arr(total_sq)
    mean = np.divide(total, n, out=np.full(np.shape(n), np.nan), where=n > 0)
    var = np.divide(total_sq - total * mean, n - 1, out=np.full(np.shape(n), np.nan), where=n > 1)
    return mean, np.maximum(var, 0.0)


def welch_statistics(n_c: Any, sum_c: Any, sum_sq_c: Any, n_t: Any, sum_t: Any, sum_sq_t: Any) -> WelchStatistics:
    """Welch's unequal-variance t statistic, Welch–Satterthwaite df and two-sided p-value (vectorised)."""
    mean_c, var_c = mean_and_variance(n_c, sum_c, sum_sq_c)
    mean_t, var_t = mean_and_variance(n_t, sum_t, sum_sq_t)
    return welch_from_moments(n_c, mean_c, var_c, n_t, mean_t, var_t)


def welch_from_moments(n_c: Any, mean_c: Any, var_c: Any, n_t: Any, mean_t: Any, var_t: Any) -> WelchStatistics:
    """Welch's test from sample sizes, means and unbiased variances (vectorised).

    Valid for n ≥ 2 in both arms. Two arms without any spread (SE = 0) are the limit of the test: a difference
    of means is then certain (|t| = ∞, p = 0) and equal means are no evidence at all (t = 0, p = 1), rather than
    an undefined test that would never decide.
    """
    n_c, n_t = _arr(n_c), _arr(n_t)
    mean_c, var_c, mean_t, var_t = _arr(mean_c), _arr(var_c), _arr(mean_t), _arr(var_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = var_c / n_c, var_t / n_t
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1))
        effect = mean_t - mean_c
        valid = (n_c >= 2) & (n_t >= 2) & np.isfinite(se) & np.isfinite(effect)
        spread = valid & (se > 0)
        statistic = np.where(
            spread, effect / np.where(spread, se, 1.0), np.where(effect != 0, np.sign(effect) * np.inf, 0.0)
        )
        df = np.where(spread, df, np.where(valid, n_c + n_t - 2, np.nan))
    statistic = np.where(valid, statistic, np.nan)
    safe_df = np.where(valid, df, 1.0)
    p_value = np.where(valid, 2.0 * dist.t_sf(np.abs(np.where(valid, statistic, 0.0)), safe_df), np.nan)
    return WelchStatistics(
        mean_c, mean_t, effect, se, np.where(valid, df, np.nan), statistic, p_value, valid, var_c, var_t
    )


def two_proportion_statistics(x_c: Any, n_c: Any, x_t: Any, n_t: Any) -> ProportionStatistics:
    """Two-proportion z test with the pooled SE under H0, plus the unpooled SE for the CI (vectorised)."""
    x_c, n_c, x_t, n_t = _arr(x_c), _arr(n_c), _arr(x_t), _arr(n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_c, p_t = x_c / n_c, x_t / n_t
        pooled = (x_c + x_t) / (n_c + n_t)
        se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
        se_unpooled = np.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
        effect = p_t - p_c
        valid = (n_c > 0) & (n_t > 0) & (se_pooled > 0) & np.isfinite(se_pooled)
        statistic = np.where(valid, effect / np.where(valid, se_pooled, 1.0), np.nan)
    p_value = np.where(valid, 2.0 * dist.norm_sf(np.abs(np.where(valid, statistic, 0.0))), np.nan)
    return ProportionStatistics(p_c, p_t, effect, se_pooled, se_unpooled, statistic, p_value, valid)


@lru_cache(maxsize=256)
def z_critical(alpha: float) -> float:
    """Two-sided normal critical value z_{1-alpha/2}."""
    return float(dist.norm_ppf(1.0 - alpha / 2.0))


def t_critical(alpha: float, df: Any) -> np.ndarray:
    """Two-sided Student t critical values t_{1-alpha/2, df} (nan where df is nan)."""
    df = _arr(df)
    ok = np.isfinite(df) & (df > 0)
    return np.where(ok, dist.t_ppf(1.0 - alpha / 2.0, np.where(ok, df, 1.0)), np.nan)


def welch_t_test(control: MeanSummary, treatment: MeanSummary, alpha: float = 0.05) -> ComparisonResult:
    """Welch's t test of treatment − control with a (1 − alpha) Welch CI for the difference."""
    w = welch_statistics(control.n, control.sum, control.sum_sq, treatment.n, treatment.sum, treatment.sum_sq)
    if not bool(w.valid):
        return ComparisonResult("welch_t", None, None, finite_or_none(w.effect), (None, None), None)
    half = float(t_critical(alpha, w.df)) * float(w.se)
    effect = float(w.effect)
    return ComparisonResult(
        test="welch_t",
        statistic=float(w.statistic),
        p_value=float(w.p_value),
        effect=effect,
        ci=(effect - half, effect + half),
        significant=bool(w.p_value < alpha),
        df=float(w.df),
        se=float(w.se),
    )


def two_proportion_z_test(
    control: ProportionSummary, treatment: ProportionSummary, alpha: float = 0.05
) -> ComparisonResult:
    """Two-proportion z test (pooled SE) of p_treatment − p_control with an unpooled Wald CI."""
    s = two_proportion_statistics(control.successes, control.n, treatment.successes, treatment.n)
    if not bool(s.valid):
        return ComparisonResult("two_proportion_z", None, None, finite_or_none(s.effect), (None, None), None)
    half = z_critical(alpha) * float(s.se_unpooled)
    effect = float(s.effect)
    return ComparisonResult(
        test="two_proportion_z",
        statistic=float(s.statistic),
        p_value=float(s.p_value),
        effect=effect,
        ci=(effect - half, effect + half),
        significant=bool(s.p_value < alpha),
        se=float(s.se_pooled),
    )


@dataclass(frozen=True)
class Chi2Result:
    """Pearson chi-squared statistic, degrees of freedom, p-value and expected counts."""

    statistic: float
    df: int
    p_value: float
    expected: np.ndarray


def chi2_independence(table: Sequence[Sequence[float]], correction: bool = False) -> Chi2Result:
    """Pearson chi-squared test of independence for an r×c table (Yates' correction only if asked and df == 1)."""
    observed = np.asarray(table, dtype=float)
    if observed.ndim != 2 or min(observed.shape) < 2:
        raise ValueError("table must be at least 2x2")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    if np.any(expected == 0):
        raise ValueError("a row or column total is zero")
    df = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    deviation = np.abs(observed - expected)
    if correction and df == 1:
        deviation = deviation - np.minimum(0.5, deviation)
    statistic = float(np.sum(deviation**2 / expected))
    return Chi2Result(statistic, df, float(dist.chi2_sf(statistic, df)), expected)


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check: chi-squared goodness of fit of unit counts against configured weights."""

    statistic: float | None
    df: int
    p_value: float | None
    mismatch: bool | None
    threshold: float
    observed: dict[str, int]
    expected: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "p_value": finite_or_none(self.p_value),
            "mismatch": self.mismatch,
            "statistic": finite_or_none(self.statistic),
            "df": self.df,
            "threshold": self.threshold,
            "observed": dict(self.observed),
            "expected": {k: finite_or_none(v) for k, v in self.expected.items()},
        }


def srm_check(units: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_THRESHOLD) -> SrmResult:
    """Goodness of fit of units per variant to the weights; mismatch when p < threshold (None without units)."""
    observed = {v: int(units.get(v, 0)) for v in weights}
    total = sum(observed.values())
    expected = {v: total * float(w) for v, w in weights.items()}
    live = [v for v in weights if expected[v] > 0]
    df = max(len(live) - 1, 0)
    if total > 0 and any(observed[v] > 0 and expected[v] == 0 for v in weights):
        # units landed in a variant configured at 0%: a mismatch however few
        return SrmResult(math.inf, df, 0.0, True, threshold, observed, expected)
    if total == 0 or df == 0:
        return SrmResult(None, df, None, None, threshold, observed, expected)
    statistic = sum((observed[v] - expected[v]) ** 2 / expected[v] for v in live)
    p_value = float(dist.chi2_sf(statistic, df))
    return SrmResult(statistic, df, p_value, p_value < threshold, threshold, observed, expected)


def clopper_pearson_interval(successes: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) two-sided (1 − alpha) interval for a binomial proportion (vectorised)."""
    x, n = _arr(successes), _arr(n)
    lo_q = np.where(x > 0, dist.beta_ppf(alpha / 2, np.maximum(x, 1e-300), n - x + 1), 0.0)
    hi_q = np.where(x < n, dist.beta_ppf(1 - alpha / 2, x + 1, np.maximum(n - x, 1e-300)), 1.0)
    return lo_q, hi_q


def wilson_interval(successes: Any, n: Any, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion at normal critical value z (vectorised)."""
    x, n = _arr(successes), _arr(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = (x + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * np.sqrt(x * (n - x) / n + z * z / 4)
    return center - half, center + half


def newcombe_difference_interval(x_c: Any, n_c: Any, x_t: Any, n_t: Any, alpha: float = 0.05) -> tuple[Any, Any]:
    """Newcombe's hybrid score interval (method 10) for p_treatment − p_control; sound with zero counts."""
    z = z_critical(alpha)
    x_c, n_c, x_t, n_t = _arr(x_c), _arr(n_c), _arr(x_t), _arr(n_t)
    p_c, p_t = x_c / n_c, x_t / n_t
    lo_t, hi_t = wilson_interval(x_t, n_t, z)
    lo_c, hi_c = wilson_interval(x_c, n_c, z)
    d = p_t - p_c
    lower = d - np.sqrt((p_t - lo_t) ** 2 + (hi_c - p_c) ** 2)
    upper = d + np.sqrt((hi_t - p_t) ** 2 + (p_c - lo_c) ** 2)
    return lower, upper
