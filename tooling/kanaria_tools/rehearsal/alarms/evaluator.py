"""The alarm evaluator: metric alarms every minute on complete periods (M of N, TreatMissingData), composite
alarms after their children, actions on transitions (Lambda invoked asynchronously, SNS notified)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol, Sequence

from kanaria_tools.rehearsal.alarms.alarm_rules import evaluate_rule, parse_rule, rule_children
from kanaria_tools.rehearsal.alarms.definitions import (
    COMPARISON_WORDS,
    COMPARISONS,
    EXTRA_PERIODS,
    REGION_NAMES,
    AlarmDefinition,
)
from kanaria_tools.rehearsal.alarms.metric_data import MetricStore, statistic
from kanaria_tools.rehearsal.alarms.metric_math import evaluate_expression, parse_expression


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


@dataclass(frozen=True)
class _Change:
    """One alarm's state change, what its actions are told (scenario seconds)."""

    old: str
    old_reason: str
    old_changed: float
    new: str
    reason: str
    reason_data: dict[str, Any]
    now: float


class AlarmEvaluator:
    """Evaluates every alarm on the rehearsal clock and runs their actions."""

    def __init__(
        self,
        definitions: Iterable[AlarmDefinition],
        store: MetricStore,
        *,
        to_wall: Callable[[float], float],
        sink: ActionSink,
        account: str,
        region: str,
        hooks: EmulatorHooks | None = None,
        wall_datetime: Callable[[float], datetime] | None = None,
    ):
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
        self._expressions = {
            (d.name, q.id): parse_expression(q.expression) for d in self.definitions for q in d.queries if q.expression
        }
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
            new_state = {
                "missing": "INSUFFICIENT_DATA",
                "ignore": status.state,
                "breaching": "ALARM",
                "notBreaching": "OK",
            }[treatment]
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
        self._transition(
            status,
            new_state,
            reason,
            now,
            {
                "version": "1.0",
                "queryDate": self._iso(now),
                "statistic": d.returned.stat,
                "period": d.period,
                "threshold": d.threshold,
                "recentDatapoints": [round(v, 6) for _, v in evaluated],
                "evaluatedDatapoints": [{"timestamp": self._iso(s), "value": v} for s, v in evaluated],
            },
        )

    def _metric_reason(
        self, d: AlarmDefinition, evaluated: Sequence[tuple[float, float]], breaching: int, state: str, now: float
    ) -> str:
        if state == "INSUFFICIENT_DATA":
            return "Insufficient Data: no datapoints were received for the evaluation range."
        points = ", ".join(f"{v:.4g} ({self._iso(s)})" for s, v in reversed(evaluated))
        return (
            f"Threshold Crossed: {breaching} out of the last {max(len(evaluated), d.evaluation_periods)} datapoints "
            f"[{points}] {'were' if state == 'ALARM' else 'were not all'} {COMPARISON_WORDS[d.comparison]} the "
            f"threshold ({d.threshold:g}) (minimum {d.datapoints_to_alarm} datapoint"
            f"{'s' if d.datapoints_to_alarm != 1 else ''} for OK -> ALARM transition)."
        )

    def _evaluate_composite(self, status: AlarmStatus, now: float) -> bool:
        rule = self._rules[status.definition.name]
        states = {name: s.state for name, s in self.status.items()}
        holds = evaluate_rule(rule, states)
        new_state = "ALARM" if holds else "OK"
        if new_state == status.state:
            return False
        triggering = sorted(n for n in rule_children(rule) if states.get(n) == "ALARM")
        reason = (
            f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{triggering[0]} transitioned to ALARM"
            if holds and triggering
            else "Alarm rule is no longer true"
            if not holds
            else "Alarm rule is true"
        )
        self._transition(
            status,
            new_state,
            reason,
            now,
            {
                "triggeringAlarms": [
                    {
                        "arn": f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{n}",
                        "state": {
                            "value": states[n],
                            "timestamp": self._iso(self.status[n].changed_at) if n in self.status else None,
                        },
                    }
                    for n in triggering
                ]
            },
        )
        return True

    def _transition(
        self, status: AlarmStatus, new_state: str, reason: str, now: float, reason_data: dict[str, Any]
    ) -> None:
        d = status.definition
        change = _Change(status.state, status.reason, status.changed_at, new_state, reason, reason_data, now)
        status.state, status.reason, status.changed_at = new_state, reason, now
        self._hooks.record_state(d, new_state, reason, reason_data, now)
        targets = {"ALARM": d.alarm_actions, "OK": d.ok_actions, "INSUFFICIENT_DATA": d.insufficient_data_actions}[
            new_state
        ]
        run: list[str] = []
        if targets and d.actions_enabled and self._hooks.actions_enabled(d.name):
            for target in targets:
                run.append(self._act(d, target, change))
        self.transitions.append(Transition(now, d.name, change.old, new_state, reason, d.composite, tuple(run)))

    def _act(self, d: AlarmDefinition, target: str, change: _Change) -> str:
        """Run one action of a transition (a Lambda function or an SNS topic); what ran."""
        if ":lambda:" in target:
            self._sink.invoke_lambda(target, self._lambda_event(d, change))
            ran = target
        elif ":sns:" in target:
            region = REGION_NAMES.get(self._region, self._region)
            subject = f'{change.new}: "{d.name}" in {region}'[:100]
            self._sink.publish_sns(target, subject, json.dumps(self._sns_message(d, change), default=str))
            ran = target
        else:
            ran = f"(not emulated) {target}"
        self.actions_run.append((change.now, d.name, change.new, ran))
        return ran

    def _arn(self, d: AlarmDefinition) -> str:
        return f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{d.name}"

    def _lambda_event(self, d: AlarmDefinition, change: _Change) -> dict[str, Any]:
        """The CloudWatch alarm event a Lambda action receives."""
        return {
            "source": "aws.cloudwatch",
            "alarmArn": self._arn(d),
            "accountId": self._account,
            "time": self._iso(change.now),
            "region": self._region,
            "alarmData": {
                "alarmName": d.name,
                "state": {
                    "value": change.new,
                    "reason": change.reason,
                    "reasonData": json.dumps(change.reason_data, default=str),
                    "timestamp": self._iso(change.now),
                },
                "previousState": {
                    "value": change.old,
                    "reason": change.old_reason,
                    "timestamp": self._iso(change.old_changed),
                },
                "configuration": (
                    {"alarmRule": d.rule, "description": d.description}
                    if d.composite
                    else {"description": d.description, "metrics": self._configuration_metrics(d)}
                ),
            },
        }

    def _sns_message(self, d: AlarmDefinition, change: _Change) -> dict[str, Any]:
        """The alarm notification JSON an SNS action publishes."""
        message: dict[str, Any] = {
            "AlarmName": d.name,
            "AlarmDescription": d.description,
            "AWSAccountId": self._account,
            "NewStateValue": change.new,
            "NewStateReason": change.reason,
            "StateChangeTime": self._iso(change.now),
            "Region": REGION_NAMES.get(self._region, self._region),
            "AlarmArn": self._arn(d),
            "OldStateValue": change.old,
            "OKActions": list(d.ok_actions),
            "AlarmActions": list(d.alarm_actions),
            "InsufficientDataActions": list(d.insufficient_data_actions),
        }
        if d.composite:
            message["AlarmRule"] = d.rule
            message["TriggeringChildren"] = change.reason_data.get("triggeringAlarms", [])
        else:
            message["Trigger"] = {
                "Period": d.period,
                "EvaluationPeriods": d.evaluation_periods,
                "DatapointsToAlarm": d.datapoints_to_alarm,
                "ComparisonOperator": d.comparison,
                "Threshold": d.threshold,
                "TreatMissingData": d.treat_missing_data,
                "Metrics": self._configuration_metrics(d),
            }
        return message

    @staticmethod
    def _configuration_metrics(d: AlarmDefinition) -> list[dict[str, Any]]:
        metrics = []
        for q in d.queries:
            item: dict[str, Any] = {"id": q.id, "returnData": q.return_data}
            if q.metric:
                item["metricStat"] = {
                    "metric": {
                        "namespace": q.metric.namespace,
                        "name": q.metric.name,
                        "dimensions": dict(q.metric.dimensions),
                    },
                    "period": q.period,
                    "stat": q.stat,
                }
            if q.expression:
                item["expression"] = q.expression
            metrics.append(item)
        return metrics

    def _iso(self, scenario_seconds: float) -> str:
        return self._wall_datetime(scenario_seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
