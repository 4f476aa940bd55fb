"""Properties of the synthesized foundation that matter: encryption, recovery, expiry, least privilege, auth."""

from __future__ import annotations

import json
import subprocess
import sys

import aws_cdk as cdk

from infra.app_builder import build_app
from infra.constructs.tables import TABLE_SPECS
from tests.infrastructure.conftest import all_resources, resources


def test_every_stack_synthesizes_with_nag_and_passes_cfn_lint(assembly_dir, templates):
    assert {"KanariaData", "KanariaExperiments"} <= set(templates)
    paths = [str(p) for p in sorted(assembly_dir.glob("*.template.json"))]
    result = subprocess.run([sys.executable, "-m", "cfnlint", *paths], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if line.startswith("E")]
    assert errors == [], result.stdout


def test_tables_are_encrypted_with_the_kanaria_key_and_recoverable(templates):
    tables = resources(templates["KanariaData"], "AWS::DynamoDB::GlobalTable")
    assert len(tables) == len(TABLE_SPECS)
    for table in tables.values():
        props = table["Properties"]
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
        replica = props["Replicas"][0]
        assert "KMSMasterKeyId" in replica["SSESpecification"]
        assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_data_tables_are_retained_and_deletion_protected(templates):
    """Definitions, observations, counters, rollouts and evaluations outlive the stack and a stray DeleteTable."""
    tables = resources(templates["KanariaData"], "AWS::DynamoDB::GlobalTable")
    by_name = {t["Properties"]["TableName"]: t for t in tables.values()}
    for kind in ("experiments", "aggregates", "observations", "rollouts", "evaluations"):
        table = by_name[f"kanaria-{kind}"]
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain", kind
        assert table["Properties"]["Replicas"][0]["DeletionProtectionEnabled"] is True, kind
    for kind in ("assignments", "idempotency"):  # rebuilt by the traffic (7-day TTL, idempotency keys)
        assert by_name[f"kanaria-{kind}"]["DeletionPolicy"] == "Delete", kind


def test_ttl_on_expiring_tables_only(templates):
    tables = resources(templates["KanariaData"], "AWS::DynamoDB::GlobalTable")
    by_name = {t["Properties"]["TableName"]: t["Properties"] for t in tables.values()}
    expected = {f"kanaria-{s.kind}": s.ttl_attribute for s in TABLE_SPECS}
    for name, ttl in expected.items():
        spec = by_name[name].get("TimeToLiveSpecification")
        if ttl:
            assert spec == {"AttributeName": ttl, "Enabled": True}, name
        else:
            assert spec is None, name


def test_key_rotates_and_topic_is_encrypted(templates):
    key = next(iter(resources(templates["KanariaData"], "AWS::KMS::Key").values()))
    assert key["Properties"]["EnableKeyRotation"] is True
    topic = next(iter(resources(templates["KanariaData"], "AWS::SNS::Topic").values()))
    assert "KmsMasterKeyId" in topic["Properties"]


def _statements(templates):
    for name, policy in all_resources(templates, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement


def test_no_wildcard_actions_in_any_policy(templates):
    for name, statement in _statements(templates):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), (name, statement)


def test_resource_star_only_for_xray(templates):
    for name, statement in _statements(templates):
        if statement.get("Resource") == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            allowed = {
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "cloudwatch:GetMetricData",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "cloudwatch:PutMetricData",
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            }
            assert set(actions) <= allowed, (name, statement)


def test_assign_function_cannot_write_experiments_and_reads_only_its_parameter(templates):
    policies = resources(templates["KanariaExperiments"], "AWS::IAM::Policy")
    assign_policy = next(p for k, p in policies.items() if k.startswith("AssignFunction"))
    statements = assign_policy["Properties"]["PolicyDocument"]["Statement"]
    ssm = [
        s
        for s in statements
        if any(str(a).startswith("ssm:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    ]
    assert ssm and all(":parameter" in str(s["Resource"]) and "Profiles" in str(s["Resource"]) for s in ssm)
    experiments_writes = [
        s for s in statements if "ExperimentsTable" in str(s["Resource"]) or "Experiments" in str(s["Resource"])
    ]
    for s in experiments_writes:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & set(actions), s


def test_every_api_route_requires_iam_authorization(templates):
    routes = all_resources(templates, "AWS::ApiGatewayV2::Route")
    assert len(routes) >= 7
    for name, route in routes.items():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM", name


def test_functions_are_traced_and_log_to_encrypted_groups(templates):
    functions = all_resources(templates, "AWS::Lambda::Function")
    assert functions
    for name, fn in functions.items():
        if "kanaria" not in str(fn["Properties"].get("FunctionName", "")):
            continue  # CDK-internal helper functions (e.g. log retention, custom resources)
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
    for name, group in all_resources(templates, "AWS::Logs::LogGroup").items():
        assert "KmsKeyId" in group["Properties"], name


def test_another_account_synthesizes_offline_with_given_availability_zones(tmp_path):
    # Given a real account/region and its AZs by context, When the app synthesizes, Then no lookup is pending
    # (CDK would otherwise need credentials) and the demo ALB's VPC uses those zones
    app = cdk.App(
        context={
            "kanaria:bundle": False,
            "kanaria:account": "111122223333",
            "kanaria:region": "us-east-1",
            "kanaria:availabilityZones": "us-east-1a, us-east-1c",
        },
        outdir=str(tmp_path),
    )
    build_app(app)
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "missing" not in manifest
    subnets = json.loads((tmp_path / "KanariaCanaryAlb.template.json").read_text())["Resources"].values()
    zones = {r["Properties"]["AvailabilityZone"] for r in subnets if r["Type"] == "AWS::EC2::Subnet"}
    assert zones == {"us-east-1a", "us-east-1c"}
