"""The observations stack: IAM-only routes, least-privilege roles, the analysis schedule and layer split."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from infra.stacks.experiments_stack import ExperimentsStack
from infra.stacks.observations_stack import ObservationsStack
from tests.infrastructure.conftest import resources


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def _policy(template: dict, prefix: str) -> list[dict]:
    policy = next(p for k, p in resources(template, "AWS::IAM::Policy").items() if k.startswith(prefix))
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _grants(statements: list[dict], table: str) -> set[str]:
    return {a for s in statements if f"Tables{table}" in str(s["Resource"]) for a in _actions(s)}


def _function(template: dict, kind: str) -> dict:
    return next(
        f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == f"kanaria-{kind}"
    )


def test_observation_routes_require_iam_authorization(templates):
    routes = resources(templates["KanariaObservations"], "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == {"POST /observations", "POST /observations/batch"}
    for route in routes.values():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert "KanariaExperiments" in str(route["Properties"]["ApiId"])  # the shared API, imported (no cycle)
    assert not any(
        "observations" in r["Properties"]["RouteKey"]
        for r in resources(templates["KanariaExperiments"], "AWS::ApiGatewayV2::Route").values()
    )


def test_analysis_runs_on_a_schedule(templates):
    [rule] = resources(templates["KanariaObservations"], "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "rate(5 minutes)" and props["State"] == "ENABLED"
    [target] = props["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("AnalysisFunction")
    analysis = _function(templates["KanariaObservations"], "analysis")
    assert analysis["Timeout"] < 5 * 60  # a run finishes before the next one starts


def test_no_wildcard_actions_and_least_privilege(templates):
    template = templates["KanariaObservations"]
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(a == "*" or a.endswith(":*") for a in _actions(statement)), (name, statement)
            if statement["Resource"] == "*":
                assert set(_actions(statement)) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    recording = _policy(template, "ObservationsFunction")
    assert _grants(recording, "Observations") == {"dynamodb:PutItem", "dynamodb:GetItem"}
    assert _grants(recording, "Aggregates") == {"dynamodb:UpdateItem"}
    assert _grants(recording, "Experiments") == {"dynamodb:GetItem"}
    assert _grants(recording, "Assignments") == {"dynamodb:GetItem"}
    assert not any(a.startswith("sns:") for s in recording for a in _actions(s))
    analysis = _policy(template, "AnalysisFunction")
    assert _grants(analysis, "Aggregates") == {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem"}
    assert _grants(analysis, "Experiments") == {"dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"}
    assert _grants(analysis, "Observations") == set() and _grants(analysis, "Assignments") == set()
    assert [a for s in analysis for a in _actions(s) if a.startswith("sns:")] == ["sns:Publish"]


def test_numpy_layer_only_on_the_analysis_function(templates):
    template = templates["KanariaObservations"]
    [layer_id] = resources(template, "AWS::Lambda::LayerVersion")
    observations = _function(template, "observations")
    analysis = _function(template, "analysis")
    assert layer_id not in str(observations["Layers"]) and layer_id in str(analysis["Layers"])
    assert observations["Handler"] == "kanaria.handlers.observations.handler"


def test_analysis_rate_is_configurable():
    app = cdk.App(context={"kanaria:bundle": False})
    settings = Settings.from_node(app.node)
    env = cdk.Environment(account=settings.account, region=settings.region)
    data = DataStack(app, "D", settings=settings, env=env)
    experiments = ExperimentsStack(app, "E", settings=settings, data=data, env=env)
    stack = ObservationsStack(
        app, "O", settings=settings, data=data, experiments=experiments, analysis_rate_minutes=15, env=env
    )
    Template.from_stack(stack).has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)"})
