"""Alarm definitions from the synthesized templates: metric alarms (metrics, statistics, metric math,
thresholds, M of N, missing data) and composite alarms, with intrinsic functions resolved against the deployed
stacks. A definition the evaluator cannot honour fails as an AlarmDefinitionError naming the alarm."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from kanaria_tools.rehearsal.alarms.alarm_rules import parse_rule
from kanaria_tools.rehearsal.alarms.errors import AlarmDefinitionError
from kanaria_tools.rehearsal.alarms.metric_math import parse_expression

EXTRA_PERIODS = 2  # evaluation range = EvaluationPeriods + EXTRA_PERIODS periods
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
COMPARISON_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
REGION_NAMES = {
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
}


@dataclass(frozen=True)
class MetricId:
    """One CloudWatch metric: namespace, name and its exact dimension set."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]

    def label(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in sorted(self.dimensions))
        return f"{self.namespace}/{self.name}{{{dims}}}"


@dataclass(frozen=True)
class MetricQuery:
    """A MetricStat (metric + statistic) or a math Expression of an alarm."""

    id: str
    metric: MetricId | None
    stat: str | None
    expression: str | None
    return_data: bool
    period: int | None
    unit: str | None = None


@dataclass
class AlarmDefinition:
    """A metric or composite alarm as the template defines it (intrinsics resolved)."""

    name: str
    stack: str
    logical_id: str
    composite: bool
    description: str = ""
    queries: tuple[MetricQuery, ...] = ()
    period: int = 60
    threshold: float = 0.0
    comparison: str = "GreaterThanThreshold"
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    treat_missing_data: str = "missing"
    rule: str | None = None
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    actions_enabled: bool = True
    properties: dict[str, Any] = field(default_factory=dict)  # resolved CloudFormation properties

    @property
    def arn_suffix(self) -> str:
        return f"alarm:{self.name}"

    @property
    def returned(self) -> MetricQuery:
        """The query whose datapoints are compared to the threshold."""
        returning = [q for q in self.queries if q.return_data]
        if len(returning) != 1:
            raise AlarmDefinitionError(f"alarm {self.name!r} must return exactly one time series", field=self.name)
        return returning[0]


class Resolver(Protocol):
    """Values of a deployed stack's references (physical ids, attributes, exports)."""

    def ref(self, stack: str, logical_id: str) -> Any: ...
    def get_att(self, stack: str, logical_id: str, attribute: str) -> Any: ...
    def import_value(self, name: str) -> Any: ...


@dataclass
class TemplateContext:
    """Resolves intrinsic functions of one stack's template (skipped alarms resolve to their name / ARN)."""

    stack: str
    template: dict[str, Any]
    resolver: Resolver
    account: str
    region: str

    def alarm_name(self, logical_id: str) -> str:
        resource = self.template["Resources"][logical_id]
        name = (resource.get("Properties") or {}).get("AlarmName")
        return str(self.resolve(name)) if name else f"{self.stack}-{logical_id}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self._get_att(logical, self.resolve(attribute))
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(
                        variables[m.group(1)]
                        if m.group(1) in variables
                        else (self._get_att(*m.group(1).split(".", 1)) if "." in m.group(1) else self._ref(m.group(1)))
                    ),
                    text,
                )
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::ImportValue":
                return self.resolver.import_value(str(self.resolve(arg)))
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        resource = self.template.get("Resources", {}).get(name)
        if resource and resource.get("Type", "").startswith("AWS::CloudWatch::") and "Alarm" in resource["Type"]:
            return self.alarm_name(name)
        if name in self.template.get("Parameters", {}):
            return self.template["Parameters"][name].get("Default")
        return self.resolver.ref(self.stack, name)

    def _get_att(self, logical: str, attribute: str) -> Any:
        resource = self.template.get("Resources", {}).get(logical)
        kind = resource.get("Type", "") if resource else ""
        if kind.startswith("AWS::CloudWatch::") and "Alarm" in kind and attribute == "Arn":
            return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.alarm_name(logical)}"
        return self.resolver.get_att(self.stack, logical, attribute)


def load_definitions(
    templates: dict[str, dict[str, Any]], resolver: Resolver, account: str, region: str
) -> list[AlarmDefinition]:
    """Every CloudWatch alarm of the synthesized templates."""
    definitions = []
    for stack, template in templates.items():
        context = TemplateContext(stack, template, resolver, account, region)
        for logical_id, resource in template.get("Resources", {}).items():
            kind = resource.get("Type")
            if kind not in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"}:
                continue
            properties = context.resolve(resource.get("Properties") or {})
            properties["AlarmName"] = context.alarm_name(logical_id)
            definitions.append(
                parse_definition(stack, logical_id, kind == "AWS::CloudWatch::CompositeAlarm", properties)
            )
    return definitions


def parse_definition(stack: str, logical_id: str, composite: bool, p: dict[str, Any]) -> AlarmDefinition:
    """An AlarmDefinition from resolved CloudFormation properties (PutMetricAlarm field names)."""
    name = p["AlarmName"]
    common: dict[str, Any] = dict(
        name=name,
        stack=stack,
        logical_id=logical_id,
        composite=composite,
        description=p.get("AlarmDescription", ""),
        alarm_actions=tuple(p.get("AlarmActions") or ()),
        ok_actions=tuple(p.get("OKActions") or ()),
        insufficient_data_actions=tuple(p.get("InsufficientDataActions") or ()),
        actions_enabled=bool(p.get("ActionsEnabled", True)),
        properties=p,
    )
    if composite:
        rule = p.get("AlarmRule")
        if not rule:
            raise AlarmDefinitionError(f"composite alarm {name!r} has no AlarmRule", field=name)
        parse_rule(rule)  # fail early on an unsupported rule
        return AlarmDefinition(rule=rule, **common)
    comparison = _comparison(name, p)
    queries, period = _math_queries(name, p["Metrics"]) if p.get("Metrics") else _single_query(name, p)
    evaluation_periods = int(p.get("EvaluationPeriods", 1))
    return AlarmDefinition(
        queries=tuple(queries),
        period=period,
        threshold=float(p.get("Threshold", 0)),
        comparison=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=int(p.get("DatapointsToAlarm") or evaluation_periods),
        treat_missing_data=p.get("TreatMissingData") or "missing",
        **common,
    )


def _comparison(name: str, p: dict[str, Any]) -> str:
    comparison: str = p.get("ComparisonOperator", "")
    if comparison not in COMPARISONS:
        raise AlarmDefinitionError(
            f"alarm {name!r}: comparison {comparison!r} is not evaluated by the rehearsal "
            "(anomaly detection bands are not supported)",
            field=name,
        )
    if p.get("ThresholdMetricId"):
        raise AlarmDefinitionError(
            f"alarm {name!r}: ThresholdMetricId (anomaly detection) is not supported", field=name
        )
    return comparison


def _metric_id(namespace: str, metric_name: str, dimensions: Any) -> MetricId:
    return MetricId(namespace, metric_name, frozenset((d["Name"], str(d["Value"])) for d in dimensions or ()))


def _math_query(name: str, q: dict[str, Any]) -> MetricQuery:
    """One entry of Metrics: a metric with its statistic, or an expression over the others."""
    stat = q.get("MetricStat")
    metric = None
    if stat:
        m = stat["Metric"]
        metric = _metric_id(m["Namespace"], m["MetricName"], m.get("Dimensions"))
        _check_stat(name, stat["Stat"])
    if q.get("Expression"):
        parse_expression(q["Expression"])
    return MetricQuery(
        id=q["Id"],
        metric=metric,
        stat=stat["Stat"] if stat else None,
        expression=q.get("Expression"),
        return_data=bool(q.get("ReturnData", True)),
        period=int(stat["Period"]) if stat else q.get("Period"),
        unit=stat.get("Unit") if stat else None,
    )


def _math_queries(name: str, metrics: list[dict[str, Any]]) -> tuple[list[MetricQuery], int]:
    """The queries of a metric math alarm and its period (the shortest of theirs, 60 without one)."""
    queries = [_math_query(name, q) for q in metrics]
    periods = {q.period for q in queries if q.period}
    return queries, int(min(periods)) if periods else 60


def _single_query(name: str, p: dict[str, Any]) -> tuple[list[MetricQuery], int]:
    """The one query of a single-metric alarm, and its period."""
    stat = p.get("ExtendedStatistic") or p.get("Statistic")
    if not stat:
        raise AlarmDefinitionError(f"alarm {name!r} has neither Statistic nor ExtendedStatistic", field=name)
    _check_stat(name, stat)
    metric = _metric_id(p["Namespace"], p["MetricName"], p.get("Dimensions"))
    period = int(p["Period"])
    query = MetricQuery(
        id="m1", metric=metric, stat=stat, expression=None, return_data=True, period=period, unit=p.get("Unit")
    )
    return [query], period


_STAT = re.compile(r"^(SampleCount|Sum|Average|Minimum|Maximum|p\d{1,2}(\.\d+)?)$")


def _check_stat(alarm: str, stat: str) -> None:
    if not _STAT.match(stat):
        raise AlarmDefinitionError(
            f"alarm {alarm!r}: statistic {stat!r} is not evaluated by the rehearsal "
            "(SampleCount, Sum, Average, Minimum, Maximum, pNN are)",
            field=alarm,
        )
