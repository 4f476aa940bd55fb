"""Per-variant sample sizes for a two-sided, equal-allocation, two-arm test (normal approximation).

Proportions: n = ceil((z_{1-α/2} + z_{1-β})² · (p1(1−p1) + p2(1−p2)) / δ²), p2 = p1 + δ (δ absolute).
Means:       n = ceil(2σ² (z_{1-α/2} + z_{1-β})² / δ²).
Both ignore the far rejection tail, the usual textbook convention (exact for a one-sided test at α/2).
"""

from __future__ import annotations

import math

from scipy import stats


def _z_sum_squared(alpha: float, power: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    if not 0.0 < power < 1.0:
        raise ValueError("power must be in (0, 1)")
    return float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)) ** 2


def sample_size_two_proportions(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant to detect an absolute change `mde` from rate `baseline` (unpooled-variance formula)."""
    treatment = baseline + mde
    if not 0.0 < baseline < 1.0:
        raise ValueError("baseline must be in (0, 1)")
    if mde == 0.0 or not 0.0 < treatment < 1.0:
        raise ValueError("mde must be non-zero with baseline + mde in (0, 1)")
    variance_sum = baseline * (1.0 - baseline) + treatment * (1.0 - treatment)
    return math.ceil(_z_sum_squared(alpha, power) * variance_sum / mde**2)


def sample_size_two_means(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant to detect an absolute mean difference `mde` with common standard deviation `sd`."""
    if not sd > 0.0:
        raise ValueError("sd must be > 0")
    if mde == 0.0 or not math.isfinite(mde):
        raise ValueError("mde must be non-zero")
    return math.ceil(2.0 * sd**2 * _z_sum_squared(alpha, power) / mde**2)
