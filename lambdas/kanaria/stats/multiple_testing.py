"""Benjamini–Hochberg false-discovery-rate control, standalone and over a rolling registry of decisions."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

DEFAULT_Q_BY_TIER: dict[str, float] = {"standard": 0.10, "revenue_critical": 0.05}


@dataclass(frozen=True)
class BhResult:
    """Per-hypothesis outcome of the step-up procedure, in the input order."""

    rejected: list[bool]
    adjusted: list[float]
    thresholds: list[float]
    ranks: list[int]


def benjamini_hochberg(p_values: Sequence[float], q: float) -> BhResult:
    """BH step-up: reject the k smallest p-values, k = max{i : p_(i) ≤ i·q/m}; adjusted p = BH q-values."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be in (0, 1)")
    m = len(p_values)
    if any(not 0.0 <= p <= 1.0 for p in p_values):
        raise ValueError("p-values must be in [0, 1]")
    order = sorted(range(m), key=lambda i: p_values[i])
    ranks = [0] * m
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    largest = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= rank * q / m:
            largest = rank  # step-up: a later pass rescues earlier failures
    adjusted_sorted = [0.0] * m
    running = 1.0
    for pos in range(m - 1, -1, -1):
        running = min(running, p_values[order[pos]] * m / (pos + 1))
        adjusted_sorted[pos] = running
    adjusted = [0.0] * m
    for pos, i in enumerate(order):
        adjusted[i] = adjusted_sorted[pos]
    return BhResult(
        rejected=[ranks[i] <= largest for i in range(m)],
        adjusted=adjusted,
        thresholds=[ranks[i] * q / m for i in range(m)],
        ranks=ranks,
    )


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def months_before(moment: datetime, months: int) -> datetime:
    """Same wall-clock instant `months` calendar months earlier (day clamped to the month's length)."""
    years, month_index = divmod(moment.month - 1 - months, 12)
    year, month = moment.year + years, month_index + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def fdr_registry(
    decisions: Iterable[Mapping[str, Any]],
    now: datetime | str,
    q_by_tier: Mapping[str, float] | None = None,
    window_months: int = 12,
) -> list[dict[str, Any]]:
    """BH per tier over registry decisions with now − window < decided_at ≤ now; one row per in-window decision."""
    q_by_tier = dict(DEFAULT_Q_BY_TIER if q_by_tier is None else q_by_tier)
    end = _as_utc(now)
    start = months_before(end, window_months)
    in_window: list[dict[str, Any]] = []
    for record in decisions:
        tier = record.get("tier", "standard")
        if tier not in q_by_tier:
            raise ValueError(f"unknown tier {tier!r}")
        decided_at = _as_utc(record["decided_at"])
        if start < decided_at <= end:
            in_window.append({**record, "tier": tier, "decided_at": decided_at.isoformat()})
    for tier, q in q_by_tier.items():
        family = [row for row in in_window if row["tier"] == tier]
        if not family:
            continue
        result = benjamini_hochberg([float(row["p_value"]) for row in family], q)
        for i, row in enumerate(family):
            row.update(
                q=q,
                m=len(family),
                rank=result.ranks[i],
                threshold=result.thresholds[i],
                adjusted_p=result.adjusted[i],
                significant=result.rejected[i],
            )
    return in_window
