"""gbstats' sequential test as the Statistics section evaluates it: in place, equal to freshly built objects."""

import numpy as np
import pytest

from kanaria_tools.bench.gbstats_sequential import GbstatsSequential, Reads


def _cumulative_reads(runs: int, schedule: np.ndarray, seed: int) -> Reads:
    """A/A quality sums of `runs` runs read at the cumulative sizes of `schedule`."""
    rng = np.random.default_rng(seed)
    top = int(schedule[-1])
    sums = []
    for _ in range(2):
        x = rng.normal(0.80, 0.15, (runs, top))
        sums += [np.cumsum(x, axis=1)[:, schedule - 1], np.cumsum(x * x, axis=1)[:, schedule - 1]]
    n = np.broadcast_to(schedule.astype(float), sums[0].shape)
    return Reads(n, *sums)


def test_gbstats_in_place_evaluation_equals_fresh_objects():
    pytest.importorskip("gbstats", reason="bench-only dependency (requirements-bench.txt, installed by make bench)")
    reads = _cumulative_reads(10, np.array([50, 100, 150, 200]), seed=5)
    gb = GbstatsSequential(5000.0)
    assert gb.check(reads, np.random.default_rng(6), points=20) == 0.0
    assert gb.hits(reads, stop_at_first=False).shape == (10, 4)
