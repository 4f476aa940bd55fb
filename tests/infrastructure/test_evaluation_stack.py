"""Offline evaluation infrastructure: encrypted versioned bucket with SSL and access logs, a runner that may invoke
only foundation models, a state machine whose Map state bounds concurrency; cdk-nag (in the synth) and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys

from infra.stacks.evaluation_stack import MAP_MAX_CONCURRENCY
from kanaria import names
from kanaria.domain.pricing import PRICES
from tests.infrastructure.conftest import resources

STACK = "KanariaEvaluation"


def _statements(template):
    for policy in resources(template, "AWS::IAM::Policy").values():
        yield from policy["Properties"]["PolicyDocument"]["Statement"]


def _actions(statement):
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _definition(template) -> dict:
    machine = next(iter(resources(template, "AWS::StepFunctions::StateMachine").values()))
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts))


def test_bucket_is_kms_encrypted_versioned_private_logged_and_ssl_only(templates):
    template = templates[STACK]
    buckets = resources(template, "AWS::S3::Bucket")
    bucket = next(b["Properties"] for b in buckets.values() if "LoggingConfiguration" in b["Properties"])
    assert bucket["BucketName"] == names.evaluation_bucket_name("kanaria", "123456789012", "ap-northeast-1")
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and sse["BucketKeyEnabled"] is True
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_runner_invokes_only_the_priced_foundation_models_in_the_region(templates):
    bedrock = [s for s in _statements(templates[STACK]) if any(a.startswith("bedrock:") for a in _actions(s))]
    assert len(bedrock) == 1 and _actions(bedrock[0]) == ["bedrock:InvokeModel"]
    arns = [r["Fn::Join"][1][-1] for r in bedrock[0]["Resource"]]
    assert arns == [f":bedrock:ap-northeast-1::foundation-model/{m}" for m in sorted(PRICES)]
    assert not any("*" in arn for arn in arns)


def test_no_wildcard_actions_and_star_resources_only_for_telemetry(templates):
    telemetry = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for statement in _statements(templates[STACK]):
        assert not any(a == "*" or a.endswith(":*") or a.endswith("*") for a in _actions(statement)), statement
        if statement.get("Resource") == "*":
            assert set(_actions(statement)) <= telemetry, statement


def test_runner_function_environment_and_timeout(templates):
    function = next(f["Properties"] for f in resources(templates[STACK], "AWS::Lambda::Function").values())
    assert function["Handler"] == "kanaria.handlers.evaluation.handler"
    assert function["Timeout"] == 900 and function["TracingConfig"] == {"Mode": "Active"}
    assert set(function["Environment"]["Variables"]) >= {names.ENV_EVALUATIONS_TABLE, names.ENV_EVALUATION_BUCKET}


def test_state_machine_plans_maps_chunks_with_bounded_concurrency_and_reports(templates):
    template = templates[STACK]
    machine = next(iter(resources(template, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    assert machine["StateMachineName"] == names.evaluation_state_machine_name("kanaria")
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    definition = _definition(template)
    assert definition["StartAt"] == "Plan"
    chunks = definition["States"]["EvaluateChunks"]
    assert chunks["Type"] == "Map" and chunks["MaxConcurrency"] == MAP_MAX_CONCURRENCY == 4
    assert chunks["ItemsPath"] == "$.chunks" and chunks["ItemSelector"]["action"] == "evaluate"
    assert chunks["Next"] == "Report" and definition["States"]["Report"]["End"] is True


def test_evaluation_template_passes_cfn_lint(assembly_dir):
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", str(assembly_dir / f"{STACK}.template.json")], capture_output=True, text=True
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("E")]
    assert errors == [], result.stdout


def test_runner_invokes_no_sagemaker_endpoint_unless_named(templates):
    assert not [s for s in _statements(templates[STACK]) if any(a.startswith("sagemaker:") for a in _actions(s))]


def test_runner_invokes_only_the_named_sagemaker_endpoints(tmp_path):
    import aws_cdk as cdk

    from infra.app_builder import build_app

    app = cdk.App(
        context={"kanaria:bundle": False, "kanaria:evaluationEndpoints": "kanaria-manga-ft, Model-D-2"},
        outdir=str(tmp_path),
    )
    build_app(app)
    template = app.synth().get_stack_by_name(STACK).template
    sagemaker = [s for s in _statements(template) if any(a.startswith("sagemaker:") for a in _actions(s))]
    assert len(sagemaker) == 1 and _actions(sagemaker[0]) == ["sagemaker:InvokeEndpoint"]
    # the partition is a reference: joined as the empty string
    arns = ["".join(p if isinstance(p, str) else "" for p in r["Fn::Join"][1]) for r in sagemaker[0]["Resource"]]
    assert arns == [
        "arn::sagemaker:ap-northeast-1:123456789012:endpoint/kanaria-manga-ft",
        "arn::sagemaker:ap-northeast-1:123456789012:endpoint/model-d-2",
    ]
    assert not any("*" in arn for arn in arns)


def test_a_bad_endpoint_name_in_context_fails_the_synth(tmp_path):
    import aws_cdk as cdk
    import pytest

    from infra.app_builder import build_app

    app = cdk.App(context={"kanaria:bundle": False, "kanaria:evaluationEndpoints": "ok,bad_name"}, outdir=str(tmp_path))
    with pytest.raises(ValueError, match="kanaria:evaluationEndpoints: bad_name"):
        build_app(app)
