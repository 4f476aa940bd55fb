"""What a deployment costs, per driver, counted from the synthesized templates (cdk.out) and priced with
public on-demand list prices: `python -m kanaria_tools.costs cdk.out` prints the table docs/deploy.md shows.

Prices are AWS's published us-east-1 on-demand list prices (other regions differ by a few percent, free tiers
are ignored), as of PRICES_AS_OF; change them only together with that date.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from kanaria import names

PRICES_AS_OF = "2025-06, us-east-1 on-demand list prices"
HOURS_PER_MONTH = 730
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60

ALB_HOUR = 0.0225  # per load balancer-hour (LCUs extra, ~0 for a demo)
KMS_KEY_MONTH = 1.00
ALARM_METRIC_MONTH = 0.10  # standard resolution, per metric in the alarm (metric math: every metric it reads)
COMPOSITE_ALARM_MONTH = 0.50
DASHBOARD_MONTH = 3.00  # beyond the 3 free per account
CUSTOM_METRIC_MONTH = 0.30  # first 10,000 metrics; prorated by the hour a metric has data
GET_METRIC_DATA_PER_METRIC = 0.01 / 1000
LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000166667  # x86_64
SFN_TRANSITION = 0.025 / 1000
HTTP_API_REQUEST = 1.00 / 1_000_000
DYNAMODB_WRITE_UNIT = 0.625 / 1_000_000  # on-demand write request unit
CODEPIPELINE_V2_ACTION_MINUTE = 0.002

# What the templates do not say (stated so the table can be recomputed with other numbers).
ASSUMED_RUN_SECONDS = {"kanaria-rollout-reconciler": 1.0, "kanaria-analysis": 3.0}
CANARY_METRICS = (
    9  # Observations, QualityScore, LatencyMs, Csat, CostUsd, Errors, Hallucinations, Throttles, SafetyStops
)
GET_METRIC_DATA_PER_LOOK = 168 + 18  # the judge's streams and cut-offs, plus the point gates' snapshot
TRANSITIONS_PER_LOOK = 3  # Wait, Task, Choice
WRITE_UNITS_PER_OBSERVATION = 6  # one TransactWriteItems: Put (~1 KB) + Update (~2 KB), doubled in a transaction
PIPELINE_MINUTES_PER_ROLLOUT = 2  # source + start action of the rollout request pipeline


@dataclass(frozen=True)
class CostRow:
    """One driver: how many, what it costs, from which template resources."""

    driver: str
    quantity: str
    usd: float
    per: str
    counted_from: str


def _resources(templates: Mapping[str, dict], resource_type: str) -> list[dict[str, Any]]:
    return [r for t in templates.values() for r in t.get("Resources", {}).values() if r.get("Type") == resource_type]


def _alarm_metrics(alarm: Mapping[str, Any]) -> int:
    metrics = alarm.get("Properties", {}).get("Metrics")
    return sum(1 for m in metrics if "MetricStat" in m) if metrics else 1


def _scheduled_functions(templates: Mapping[str, dict]) -> list[tuple[str, float, int]]:
    """(function name, invocations per month, memory MB) of every rate(...) rule targeting a function."""
    functions = {
        logical: resource["Properties"]
        for t in templates.values()
        for logical, resource in t.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Lambda::Function"
    }
    scheduled = []
    for rule in _resources(templates, "AWS::Events::Rule"):
        match = re.fullmatch(r"rate\((\d+) minutes?\)", rule["Properties"].get("ScheduleExpression") or "")
        if not match:
            continue
        for target in rule["Properties"].get("Targets", []):
            logical = (target.get("Arn") or {}).get("Fn::GetAtt", [None])[0]
            if logical in functions:
                props = functions[logical]
                scheduled.append(
                    (
                        str(props.get("FunctionName")),
                        MINUTES_PER_MONTH / int(match[1]),
                        int(props.get("MemorySize", 128)),
                    )
                )
    return sorted(scheduled)


def custom_metrics(judged_intents: Iterable[str] = names.DEFAULT_JUDGED_INTENTS) -> int:
    """Canary metric series while a rollout's observations carry `target`: {target} and {target, intent}."""
    return CANARY_METRICS * 2 * (1 + len(tuple(judged_intents)))


def cost_rows(templates: Mapping[str, dict]) -> list[CostRow]:
    """Every cost driver of the synthesized app: monthly while idle, per rollout hour, per use."""
    return [*_monthly_rows(templates), *_rollout_rows(templates), _observation_row()]


def _monthly_rows(templates: Mapping[str, dict]) -> list[CostRow]:
    rows = []
    albs = len(_resources(templates, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    if albs:
        rows.append(
            CostRow(
                "demo ALB",
                f"{albs}",
                albs * ALB_HOUR * HOURS_PER_MONTH,
                "month",
                "ElasticLoadBalancingV2::LoadBalancer",
            )
        )
    keys = len(_resources(templates, "AWS::KMS::Key"))
    rows.append(CostRow("KMS key", f"{keys}", keys * KMS_KEY_MONTH, "month", "KMS::Key"))
    alarms = _resources(templates, "AWS::CloudWatch::Alarm")
    alarm_metrics = sum(_alarm_metrics(a) for a in alarms)
    rows.append(
        CostRow(
            "alarms",
            f"{len(alarms)} alarms reading {alarm_metrics} metrics",
            alarm_metrics * ALARM_METRIC_MONTH,
            "month",
            "CloudWatch::Alarm (Metrics with MetricStat)",
        )
    )
    composites = len(_resources(templates, "AWS::CloudWatch::CompositeAlarm"))
    rows.append(
        CostRow(
            "composite alarms",
            f"{composites}",
            composites * COMPOSITE_ALARM_MONTH,
            "month",
            "CloudWatch::CompositeAlarm",
        )
    )
    dashboards = len(_resources(templates, "AWS::CloudWatch::Dashboard"))
    rows.append(CostRow("dashboard", f"{dashboards}", dashboards * DASHBOARD_MONTH, "month", "CloudWatch::Dashboard"))
    for function, runs, memory in _scheduled_functions(templates):
        seconds = ASSUMED_RUN_SECONDS.get(function, 1.0)
        usd = runs * (LAMBDA_REQUEST + memory / 1024 * seconds * LAMBDA_GB_SECOND)
        rows.append(
            CostRow(
                f"schedule: {function}",
                f"{runs:,.0f} runs × {memory} MB × {seconds:g} s (assumed)",
                usd,
                "month",
                "Events::Rule rate(...) -> Lambda::Function MemorySize",
            )
        )
    return rows


def _rollout_rows(templates: Mapping[str, dict]) -> list[CostRow]:
    rows = []
    series = custom_metrics()
    rows.append(
        CostRow(
            "canary custom metrics",
            f"{series} series ({CANARY_METRICS} metrics × 2 targets × 7 intent sets)",
            series * CUSTOM_METRIC_MONTH / HOURS_PER_MONTH,
            "rollout hour",
            "kanaria.names (JUDGED_INTENTS), emitted only while observations carry target",
        )
    )
    rows.append(
        CostRow(
            "judge reads (GetMetricData)",
            f"{GET_METRIC_DATA_PER_LOOK} metrics × 60 looks",
            GET_METRIC_DATA_PER_LOOK * 60 * GET_METRIC_DATA_PER_METRIC,
            "rollout hour",
            "one look a minute",
        )
    )
    machines = len(_resources(templates, "AWS::StepFunctions::StateMachine"))
    rows.append(
        CostRow(
            "rollout state machine",
            f"{TRANSITIONS_PER_LOOK} transitions × 60 looks",
            TRANSITIONS_PER_LOOK * 60 * SFN_TRANSITION,
            "rollout hour",
            f"StepFunctions::StateMachine ({machines}, standard)",
        )
    )
    pipelines = _resources(templates, "AWS::CodePipeline::Pipeline")
    if pipelines:
        rows.append(
            CostRow(
                "rollout request pipeline",
                f"~{PIPELINE_MINUTES_PER_ROLLOUT} action minutes",
                PIPELINE_MINUTES_PER_ROLLOUT * CODEPIPELINE_V2_ACTION_MINUTE,
                "rollout",
                f"CodePipeline::Pipeline ({pipelines[0]['Properties'].get('PipelineType', 'V1')})",
            )
        )
    return rows


def _observation_row() -> CostRow:
    observation_usd = (
        HTTP_API_REQUEST / 100  # a batch of 100 is one request
        + WRITE_UNITS_PER_OBSERVATION * DYNAMODB_WRITE_UNIT
        + (LAMBDA_REQUEST + 0.05 * LAMBDA_GB_SECOND) / 100  # 1,024 MB for ~50 ms per batch of 100
    )
    return CostRow(
        "observations (batched by the client)",
        f"1,000,000 × {WRITE_UNITS_PER_OBSERVATION} write units",
        observation_usd * 1_000_000,
        "million observations",
        "HTTP API + DynamoDB on-demand + Lambda",
    )


def render(rows: Iterable[CostRow]) -> str:
    """Markdown table (what docs/deploy.md shows between its cost markers)."""
    lines = ["| driver | quantity | USD | per | counted from |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.driver} | {r.quantity} | {_usd(r.usd)} | {r.per} | {r.counted_from} |" for r in rows]
    return "\n".join(lines) + "\n"


def _usd(value: float) -> str:
    return f"{value:,.2f}" if value >= 0.1 else f"{value:.4f}"


def load_templates(assembly: Path) -> dict[str, dict]:
    """Templates of a cloud assembly by stack name."""
    return {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in assembly.glob("*.template.json")}


def main(argv: list[str] | None = None) -> int:
    """Print the cost table of a synthesized assembly."""
    parser = argparse.ArgumentParser(prog="python -m kanaria_tools.costs", description=__doc__)
    parser.add_argument("assembly", type=Path, nargs="?", default=Path("cdk.out"))
    args = parser.parse_args(argv)
    templates = load_templates(args.assembly)
    if not templates:
        print(
            json.dumps(
                {"error": {"code": "validation_error", "field": "assembly", "reason": "no templates: run make synth"}}
            ),
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(f"Prices: {PRICES_AS_OF}\n\n" + render(cost_rows(templates)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
