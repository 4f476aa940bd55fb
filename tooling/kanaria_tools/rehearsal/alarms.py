"""CloudWatch alarm evaluation for the rehearsal (moto stores alarms but never evaluates them).

Definitions come from the synthesized templates (CloudFormation in moto skips AWS::CloudWatch::Alarm and
::CompositeAlarm), with intrinsic functions resolved against the deployed stacks. Evaluation follows the
documented CloudWatch semantics, on the rehearsal clock:

* a metric alarm is evaluated every minute (every 10 s for periods below a minute) on complete periods,
  aligned to multiples of the period since the start of the rehearsal;
* a period's datapoint is the alarm's statistic (SampleCount, Sum, Average, Minimum, Maximum, pNN) over the
  raw values of the period, or a metric math expression (IF, FILL, ABS, CEIL, FLOOR, + - * / ^, comparisons,
  AND/OR/NOT) over the period's values of its metrics;
* M out of N: the most recent N datapoints of the evaluation range (N + EXTRA_PERIODS periods) are used; if
  fewer than N are present, the missing ones are filled per TreatMissingData (breaching / notBreaching; for
  missing and ignore they are left out), and with no datapoint at all the alarm goes to INSUFFICIENT_DATA
  (missing), keeps its state (ignore), ALARM (breaching) or OK (notBreaching); ALARM needs at least M
  breaching datapoints;
* a composite alarm's AlarmRule (ALARM/OK/INSUFFICIENT_DATA(name or ARN), TRUE, FALSE, AND, OR, NOT,
  parentheses) is re-evaluated after its children; true means ALARM, false OK;
* actions run on state transitions only (AlarmActions on ALARM, OKActions on OK, InsufficientDataActions on
  INSUFFICIENT_DATA) when the alarm's actions are enabled: a Lambda function is invoked asynchronously with
  the CloudWatch alarm event, an SNS topic receives the alarm notification JSON.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol

from kanaria.errors import ValidationError
from kanaria_tools.rehearsal.moto_adaptations import percentile

EXTRA_PERIODS = 2  # evaluation range = EvaluationPeriods + EXTRA_PERIODS periods
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_COMPARISON_WORDS = {
    "GreaterThanThreshold": "greater than", "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to",
}
REGION_NAMES = {"ap-northeast-1": "Asia Pacific (Tokyo)", "us-east-1": "US East (N. Virginia)",
                "us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)"}


class AlarmDefinitionError(ValidationError):
    """An alarm in the template uses something the rehearsal's evaluator does not implement."""


# --------------------------------------------------------------------------------------------------------
# Definitions


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
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = (arg.split(".", 1) if isinstance(arg, str) else arg)
                return self._get_att(logical, self.resolve(attribute))
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(
                    variables[m.group(1)] if m.group(1) in variables else
                    (self._get_att(*m.group(1).split(".", 1)) if "." in m.group(1) else self._ref(m.group(1)))), text)
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
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.stack, "AWS::NoValue": None}
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


def load_definitions(templates: dict[str, dict[str, Any]], resolver: Resolver, account: str,
                     region: str) -> list[AlarmDefinition]:
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
            definitions.append(parse_definition(stack, logical_id, kind == "AWS::CloudWatch::CompositeAlarm", properties))
    return definitions


def parse_definition(stack: str, logical_id: str, composite: bool, p: dict[str, Any]) -> AlarmDefinition:
    """An AlarmDefinition from resolved CloudFormation properties (PutMetricAlarm field names)."""
    name = p["AlarmName"]
    common = dict(
        name=name, stack=stack, logical_id=logical_id, composite=composite, description=p.get("AlarmDescription", ""),
        alarm_actions=tuple(p.get("AlarmActions") or ()), ok_actions=tuple(p.get("OKActions") or ()),
        insufficient_data_actions=tuple(p.get("InsufficientDataActions") or ()),
        actions_enabled=bool(p.get("ActionsEnabled", True)), properties=p,
    )
    if composite:
        rule = p.get("AlarmRule")
        if not rule:
            raise AlarmDefinitionError(f"composite alarm {name!r} has no AlarmRule", field=name)
        parse_rule(rule)  # fail early on an unsupported rule
        return AlarmDefinition(rule=rule, **common)
    comparison = p.get("ComparisonOperator", "")
    if comparison not in COMPARISONS:
        raise AlarmDefinitionError(f"alarm {name!r}: comparison {comparison!r} is not evaluated by the rehearsal "
                                   "(anomaly detection bands are not supported)", field=name)
    if p.get("ThresholdMetricId"):
        raise AlarmDefinitionError(f"alarm {name!r}: ThresholdMetricId (anomaly detection) is not supported", field=name)
    queries: list[MetricQuery] = []
    if p.get("Metrics"):
        for q in p["Metrics"]:
            stat = q.get("MetricStat")
            metric = None
            if stat:
                m = stat["Metric"]
                metric = MetricId(m["Namespace"], m["MetricName"],
                                  frozenset((d["Name"], str(d["Value"])) for d in m.get("Dimensions") or ()))
                _check_stat(name, stat["Stat"])
            if q.get("Expression"):
                parse_expression(q["Expression"])
            queries.append(MetricQuery(
                id=q["Id"], metric=metric, stat=stat["Stat"] if stat else None, expression=q.get("Expression"),
                return_data=bool(q.get("ReturnData", True)), period=int(stat["Period"]) if stat else q.get("Period"),
                unit=stat.get("Unit") if stat else None,
            ))
        periods = {q.period for q in queries if q.period}
        period = int(min(periods)) if periods else 60
    else:
        stat = p.get("ExtendedStatistic") or p.get("Statistic")
        if not stat:
            raise AlarmDefinitionError(f"alarm {name!r} has neither Statistic nor ExtendedStatistic", field=name)
        _check_stat(name, stat)
        metric = MetricId(p["Namespace"], p["MetricName"],
                          frozenset((d["Name"], str(d["Value"])) for d in p.get("Dimensions") or ()))
        period = int(p["Period"])
        queries.append(MetricQuery(id="m1", metric=metric, stat=stat, expression=None, return_data=True, period=period,
                                   unit=p.get("Unit")))
    evaluation_periods = int(p.get("EvaluationPeriods", 1))
    return AlarmDefinition(
        queries=tuple(queries), period=period, threshold=float(p.get("Threshold", 0)), comparison=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=int(p.get("DatapointsToAlarm") or evaluation_periods),
        treat_missing_data=p.get("TreatMissingData") or "missing", **common,
    )


_STAT = re.compile(r"^(SampleCount|Sum|Average|Minimum|Maximum|p\d{1,2}(\.\d+)?)$")


def _check_stat(alarm: str, stat: str) -> None:
    if not _STAT.match(stat):
        raise AlarmDefinitionError(f"alarm {alarm!r}: statistic {stat!r} is not evaluated by the rehearsal "
                                   "(SampleCount, Sum, Average, Minimum, Maximum, pNN are)", field=alarm)


# --------------------------------------------------------------------------------------------------------
# Metric math


_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>!]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise AlarmDefinitionError(f"cannot parse metric math {text!r} at {text[position:]!r}", field="Expression")
        number, name, op = match.groups()
        tokens.append(("num", number) if number else ("name", name) if name else ("op", op))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over metric math: or > and > not > comparison > additive > multiplicative > unary minus
    > power."""

    FUNCTIONS = {"IF", "FILL", "ABS", "CEIL", "FLOOR"}

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].upper() != value):
            raise AlarmDefinitionError(f"metric math {self.text!r}: expected {value or 'a value'}", field="Expression")
        self.i += 1
        return token

    def parse(self) -> Any:
        node = self.logical_or()
        if self.peek() is not None:
            raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {self.peek()[1]!r}", field="Expression")
        return node

    def logical_or(self) -> Any:
        node = self.logical_and()
        while self.peek() and self.peek()[1].upper() in {"OR", "||"}:
            self.take()
            node = ("or", node, self.logical_and())
        return node

    def logical_and(self) -> Any:
        node = self.logical_not()
        while self.peek() and self.peek()[1].upper() in {"AND", "&&"}:
            self.take()
            node = ("and", node, self.logical_not())
        return node

    def logical_not(self) -> Any:
        if self.peek() and self.peek()[1].upper() in {"NOT", "!"}:
            self.take()
            return ("not", self.logical_not())
        return self.comparison()

    def comparison(self) -> Any:
        node = self.additive()
        while self.peek() and self.peek()[1] in {">", "<", ">=", "<=", "==", "!="}:
            op = self.take()[1]
            node = ("cmp", op, node, self.additive())
        return node

    def additive(self) -> Any:
        node = self.multiplicative()
        while self.peek() and self.peek()[1] in {"+", "-"}:
            op = self.take()[1]
            node = ("bin", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Any:
        node = self.unary()
        while self.peek() and self.peek()[1] in {"*", "/"}:
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.peek() and self.peek()[1] == "-":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> Any:
        node = self.atom()
        if self.peek() and self.peek()[1] == "^":
            self.take()
            node = ("bin", "^", node, self.unary())
        return node

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "num":
            return ("num", float(value))
        if kind == "op" and value == "(":
            node = self.logical_or()
            self.take(")")
            return node
        if kind == "name":
            if self.peek() and self.peek()[1] == "(":
                function = value.upper()
                if function not in self.FUNCTIONS:
                    raise AlarmDefinitionError(f"metric math function {value} is not evaluated by the rehearsal "
                                               f"(supported: {', '.join(sorted(self.FUNCTIONS))})", field="Expression")
                self.take("(")
                args = [self.logical_or()]
                while self.peek() and self.peek()[1] == ",":
                    self.take()
                    if function == "FILL" and self.peek() and self.peek()[1].upper() in {"REPEAT", "LINEAR"}:
                        raise AlarmDefinitionError("FILL with REPEAT/LINEAR is not evaluated by the rehearsal",
                                                   field="Expression")
                    args.append(self.logical_or())
                self.take(")")
                return ("call", function, args)
            return ("id", value)
        raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {value!r}", field="Expression")


def parse_expression(text: str) -> Any:
    """AST of a metric math expression (AlarmDefinitionError on anything unsupported)."""
    return _Parser(text).parse()


def evaluate_expression(node: Any, values: dict[str, float | None]) -> float | None:  # noqa: C901 - metric math is one dispatch over its operators, as CloudWatch documents them
    """One period's value; None is a missing datapoint (it propagates, FILL replaces it)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "id":
        if node[1] not in values:
            raise AlarmDefinitionError(f"metric math refers to unknown id {node[1]!r}", field="Expression")
        return values[node[1]]
    if kind == "neg":
        value = evaluate_expression(node[1], values)
        return None if value is None else -value
    if kind == "not":
        value = evaluate_expression(node[1], values)
        return None if value is None else float(not value)
    if kind in {"and", "or"}:
        left, right = evaluate_expression(node[1], values), evaluate_expression(node[2], values)
        if left is None or right is None:
            return None
        return float(bool(left) and bool(right)) if kind == "and" else float(bool(left) or bool(right))
    if kind == "cmp":
        left, right = evaluate_expression(node[2], values), evaluate_expression(node[3], values)
        if left is None or right is None:
            return None
        return float({">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right,
                      "==": left == right, "!=": left != right}[node[1]])
    if kind == "bin":
        left, right = evaluate_expression(node[2], values), evaluate_expression(node[3], values)
        if left is None or right is None:
            return None
        op = node[1]
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return None if right == 0 else left / right  # CloudWatch drops the datapoint on division by zero
        return left ** right
    if kind == "call":
        function, args = node[1], node[2]
        if function == "IF":
            condition = evaluate_expression(args[0], values)
            if condition is None:
                return None
            if condition:
                return evaluate_expression(args[1], values)
            return evaluate_expression(args[2], values) if len(args) > 2 else None
        if function == "FILL":
            value = evaluate_expression(args[0], values)
            return evaluate_expression(args[1], values) if value is None else value
        value = evaluate_expression(args[0], values)
        if value is None:
            return None
        return {"ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}[function](value)
    raise AlarmDefinitionError(f"cannot evaluate {node!r}", field="Expression")


# --------------------------------------------------------------------------------------------------------
# Composite alarm rules


_RULE_TOKEN = re.compile(r'\s*(?:(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*("(?:[^"\\]|\\.)*"|[^()\s]+)\s*\)|(TRUE|FALSE|AND|OR|NOT)\b|([()]))')


def _rule_tokens(rule: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(rule):
        if rule[position:].strip() == "":
            break
        match = _RULE_TOKEN.match(rule, position)
        if not match:
            raise AlarmDefinitionError(f"cannot parse alarm rule {rule!r} at {rule[position:]!r}", field="AlarmRule")
        state, target, word, paren = match.groups()
        if state:
            target = target.strip('"')
            name = target.split(":alarm:", 1)[1] if ":alarm:" in target else target
            tokens.append(("state", f"{state}|{name}"))
        elif word:
            tokens.append(("word", word))
        else:
            tokens.append(("paren", paren))
        position = match.end()
    return tokens


def parse_rule(rule: str) -> Any:  # noqa: C901 - a recursive-descent parser of AlarmRule: one branch per token kind
    """AST of an AlarmRule."""
    tokens = _rule_tokens(rule)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise AlarmDefinitionError(f"alarm rule {rule!r} ends early", field="AlarmRule")
        position += 1
        return tokens[position - 1]

    def disjunction() -> Any:
        node = conjunction()
        while peek() == ("word", "OR"):
            take()
            node = ("or", node, conjunction())
        return node

    def conjunction() -> Any:
        node = negation()
        while peek() == ("word", "AND"):
            take()
            node = ("and", node, negation())
        return node

    def negation() -> Any:
        if peek() == ("word", "NOT"):
            take()
            return ("not", negation())
        return primary()

    def primary() -> Any:
        kind, value = take()
        if kind == "state":
            state, name = value.split("|", 1)
            return ("state", state, name)
        if kind == "word" and value in {"TRUE", "FALSE"}:
            return ("const", value == "TRUE")
        if (kind, value) == ("paren", "("):
            node = disjunction()
            if take() != ("paren", ")"):
                raise AlarmDefinitionError(f"alarm rule {rule!r}: missing ')'", field="AlarmRule")
            return node
        raise AlarmDefinitionError(f"alarm rule {rule!r}: unexpected {value!r}", field="AlarmRule")

    node = disjunction()
    if peek() is not None:
        raise AlarmDefinitionError(f"alarm rule {rule!r}: unexpected {peek()[1]!r}", field="AlarmRule")
    return node


def rule_children(node: Any) -> set[str]:
    """Alarm names a rule refers to."""
    if node[0] == "state":
        return {node[2]}
    if node[0] == "const":
        return set()
    return set().union(*(rule_children(child) for child in node[1:]))


def evaluate_rule(node: Any, states: dict[str, str]) -> bool:
    """True when the rule holds for the children's current states."""
    kind = node[0]
    if kind == "state":
        return states.get(node[2], "INSUFFICIENT_DATA") == node[1]
    if kind == "const":
        return bool(node[1])
    if kind == "not":
        return not evaluate_rule(node[1], states)
    if kind == "and":
        return evaluate_rule(node[1], states) and evaluate_rule(node[2], states)
    return evaluate_rule(node[1], states) or evaluate_rule(node[2], states)


# --------------------------------------------------------------------------------------------------------
# Metric data


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
            datum = Datum(at, sum=float(item.sum), count=float(item.sample_count), minimum=float(item.min),
                          maximum=float(item.max), unit=item.unit)
        times, data = self._series.setdefault(key, ([], []))
        index = bisect.bisect_right(times, at)
        times.insert(index, at)
        data.insert(index, datum)

    def window(self, metric: MetricId, start: float, end: float, unit: str | None = None) -> list[Datum]:
        """Data with start <= at < end (wall epoch seconds)."""
        times, data = self._series.get(metric, ([], []))
        chosen = data[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]
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


# --------------------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Transition:
    """An alarm's state change on the scenario clock."""

    at: float
    alarm: str
    old: str
    new: str
    reason: str
    composite: bool
    actions: tuple[str, ...] = ()


@dataclass
class AlarmStatus:
    """Current state and recent datapoints of one alarm."""

    definition: AlarmDefinition
    state: str = "INSUFFICIENT_DATA"
    reason: str = "Unchecked: Initial alarm creation"
    changed_at: float = 0.0
    datapoints: list[tuple[float, float | None]] = field(default_factory=list)  # (period start, value) history


class ActionSink(Protocol):
    """Where alarm actions go (the emulator's Lambda and SNS)."""

    def invoke_lambda(self, function_arn: str, event: dict[str, Any]) -> None: ...
    def publish_sns(self, topic_arn: str, subject: str, message: str) -> None: ...


@dataclass
class EmulatorHooks:
    """How the evaluator mirrors alarms into the emulator (moto) so DescribeAlarms shows them."""

    register: Callable[[AlarmDefinition], None] = lambda definition: None
    record_state: Callable[[AlarmDefinition, str, str, dict[str, Any], float], None] = lambda *a: None
    actions_enabled: Callable[[str], bool] = lambda name: True


class AlarmEvaluator:
    """Evaluates every alarm on the rehearsal clock and runs their actions."""

    def __init__(self, definitions: Iterable[AlarmDefinition], store: MetricStore, *, to_wall: Callable[[float], float],
                 sink: ActionSink, account: str, region: str, hooks: EmulatorHooks | None = None,
                 wall_datetime: Callable[[float], datetime] | None = None):
        self.status: dict[str, AlarmStatus] = {d.name: AlarmStatus(d) for d in definitions}
        self.transitions: list[Transition] = []
        self.actions_run: list[tuple[float, str, str, str]] = []  # (time, alarm, state, target)
        self._store = store
        self._to_wall = to_wall
        self._wall_datetime = wall_datetime or (lambda t: datetime.fromtimestamp(to_wall(t), tz=timezone.utc))
        self._sink = sink
        self._account = account
        self._region = region
        self._hooks = hooks or EmulatorHooks()
        self._last_tick: float | None = None
        self._rules = {d.name: parse_rule(d.rule) for d in self.definitions if d.composite and d.rule}
        self._expressions = {(d.name, q.id): parse_expression(q.expression)
                             for d in self.definitions for q in d.queries if q.expression}
        for definition in self.definitions:
            self._hooks.register(definition)

    @property
    def definitions(self) -> list[AlarmDefinition]:
        return [s.definition for s in self.status.values()]

    def state(self, name: str) -> str:
        """Current state of an alarm."""
        return self.status[name].state

    def run_until(self, now: float) -> list[Transition]:
        """Evaluate at every evaluation tick up to scenario time `now` (ticks missed while busy are caught up)."""
        self._store.refresh()
        step = 10.0 if any(d.period < 60 for d in self.definitions if not d.composite) else 60.0
        start = self._last_tick if self._last_tick is not None else 0.0
        ticks = []
        tick = (math.floor(start / step) + 1) * step
        while tick <= now + 1e-9:
            ticks.append(tick)
            tick += step
        before = len(self.transitions)
        for tick in ticks:
            self.evaluate_at(tick)
            self._last_tick = tick
        return self.transitions[before:]

    def evaluate_at(self, now: float) -> None:
        """One evaluation of every metric alarm (whose period has a tick here), then the composites."""
        for status in self.status.values():
            if not status.definition.composite:
                self._evaluate_metric_alarm(status, now)
        for _ in range(len(self._rules) + 1):  # composites of composites settle in a few passes
            if not any(self._evaluate_composite(self.status[name], now) for name in self._rules):
                break

    def period_value(self, definition: AlarmDefinition, period_start: float) -> float | None:
        """The alarm's datapoint for the period starting at `period_start` (scenario seconds)."""
        values: dict[str, float | None] = {}
        start_wall, end_wall = self._to_wall(period_start), self._to_wall(period_start + definition.period)
        for query in definition.queries:
            if query.metric is not None:
                data = self._store.window(query.metric, start_wall, end_wall, query.unit)
                values[query.id] = statistic(data, query.stat or "Average")
        for query in definition.queries:
            if query.expression:
                values[query.id] = evaluate_expression(self._expressions[(definition.name, query.id)], values)
        return values[definition.returned.id]

    def _evaluate_metric_alarm(self, status: AlarmStatus, now: float) -> None:
        d = status.definition
        last_end = math.floor(now / d.period + 1e-9) * d.period
        if last_end <= 0:
            return  # no complete period yet
        span = d.evaluation_periods + EXTRA_PERIODS
        starts = [last_end - (span - i) * d.period for i in range(span)]
        points = [(s, self.period_value(d, s)) for s in starts if s >= 0]
        if points and (not status.datapoints or status.datapoints[-1][0] < points[-1][0]):
            status.datapoints.append(points[-1])
        compare = COMPARISONS[d.comparison]
        real = [(s, v) for s, v in points if v is not None]
        n, m = d.evaluation_periods, d.datapoints_to_alarm
        if len(real) >= n:
            chosen = real[-n:]
            breaching = sum(1 for _, v in chosen if compare(v, d.threshold))
            new_state = "ALARM" if breaching >= m else "OK"
            evaluated = chosen
        elif not real:
            treatment = d.treat_missing_data
            new_state = {"missing": "INSUFFICIENT_DATA", "ignore": status.state, "breaching": "ALARM",
                         "notBreaching": "OK"}[treatment]
            breaching, evaluated = (n if treatment == "breaching" else 0), []
        else:
            filled = n - len(real)
            breaching = sum(1 for _, v in real if compare(v, d.threshold))
            if d.treat_missing_data == "breaching":
                breaching += filled
            new_state = "ALARM" if breaching >= m else "OK"
            evaluated = real
        if new_state == status.state:
            return
        reason = self._metric_reason(d, evaluated, breaching, new_state, now)
        self._transition(status, new_state, reason, now, {
            "version": "1.0", "queryDate": self._iso(now), "statistic": d.returned.stat,
            "period": d.period, "threshold": d.threshold,
            "recentDatapoints": [round(v, 6) for _, v in evaluated],
            "evaluatedDatapoints": [{"timestamp": self._iso(s), "value": v} for s, v in evaluated],
        })

    def _metric_reason(self, d: AlarmDefinition, evaluated: list[tuple[float, float]], breaching: int, state: str,
                       now: float) -> str:
        if state == "INSUFFICIENT_DATA":
            return "Insufficient Data: no datapoints were received for the evaluation range."
        points = ", ".join(f"{v:.4g} ({self._iso(s)})" for s, v in reversed(evaluated))
        return (f"Threshold Crossed: {breaching} out of the last {max(len(evaluated), d.evaluation_periods)} datapoints "
                f"[{points}] {'were' if state == 'ALARM' else 'were not all'} {_COMPARISON_WORDS[d.comparison]} the "
                f"threshold ({d.threshold:g}) (minimum {d.datapoints_to_alarm} datapoint"
                f"{'s' if d.datapoints_to_alarm != 1 else ''} for OK -> ALARM transition).")

    def _evaluate_composite(self, status: AlarmStatus, now: float) -> bool:
        rule = self._rules[status.definition.name]
        states = {name: s.state for name, s in self.status.items()}
        holds = evaluate_rule(rule, states)
        new_state = "ALARM" if holds else "OK"
        if new_state == status.state:
            return False
        triggering = sorted(n for n in rule_children(rule) if states.get(n) == "ALARM")
        reason = (f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{triggering[0]} transitioned to ALARM"
                  if holds and triggering else "Alarm rule is no longer true" if not holds else "Alarm rule is true")
        self._transition(status, new_state, reason, now, {"triggeringAlarms": [
            {"arn": f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{n}",
             "state": {"value": states[n], "timestamp": self._iso(self.status[n].changed_at) if n in self.status else None}}
            for n in triggering]})
        return True

    def _transition(self, status: AlarmStatus, new_state: str, reason: str, now: float,
                    reason_data: dict[str, Any]) -> None:
        d = status.definition
        old = status.state
        old_reason, old_changed = status.reason, status.changed_at
        status.state, status.reason, status.changed_at = new_state, reason, now
        self._hooks.record_state(d, new_state, reason, reason_data, now)
        targets = {"ALARM": d.alarm_actions, "OK": d.ok_actions, "INSUFFICIENT_DATA": d.insufficient_data_actions}[new_state]
        run: list[str] = []
        if targets and d.actions_enabled and self._hooks.actions_enabled(d.name):
            for target in targets:
                run.append(self._act(d, target, old, old_reason, old_changed, new_state, reason, reason_data, now))
        self.transitions.append(Transition(now, d.name, old, new_state, reason, d.composite, tuple(run)))

    def _act(self, d: AlarmDefinition, target: str, old: str, old_reason: str, old_changed: float, new: str,
             reason: str, reason_data: dict[str, Any], now: float) -> str:
        arn = f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{d.name}"
        if ":lambda:" in target:
            event = {
                "source": "aws.cloudwatch", "alarmArn": arn, "accountId": self._account, "time": self._iso(now),
                "region": self._region,
                "alarmData": {
                    "alarmName": d.name,
                    "state": {"value": new, "reason": reason, "reasonData": json.dumps(reason_data, default=str),
                              "timestamp": self._iso(now)},
                    "previousState": {"value": old, "reason": old_reason, "timestamp": self._iso(old_changed)},
                    "configuration": ({"alarmRule": d.rule, "description": d.description} if d.composite else
                                      {"description": d.description, "metrics": self._configuration_metrics(d)}),
                },
            }
            self._sink.invoke_lambda(target, event)
            self.actions_run.append((now, d.name, new, target))
            return target
        if ":sns:" in target:
            message: dict[str, Any] = {
                "AlarmName": d.name, "AlarmDescription": d.description, "AWSAccountId": self._account,
                "NewStateValue": new, "NewStateReason": reason, "StateChangeTime": self._iso(now),
                "Region": REGION_NAMES.get(self._region, self._region), "AlarmArn": arn, "OldStateValue": old,
                "OKActions": list(d.ok_actions), "AlarmActions": list(d.alarm_actions),
                "InsufficientDataActions": list(d.insufficient_data_actions),
            }
            if d.composite:
                message["AlarmRule"] = d.rule
                message["TriggeringChildren"] = reason_data.get("triggeringAlarms", [])
            else:
                message["Trigger"] = {"Period": d.period, "EvaluationPeriods": d.evaluation_periods,
                                      "DatapointsToAlarm": d.datapoints_to_alarm,
                                      "ComparisonOperator": d.comparison, "Threshold": d.threshold,
                                      "TreatMissingData": d.treat_missing_data,
                                      "Metrics": self._configuration_metrics(d)}
            subject = f'{new}: "{d.name}" in {REGION_NAMES.get(self._region, self._region)}'[:100]
            self._sink.publish_sns(target, subject, json.dumps(message, default=str))
            self.actions_run.append((now, d.name, new, target))
            return target
        self.actions_run.append((now, d.name, new, f"(not emulated) {target}"))
        return f"(not emulated) {target}"

    @staticmethod
    def _configuration_metrics(d: AlarmDefinition) -> list[dict[str, Any]]:
        metrics = []
        for q in d.queries:
            item: dict[str, Any] = {"id": q.id, "returnData": q.return_data}
            if q.metric:
                item["metricStat"] = {"metric": {"namespace": q.metric.namespace, "name": q.metric.name,
                                                 "dimensions": dict(q.metric.dimensions)},
                                      "period": q.period, "stat": q.stat}
            if q.expression:
                item["expression"] = q.expression
            metrics.append(item)
        return metrics

    def _iso(self, scenario_seconds: float) -> str:
        return self._wall_datetime(scenario_seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
