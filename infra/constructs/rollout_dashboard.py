"""CloudWatch dashboard of a canary rollout: weight per stage, canary vs primary, alarm states."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from infra.constructs.canary_alarms import MIN_SAMPLES, CanaryAlarms, alarm_construct_id
from kanaria import names

PERIOD = Duration.minutes(5)
WIDTH = 12
HEIGHT = 6


class RolloutDashboard(Construct):
    """`self.dashboard`: weights, errors, latency, quality, hallucinations, CSAT, alarm status."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, alarms: CanaryAlarms) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._alarms = alarms
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=names.rollout_dashboard_name(prefix),
            default_interval=Duration.hours(6),
        )
        self.dashboard.add_widgets(self._build_alarm_status())
        self.dashboard.add_widgets(self._build_weights(), self._build_requests())
        self.dashboard.add_widgets(self._build_error_rates(), self._build_latency())
        self.dashboard.add_widgets(
            self._build_side_by_side(names.METRIC_QUALITY, "Quality score (mean)"), self._build_hallucination_rates()
        )
        self.dashboard.add_widgets(
            self._build_side_by_side(names.METRIC_CSAT, "CSAT (mean)"), self._build_throttle_rates()
        )

    def _build_alarm_status(self) -> cw.AlarmStatusWidget:
        # By name (the same ARNs) rather than GetAtt: no reference to the alarms, which moto's CloudFormation
        # does not implement (a GetAtt on one fails the whole stack there).
        composites = [
            cw.CompositeAlarm.from_composite_alarm_name(
                self, alarm_construct_id(kind), names.alarm_name(self._prefix, kind)
            )
            for kind in (names.ALARM_CANARY_CRITICAL, names.ALARM_CANARY_WARNING)
        ]
        children = [
            cw.Alarm.from_alarm_name(self, alarm_construct_id(kind), names.alarm_name(self._prefix, kind))
            for kind in self._alarms.alarms
        ]
        return cw.AlarmStatusWidget(
            title="Canary alarms (critical rolls back, warning holds)",
            alarms=[*composites, *children],
            width=24,
            height=4,
        )

    def _build_weights(self) -> cw.GraphWidget:
        canary = CanaryAlarms.kanaria_metric(names.METRIC_CANARY_WEIGHT, names.TARGET_CANARY, "Maximum")
        return cw.GraphWidget(
            title="Canary weight per stage (%)",
            left=[canary.with_(period=Duration.minutes(1), label="canary weight")],
            left_y_axis=cw.YAxisProps(min=0, max=100),
            width=WIDTH,
            height=HEIGHT,
        )

    def _build_requests(self) -> cw.GraphWidget:
        return cw.GraphWidget(
            title="Requests per target group (ALB)",
            left=[
                self._alarms.alb_metric("RequestCount", target).with_(period=PERIOD, label=target)
                for target in (names.TARGET_PRIMARY, names.TARGET_CANARY)
            ],
            width=WIDTH,
            height=HEIGHT,
        )

    def _build_error_rates(self) -> cw.GraphWidget:
        return cw.GraphWidget(
            title="Target 5xx rate (%)",
            left=[
                cw.MathExpression(
                    expression=f"100 * FILL(errors_{target}, 0) / requests_{target}",
                    using_metrics={
                        f"errors_{target}": self._alarms.alb_metric("HTTPCode_Target_5XX_Count", target),
                        f"requests_{target}": self._alarms.alb_metric("RequestCount", target),
                    },
                    period=PERIOD,
                    label=target,
                )
                for target in (names.TARGET_PRIMARY, names.TARGET_CANARY)
            ],
            left_annotations=[cw.HorizontalAnnotation(value=2, label="critical: 2%")],
            width=WIDTH,
            height=HEIGHT,
        )

    def _build_latency(self) -> cw.GraphWidget:
        return cw.GraphWidget(
            title="Latency p99 (ms)",
            left=[
                CanaryAlarms.kanaria_metric(names.METRIC_LATENCY, target, "p99").with_(period=PERIOD, label=target)
                for target in (names.TARGET_PRIMARY, names.TARGET_CANARY)
            ],
            width=WIDTH,
            height=HEIGHT,
        )

    @staticmethod
    def _build_side_by_side(metric_name: str, title: str) -> cw.GraphWidget:
        return cw.GraphWidget(
            title=f"{title}: canary vs primary",
            left=[
                CanaryAlarms.kanaria_metric(metric_name, target, "Average").with_(period=PERIOD, label=target)
                for target in (names.TARGET_PRIMARY, names.TARGET_CANARY)
            ],
            width=WIDTH,
            height=HEIGHT,
        )

    def _build_hallucination_rates(self) -> cw.GraphWidget:
        return self._rates(names.METRIC_HALLUCINATIONS, "Hallucination rate (%)", 3)

    def _build_throttle_rates(self) -> cw.GraphWidget:
        return self._rates(names.METRIC_THROTTLES, "Throttled model calls (%)", 5)

    @staticmethod
    def _rates(metric_name: str, title: str, threshold: float) -> cw.GraphWidget:
        return cw.GraphWidget(
            title=title,
            left=[
                cw.MathExpression(
                    expression=(
                        f"IF(observations_{target} >= {MIN_SAMPLES}, "
                        f"100 * FILL(events_{target}, 0) / observations_{target}, 0)"
                    ),
                    using_metrics={
                        f"events_{target}": CanaryAlarms.kanaria_metric(metric_name, target, "Sum"),
                        f"observations_{target}": CanaryAlarms.kanaria_metric(names.METRIC_OBSERVATIONS, target, "Sum"),
                    },
                    period=PERIOD,
                    label=target,
                )
                for target in (names.TARGET_PRIMARY, names.TARGET_CANARY)
            ],
            left_annotations=[cw.HorizontalAnnotation(value=threshold, label=f"threshold: {threshold}%")],
            width=WIDTH,
            height=HEIGHT,
        )
