"""The one empirical percentile of raw values used across Kanaria: nearest rank, numpy-free.

Nearest rank (Hyndman & Fan definition 1, numpy's `method="inverted_cdf"`): the smallest value with at least p%
of the values at or below it, so it is always an observed value and the p99 of 100 values is the 99th, not
the maximum. Used by the evaluation report, the rehearsal's CloudWatch percentiles and the benchmarks. Pure
Python so the rollout gate's import path stays free of numpy. (Latency quantiles from stored histograms are
kanaria.domain.observation.histogram_quantile, another estimator for another input; confidence bounds of a
quantile are kanaria.stats.quantiles.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile, p in 0..100; None without values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile p must be within 0..100, got {p}")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
