"""The judge's CloudWatch reads: queries (dimensions, PR statistics, cut-offs from earlier minutes) and the
assembly of per-minute stream counts, with missing data never read as zero."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from kanaria.canary.judge import OVERALL, JudgeSettings, Metric, stream_key
from kanaria.dal.canary_metrics import CloudWatchCanaryReader, percent_rank_stat
from kanaria.dal.retry import Backoff
from kanaria.errors import OperationalError

START = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
SETTINGS = JudgeSettings(intents={"recommendation": 1.0}, critical_intents=())


class FakeCloudWatch:
    """get_metric_data through a paginator: answers each query from `value(query, minute)`."""

    def __init__(self, value):
        self.value = value
        self.calls: list[dict] = []

    def get_paginator(self, name):
        assert name == "get_metric_data"
        return self

    def paginate(self, **kwargs):
        self.calls.append(kwargs)
        period = kwargs["MetricDataQueries"][0]["MetricStat"]["Period"]
        stamps = []
        at = kwargs["StartTime"]
        while at < kwargs["EndTime"]:
            stamps.append(at)
            at += timedelta(seconds=period)
        results = []
        for query in kwargs["MetricDataQueries"]:
            pairs = [(s, self.value(query["MetricStat"], s)) for s in stamps]
            pairs = [(s, v) for s, v in pairs if v is not None]
            results.append({"Id": query["Id"], "Timestamps": [s for s, _ in pairs], "Values": [v for _, v in pairs]})
        yield {"MetricDataResults": results}


def _dims(stat):
    return {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}


def healthy(stat, minute):
    dims, name, kind = _dims(stat), stat["Metric"]["MetricName"], stat["Stat"]
    canary = dims["target"] == "canary"
    if kind == "p95":
        return 2400.0
    if kind == "p10":
        return 0.71
    n = 30.0 if canary else 570.0
    if name == "Observations":
        return n
    if kind == "SampleCount":
        return n if name != "Csat" else n / 5
    if kind.startswith("PR("):
        return {"LatencyMs": 90.0, "QualityScore": 10.0, "Csat": 20.0}[name]
    if name == "Errors":
        return 3.0 if canary and dims.get("intent") == "recommendation" else 1.0
    return 0.0


def test_reads_both_sides_per_intent_with_percent_ranks_at_the_primarys_cut_offs():
    client = FakeCloudWatch(healthy)
    minutes = CloudWatchCanaryReader("Kanaria", client=client).read_minutes(
        START, START + timedelta(minutes=2), SETTINGS
    )
    reference, counts = client.calls
    # the cut-offs come from the primary over the 15 minutes before the judged ones, one period
    assert reference["StartTime"] == START - timedelta(minutes=15) and reference["EndTime"] == START
    assert {q["MetricStat"]["Stat"] for q in reference["MetricDataQueries"]} == {"p95", "p10"}
    assert all(_dims(q["MetricStat"])["target"] == "primary" for q in reference["MetricDataQueries"])
    stats = {q["MetricStat"]["Stat"] for q in counts["MetricDataQueries"]}
    assert {percent_rank_stat(2400.0), percent_rank_stat(0.71), percent_rank_stat(2.0)} <= stats
    assert len(minutes) == 2 and minutes[0].minute == START
    streams = minutes[0].streams
    errors = streams[stream_key(Metric.ERRORS, "recommendation")]
    assert (errors.canary_events, errors.canary_trials, errors.primary_events, errors.primary_trials) == (3, 30, 1, 570)
    slow = streams[stream_key(Metric.SLOW, OVERALL)]
    assert (slow.canary_events, slow.canary_trials) == (3, 30)  # 10% above the cut-off
    poor = streams[stream_key(Metric.POOR_QUALITY, OVERALL)]
    assert (poor.canary_events, poor.primary_events) == (3, 57)  # 10% at or below it
    dissatisfied = streams[stream_key(Metric.DISSATISFIED, OVERALL)]
    assert (dissatisfied.canary_events, dissatisfied.canary_trials) == (1, 6)


def test_missing_event_datapoints_leave_the_stream_out_not_zero():
    def no_canary_errors(stat, minute):
        if stat["Metric"]["MetricName"] == "Errors" and _dims(stat)["target"] == "canary":
            return None
        return healthy(stat, minute)

    minutes = CloudWatchCanaryReader("Kanaria", client=FakeCloudWatch(no_canary_errors)).read_minutes(
        START, START + timedelta(minutes=1), SETTINGS
    )
    assert stream_key(Metric.ERRORS, OVERALL) not in minutes[0].streams
    assert stream_key(Metric.THROTTLES, OVERALL) in minutes[0].streams


def test_no_primary_reference_yet_skips_the_distribution_streams():
    def no_reference(stat, minute):
        return None if stat["Stat"] in {"p95", "p10"} else healthy(stat, minute)

    minutes = CloudWatchCanaryReader("Kanaria", client=FakeCloudWatch(no_reference)).read_minutes(
        START, START + timedelta(minutes=1), SETTINGS
    )
    assert stream_key(Metric.SLOW, OVERALL) not in minutes[0].streams
    assert stream_key(Metric.DISSATISFIED, OVERALL) in minutes[0].streams  # fixed cut-off (CSAT <= 2)


def test_a_side_without_traffic_contributes_no_trials():
    def no_canary(stat, minute):
        return None if _dims(stat)["target"] == "canary" else healthy(stat, minute)

    minutes = CloudWatchCanaryReader("Kanaria", client=FakeCloudWatch(no_canary)).read_minutes(
        START, START + timedelta(minutes=1), SETTINGS
    )
    errors = minutes[0].streams[stream_key(Metric.ERRORS, OVERALL)]
    assert errors.canary_trials == 0 and errors.primary_trials == 570


class Throttled(FakeCloudWatch):
    """Answers ThrottlingException for the first `failures` reads, then like FakeCloudWatch."""

    def __init__(self, value, failures):
        super().__init__(value)
        self.failures = failures

    def paginate(self, **kwargs):
        if self.failures:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetMetricData")
        yield from super().paginate(**kwargs)


def test_a_throttled_read_is_retried_inside_the_look():
    backoff = Backoff(sleep=lambda seconds: None)
    client = Throttled(healthy, failures=2)
    minutes = CloudWatchCanaryReader("Kanaria", client=client, backoff=backoff).read_minutes(
        START, START + timedelta(minutes=2), SETTINGS
    )
    assert backoff.retries == 2 and len(minutes) == 2
    assert minutes[0].streams[stream_key(Metric.ERRORS, OVERALL)].canary_trials == 30


def test_a_read_still_throttled_after_the_retries_reads_no_minutes():
    # Given every attempt throttled: the look reads nothing (the judge keeps its state for the next look)
    backoff = Backoff(sleep=lambda seconds: None)
    client = Throttled(healthy, failures=backoff.max_attempts)
    minutes = CloudWatchCanaryReader("Kanaria", client=client, backoff=backoff).read_minutes(
        START, START + timedelta(minutes=2), SETTINGS
    )
    assert minutes == [] and client.failures == 0


def test_cloudwatch_errors_that_are_not_transient_become_operational_errors():
    class Failing(FakeCloudWatch):
        def paginate(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "GetMetricData")

    with pytest.raises(OperationalError, match="AccessDenied"):
        CloudWatchCanaryReader("Kanaria", client=Failing(healthy), backoff=Backoff(sleep=lambda s: None)).read_minutes(
            START, START + timedelta(minutes=1), SETTINGS
        )
