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

By concern: `definitions` (templates to AlarmDefinition), `metric_math` and `alarm_rules` (the two expression
languages, parsed and evaluated), `metric_data` (datapoints and period statistics), `evaluator` (the state of
every alarm over the rehearsal clock, and its actions).
"""

from __future__ import annotations

from kanaria_tools.rehearsal.alarms.alarm_rules import evaluate_rule, parse_rule, rule_children
from kanaria_tools.rehearsal.alarms.definitions import (
    COMPARISONS,
    EXTRA_PERIODS,
    REGION_NAMES,
    STATES,
    AlarmDefinition,
    MetricId,
    MetricQuery,
    Resolver,
    TemplateContext,
    load_definitions,
    parse_definition,
)
from kanaria_tools.rehearsal.alarms.errors import AlarmDefinitionError
from kanaria_tools.rehearsal.alarms.evaluator import ActionSink, AlarmEvaluator, AlarmStatus, EmulatorHooks, Transition
from kanaria_tools.rehearsal.alarms.metric_data import Datum, MetricStore, statistic
from kanaria_tools.rehearsal.alarms.metric_math import evaluate_expression, parse_expression

__all__ = [
    "COMPARISONS",
    "EXTRA_PERIODS",
    "REGION_NAMES",
    "STATES",
    "ActionSink",
    "AlarmDefinition",
    "AlarmDefinitionError",
    "AlarmEvaluator",
    "AlarmStatus",
    "Datum",
    "EmulatorHooks",
    "MetricId",
    "MetricQuery",
    "MetricStore",
    "Resolver",
    "TemplateContext",
    "Transition",
    "evaluate_expression",
    "evaluate_rule",
    "load_definitions",
    "parse_definition",
    "parse_expression",
    "parse_rule",
    "rule_children",
    "statistic",
]
