"""The rehearsal's CloudWatch alarm evaluator against the documented semantics (no emulator needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kanaria_tools.rehearsal.alarms import (
    AlarmDefinitionError,
    AlarmEvaluator,
    Datum,
    MetricId,
    MetricStore,
    evaluate_expression,
    evaluate_rule,
    load_definitions,
    parse_definition,
    parse_expression,
    parse_rule,
    statistic,
)

ACCOUNT, REGION = "123456789012", "ap-northeast-1"


@dataclass
class _Dim:
    name: str
    value: str


@dataclass
class _Datum:
    """Shape of moto's MetricDatum."""

    namespace: str
    name: str
    dimensions: list
    timestamp: Any
    value: float
    unit: str | None = None


class _Sink:
    def __init__(self) -> None:
        self.lambdas: list[tuple[str, dict]] = []
        self.sns: list[tuple[str, str, str]] = []

    def invoke_lambda(self, function_arn: str, event: dict) -> None:
        self.lambdas.append((function_arn, event))

    def publish_sns(self, topic_arn: str, subject: str, message: str) -> None:
        self.sns.append((topic_arn, subject, message))


class _Source:
    """Stored datums the store reads incrementally (wall time == scenario time here)."""

    def __init__(self) -> None:
        self.data: list[_Datum] = []

    def put(self, name: str, at: float, *values: float, dims: dict[str, str] | None = None) -> None:
        from datetime import datetime, timezone

        for value in values:
            self.data.append(
                _Datum(
                    "NS",
                    name,
                    [_Dim(k, v) for k, v in (dims or {"target": "canary"}).items()],
                    datetime.fromtimestamp(at, tz=timezone.utc),
                    value,
                )
            )

    def __call__(self, start: int) -> tuple[list, int]:
        return self.data[start:], len(self.data)


def _metric_alarm(**overrides: Any) -> dict[str, Any]:
    body = {
        "AlarmName": "lat",
        "Namespace": "NS",
        "MetricName": "LatencyMs",
        "Dimensions": [{"Name": "target", "Value": "canary"}],
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 3,
        "Threshold": 100,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "missing",
        "AlarmActions": ["arn:aws:lambda:ap-northeast-1:123456789012:function:rollback"],
        "OKActions": ["arn:aws:sns:ap-northeast-1:123456789012:alerts"],
    }
    body.update(overrides)
    return body


def _evaluator(
    *alarms: dict[str, Any], composite: dict[str, Any] | None = None
) -> tuple[AlarmEvaluator, _Source, _Sink]:
    source, sink = _Source(), _Sink()
    definitions = [parse_definition("S", a["AlarmName"], False, a) for a in alarms]
    if composite:
        definitions.append(parse_definition("S", composite["AlarmName"], True, composite))
    evaluator = AlarmEvaluator(
        definitions, MetricStore(source), to_wall=lambda t: t, sink=sink, account=ACCOUNT, region=REGION
    )
    return evaluator, source, sink


def _fill(source: _Source, minutes: list[float | None], name: str = "LatencyMs") -> None:
    """One datapoint per minute (None = no data that minute)."""
    for minute, value in enumerate(minutes):
        if value is not None:
            source.put(name, minute * 60 + 30, value)


class TestStatistics:
    def test_statistics_of_raw_values(self) -> None:
        data = [Datum(0, value=v) for v in (1, 2, 3, 4, 100)]
        assert statistic(data, "SampleCount") == 5
        assert statistic(data, "Sum") == 110
        assert statistic(data, "Average") == 22
        assert statistic(data, "Minimum") == 1
        assert statistic(data, "Maximum") == 100
        assert statistic(data, "p50") == 3

    def test_p99_is_nearest_rank(self) -> None:
        data = [Datum(0, value=float(v)) for v in range(1, 201)]
        assert statistic(data, "p99") == 198

    def test_no_data_is_missing_not_zero(self) -> None:
        assert statistic([], "Sum") is None

    def test_statistic_sets_add_up_but_carry_no_percentiles(self) -> None:
        data = [Datum(0, sum=10, count=4, minimum=1, maximum=5), Datum(0, value=6)]
        assert statistic(data, "SampleCount") == 5
        assert statistic(data, "Average") == 16 / 5
        assert statistic(data, "Maximum") == 6
        assert statistic(data, "p99") == 6  # only the raw value has a distribution


class TestMetricMath:
    @pytest.mark.parametrize(
        "expression, values, expected",
        [
            ("IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)", {"requests": 40, "errors": None}, 0.0),
            ("IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)", {"requests": 40, "errors": 4}, 10.0),
            ("IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)", {"requests": 10, "errors": 4}, 0.0),
            ("IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)", {"requests": None, "errors": 4}, None),
            ("IF(samples >= 20, canary / primary, 0)", {"samples": 30, "canary": 900, "primary": 300}, 3.0),
            ("IF(samples >= 20, canary / primary, 0)", {"samples": 30, "canary": 900, "primary": None}, None),
            ("100 * (primary - canary) / primary", {"primary": 0.8, "canary": 0.72}, pytest.approx(10.0)),
            ("a / b", {"a": 1, "b": 0}, None),
            ("ABS(a - b) > 2 AND NOT (a < 0)", {"a": 5, "b": 1}, 1.0),
            ("-a ^ 2", {"a": 3}, -9.0),
            ("IF(a > 1, a)", {"a": 0}, None),
        ],
    )
    def test_evaluates_like_cloudwatch(self, expression: str, values: dict, expected: Any) -> None:
        assert evaluate_expression(parse_expression(expression), values) == expected

    @pytest.mark.parametrize("expression", ["ANOMALY_DETECTION_BAND(m1)", "FILL(m1, REPEAT)", "a +", "SEARCH('x')"])
    def test_unsupported_fails_loudly(self, expression: str) -> None:
        with pytest.raises(AlarmDefinitionError):
            parse_expression(expression)


class TestRules:
    def test_alarm_rule_with_arns_and_precedence(self) -> None:
        rule = parse_rule('(ALARM("arn:aws:cloudwatch:r:1:alarm:a") OR ALARM(b)) AND NOT OK("c")')
        assert evaluate_rule(rule, {"a": "ALARM", "b": "OK", "c": "INSUFFICIENT_DATA"})
        assert not evaluate_rule(rule, {"a": "ALARM", "b": "OK", "c": "OK"})
        assert not evaluate_rule(rule, {"a": "OK", "b": "OK", "c": "ALARM"})

    def test_constants_and_insufficient_data(self) -> None:
        assert evaluate_rule(parse_rule("TRUE AND INSUFFICIENT_DATA(x)"), {})
        assert not evaluate_rule(parse_rule("FALSE OR ALARM(x)"), {"x": "OK"})

    @pytest.mark.parametrize("rule", ["ALARM(a) XOR ALARM(b)", "ALARM(a", "ANOMALY(a)"])
    def test_bad_rule_fails(self, rule: str) -> None:
        with pytest.raises(AlarmDefinitionError):
            parse_rule(rule)


class TestEvaluation:
    def test_m_of_n_needs_m_breaching_datapoints(self) -> None:
        alarm = _metric_alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
        evaluator, source, sink = _evaluator(alarm)
        _fill(source, [50, 150, 50, 150])
        evaluator.run_until(180)
        assert evaluator.state("lat") == "OK"  # 50, 150, 50: one breaching
        evaluator.run_until(240)
        assert evaluator.state("lat") == "ALARM"  # 150, 50, 150: two of three
        assert [a for a, _ in sink.lambdas] == ["arn:aws:lambda:ap-northeast-1:123456789012:function:rollback"]

    def test_only_complete_periods_are_evaluated(self) -> None:
        evaluator, source, _ = _evaluator(_metric_alarm(EvaluationPeriods=1, DatapointsToAlarm=1))
        source.put("LatencyMs", 70, 500)  # in the period [60, 120)
        evaluator.run_until(110)
        assert evaluator.state("lat") == "INSUFFICIENT_DATA"
        evaluator.run_until(120)
        assert evaluator.state("lat") == "ALARM"

    @pytest.mark.parametrize(
        "treatment, expected",
        [
            ("missing", "INSUFFICIENT_DATA"),
            ("breaching", "ALARM"),
            ("notBreaching", "OK"),
            ("ignore", "INSUFFICIENT_DATA"),
        ],
    )
    def test_no_data_at_all(self, treatment: str, expected: str) -> None:
        evaluator, _, _ = _evaluator(_metric_alarm(TreatMissingData=treatment))
        evaluator.run_until(600)
        assert evaluator.state("lat") == expected

    def test_ignore_keeps_the_current_state(self) -> None:
        evaluator, source, _ = _evaluator(
            _metric_alarm(TreatMissingData="ignore", EvaluationPeriods=1, DatapointsToAlarm=1)
        )
        _fill(source, [500])
        evaluator.run_until(60)
        assert evaluator.state("lat") == "ALARM"
        evaluator.run_until(60 * 20)  # long silence
        assert evaluator.state("lat") == "ALARM"

    @pytest.mark.parametrize(
        "treatment, expected",
        [
            ("breaching", "ALARM"),  # 1 real breaching + 2 filled breaching = 3 of 3
            ("notBreaching", "OK"),  # 1 of 3
            ("missing", "OK"),  # only the real point counts: 1 < 3
        ],
    )
    def test_partial_data_is_filled_per_treatment(self, treatment: str, expected: str) -> None:
        evaluator, source, _ = _evaluator(_metric_alarm(TreatMissingData=treatment))
        _fill(source, [None, None, None, None, 500])
        evaluator.run_until(300)
        assert evaluator.state("lat") == expected

    def test_enough_real_points_ignore_the_treatment(self) -> None:
        # Three real points within the evaluation range (N + 2 periods): missing data is not needed.
        evaluator, source, _ = _evaluator(_metric_alarm(TreatMissingData="notBreaching"))
        _fill(source, [500, None, 500, 500, None])
        evaluator.run_until(300)
        assert evaluator.state("lat") == "ALARM"

    def test_metric_math_alarm_with_p99_ratio(self) -> None:
        alarm = {
            "AlarmName": "ratio",
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": 2,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "Metrics": [
                {"Id": "expr", "Expression": "IF(samples >= 20, canary / primary, 0)", "ReturnData": True},
                {
                    "Id": "canary",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "NS",
                            "MetricName": "LatencyMs",
                            "Dimensions": [{"Name": "target", "Value": "canary"}],
                        },
                        "Period": 300,
                        "Stat": "p99",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "primary",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "NS",
                            "MetricName": "LatencyMs",
                            "Dimensions": [{"Name": "target", "Value": "primary"}],
                        },
                        "Period": 300,
                        "Stat": "p99",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "samples",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "NS",
                            "MetricName": "LatencyMs",
                            "Dimensions": [{"Name": "target", "Value": "canary"}],
                        },
                        "Period": 300,
                        "Stat": "SampleCount",
                    },
                    "ReturnData": False,
                },
            ],
        }
        evaluator, source, _ = _evaluator(alarm)
        source.put("LatencyMs", 10, *[1000.0] * 19, dims={"target": "canary"})
        source.put("LatencyMs", 10, *[300.0] * 50, dims={"target": "primary"})
        evaluator.run_until(300)
        assert evaluator.state("ratio") == "OK"  # 19 samples: the expression reads 0
        source.put("LatencyMs", 310, *[1000.0] * 25, dims={"target": "canary"})
        source.put("LatencyMs", 310, *[300.0] * 50, dims={"target": "primary"})
        evaluator.run_until(600)
        assert evaluator.state("ratio") == "ALARM"
        assert evaluator.status["ratio"].datapoints[-1] == (300, pytest.approx(1000 / 300))

    def test_composite_fires_lambda_and_sns_once_per_transition(self) -> None:
        composite = {
            "AlarmName": "critical",
            "AlarmRule": 'ALARM("arn:aws:cloudwatch:r:1:alarm:lat") OR ALARM(other)',
            "AlarmActions": [
                "arn:aws:lambda:ap-northeast-1:123456789012:function:rollback",
                "arn:aws:sns:ap-northeast-1:123456789012:alerts",
            ],
        }
        alarm = _metric_alarm(EvaluationPeriods=1, DatapointsToAlarm=1, AlarmActions=[], OKActions=[])
        evaluator, source, sink = _evaluator(alarm, composite=composite)
        evaluator.run_until(60)
        assert evaluator.state("critical") == "OK"
        _fill(source, [None, 500, 500, 500])
        evaluator.run_until(240)
        assert evaluator.state("critical") == "ALARM"
        assert len(sink.lambdas) == 1 and len(sink.sns) == 1
        function, event = sink.lambdas[0]
        assert event["source"] == "aws.cloudwatch"
        assert event["alarmData"]["state"]["value"] == "ALARM"
        assert event["alarmData"]["previousState"]["value"] == "OK"
        assert event["alarmData"]["configuration"]["alarmRule"].startswith("ALARM(")
        topic, subject, message = sink.sns[0]
        assert subject == 'ALARM: "critical" in Asia Pacific (Tokyo)'
        assert '"NewStateValue": "ALARM"' in message

    def test_powertools_reads_the_alarm_event(self) -> None:
        from aws_lambda_powertools.utilities.data_classes import CloudWatchAlarmEvent

        composite = {
            "AlarmName": "critical",
            "AlarmRule": "ALARM(lat)",
            "AlarmActions": ["arn:aws:lambda:ap-northeast-1:123456789012:function:rollback"],
        }
        evaluator, source, sink = _evaluator(
            _metric_alarm(EvaluationPeriods=1, DatapointsToAlarm=1, AlarmActions=[], OKActions=[]), composite=composite
        )
        _fill(source, [500])
        evaluator.run_until(60)
        event = CloudWatchAlarmEvent(sink.lambdas[0][1])
        assert event.alarm_data.alarm_name == "critical"
        assert event.alarm_data.state.value == "ALARM"
        assert event.alarm_data.configuration.alarm_rule == "ALARM(lat)"

    def test_disabled_actions_do_not_run(self) -> None:
        evaluator, source, sink = _evaluator(
            _metric_alarm(EvaluationPeriods=1, DatapointsToAlarm=1, ActionsEnabled=False)
        )
        _fill(source, [500])
        evaluator.run_until(60)
        assert evaluator.state("lat") == "ALARM" and not sink.lambdas


class TestDefinitions:
    def test_template_alarms_with_intrinsics(self) -> None:
        template = {
            "Resources": {
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
                "Child": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Properties": _metric_alarm(
                        AlarmName={"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "lat"]]},
                        AlarmActions=[{"Fn::GetAtt": ["Fn", "Arn"]}],
                    ),
                },
                "Parent": {
                    "Type": "AWS::CloudWatch::CompositeAlarm",
                    "Properties": {
                        "AlarmName": "parent",
                        "AlarmRule": {"Fn::Join": ["", ['ALARM("', {"Fn::GetAtt": ["Child", "Arn"]}, '")']]},
                        "AlarmActions": [{"Fn::ImportValue": "Topic"}],
                    },
                },
            }
        }

        class Resolver:
            def ref(self, stack: str, logical_id: str) -> str:
                return f"physical-{logical_id}"

            def get_att(self, stack: str, logical_id: str, attribute: str) -> str:
                return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"

            def import_value(self, name: str) -> str:
                return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"

        definitions = {d.name: d for d in load_definitions({"Stack": template}, Resolver(), ACCOUNT, REGION)}
        assert set(definitions) == {"Stack-lat", "parent"}
        assert definitions["Stack-lat"].alarm_actions == (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Fn",)
        assert definitions["parent"].rule == f'ALARM("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:Stack-lat")'
        assert definitions["parent"].alarm_actions == (f"arn:aws:sns:{REGION}:{ACCOUNT}:Topic",)

    def test_anomaly_detection_is_refused(self) -> None:
        with pytest.raises(AlarmDefinitionError):
            parse_definition(
                "S", "x", False, _metric_alarm(ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold")
            )

    def test_metric_id_label(self) -> None:
        assert MetricId("NS", "M", frozenset({("b", "2"), ("a", "1")})).label() == "NS/M{a=1,b=2}"
