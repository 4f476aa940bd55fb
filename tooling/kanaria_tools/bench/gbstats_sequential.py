"""GrowthBook's sequential test as a contender of the Statistics section: gbstats' own
`SequentialTwoSidedTTest.p_value` on its own `SampleMeanStatistic` objects, read by read.

gbstats is a bench-only dependency (requirements-bench.txt); it is imported when a contender is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kanaria_tools.bench.decision_sim import ALPHA


@dataclass(frozen=True)
class Reads:
    """Cumulative sufficient statistics of one scenario at each read (arrays of shape (runs, reads))."""

    n: np.ndarray
    sum_c: np.ndarray
    sq_c: np.ndarray
    sum_t: np.ndarray
    sq_t: np.ndarray


class GbstatsSequential:
    """gbstats' sequential two-sided t test, evaluated read by read (scalar, its own code)."""

    def __init__(self, tuning: float, difference_type: str = "relative"):
        from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
        from gbstats.models.statistics import SampleMeanStatistic

        self.config = SequentialConfig(alpha=ALPHA, sequential_tuning_parameter=tuning, difference_type=difference_type)
        self._a = SampleMeanStatistic(n=2, sum=0.0, sum_squares=1.0)
        self._b = SampleMeanStatistic(n=2, sum=0.0, sum_squares=1.0)
        # one test object per configuration; its statistics are updated in place for each read (construction and
        # pydantic validation cost 4× the p-value itself). check() compares with freshly built objects.
        self._test = SequentialTwoSidedTTest(self._a, self._b, self.config)
        self._fresh: Callable[..., float] = lambda n_c, s_c, q_c, n_t, s_t, q_t: (
            SequentialTwoSidedTTest(
                SampleMeanStatistic(n=n_c, sum=s_c, sum_squares=q_c),
                SampleMeanStatistic(n=n_t, sum=s_t, sum_squares=q_t),
                self.config,
            ).p_value
        )

    def p_value(self, n_c: int, s_c: float, q_c: float, n_t: int, s_t: float, q_t: float) -> float:
        """gbstats' sequential p-value for one read."""
        a, b = self._a, self._b
        a.n, a.sum, a.sum_squares = n_c, s_c, q_c
        b.n, b.sum, b.sum_squares = n_t, s_t, q_t
        return float(self._test.p_value)

    def hits(self, reads: Reads, stop_at_first: bool) -> np.ndarray:
        """p < alpha at each read; with stop_at_first the reads after a run's first hit are not evaluated."""
        runs, count = reads.n.shape
        out = np.zeros((runs, count), dtype=bool)
        n = reads.n[0].tolist()
        for r in range(runs):
            s_c, q_c, s_t, q_t = (x[r].tolist() for x in (reads.sum_c, reads.sq_c, reads.sum_t, reads.sq_t))
            for j in range(count):
                if self.p_value(n[j], s_c[j], q_c[j], n[j], s_t[j], q_t[j]) < ALPHA:
                    out[r, j] = True
                    if stop_at_first:
                        break
        return out

    def check(self, reads: Reads, rng: np.random.Generator, points: int = 200) -> float:
        """Largest |difference| between the in-place evaluation and freshly constructed gbstats objects."""
        runs, count = reads.n.shape
        worst = 0.0
        for r, j in zip(rng.integers(0, runs, points), rng.integers(0, count, points)):
            args = (
                int(reads.n[r, j]),
                float(reads.sum_c[r, j]),
                float(reads.sq_c[r, j]),
                int(reads.n[r, j]),
                float(reads.sum_t[r, j]),
                float(reads.sq_t[r, j]),
            )
            worst = max(worst, abs(self.p_value(*args) - self._fresh(*args)))
        return worst
