"""CloudWatch reads for the gates (botocore Stubber): one period over the window, sums added across datapoints and
pages, p99 as the max, no datapoints -> None, composite alarm states."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import ANY, Stubber

from kanaria.dal.metrics import QUERIES, CloudWatchMetricsReader, metric_queries, window_period
from kanaria.dal.retry import Backoff
from kanaria.errors import OperationalError

START = datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=4, seconds=10)


def test_one_period_covers_the_window() -> None:
    assert window_period(START, START + timedelta(seconds=5)) == 60
    assert window_period(START, END) == 4 * 3600 + 60
    queries = metric_queries("Kanaria", 120)
    assert len(queries) == 2 * len(QUERIES)
    latency = next(q for q in queries if q["Id"] == "c_latency_p99_ms")["MetricStat"]
    assert latency == {
        "Metric": {
            "Namespace": "Kanaria",
            "MetricName": "LatencyMs",
            "Dimensions": [{"Name": "target", "Value": "canary"}],
        },
        "Period": 120,
        "Stat": "p99",
    }


def _result(query_id: str, values: list[float]) -> dict:
    return {
        "Id": query_id,
        "Label": query_id,
        "StatusCode": "Complete",
        "Values": values,
        "Timestamps": [START + timedelta(minutes=i) for i in range(len(values))],
    }


def test_reads_aggregates_and_alarm_states() -> None:
    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    reader = CloudWatchMetricsReader("Kanaria", "crit", "warn", client=client)
    with Stubber(client) as stub:
        expected = {
            "MetricDataQueries": metric_queries("Kanaria", window_period(START, END)),
            "StartTime": START,
            "EndTime": END,
            "ScanBy": "TimestampAscending",
        }
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    _result("c_observations", [600.0]),
                    _result("c_errors", [1.0]),
                    _result("c_latency_p99_ms", [2100.0]),
                    _result("p_observations", [9000.0]),
                    _result("p_latency_p99_ms", [2000.0]),
                    _result("c_hallucinations", []),
                ],
                "NextToken": "page-2",
            },
            expected,
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    _result("c_observations", [400.0]),
                    _result("c_errors", [2.0]),
                    _result("c_latency_p99_ms", [2300.0]),
                ]
            },
            {**expected, "NextToken": "page-2"},
        )
        stub.add_response(
            "describe_alarms",
            {
                "CompositeAlarms": [
                    {"AlarmName": "crit", "StateValue": "OK"},
                    {"AlarmName": "warn", "StateValue": "ALARM"},
                ]
            },
            {"AlarmNames": ["crit", "warn"], "AlarmTypes": ANY},
        )
        snapshot = reader.read(START, END)
        stub.assert_no_pending_responses()
    assert snapshot.canary.observations == 1000 and snapshot.canary.errors == 3
    assert snapshot.canary.latency_p99_ms == 2300  # conservative across datapoints
    assert snapshot.canary.hallucinations is None and snapshot.canary.csat_count is None  # missing, not 0
    assert snapshot.primary.errors is None and snapshot.primary.observations == 9000
    assert snapshot.alarms == {"crit": "OK", "warn": "ALARM"}


def _no_wait() -> Backoff:
    return Backoff(sleep=lambda seconds: None)


def test_a_throttled_read_is_retried_inside_the_look() -> None:
    # Given GetMetricData throttled once (ThrottlingException) and DescribeAlarms throttled once
    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    backoff = _no_wait()
    reader = CloudWatchMetricsReader("Kanaria", "crit", client=client, backoff=backoff)
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "ThrottlingException", "Rate exceeded", http_status_code=400)
        stub.add_response("get_metric_data", {"MetricDataResults": [_result("c_observations", [500.0])]})
        stub.add_client_error("describe_alarms", "Throttling", "Rate exceeded", http_status_code=400)
        stub.add_response("describe_alarms", {"CompositeAlarms": [{"AlarmName": "crit", "StateValue": "OK"}]})
        # When the gate reads its window
        snapshot = reader.read(START, END)
        stub.assert_no_pending_responses()
    # Then both reads were retried and their answers are the snapshot
    assert snapshot.canary.observations == 500 and snapshot.alarms == {"crit": "OK"}
    assert backoff.retries == 2


def test_a_read_still_throttled_after_the_retries_is_missing_data_and_holds() -> None:
    # Given CloudWatch throttling every attempt of both reads
    from kanaria.domain.rollout import next_step
    from kanaria.domain.rollout_gates import Outcome, evaluate_gates
    from kanaria.domain.rollout_plan import Stage, StageGates

    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    backoff = _no_wait()
    reader = CloudWatchMetricsReader("Kanaria", "crit", "warn", client=client, backoff=backoff)
    with Stubber(client) as stub:
        for _ in range(backoff.max_attempts):
            stub.add_client_error("get_metric_data", "ThrottlingException", "Rate exceeded", http_status_code=400)
        for _ in range(backoff.max_attempts):
            stub.add_client_error("describe_alarms", "Throttling", "Rate exceeded", http_status_code=400)
        # When the gate reads its window
        snapshot = reader.read(START, END)
        stub.assert_no_pending_responses()
    # Then nothing was read: every metric is missing (never zero) and no alarm state is known
    assert all(value is None for value in snapshot.canary.model_dump().values())
    assert all(value is None for value in snapshot.primary.model_dump().values())
    assert snapshot.alarms == {}
    # And the gate holds (missing data is inconclusive), up to the hold bound and no further
    gates = StageGates(max_error_rate=0.02, max_latency_p99_increase=0.2, alarms=True)
    result = evaluate_gates(gates, snapshot)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert any("critical_alarm: crit not found" == reason for reason in result.reasons)
    stage = Stage(name="five", percent=5, min_duration_seconds=600, max_hold_seconds=900, gates=gates)
    assert next_step(stage, result.outcome, 700, last_stage=False).decision == "hold"
    assert next_step(stage, result.outcome, 1500, last_stage=False).decision == "rollback"


def test_a_read_timeout_is_retried_then_missing_data() -> None:
    class TimingOut:
        calls = 0

        def get_metric_data(self, **_: object) -> dict:
            TimingOut.calls += 1
            raise ReadTimeoutError(endpoint_url="https://monitoring.ap-northeast-1.amazonaws.com/")

        def describe_alarms(self, **_: object) -> dict:
            return {"CompositeAlarms": [{"AlarmName": "crit", "StateValue": "OK"}]}

    snapshot = CloudWatchMetricsReader("Kanaria", "crit", client=TimingOut(), backoff=_no_wait()).read(START, END)
    assert TimingOut.calls == 3
    assert snapshot.canary.observations is None and snapshot.alarms == {"crit": "OK"}


def test_a_cloudwatch_error_that_is_not_transient_is_an_operational_error() -> None:
    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "AccessDenied", "not allowed", http_status_code=403)
        with pytest.raises(OperationalError, match="CloudWatch read failed") as caught:
            CloudWatchMetricsReader("Kanaria", client=client, backoff=_no_wait()).read(START, END)
    assert caught.value.field == "metrics"


def test_critical_alarm_state() -> None:
    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    assert CloudWatchMetricsReader("Kanaria", client=client).critical_alarm_state() is None  # none configured
    reader = CloudWatchMetricsReader("Kanaria", "crit", "warn", client=client, backoff=_no_wait())
    with Stubber(client) as stub:
        stub.add_response(
            "describe_alarms",
            {"CompositeAlarms": [{"AlarmName": "crit", "StateValue": "ALARM"}]},
            {"AlarmNames": ["crit", "warn"], "AlarmTypes": ANY},
        )
        stub.add_response(
            "describe_alarms", {"CompositeAlarms": []}, {"AlarmNames": ["crit", "warn"], "AlarmTypes": ANY}
        )
        for _ in range(3):
            stub.add_client_error("describe_alarms", "Throttling", "Rate exceeded")
        assert reader.critical_alarm_state() == ("crit", "ALARM")
        assert reader.critical_alarm_state() == ("crit", "NOT_FOUND")
        with pytest.raises(OperationalError, match="DescribeAlarms failed") as caught:
            reader.critical_alarm_state()
    assert caught.value.field == "alarms"


def test_the_gate_reads_the_composites_children() -> None:
    # Given the critical composite still OK but its error-rate child already in ALARM (composites follow their
    # children), the gate fails; a warning child in ALARM holds.
    from kanaria.domain.rollout_gates import Outcome, evaluate_gates
    from kanaria.domain.rollout_plan import StageGates

    client = boto3.client("cloudwatch", region_name="ap-northeast-1")
    children = ["kanaria-canary-error-rate", "kanaria-canary-throttling", "kanaria-canary-quality-drop"]
    reader = CloudWatchMetricsReader("Kanaria", "crit", "warn", client=client, child_alarms=children)
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": []})
        stub.add_response(
            "describe_alarms",
            {
                "CompositeAlarms": [
                    {"AlarmName": "crit", "StateValue": "OK"},
                    {"AlarmName": "warn", "StateValue": "OK"},
                ],
                "MetricAlarms": [
                    {"AlarmName": "kanaria-canary-error-rate", "StateValue": "ALARM"},
                    {"AlarmName": "kanaria-canary-throttling", "StateValue": "OK"},
                    {"AlarmName": "kanaria-canary-quality-drop", "StateValue": "ALARM"},
                ],
            },
            {"AlarmNames": ["crit", "warn", *children[:2], children[2]], "AlarmTypes": ANY},
        )
        snapshot = reader.read(START, END)
    result = evaluate_gates(StageGates(), snapshot)
    assert result.outcome is Outcome.FAIL
    assert [c.reason for c in result.checks if c.outcome is Outcome.FAIL] == ["kanaria-canary-error-rate is in ALARM"]
    assert any("quality-drop is in ALARM: holding" in c.reason for c in result.checks)
