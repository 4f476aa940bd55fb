"""CloudWatch reads for the canary judge: per-minute canary and primary counts per stream (metric x intent).

Two GetMetricData calls per look. The first reads the primary's latency p-quantile and quality q-quantile over
the `reference_periods` before the judged periods (the cut-offs that make "slow" and "poor" events); the second
reads, per minute, side and intent, the Kanaria EMF metrics: sums for event counts (errors, throttles,
hallucinations, safety stops out of Observations) and, for the distributions, SampleCount with the percentile
rank PR(:cut) (the share of values at or below the cut-off; CloudWatch statistic syntax). The cut-offs come from
earlier minutes only, so each minute's events are judged against a threshold fixed before they happened.

Missing data is never zero: a stream's minute counts only when its trials and its events both have a
datapoint for both sides' trials; a side without datapoints that minute contributes no trials. Throttles, 5xx and
timeouts are retried inside the look (dal.retry.Backoff); still failing, the look reads no minutes (the judge
keeps its state and reads the same minutes at its next look), never a failed task.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from kanaria.canary.judge import OVERALL, Counts, JudgeSettings, Metric, MinuteCounts, stream_key
from kanaria.dal.retry import AWS_ERRORS, Backoff, is_transient, single_attempt_client
from kanaria.errors import OperationalError
from kanaria.names import (
    DIM_INTENT,
    DIM_TARGET,
    METRIC_CSAT,
    METRIC_ERRORS,
    METRIC_HALLUCINATIONS,
    METRIC_LATENCY,
    METRIC_OBSERVATIONS,
    METRIC_QUALITY,
    METRIC_SAFETY_STOPS,
    METRIC_THROTTLES,
    TARGET_CANARY,
    TARGET_PRIMARY,
)

SIDES = {"c": TARGET_CANARY, "p": TARGET_PRIMARY}

logger = Logger(child=True)
# Event-count metrics: judged metric -> CloudWatch metric summed (trials: Observations).
EVENT_METRICS = {
    Metric.ERRORS: METRIC_ERRORS,
    Metric.THROTTLES: METRIC_THROTTLES,
    Metric.HALLUCINATIONS: METRIC_HALLUCINATIONS,
    Metric.SAFETY_STOPS: METRIC_SAFETY_STOPS,
}
# Distribution metrics: judged metric -> (CloudWatch metric, events are above the cut-off).
DISTRIBUTION_METRICS = {
    Metric.SLOW: (METRIC_LATENCY, True),
    Metric.POOR_QUALITY: (METRIC_QUALITY, False),
    Metric.DISSATISFIED: (METRIC_CSAT, False),
}


def _dimensions(target: str, intent: str) -> list[dict[str, str]]:
    dims = [{"Name": DIM_TARGET, "Value": target}]
    if intent != OVERALL:
        dims.append({"Name": DIM_INTENT, "Value": intent})
    return dims


def _stat_query(
    query_id: str, metric: str, target: str, intent: str, stat: str, period: int, namespace: str
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": _dimensions(target, intent)},
            "Period": period,
            "Stat": stat,
        },
    }


def percent_rank_stat(cut: float) -> str:
    """CloudWatch's percentile-rank statistic: % of values <= cut."""
    return f"PR(:{cut:.6f})"


def cut_offs_queries(
    settings: JudgeSettings, namespace: str, period: int
) -> tuple[list[dict[str, Any]], dict[str, tuple[Metric, str]]]:
    """Queries for the primary's cut-offs over the reference window: (queries, id -> (metric, intent))."""
    queries: list[dict[str, Any]] = []
    ids: dict[str, tuple[Metric, str]] = {}
    intents = [OVERALL, *settings.intents]
    for metric, (cw_metric, _) in DISTRIBUTION_METRICS.items():
        if metric not in settings.metrics or metric is Metric.DISSATISFIED:
            continue
        quantile = settings.latency_quantile if metric is Metric.SLOW else settings.quality_quantile
        for index, intent in enumerate(intents):
            query_id = f"cut_{metric.name.lower()}_{index}"
            queries.append(
                _stat_query(query_id, cw_metric, TARGET_PRIMARY, intent, f"p{quantile * 100:g}", period, namespace)
            )
            ids[query_id] = (metric, intent)
    return queries, ids


def count_queries(
    settings: JudgeSettings, namespace: str, cuts: dict[tuple[Metric, str], float]
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str, str, str]]]:
    """Per-minute queries: (queries, id -> (side, intent, kind, name)); kind is trials, events or rank."""
    queries: list[dict[str, Any]] = []
    ids: dict[str, tuple[str, str, str, str]] = {}

    def add(side: str, intent: str, kind: str, name: str, metric: str, stat: str) -> None:
        query_id = f"q{len(queries)}"
        queries.append(_stat_query(query_id, metric, SIDES[side], intent, stat, settings.period_seconds, namespace))
        ids[query_id] = (side, intent, kind, name)

    for side in SIDES:
        for intent in (OVERALL, *settings.intents):
            add(side, intent, "trials", METRIC_OBSERVATIONS, METRIC_OBSERVATIONS, "Sum")
            for metric, cw_metric in EVENT_METRICS.items():
                if metric in settings.metrics:
                    add(side, intent, "events", metric.value, cw_metric, "Sum")
            for metric, (cw_metric, _) in DISTRIBUTION_METRICS.items():
                if metric not in settings.metrics:
                    continue
                cut = settings.dissatisfied_csat if metric is Metric.DISSATISFIED else cuts.get((metric, intent))
                if cut is None:
                    continue  # no primary reference yet: the stream waits for one
                add(side, intent, "trials", cw_metric, cw_metric, "SampleCount")
                add(side, intent, "rank", metric.value, cw_metric, percent_rank_stat(cut))
    return queries, ids


def minute_counts(
    settings: JudgeSettings,
    values: dict[tuple[str, str, str, str], dict[datetime, float]],
    start: datetime,
    end: datetime,
    cuts: dict[tuple[Metric, str], float],
) -> list[MinuteCounts]:
    """Assemble per-minute stream counts from the query results ((side, intent, kind, name) -> {minute: value});
    a latency or quality stream without a primary cut-off yet is left out."""
    minutes = []
    at = start
    while at < end:
        streams: dict[str, Counts] = {}
        for intent in (OVERALL, *settings.intents):
            for metric in settings.metrics:
                if metric in (Metric.SLOW, Metric.POOR_QUALITY) and (metric, intent) not in cuts:
                    continue
                sides = [_side_counts(values, side, intent, metric, at) for side in SIDES]
                if all(s is not None for s in sides):
                    (x_c, n_c), (x_p, n_p) = sides  # type: ignore[misc]
                    streams[stream_key(metric, intent)] = Counts(
                        canary_events=x_c, canary_trials=n_c, primary_events=x_p, primary_trials=n_p
                    )
        minutes.append(MinuteCounts(minute=at, streams=streams))
        at += timedelta(seconds=settings.period_seconds)
    return minutes


def _side_counts(
    values: dict[tuple[str, str, str, str], dict[datetime, float]], side: str, intent: str, metric: Metric, at: datetime
) -> tuple[float, float] | None:
    """(events, trials) of one side and minute; (0, 0) without trials; None when events are missing."""
    if metric in EVENT_METRICS:
        trials = values.get((side, intent, "trials", METRIC_OBSERVATIONS), {}).get(at)
        events = values.get((side, intent, "events", metric.value), {}).get(at)
        if not trials:
            return 0.0, 0.0
        return None if events is None else (min(events, trials), trials)
    cw_metric, above = DISTRIBUTION_METRICS[metric]
    trials = values.get((side, intent, "trials", cw_metric), {}).get(at)
    rank = values.get((side, intent, "rank", metric.value), {}).get(at)
    if not trials:
        return 0.0, 0.0
    if rank is None:
        return None
    at_or_below = round(trials * rank / 100.0)
    return (trials - at_or_below if above else at_or_below), trials


class CloudWatchCanaryReader:
    """The judge's minutes from CloudWatch GetMetricData (Kanaria namespace, {target} and {target, intent})."""

    def __init__(self, namespace: str, client: Any | None = None, backoff: Backoff | None = None):
        self._namespace = namespace
        self._client = client or single_attempt_client("cloudwatch")
        self._backoff = backoff or Backoff()

    def read_minutes(self, start: datetime, end: datetime, settings: JudgeSettings) -> list[MinuteCounts]:
        """Counts of every stream for each whole minute in [start, end); none when CloudWatch keeps failing."""
        try:
            return self._read_minutes(start, end, settings)
        except AWS_ERRORS as exc:
            if not is_transient(exc):
                raise OperationalError(f"CloudWatch read failed: {exc}", field="metrics") from exc
            logger.warning(
                "CloudWatch read still failing after retries: no minutes read this look",
                error=str(exc),
                attempts=self._backoff.max_attempts,
            )
            return []

    def _read_minutes(self, start: datetime, end: datetime, settings: JudgeSettings) -> list[MinuteCounts]:
        reference = timedelta(seconds=settings.reference_periods * settings.period_seconds)
        queries, cut_ids = cut_offs_queries(settings, self._namespace, int(reference.total_seconds()))
        cuts: dict[tuple[Metric, str], float] = {}
        if queries:
            for query_id, series in self._get(queries, start - reference, start).items():
                if series:
                    cuts[cut_ids[query_id]] = max(series.values())
        queries, count_ids = count_queries(settings, self._namespace, cuts)
        values = {count_ids[qid]: series for qid, series in self._get(queries, start, end).items()}
        return minute_counts(settings, values, start, end, cuts)

    def _get(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, dict[datetime, float]]:
        """query id -> {period start: value}, over every page (read again from the start on a transient error)."""

        def every_page() -> dict[str, dict[datetime, float]]:
            series: dict[str, dict[datetime, float]] = defaultdict(dict)
            pages = self._client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    for stamp, value in zip(result.get("Timestamps", []), result.get("Values", [])):
                        series[result["Id"]][stamp] = value
            return series

        return self._backoff.call(every_page)
