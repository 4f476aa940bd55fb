"""Sufficient statistics of one variant's metric: (n, sum, sum_sq) for means, (n, successes) for rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class MeanSummary:
    """n observations of a continuous metric, kept as their sum and sum of squares."""

    n: int
    sum: float
    sum_sq: float

    @classmethod
    def from_values(cls, values: Iterable[float]) -> MeanSummary:
        """Summary of raw observations."""
        xs = [float(x) for x in values]
        return cls(n=len(xs), sum=math.fsum(xs), sum_sq=math.fsum(x * x for x in xs))

    @property
    def mean(self) -> float:
        """Sample mean (nan when n == 0)."""
        return self.sum / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Unbiased sample variance (ddof=1), clamped at 0 against rounding; nan when n < 2."""
        if self.n < 2:
            return math.nan
        return max((self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1), 0.0)


@dataclass(frozen=True)
class ProportionSummary:
    """n trials of a binary metric with `successes` ones."""

    n: int
    successes: int

    @property
    def rate(self) -> float:
        """Observed proportion (nan when n == 0)."""
        return self.successes / self.n if self.n else math.nan
