"""The alarm windows of the synthesized KanariaRollout template, which bound the Rollout section's detection times."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kanaria_tools.rehearsal.clock import fmt_duration

duration = fmt_duration  # scenario seconds as '5m 56s', the rehearsal report's format


def md_cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class AlarmWindow:
    """One alarm of the synthesized template, as far as detection time goes."""

    name: str
    description: str
    period_s: int | None
    datapoints: int
    evaluation_periods: int
    threshold: float | None
    comparison: str
    missing: str
    composites: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()

    def after_fault(self) -> tuple[str, str]:
        """When the alarm can go to ALARM after a fault starts, d into a period (0 <= d < period; complete periods
        aligned to multiples of the period): (M - 1) x period + (period - d) when the fault's partial first
        period already breaches, one period later when only full periods do: '0m – 5m' / '5m – 10m' for 1 of 1."""
        if self.period_s is None:
            return "?", "?"
        first = (self.datapoints - 1) * self.period_s
        return (
            f"{duration(first)} – {duration(first + self.period_s)}",
            f"{duration(first + self.period_s)} – {duration(first + 2 * self.period_s)}",
        )


def _period(props: Mapping[str, Any]) -> int | None:
    """The alarm's period: its own, or the (single) period of its metric-math inputs."""
    if props.get("Period"):
        return int(props["Period"])
    periods = {int(m["MetricStat"]["Period"]) for m in props.get("Metrics", []) if "MetricStat" in m}
    return periods.pop() if len(periods) == 1 else None


def _action(value: Any, resources: Mapping[str, Any]) -> str:
    """A readable alarm action: the function's name, or the imported topic's export."""
    if isinstance(value, str):
        return value.rsplit(":", 1)[-1]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical = value["Fn::GetAtt"][0]
        resource = resources.get(logical, {})
        name = resource.get("Properties", {}).get("FunctionName") or resource.get("Properties", {}).get("TopicName")
        kind = resource.get("Type", "").split("::")[1].lower() if resource.get("Type") else ""
        return f"{kind} `{name}`" if isinstance(name, str) else logical
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        match = re.search(r"ExportsOutput(?:Ref|FnGetAtt)([A-Za-z]+?)[0-9A-F]{8}", str(value["Fn::ImportValue"]))
        return f"{match[1]} (imported)" if match else str(value["Fn::ImportValue"])
    return json.dumps(value)


def _getatt_ids(value: Any) -> list[str]:
    """Logical ids referenced by Fn::GetAtt anywhere in an intrinsic expression, in order."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value and isinstance(value["Fn::GetAtt"], list):
            return [str(value["Fn::GetAtt"][0])]
        return [i for v in value.values() for i in _getatt_ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _getatt_ids(v)]
    return []


def alarm_windows(template: Mapping[str, Any]) -> list[AlarmWindow]:
    """Metric alarms of a synthesized template with the composite alarms they feed and those composites' actions."""
    resources = template.get("Resources", {})
    composites: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::CloudWatch::CompositeAlarm":
            continue
        props = resource.get("Properties", {})
        members = _getatt_ids(props.get("AlarmRule"))
        actions = tuple(_action(a, resources) for a in props.get("AlarmActions", []))
        for logical in members:
            composites.setdefault(logical, []).append((str(props.get("AlarmName", "?")), actions))
    out = []
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties", {})
        evaluation = int(props.get("EvaluationPeriods", 1))
        feeds = composites.get(logical, [])
        out.append(
            AlarmWindow(
                name=str(props.get("AlarmName", logical)),
                description=str(props.get("AlarmDescription", "")),
                period_s=_period(props),
                datapoints=int(props.get("DatapointsToAlarm", evaluation)),
                evaluation_periods=evaluation,
                threshold=float(props["Threshold"]) if props.get("Threshold") is not None else None,
                comparison=str(props.get("ComparisonOperator", "")),
                missing=str(props.get("TreatMissingData", "missing")),
                composites=tuple(name for name, _ in feeds),
                actions=tuple(dict.fromkeys(a for _, actions in feeds for a in actions)),
            )
        )
    return out


def alarm_table(windows: Sequence[AlarmWindow]) -> list[str]:
    """Markdown table of the alarm windows."""
    rows = [
        "| alarm | what (AlarmDescription) | period | datapoints to alarm | missing data | feeds → actions |"
        " ALARM after the fault, partial first period breaching | … only full periods breaching |",
        "| --- | --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    for w in windows:
        period = duration(w.period_s) if w.period_s else "?"
        feeds = ", ".join(f"`{c}`" for c in w.composites) or "-"
        if w.actions:
            feeds += " → " + ", ".join(w.actions)
        partial, full = w.after_fault()
        rows.append(
            f"| `{w.name}` | {md_cell(w.description)} | {period} | {w.datapoints} of {w.evaluation_periods} |"
            f" {w.missing} | {feeds} | {partial} | {full} |"
        )
    return rows
