"""Benjamini–Hochberg step-up, standalone and over a rolling 12-month registry with per-tier q."""

from datetime import datetime, timezone

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from kanaria.stats import benjamini_hochberg, fdr_registry
from kanaria.stats.multiple_testing import months_before

# Benjamini & Hochberg (1995), section 4: 15 p-values; at q = 0.05 the procedure rejects the four smallest
BH_1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0,
]


def test_bh_1995_worked_example_rejects_four():
    result = benjamini_hochberg(BH_1995, q=0.05)
    assert result.rejected == [True] * 4 + [False] * 11


def test_step_up_rescues_an_earlier_p_value_above_its_own_threshold():
    # Thresholds i·q/m = 0.0125, 0.025, 0.0375, 0.05: p=0.03 fails its own rank threshold (0.025), but the
    # largest passing rank is 4, so all four are rejected (a per-rank comparison would keep the 0.03)
    result = benjamini_hochberg([0.04, 0.01, 0.035, 0.03], q=0.05)
    assert result.rejected == [True, True, True, True]
    assert result.thresholds == pytest.approx([0.05, 0.0125, 0.0375, 0.025])


@pytest.mark.parametrize("seed, q", [(1, 0.05), (2, 0.10), (3, 0.20)])
def test_matches_statsmodels_fdr_bh(seed, q):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.01, size=10)]).tolist()
    result = benjamini_hochberg(p, q=q)
    reject, adjusted, _, _ = multipletests(p, alpha=q, method="fdr_bh")
    assert result.rejected == reject.tolist()
    np.testing.assert_allclose(result.adjusted, adjusted, rtol=1e-12)


def test_registry_uses_a_rolling_12_month_window_and_q_per_tier():
    now = datetime(2025, 3, 31, 12, 0, tzinfo=timezone.utc)
    decisions = [
        {"experiment_id": "old", "p_value": 0.0001, "decided_at": "2024-03-30T12:00:00+00:00", "tier": "standard"},
        {"experiment_id": "edge", "p_value": 0.02, "decided_at": "2024-03-31T12:00:01Z", "tier": "standard"},
        {"experiment_id": "s1", "p_value": 0.04, "decided_at": "2024-09-01T00:00:00", "tier": "standard"},
        {"experiment_id": "s2", "p_value": 0.30, "decided_at": "2025-01-10T00:00:00Z", "tier": "standard"},
        {"experiment_id": "r1", "p_value": 0.04, "decided_at": "2025-02-01T00:00:00Z", "tier": "revenue_critical"},
        {"experiment_id": "r2", "p_value": 0.20, "decided_at": "2025-02-02T00:00:00Z", "tier": "revenue_critical"},
        {"experiment_id": "future", "p_value": 0.001, "decided_at": "2025-04-01T00:00:00Z", "tier": "standard"},
    ]
    rows = {row["experiment_id"]: row for row in fdr_registry(decisions, now)}
    # "old" and "future" are outside (now − 12 months, now]
    assert set(rows) == {"edge", "s1", "s2", "r1", "r2"}
    # standard family, m=3, q=0.10: sorted 0.02, 0.04, 0.30 vs 0.0333, 0.0667, 0.10 → two rejections
    assert [rows[e]["significant"] for e in ("edge", "s1", "s2")] == [True, True, False]
    assert rows["s1"]["threshold"] == pytest.approx(2 * 0.10 / 3)
    # revenue-critical family, m=2, q=0.05: 0.04 > 0.025 and 0.20 > 0.05 → none, though 0.04 < 0.05 raw
    assert [rows[e]["significant"] for e in ("r1", "r2")] == [False, False]
    assert rows["r1"]["q"] == 0.05 and rows["r1"]["m"] == 2


def test_registry_rejects_unknown_tiers():
    with pytest.raises(ValueError):
        fdr_registry([{"experiment_id": "x", "p_value": 0.1, "decided_at": "2025-01-01", "tier": "gold"}], "2025-02-01")


def test_months_before_clamps_to_month_end():
    assert months_before(datetime(2024, 2, 29), 12) == datetime(2023, 2, 28)
    assert months_before(datetime(2025, 1, 15), 13) == datetime(2023, 12, 15)
