"""CloudWatch alarms on the canary and the two composite alarms a rollout acts on.

critical = error rate OR p99 latency ratio OR model throttling -> invokes the rollback function, pages on-call (SNS)
warning  = hallucination rate OR quality drop OR CSAT drop       -> notifies (SNS); the rollout gate pauses on it

Every metric alarm is metric math over one window with a minimum-volume floor: below the floor the expression
reads 0, so a handful of requests can neither roll back nor page. Event rates also need a minimum number of
events (MIN_EVENTS), so one unlucky 5xx in a small window cannot page either. Missing data is treated per purpose:

* critical children: NOT_BREACHING. A canary at weight 0 (before the first step, after a rollback) has no
  traffic; that must not invoke the rollback or page, and the alarms must return to OK after a rollback so the
  next rollout starts clean.
* warning children: MISSING. No data leaves the alarm in INSUFFICIENT_DATA, which notifies nobody (actions fire
  on ALARM only) but is not OK either: the gate treats anything but OK as "hold".

Missing data must never read as healthy for gating, so the gate does not promote on alarm states alone: it also
requires a minimum sample on the canary (GetMetricData on RequestCount/Observations) before each step.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.demo_alb import CanaryListener
from kanaria import names

ALB_NAMESPACE = "AWS/ApplicationELB"
MIN_SAMPLES = 20  # per one-minute window: below this the rate expressions read 0
# Event-rate alarms (5xx, throttles, hallucinations) also need this many events in the minute: with 20-50
# requests a single 5xx is already above 2%, which at a 0.5% baseline would page in ~14% of quiet windows
# (P(>=1 of 30)); three events make that ~5e-4 per minute, and M of N windows (below) makes a page from noise
# ~1e-6 per minute, while a real spike at the 25% stage (6% of 150 requests) still gives ~9 per minute.
MIN_EVENTS = 3


@dataclass(frozen=True)
class AlarmSpec:
    """One canary metric alarm: the math expression's threshold and evaluation window."""

    kind: str
    threshold: float
    period: Duration
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: cw.TreatMissingData
    description: str


# One-minute periods (M of N) so the alarms stay a fast, independent second path beside the judge. Worst case
# after a fault that breaches every minute: M minutes of datapoints plus CloudWatch's evaluation (~1 minute);
# docs/rollouts.md lists them. CSAT answers are sparse (a few per minute on the canary), so its alarm keeps
# hourly windows; the judge watches dissatisfied answers minute by minute.
ALARM_SPECS: dict[str, AlarmSpec] = {
    spec.kind: spec
    for spec in (
        AlarmSpec(
            names.ALARM_CANARY_ERROR_RATE,
            2.0,
            Duration.minutes(1),
            3,
            2,
            cw.TreatMissingData.NOT_BREACHING,
            "Canary target 5xx rate > 2% of its requests in 2 of the last 3 minutes (ALB metrics)",
        ),
        AlarmSpec(
            names.ALARM_CANARY_LATENCY,
            2.0,
            Duration.minutes(1),
            5,
            3,
            cw.TreatMissingData.NOT_BREACHING,
            "Canary p99 latency > 2x primary p99 in 3 of the last 5 minutes",
        ),
        AlarmSpec(
            names.ALARM_CANARY_THROTTLING,
            5.0,
            Duration.minutes(1),
            3,
            2,
            cw.TreatMissingData.NOT_BREACHING,
            "Canary model throttling > 5% of its model calls in 2 of the last 3 minutes",
        ),
        AlarmSpec(
            names.ALARM_CANARY_HALLUCINATION,
            3.0,
            Duration.minutes(1),
            10,
            5,
            cw.TreatMissingData.MISSING,
            "Canary hallucination rate > 3% of its responses in 5 of the last 10 minutes",
        ),
        AlarmSpec(
            names.ALARM_CANARY_QUALITY,
            5.0,
            Duration.minutes(1),
            15,
            10,
            cw.TreatMissingData.MISSING,
            "Canary mean quality score > 5% below primary in 10 of the last 15 minutes",
        ),
        AlarmSpec(
            names.ALARM_CANARY_CSAT,
            10.0,
            Duration.hours(1),
            4,
            4,
            cw.TreatMissingData.MISSING,
            "Canary mean CSAT > 10% below primary in each of the last 4 hours",
        ),
    )
}


class CanaryAlarms(Construct):
    """Metric alarms per kind (`self.alarms`), `self.critical` and `self.warning` composites with their actions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        listener: CanaryListener,
        rollback_function: lambda_.IFunction,
        alerts_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._listener = listener
        expressions = {
            names.ALARM_CANARY_ERROR_RATE: self._error_rate,
            names.ALARM_CANARY_LATENCY: self._latency_ratio,
            names.ALARM_CANARY_THROTTLING: self._throttle_rate,
            names.ALARM_CANARY_HALLUCINATION: self._hallucination_rate,
            names.ALARM_CANARY_QUALITY: lambda period: self._relative_drop(names.METRIC_QUALITY, period),
            names.ALARM_CANARY_CSAT: lambda period: self._relative_drop(names.METRIC_CSAT, period),
        }
        self.alarms: dict[str, cw.Alarm] = {
            kind: self._build_alarm(spec, expressions[kind](spec.period)) for kind, spec in ALARM_SPECS.items()
        }
        self.critical = self._build_composite(
            names.ALARM_CANARY_CRITICAL, names.CRITICAL_ALARM_KINDS, "Canary is unhealthy: the rollout is rolled back"
        )
        self.critical.add_alarm_action(cw_actions.LambdaAction(rollback_function))
        self._scope_permission_by_name(rollback_function, names.ALARM_CANARY_CRITICAL)
        self.critical.add_alarm_action(cw_actions.SnsAction(alerts_topic))
        self.warning = self._build_composite(
            names.ALARM_CANARY_WARNING,
            names.WARNING_ALARM_KINDS,
            "Canary quality regressed: the rollout holds at its current weight",
        )
        self.warning.add_alarm_action(cw_actions.SnsAction(alerts_topic))

    # --- metrics -------------------------------------------------------------------------------------------

    def alb_metric(self, metric_name: str, target: str, statistic: str = "Sum") -> cw.Metric:
        """A per-target-group ALB metric (dimensions TargetGroup + LoadBalancer)."""
        target_group = (
            self._listener.canary_target_group_full_name
            if target == names.TARGET_CANARY
            else self._listener.primary_target_group_full_name
        )
        return cw.Metric(
            namespace=ALB_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"TargetGroup": target_group, "LoadBalancer": self._listener.load_balancer_full_name},
            statistic=statistic,
        )

    @staticmethod
    def kanaria_metric(metric_name: str, target: str, statistic: str) -> cw.Metric:
        """A Kanaria EMF metric of one side of the rollout (dimension target=canary|primary only)."""
        return cw.Metric(
            namespace=names.METRIC_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={names.DIM_TARGET: target},
            statistic=statistic,
        )

    def _error_rate(self, period: Duration) -> cw.MathExpression:
        return cw.MathExpression(
            expression=(
                f"IF(requests >= {MIN_SAMPLES} AND FILL(errors, 0) >= {MIN_EVENTS}, "
                "100 * FILL(errors, 0) / requests, 0)"
            ),
            using_metrics={
                "errors": self.alb_metric("HTTPCode_Target_5XX_Count", names.TARGET_CANARY),
                "requests": self.alb_metric("RequestCount", names.TARGET_CANARY),
            },
            period=period,
            label="Canary 5xx rate (%)",
        )

    def _latency_ratio(self, period: Duration) -> cw.MathExpression:
        return cw.MathExpression(
            expression=f"IF(samples >= {MIN_SAMPLES}, canary / primary, 0)",
            using_metrics={
                "canary": self.kanaria_metric(names.METRIC_LATENCY, names.TARGET_CANARY, "p99"),
                "primary": self.kanaria_metric(names.METRIC_LATENCY, names.TARGET_PRIMARY, "p99"),
                "samples": self.kanaria_metric(names.METRIC_LATENCY, names.TARGET_CANARY, "SampleCount"),
            },
            period=period,
            label="Canary p99 / primary p99",
        )

    def _throttle_rate(self, period: Duration) -> cw.MathExpression:
        return self._canary_rate(names.METRIC_THROTTLES, period, "Canary throttled model calls (%)")

    def _hallucination_rate(self, period: Duration) -> cw.MathExpression:
        return self._canary_rate(names.METRIC_HALLUCINATIONS, period, "Canary hallucination rate (%)")

    def _canary_rate(self, metric_name: str, period: Duration, label: str) -> cw.MathExpression:
        """100 x events / observations on the canary (Observations counts every response, throttled included)."""
        return cw.MathExpression(
            expression=(
                f"IF(observations >= {MIN_SAMPLES} AND FILL(events, 0) >= {MIN_EVENTS}, "
                "100 * FILL(events, 0) / observations, 0)"
            ),
            using_metrics={
                "events": self.kanaria_metric(metric_name, names.TARGET_CANARY, "Sum"),
                "observations": self.kanaria_metric(names.METRIC_OBSERVATIONS, names.TARGET_CANARY, "Sum"),
            },
            period=period,
            label=label,
        )

    def _relative_drop(self, metric_name: str, period: Duration) -> cw.MathExpression:
        """How far (%) the canary's mean is below the primary's; negative when the canary is better."""
        return cw.MathExpression(
            expression=f"IF(samples >= {MIN_SAMPLES}, 100 * (primary - canary) / primary, 0)",
            using_metrics={
                "canary": self.kanaria_metric(metric_name, names.TARGET_CANARY, "Average"),
                "primary": self.kanaria_metric(metric_name, names.TARGET_PRIMARY, "Average"),
                "samples": self.kanaria_metric(metric_name, names.TARGET_CANARY, "SampleCount"),
            },
            period=period,
            label=f"Canary {metric_name} drop vs primary (%)",
        )

    # --- alarms --------------------------------------------------------------------------------------------

    def _build_alarm(self, spec: AlarmSpec, expression: cw.MathExpression) -> cw.Alarm:
        return cw.Alarm(
            self,
            alarm_construct_id(spec.kind),
            alarm_name=names.alarm_name(self._prefix, spec.kind),
            alarm_description=spec.description,
            metric=expression,
            threshold=spec.threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm,
            treat_missing_data=spec.treat_missing_data,
        )

    def _build_composite(self, kind: str, children: tuple[str, ...], description: str) -> cw.CompositeAlarm:
        return cw.CompositeAlarm(
            self,
            alarm_construct_id(kind),
            composite_alarm_name=names.alarm_name(self._prefix, kind),
            alarm_description=description,
            alarm_rule=cw.AlarmRule.any_of(
                *(cw.AlarmRule.from_alarm(self.alarms[child], cw.AlarmState.ALARM) for child in children)
            ),
        )

    def _scope_permission_by_name(self, function: lambda_.IFunction, kind: str) -> None:
        """LambdaAction's permission (principal lambda.alarms.cloudwatch.amazonaws.com) with the source ARN built
        from the fixed alarm name instead of a GetAtt: the same ARN, and no reference to the composite alarm,
        which moto's CloudFormation does not implement (a GetAtt on it fails the whole stack there)."""
        permission = function.node.find_child("AlarmPermission")  # the CfnPermission LambdaAction adds
        assert isinstance(permission, lambda_.CfnPermission)
        permission.add_property_override(
            "SourceArn",
            Stack.of(self).format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=names.alarm_name(self._prefix, kind),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
        )

    @property
    def metric_alarm_names(self) -> list[str]:
        """Physical names of the six metric alarms (children of the composites)."""
        return [names.alarm_name(self._prefix, kind) for kind in ALARM_SPECS]


def alarm_construct_id(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-"))
