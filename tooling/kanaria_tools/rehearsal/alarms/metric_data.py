"""The metric data the evaluator reads (moto's stored datapoints, read incrementally) and the statistics of a
period (SampleCount, Sum, Average, Minimum, Maximum, pNN)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from kanaria_tools.rehearsal.alarms.definitions import MetricId
from kanaria_tools.rehearsal.alarms.errors import AlarmDefinitionError
from kanaria_tools.rehearsal.moto_adaptations import percentile


@dataclass(frozen=True)
class Datum:
    """One stored value (or statistic set) of a metric at a wall time (epoch seconds)."""

    at: float
    value: float | None = None
    sum: float | None = None
    count: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None


class MetricStore:
    """Index over the emulator's stored metric data, refreshed incrementally."""

    def __init__(self, source: Callable[[int], tuple[list[Any], int]]):
        self._source = source
        self._cursor = 0
        self._series: dict[MetricId, tuple[list[float], list[Datum]]] = {}

    def refresh(self) -> None:
        """Read what was put since the last refresh."""
        new, self._cursor = self._source(self._cursor)
        for item in new:
            self.add(item)

    def add(self, item: Any) -> None:
        """Index one moto metric datum (MetricDatum or MetricAggregatedDatum)."""
        key = MetricId(item.namespace, item.name, frozenset((d.name, str(d.value)) for d in item.dimensions))
        stamp = item.timestamp
        if isinstance(stamp, str):
            stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        at = stamp.timestamp()
        if hasattr(item, "value"):
            datum = Datum(at, value=float(item.value), unit=item.unit)
        else:
            datum = Datum(
                at,
                sum=float(item.sum),
                count=float(item.sample_count),
                minimum=float(item.min),
                maximum=float(item.max),
                unit=item.unit,
            )
        times, data = self._series.setdefault(key, ([], []))
        index = bisect.bisect_right(times, at)
        times.insert(index, at)
        data.insert(index, datum)

    def window(self, metric: MetricId, start: float, end: float, unit: str | None = None) -> list[Datum]:
        """Data with start <= at < end (wall epoch seconds)."""
        times, data = self._series.get(metric, ([], []))
        chosen = data[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
        return [d for d in chosen if unit is None or d.unit == unit] if unit else chosen

    def metrics(self) -> list[MetricId]:
        """Every metric seen."""
        return list(self._series)


def statistic(data: list[Datum], stat: str) -> float | None:
    """A CloudWatch statistic over one period's data; None (missing) without data."""
    if not data:
        return None
    singles = [d.value for d in data if d.value is not None]
    sets = [d for d in data if d.value is None]
    count = len(singles) + sum(d.count or 0 for d in sets)
    if count == 0:
        return None
    if stat == "SampleCount":
        return float(count)
    total = math.fsum(singles) + math.fsum(d.sum or 0 for d in sets)
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*singles, *(d.minimum for d in sets if d.minimum is not None)])
    if stat == "Maximum":
        return max([*singles, *(d.maximum for d in sets if d.maximum is not None)])
    if stat.startswith("p"):
        return percentile(singles, float(stat[1:]))  # statistic sets carry no distribution
    raise AlarmDefinitionError(f"statistic {stat!r} is not evaluated by the rehearsal", field="Statistic")
