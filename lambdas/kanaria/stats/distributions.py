"""Distribution functions of the hot paths: the scipy.special routines behind scipy.stats' norm, t, chi2 and beta.

scipy.stats' rv_continuous methods spend 70–250 µs per call on argument checking and broadcasting; an analysis
batch of thousands of snapshots makes several calls per snapshot, so the vectorised paths call the very same
routines directly (norm.cdf/sf → ndtr, t.sf → stdtr, t.ppf → stdtrit, chi2.sf → chdtrc, beta.ppf → betaincinv).
No approximation of our own: tests/unit/stats/test_distributions.py checks each against scipy.stats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special


def norm_cdf(x: Any) -> Any:
    """Standard normal distribution function Φ(x) (as scipy.stats.norm.cdf)."""
    return special.ndtr(x)


def norm_sf(x: Any) -> Any:
    """Standard normal survival function 1 − Φ(x) (as scipy.stats.norm.sf)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q: Any) -> Any:
    """Standard normal quantile Φ⁻¹(q) (as scipy.stats.norm.ppf)."""
    return special.ndtri(q)


def t_sf(x: Any, df: Any) -> Any:
    """Student t survival function (as scipy.stats.t.sf)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def t_ppf(q: Any, df: Any) -> Any:
    """Student t quantile (as scipy.stats.t.ppf)."""
    return special.stdtrit(df, q)


def chi2_sf(x: Any, df: Any) -> Any:
    """Chi-squared survival function (as scipy.stats.chi2.sf)."""
    return special.chdtrc(df, x)


def beta_ppf(q: Any, a: Any, b: Any) -> Any:
    """Beta quantile (as scipy.stats.beta.ppf)."""
    return special.betaincinv(a, b, q)
