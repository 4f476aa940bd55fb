"""docs/deploy.md stays true to the synthesized app: its cost table is the one computed from the templates, and
the least-privilege policies it hands out cover every service the templates create."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kanaria_tools.costs import PRICES_AS_OF, cost_rows, render

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
SERVICE_OF = {"ApiGatewayV2": "apigateway", "ElasticLoadBalancingV2": "elasticloadbalancing", "StepFunctions": "states"}


def guide_table() -> str:
    text = GUIDE.read_text()
    match = re.search(r"<!-- costs:begin -->\n(.*?)<!-- costs:end -->", text, re.S)
    assert match, "docs/deploy.md lost its cost markers"
    return match[1]


def test_the_cost_table_is_the_one_computed_from_the_templates(templates):
    assert guide_table() == render(cost_rows(templates)), "regenerate: python -m kanaria_tools.costs cdk.out"
    assert PRICES_AS_OF in GUIDE.read_text()


def test_the_cost_table_counts_the_drivers_the_templates_hold(templates):
    rows = {row.driver: row for row in cost_rows(templates)}
    assert rows["alarms"].quantity.startswith("7 alarms") and rows["composite alarms"].quantity == "2"
    assert rows["schedule: kanaria-rollout-reconciler"].quantity.startswith("43,800 runs × 256 MB")
    assert rows["canary custom metrics"].quantity.startswith("126 series")
    assert "demo ALB" in rows and rows["KMS key"].quantity == "1"


def test_the_execution_policy_covers_every_service_the_templates_create(templates):
    policy = json.loads((ROOT / "examples" / "iam" / "cdk-execution-policy.json").read_text())
    allowed = {action.split(":")[0] for s in policy["Statement"] for action in s["Action"]}
    created = {
        SERVICE_OF.get(kind.split("::")[1], kind.split("::")[1].lower())
        for t in templates.values()
        for kind in {r["Type"] for r in t["Resources"].values()}
    }
    assert created <= allowed, created - allowed
    [iam] = [s for s in policy["Statement"] if any(a.startswith("iam:") for a in s["Action"])]
    assert iam["Resource"] == "arn:aws:iam::ACCOUNT:role/Kanaria*" and "iam:*" not in iam["Action"]
    assert all(a != "*" and not a.startswith("iam:*") for s in policy["Statement"] for a in s["Action"])


def test_the_deployer_only_assumes_the_bootstrap_roles():
    policy = json.loads((ROOT / "examples" / "iam" / "deployer-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"sts:AssumeRole", "ssm:GetParameter", "sts:GetCallerIdentity"}


def test_the_guide_shows_every_command_from_bootstrap_to_a_first_rollout():
    text = GUIDE.read_text()
    for command in (
        "cdk bootstrap aws://",
        "--cloudformation-execution-policies",
        "make deploy",
        "kanaria experiment create",
        "kanaria evaluate",
        "kanaria rollout start",
        "kanaria rollout status",
    ):
        assert command in text, command
