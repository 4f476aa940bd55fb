"""CloudWatch: percentiles and percentile ranks of raw values in GetMetricData, an indexed metric store, and
the alarm registry the rehearsal's evaluator (kanaria_tools.rehearsal.alarms) writes states into."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from kanaria.percentiles import percentile as nearest_rank
from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of raw values as a float; None without values.

    CloudWatch computes percentiles from the raw values of a period (approximately, for large sets); the nearest
    rank (kanaria.percentiles) is exact for the sizes the rehearsal produces. Shared by the GetMetricData adaptation
    and the alarm evaluator, so a gate and an alarm reading the same p99 agree.
    """
    value = nearest_rank(values, p)
    return None if value is None else float(value)


_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
_PERCENT_RANK = re.compile(r"^PR\((-?\d*\.?\d*):(-?\d*\.?\d*)\)$")


def percent_rank(values: list[float], low: float | None, high: float | None) -> float | None:
    """CloudWatch's PR(low:high): % of raw values v with low < v <= high (an open side is unbounded)."""
    if not values:
        return None
    inside = sum(1 for v in values if (low is None or v > low) and (high is None or v <= high))
    return 100.0 * inside / len(values)


def _dimension_key(dimensions: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d.name, d.value) for d in dimensions))


_Groups = dict[tuple[Any, ...], list[Any]]


def _group_datums(datums: Iterable[Any], start: datetime, end: datetime) -> tuple[_Groups, _Groups]:
    """The datums of [start, end) by (namespace, name, dimensions) and by (namespace, name)."""
    groups: _Groups = defaultdict(list)
    by_name: _Groups = defaultdict(list)
    for datum in datums:
        if start <= datum.timestamp < end:
            groups[(datum.namespace, datum.name, _dimension_key(datum.dimensions))].append(datum)
            by_name[(datum.namespace, datum.name)].append(datum)
    return groups, by_name


def _period_values(
    data: list[Any], stat: str, start: datetime, end: datetime, period: int
) -> tuple[list[Any], list[Any]]:
    """moto's statistic of each period of [start, end] that has data, and the periods' timestamps."""
    from moto.cloudwatch.models import Statistics

    delta = timedelta(seconds=period)
    values, stamps = [], []
    period_start = start
    while period_start <= end:
        in_period = [d for d in data if period_start <= d.timestamp < period_start + delta]
        if in_period:
            stats = Statistics([stat], period_start)
            stats.metric_data = in_period
            values.append(stats.get_statistics_for_type(stat))
            stamps.append(stats.timestamp)
        period_start += delta
    return values, stamps


def _query_result(
    query: dict[str, Any], groups: _Groups, by_name: _Groups, start: datetime, end: datetime, scan_by: str
) -> dict[str, Any] | None:
    """One MetricStat query's series as GetMetricData answers it; None when it returns no data."""
    stat_spec = query["MetricStat"]
    metric = stat_spec["Metric"]
    namespace, name = metric["Namespace"], metric["MetricName"]
    dims = [_Dim(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
    data = groups.get((namespace, name, _dimension_key(dims)), []) if dims else by_name.get((namespace, name), [])
    if stat_spec.get("Unit"):
        data = [d for d in data if d.unit == stat_spec["Unit"]]
    values, stamps = _period_values(data, stat_spec["Stat"], start, end, int(stat_spec["Period"]))
    if scan_by == "TimestampDescending":
        values.reverse()
        stamps.reverse()
    if not query.get("ReturnData", True):
        return None
    return {
        "id": query["Id"],
        "label": query.get("Label") or f"{name} {stat_spec['Stat']}",
        "values": values,
        "timestamps": stamps,
        "status_code": "Complete",
    }


def _indexed_metric_data(original: Callable[..., Any]) -> Callable[..., Any]:
    """cloudwatch-metric-index: GetMetricData with the window's datapoints grouped once per call."""

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        if not queries or any("MetricStat" not in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        original(self, [], start_time, end_time, scan_by)  # moto's parameter validation
        start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
        groups, by_name = _group_datums(self.get_all_metrics(), start, end)
        results = [_query_result(query, groups, by_name, start, end, scan_by) for query in queries]
        return [result for result in results if result is not None]

    return get_metric_data


@dataclass(frozen=True)
class _Dim:
    name: str
    value: str


def _adapt_cloudwatch(patcher: Patcher) -> None:
    from moto.cloudwatch import models as cw_models
    from moto.cloudwatch import responses

    # cloudwatch-metric-index
    patcher.setattr(
        cw_models.CloudWatchBackend,
        "get_metric_data",
        _indexed_metric_data(cw_models.CloudWatchBackend.get_metric_data),
    )

    # cloudwatch-percentiles
    original_statistic = cw_models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = _PERCENTILE.match(stat or "")
        if match:
            return percentile(self.metric_single_values_list, float(match.group(1)))
        rank = _PERCENT_RANK.match(stat or "")
        if rank:
            low, high = (float(bound) if bound else None for bound in rank.groups())
            return percent_rank(self.metric_single_values_list, low, high)
        return original_statistic(self, stat)

    patcher.setattr(cw_models.Statistics, "get_statistics_for_type", get_statistics_for_type)

    def put_composite_alarm(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.cloudwatch_backend.put_metric_alarm(
            name=self._get_param("AlarmName"),
            namespace=None,
            metric_name=None,
            comparison_operator=None,
            evaluation_periods=None,
            period=None,
            threshold=None,
            statistic=None,
            description=self._get_param("AlarmDescription"),
            dimensions=[],
            alarm_actions=self._get_param("AlarmActions", []),
            ok_actions=self._get_param("OKActions", []),
            insufficient_data_actions=self._get_param("InsufficientDataActions", []),
            actions_enabled=self._get_bool_param("ActionsEnabled"),
            rule=self._get_param("AlarmRule"),
            tags=self._get_param("Tags", []),
        )
        return EmptyResult()

    patcher.setattr(responses.CloudWatchResponse, "put_composite_alarm", put_composite_alarm)


def _metric_data_queries(alarm: dict[str, Any]) -> list[Any]:
    """moto's MetricDataQuery objects of an alarm's Metrics (CloudFormation property names)."""
    from moto.cloudwatch.models import Metric, MetricDataQuery, MetricStat

    queries = []
    for query in alarm.get("Metrics") or []:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric.get("MetricName"),
                    namespace=metric.get("Namespace"),
                    dimensions=metric.get("Dimensions", []),
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=query.get("Id"),
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData"),
                expression=query.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


def register_alarm(account_id: str, region: str, alarm: dict[str, Any]) -> None:
    """Make an alarm that CloudFormation skipped visible to DescribeAlarms (CloudFormation property names)."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    # An absent property is None, as PutMetricAlarm's handler passes it (moto's hints say str/int).
    arguments: dict[str, Any] = dict(
        name=alarm["AlarmName"],
        namespace=alarm.get("Namespace"),
        metric_name=alarm.get("MetricName"),
        metric_data_queries=_metric_data_queries(alarm) or None,
        comparison_operator=alarm.get("ComparisonOperator"),
        evaluation_periods=alarm.get("EvaluationPeriods"),
        datapoints_to_alarm=alarm.get("DatapointsToAlarm"),
        period=alarm.get("Period"),
        threshold=alarm.get("Threshold"),
        statistic=alarm.get("Statistic"),
        extended_statistic=alarm.get("ExtendedStatistic"),
        description=alarm.get("AlarmDescription"),
        dimensions=alarm.get("Dimensions", []),
        alarm_actions=alarm.get("AlarmActions", []),
        ok_actions=alarm.get("OKActions", []),
        insufficient_data_actions=alarm.get("InsufficientDataActions", []),
        unit=alarm.get("Unit"),
        actions_enabled=alarm.get("ActionsEnabled", True),
        treat_missing_data=alarm.get("TreatMissingData"),
        rule=alarm.get("AlarmRule"),
    )
    backend.put_metric_alarm(**arguments)
    stored = backend.alarms[alarm["AlarmName"]]
    stored.state_value = "INSUFFICIENT_DATA"
    stored.state_reason = "Unchecked: Initial alarm creation"


def record_alarm_state(
    account_id: str, region: str, name: str, state: str, reason: str, reason_data: dict[str, Any], when: datetime
) -> dict[str, Any] | None:
    """Write an evaluated state into moto's alarm (history included); returns the alarm's description."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account_id][region].alarms.get(name)
    if alarm is None:
        return None
    alarm.update_state(reason, json.dumps(reason_data, default=str), state)
    alarm.state_updated_timestamp = when
    return {"actions_enabled": bool(alarm.actions_enabled), "arn": alarm.alarm_arn}


def alarm_actions_enabled(account_id: str, region: str, name: str) -> bool:
    """Whether the alarm's actions are enabled (DisableAlarmActions is honoured)."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account_id][region].alarms.get(name)
    return bool(alarm is None or alarm.actions_enabled)


def metric_datums(account_id: str, region: str, start: int = 0) -> tuple[list[Any], int]:
    """moto's stored metric data from index `start` on (the evaluator reads it incrementally) and the new end."""
    from moto.cloudwatch.models import cloudwatch_backends

    data = cloudwatch_backends[account_id][region].metric_data
    end = len(data)
    return data[start:end], end
