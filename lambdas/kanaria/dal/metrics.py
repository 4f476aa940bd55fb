"""CloudWatch reads for rollout gates: canary vs primary aggregates over a window, composite alarm states.

Metrics are the Kanaria EMF metrics with exactly one dimension {target: canary|primary} (what the canary alarms
and dashboard read too). Rates divide by Observations. A metric without datapoints in the window stays None:
missing data is never read as zero. Throttles, 5xx and timeouts are retried inside the read (dal.retry.Backoff);
still failing, they are missing data too (metrics None, alarm states absent: the gates hold, up to their bound),
never a failed task.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Sequence

from aws_lambda_powertools import Logger

from kanaria.dal.retry import AWS_ERRORS, Backoff, is_transient, single_attempt_client
from kanaria.domain.rollout_gates import MetricSnapshot, SideMetrics
from kanaria.errors import OperationalError
from kanaria.names import (
    CRITICAL_ALARM_KINDS,
    DIM_TARGET,
    METRIC_CSAT,
    METRIC_ERRORS,
    METRIC_HALLUCINATIONS,
    METRIC_LATENCY,
    METRIC_OBSERVATIONS,
    METRIC_QUALITY,
    METRIC_THROTTLES,
    TARGET_CANARY,
    TARGET_PRIMARY,
)

# SideMetrics field -> (metric name, statistic). Sums and counts add up across datapoints; p99 takes the max.
QUERIES: dict[str, tuple[str, str]] = {
    "observations": (METRIC_OBSERVATIONS, "Sum"),
    "errors": (METRIC_ERRORS, "Sum"),
    "throttles": (METRIC_THROTTLES, "Sum"),
    "hallucinations": (METRIC_HALLUCINATIONS, "Sum"),
    "latency_p99_ms": (METRIC_LATENCY, "p99"),
    "csat_sum": (METRIC_CSAT, "Sum"),
    "csat_count": (METRIC_CSAT, "SampleCount"),
    "quality_sum": (METRIC_QUALITY, "Sum"),
    "quality_count": (METRIC_QUALITY, "SampleCount"),
}
SIDES = {"c": TARGET_CANARY, "p": TARGET_PRIMARY}

logger = Logger(child=True)


def window_period(start: datetime, end: datetime) -> int:
    """One period covering the whole window (a multiple of 60 s), so p99 is computed over the window."""
    return max(60, math.ceil((end - start).total_seconds() / 60) * 60)


def metric_queries(namespace: str, period: int) -> list[dict[str, Any]]:
    """GetMetricData queries: one per side and SideMetrics field (ids "<side>_<field>")."""
    return [
        {
            "Id": f"{side}_{field}",
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": metric,
                    "Dimensions": [{"Name": DIM_TARGET, "Value": target}],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for side, target in SIDES.items()
        for field, (metric, stat) in QUERIES.items()
    ]


def combine(field: str, values: list[float | None]) -> float | None:
    """Aggregate a field's datapoints: None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if QUERIES[field][1].startswith("p") else math.fsum(present)


class CloudWatchMetricsReader:
    """MetricsReader on CloudWatch GetMetricData (+ DescribeAlarms for the two composite alarms)."""

    def __init__(
        self,
        namespace: str,
        critical_alarm: str | None = None,
        warning_alarm: str | None = None,
        client: Any | None = None,
        child_alarms: Sequence[str] = (),
        backoff: Backoff | None = None,
    ):
        self._namespace = namespace
        self._critical = critical_alarm or None
        self._warning = warning_alarm or None
        self._client = client or single_attempt_client("cloudwatch")
        self._backoff = backoff or Backoff()
        critical = [c for c in child_alarms if any(c.endswith(kind) for kind in CRITICAL_ALARM_KINDS)]
        self._critical_children = tuple(critical)
        self._warning_children = tuple(c for c in child_alarms if c and c not in critical)

    def read(self, start: datetime, end: datetime) -> MetricSnapshot:
        """Canary and primary aggregates over [start, end] and the alarm states (what could not be read: missing)."""
        values = self._metric_values(start, end)
        try:
            alarms = self._backoff.call(self._alarm_states)
        except AWS_ERRORS as exc:
            alarms = self._unknown("DescribeAlarms", exc)
        sides = {
            side: SideMetrics(**{field: combine(field, values.get(f"{side}_{field}", [])) for field in QUERIES})
            for side in SIDES
        }
        return MetricSnapshot(
            window_start=start.isoformat(timespec="seconds"),
            window_end=end.isoformat(timespec="seconds"),
            canary=sides["c"],
            primary=sides["p"],
            alarms=alarms,
            critical_alarm=self._critical,
            warning_alarm=self._warning,
            critical_children=self._critical_children,
            warning_children=self._warning_children,
        )

    def critical_alarm_state(self) -> tuple[str, str] | None:
        """(name, state) of the critical composite alarm, or None when none is configured."""
        if self._critical is None:
            return None
        try:
            state = self._backoff.call(self._alarm_states).get(self._critical)
        except AWS_ERRORS as exc:
            raise OperationalError(f"CloudWatch DescribeAlarms failed: {exc}", field="alarms") from exc
        return self._critical, state or "NOT_FOUND"

    def _metric_values(self, start: datetime, end: datetime) -> dict[str, list[float | None]]:
        """query id -> datapoints over every page; {} (all missing) when CloudWatch keeps failing transiently."""
        values: dict[str, list[float | None]] = {}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": metric_queries(self._namespace, window_period(start, end)),
            "StartTime": start,
            "EndTime": max(end, start + timedelta(seconds=1)),
            "ScanBy": "TimestampAscending",
        }
        try:
            while True:
                page = self._backoff.call(lambda: self._client.get_metric_data(**kwargs))
                for result in page.get("MetricDataResults", []):
                    values.setdefault(result["Id"], []).extend(result.get("Values", []))
                if not page.get("NextToken"):
                    return values
                kwargs["NextToken"] = page["NextToken"]
        except AWS_ERRORS as exc:
            return self._unknown("GetMetricData", exc)

    def _unknown(self, operation: str, exc: Exception) -> dict[str, Any]:
        # A partial read could pair one side's datapoints with nothing: all of it is missing, or the error is ours.
        if not is_transient(exc):
            raise OperationalError(f"CloudWatch read failed: {exc}", field="metrics") from exc
        logger.warning(
            "CloudWatch read still failing after retries: counted as missing data",
            operation=operation,
            error=str(exc),
            attempts=self._backoff.max_attempts,
        )
        return {}

    def _alarm_states(self) -> dict[str, str]:
        names = [n for n in (self._critical, self._warning, *self._critical_children, *self._warning_children) if n]
        if not names:
            return {}
        page = self._client.describe_alarms(AlarmNames=names, AlarmTypes=["CompositeAlarm", "MetricAlarm"])
        return {
            a["AlarmName"]: a["StateValue"] for a in (*page.get("CompositeAlarms", []), *page.get("MetricAlarms", []))
        }
