"""kanaria.percentiles.percentile: nearest rank, the same as numpy's inverted_cdf, never the max for p99 of 100."""

from __future__ import annotations

import numpy as np
import pytest

from kanaria.percentiles import percentile


def test_p99_of_one_hundred_values_is_the_99th_not_the_maximum() -> None:
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile(values, 0) == 1 and percentile(values, 50) == 50


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_matches_numpys_inverted_cdf(size: int) -> None:
    values = np.random.default_rng(size).lognormal(7, 0.5, size).tolist()
    for p in (0, 1, 5, 25, 50, 75, 90, 95, 99, 99.9, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p, method="inverted_cdf"))), p


def test_no_values_and_a_bad_p() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="p must be within 0..100, got 150"):
        percentile([1.0], 150)
