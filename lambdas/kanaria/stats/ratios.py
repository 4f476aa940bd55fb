"""Delta-method intervals for ratios of means (cost per satisfactory response, quality per 1k tokens, relative
changes). First-order Taylor expansion of g(a, b) = a/b around the estimates (Casella & Berger 2002, §5.5.4):

    Var(a/b) ≈ (Var a + R²·Var b − 2R·Cov(a, b)) / b²,  R = a/b.

Within one variant the numerator and denominator come from the same responses, but the aggregates keep no
cross-products, so their covariance is unknown: `ratio_interval` then uses the worst case over every correlation,
SE ≤ (SE_a + |R|·SE_b)/|b| (the variance above is largest at ρ = −sign(R)), an interval valid whatever the
correlation. Between two arms (independent samples) the covariance is 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from kanaria.stats import distributions as dist


class RatioInterval(NamedTuple):
    """Estimate, its standard error and a two-sided (1 − alpha) interval (None when undefined)."""

    estimate: float | None
    se: float | None
    low: float | None
    high: float | None


_NONE = RatioInterval(None, None, None, None)


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def ratio_interval(
    a: float, var_a: float, b: float, var_b: float, alpha: float, covariance: float | None = None
) -> RatioInterval:
    """a/b with a delta-method interval; covariance None = unknown (worst case over all correlations)."""
    if not _finite(a, var_a, b, var_b) or b == 0 or var_a < 0 or var_b < 0:
        return _NONE
    r = a / b
    if covariance is None:
        se = (math.sqrt(var_a) + abs(r) * math.sqrt(var_b)) / abs(b)
    else:
        se = math.sqrt(max(var_a + r * r * var_b - 2 * r * covariance, 0.0)) / abs(b)
    z = float(dist.norm_ppf(1 - alpha / 2))
    return RatioInterval(r, se, r - z * se, r + z * se)


def relative_change_interval(
    treatment: float, var_treatment: float, control: float, var_control: float, alpha: float
) -> RatioInterval:
    """T/C − 1 of two independent arms with a delta-method interval."""
    ratio = ratio_interval(treatment, var_treatment, control, var_control, alpha, covariance=0.0)
    if ratio.estimate is None:
        return _NONE
    return RatioInterval(ratio.estimate - 1, ratio.se, ratio.low - 1, ratio.high - 1)  # type: ignore[operator]
