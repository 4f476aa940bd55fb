"""Canary rollout infrastructure: alarms and their actions, IAM scope, pipeline, state machine, demo/existing ALB.

Two synths for the module (demo-ALB mode and existing-listener mode), each through build_app so the cdk-nag
AwsSolutions plugin gates them: a finding without an acknowledgement fails the fixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app_builder import build_app
from infra.constructs.canary_alarms import ALARM_SPECS, MIN_EVENTS, MIN_SAMPLES
from infra.constructs.rollout_functions import DESCRIBE_ACTIONS, METRIC_READ_ACTIONS
from infra.constructs.rollout_state_machine import (
    DEFINITION_FILE,
    SUB_ALERTS_TOPIC_ARN,
    SUB_ROLLBACK_ARN,
    SUB_ROLLOUT_STEPS_ARN,
)
from kanaria import names
from kanaria_tools.rehearsal.alarms import evaluate_expression, parse_expression

PREFIX = names.DEFAULT_PREFIX
ROLLOUT = "KanariaRollout"
ALB = "KanariaCanaryAlb"
EXISTING = {
    "kanaria:listenerArn": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/chatbot/50dc6c495c0c9188/f2f7dc8efc522ab2",
    "kanaria:primaryTargetGroupArn": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/chatbot-primary/73e2d6bc24d8a067",
    "kanaria:canaryTargetGroupArn": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/chatbot-canary/0123456789abcdef",
}
# Resource "*" is acceptable only for actions that support no resource-level permissions.
RESOURCE_STAR_ALLOWED = {
    *DESCRIBE_ACTIONS,
    *METRIC_READ_ACTIONS,
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


def _synth(outdir: Path, extra_context: dict[str, str]) -> cdk.cx_api.CloudAssembly:
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    context.update({"kanaria:bundle": False, **extra_context})
    app = cdk.App(context=context, outdir=str(outdir))
    build_app(app)
    return app.synth()  # raises on any unacknowledged cdk-nag AwsSolutions finding


@pytest.fixture(scope="module")
def assembly(tmp_path_factory) -> cdk.cx_api.CloudAssembly:
    return _synth(tmp_path_factory.mktemp("rollout-demo"), {})


@pytest.fixture(scope="module")
def existing_assembly(tmp_path_factory) -> cdk.cx_api.CloudAssembly:
    return _synth(tmp_path_factory.mktemp("rollout-existing"), EXISTING)


@pytest.fixture(scope="module")
def rollout(assembly) -> Template:
    return Template.from_json(assembly.get_stack_by_name(ROLLOUT).template)


@pytest.fixture(scope="module")
def alb(assembly) -> Template:
    return Template.from_json(assembly.get_stack_by_name(ALB).template)


def _one(template: Template, resource_type: str, properties: dict | None = None) -> tuple[str, dict]:
    found = template.find_resources(resource_type, {"Properties": properties} if properties else None)
    assert len(found) == 1, f"{resource_type} {properties}: {list(found)}"
    return next(iter(found.items()))


def _logical_id(template: Template, resource_type: str, properties: dict) -> str:
    return _one(template, resource_type, properties)[0]


def _alarm(template: Template, kind: str) -> dict:
    return _one(template, "AWS::CloudWatch::Alarm", {"AlarmName": names.alarm_name(PREFIX, kind)})[1]["Properties"]


def _statements(template: Template) -> list[dict]:
    statements = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        statements += resource["Properties"]["PolicyDocument"]["Statement"]
    for resource in template.find_resources("AWS::IAM::Role").values():
        for policy in resource["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    return statements


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _function_arn(template: Template, kind: str) -> dict:
    logical_id = _logical_id(template, "AWS::Lambda::Function", {"FunctionName": names.function_name(PREFIX, kind)})
    return {"Fn::GetAtt": [logical_id, "Arn"]}


# --- composite alarms ------------------------------------------------------------------------------------------


def _rule_children(template: Template, properties: dict) -> list[str]:
    parts = properties["AlarmRule"]["Fn::Join"][1]
    return [part["Fn::GetAtt"][0] for part in parts if isinstance(part, dict)]


def test_a_missing_rollout_definition_fails_the_synth_instead_of_dropping_the_stacks(tmp_path):
    missing = tmp_path / "no-such.asl.json"
    with pytest.raises(FileNotFoundError, match="no-such.asl.json"):
        _synth(tmp_path / "out", {"kanaria:rolloutDefinition": str(missing)})
    assert DEFINITION_FILE.is_file()  # the shipped definition is part of the app


def test_critical_composite_rolls_back_and_pages(rollout):
    props = _one(
        rollout, "AWS::CloudWatch::CompositeAlarm", {"AlarmName": names.alarm_name(PREFIX, names.ALARM_CANARY_CRITICAL)}
    )[1]["Properties"]
    children = [
        _logical_id(rollout, "AWS::CloudWatch::Alarm", {"AlarmName": names.alarm_name(PREFIX, kind)})
        for kind in names.CRITICAL_ALARM_KINDS
    ]
    assert _rule_children(rollout, props) == children
    rule_text = "".join(part for part in props["AlarmRule"]["Fn::Join"][1] if isinstance(part, str))
    assert rule_text.count("ALARM(") == 3 and rule_text.count(" OR ") == 2
    rollback = _function_arn(rollout, "rollback")
    assert props["AlarmActions"][0] == rollback
    assert "AlertsTopic" in props["AlarmActions"][1]["Fn::ImportValue"]
    assert len(props["AlarmActions"]) == 2
    # CloudWatch may invoke the rollback function for this alarm only.
    permission = _one(
        rollout,
        "AWS::Lambda::Permission",
        {"FunctionName": rollback, "Principal": "lambda.alarms.cloudwatch.amazonaws.com"},
    )[1]["Properties"]
    assert permission["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com"
    assert permission["SourceAccount"] == "123456789012"
    # The critical alarm's ARN, built from its fixed name (no GetAtt: see CanaryAlarms._scope_permission_by_name).
    assert permission["SourceArn"]["Fn::Join"][1][-1] == (
        f":cloudwatch:ap-northeast-1:123456789012:alarm:{names.alarm_name(PREFIX, names.ALARM_CANARY_CRITICAL)}"
    )
    assert permission["Action"] == "lambda:InvokeFunction"


def test_warning_composite_only_notifies(rollout):
    props = _one(
        rollout, "AWS::CloudWatch::CompositeAlarm", {"AlarmName": names.alarm_name(PREFIX, names.ALARM_CANARY_WARNING)}
    )[1]["Properties"]
    children = [
        _logical_id(rollout, "AWS::CloudWatch::Alarm", {"AlarmName": names.alarm_name(PREFIX, kind)})
        for kind in names.WARNING_ALARM_KINDS
    ]
    assert _rule_children(rollout, props) == children
    assert len(props["AlarmActions"]) == 1
    assert "AlertsTopic" in props["AlarmActions"][0]["Fn::ImportValue"]


def _canary_alarms(template: Template) -> list[dict]:
    """The six canary metric alarms (the stack also has the reconciler's error alarm)."""
    return [
        r
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"]["AlarmName"].startswith(f"{PREFIX}-canary-")
    ]


def test_metric_alarms_have_no_actions_of_their_own(rollout):
    assert len(_canary_alarms(rollout)) == len(ALARM_SPECS)
    for resource in _canary_alarms(rollout):
        assert "AlarmActions" not in resource["Properties"]


# --- metric alarms ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ALARM_SPECS))
def test_alarm_threshold_window_and_missing_data(rollout, kind):
    spec = ALARM_SPECS[kind]
    props = _alarm(rollout, kind)
    assert props["Threshold"] == spec.threshold
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == spec.evaluation_periods
    assert props["DatapointsToAlarm"] == spec.datapoints_to_alarm
    critical = kind in names.CRITICAL_ALARM_KINDS
    assert props["TreatMissingData"] == ("notBreaching" if critical else "missing")
    periods = {query["MetricStat"]["Period"] for query in props["Metrics"] if "MetricStat" in query}
    assert periods == {spec.period.to_seconds()}
    (expression,) = [query["Expression"] for query in props["Metrics"] if "Expression" in query]
    assert f">= {MIN_SAMPLES}" in expression, "every rate has a minimum-volume floor"


@pytest.mark.parametrize(
    "kind, events",
    [
        (names.ALARM_CANARY_ERROR_RATE, "errors"),
        (names.ALARM_CANARY_THROTTLING, "events"),
        (names.ALARM_CANARY_HALLUCINATION, "events"),
    ],
)
@pytest.mark.parametrize(
    "volume, count, breaches",
    [
        (30, 1, False),  # one unlucky event in a small window is 3.3% but must not page
        (30, MIN_EVENTS - 1, False),
        (150, 15, True),  # a real spike: 10%
        (MIN_SAMPLES - 1, MIN_SAMPLES - 1, False),  # below the volume floor nothing decides
        (400, MIN_EVENTS, False),  # enough events but 1.25%: below every threshold
    ],
)
def test_event_rates_need_volume_and_events(rollout, kind, events, volume, count, breaches):
    # Given the synthesized expression, When CloudWatch's metric math evaluates one window, Then it breaches only
    # with enough requests and enough events
    props = _alarm(rollout, kind)
    (expression,) = [query["Expression"] for query in props["Metrics"] if "Expression" in query]
    volume_id = "requests" if kind == names.ALARM_CANARY_ERROR_RATE else "observations"
    value = evaluate_expression(parse_expression(expression), {volume_id: volume, events: count})
    assert (value > props["Threshold"]) is breaches, (expression, value)


def test_thresholds_match_the_rollout_policy(rollout):
    expected = {  # kind: (threshold, window seconds, datapoints to alarm, of evaluation periods)
        names.ALARM_CANARY_ERROR_RATE: (2, 60, 2, 3),
        names.ALARM_CANARY_LATENCY: (2, 60, 3, 5),
        names.ALARM_CANARY_THROTTLING: (5, 60, 2, 3),
        names.ALARM_CANARY_HALLUCINATION: (3, 60, 5, 10),
        names.ALARM_CANARY_QUALITY: (5, 60, 10, 15),
    }
    for kind, (threshold, period, m, n) in expected.items():
        props = _alarm(rollout, kind)
        assert (
            props["Threshold"],
            props["Metrics"][1]["MetricStat"]["Period"],
            props["DatapointsToAlarm"],
            props["EvaluationPeriods"],
        ) == (threshold, period, m, n), kind


def _metric_stats(props: dict) -> dict[str, dict]:
    return {query["Id"]: query["MetricStat"] for query in props["Metrics"] if "MetricStat" in query}


def test_error_rate_is_canary_5xx_over_canary_requests(rollout, alb):
    props = _alarm(rollout, names.ALARM_CANARY_ERROR_RATE)
    stats = _metric_stats(props)
    assert {stat["Metric"]["MetricName"] for stat in stats.values()} == {"HTTPCode_Target_5XX_Count", "RequestCount"}
    expression = next(query["Expression"] for query in props["Metrics"] if "Expression" in query)
    assert "100 * FILL(errors, 0) / requests" in expression
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/ApplicationELB" and stat["Stat"] == "Sum"
        dimensions = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
        assert set(dimensions) == {"LoadBalancer", "TargetGroup"}
        assert "CanaryTargetGroup" in dimensions["TargetGroup"]["Fn::ImportValue"]


def test_latency_is_canary_p99_over_primary_p99(rollout):
    props = _alarm(rollout, names.ALARM_CANARY_LATENCY)
    stats = _metric_stats(props)
    assert stats["canary"]["Stat"] == "p99" and stats["primary"]["Stat"] == "p99"
    assert stats["canary"]["Metric"]["Dimensions"] == [{"Name": names.DIM_TARGET, "Value": names.TARGET_CANARY}]
    assert stats["primary"]["Metric"]["Dimensions"] == [{"Name": names.DIM_TARGET, "Value": names.TARGET_PRIMARY}]
    expression = next(query["Expression"] for query in props["Metrics"] if "Expression" in query)
    assert "canary / primary" in expression


def test_kanaria_metrics_carry_exactly_the_target_dimension(rollout):
    for resource in _canary_alarms(rollout):
        for stat in _metric_stats(resource["Properties"]).values():
            if stat["Metric"]["Namespace"] == names.METRIC_NAMESPACE:
                (dimension,) = stat["Metric"]["Dimensions"]
                assert dimension["Name"] == names.DIM_TARGET
                assert dimension["Value"] in {names.TARGET_CANARY, names.TARGET_PRIMARY}


# --- IAM ---------------------------------------------------------------------------------------------------------


def _listener_ref(alb: Template) -> str:
    return _one(alb, "AWS::ElasticLoadBalancingV2::Listener")[0]


def test_modify_listener_only_on_the_listener(rollout, alb):
    listener_id = _listener_ref(alb)
    statements = [s for s in _statements(rollout) if "elasticloadbalancing:ModifyListener" in _as_list(s["Action"])]
    assert len(statements) == 3  # rollout-steps, rollback and the reconciler
    for statement in statements:
        assert _as_list(statement["Action"]) == ["elasticloadbalancing:ModifyListener"]
        (resource,) = _as_list(statement["Resource"])
        assert f"Ref{listener_id}" in resource["Fn::ImportValue"]


def test_no_wildcard_actions(assembly):
    for stack in (ROLLOUT, ALB):
        for statement in _statements(Template.from_json(assembly.get_stack_by_name(stack).template)):
            for action in _as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (stack, statement)


def test_resource_star_only_where_iam_cannot_scope(assembly):
    for stack in (ROLLOUT, ALB):
        for statement in _statements(Template.from_json(assembly.get_stack_by_name(stack).template)):
            if "*" in _as_list(statement["Resource"]):
                assert set(_as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED, (stack, statement)


def test_state_machine_role_invokes_only_the_two_functions(rollout):
    machine = _one(rollout, "AWS::StepFunctions::StateMachine")[1]["Properties"]
    role_id = machine["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        r["Properties"]
        for r in rollout.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]
    invoke = [s for s in statements if "lambda:InvokeFunction" in _as_list(s["Action"])]
    assert len(invoke) == 1
    assert sorted(json.dumps(r) for r in invoke[0]["Resource"]) == sorted(
        json.dumps(_function_arn(rollout, kind)) for kind in ("rollout-steps", "rollback")
    )
    publish = [s for s in statements if "sns:Publish" in _as_list(s["Action"])]
    assert len(publish) == 1 and "AlertsTopic" in publish[0]["Resource"]["Fn::ImportValue"]
    allowed = {"lambda:InvokeFunction", "sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"} | RESOURCE_STAR_ALLOWED
    assert {a for s in statements for a in _as_list(s["Action"])} <= allowed


def test_functions_manage_only_this_state_machine(rollout):
    state_machine_arn = f":states:ap-northeast-1:123456789012:stateMachine:{names.rollout_state_machine_name(PREFIX)}"
    executions_arn = f":states:ap-northeast-1:123456789012:execution:{names.rollout_state_machine_name(PREFIX)}:*"
    for statement in _statements(rollout):
        actions = [a for a in _as_list(statement["Action"]) if a.startswith("states:")]
        if not actions or statement.get("Sid") is None:
            continue  # the pipeline action role's CDK grant is checked in test_pipeline_*
        (resource,) = _as_list(statement["Resource"])
        tail = resource["Fn::Join"][1][-1]
        assert tail in {state_machine_arn, executions_arn}, statement


# --- functions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,module", [("rollout-steps", "rollout_steps"), ("rollback", "rollback"), ("rollout-reconciler", "reconciler")]
)
def test_rollout_functions_environment(rollout, kind, module):
    props = _one(rollout, "AWS::Lambda::Function", {"FunctionName": names.function_name(PREFIX, kind)})[1]["Properties"]
    assert props["Handler"] == f"kanaria.handlers.{module}.handler"
    assert props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    for key in (
        names.ENV_LISTENER_ARN,
        names.ENV_PRIMARY_TARGET_GROUP_ARN,
        names.ENV_CANARY_TARGET_GROUP_ARN,
        names.ENV_ROLLOUTS_TABLE,
        names.ENV_EXPERIMENTS_TABLE,
        names.ENV_AGGREGATES_TABLE,
        names.ENV_ALERTS_TOPIC_ARN,
        names.ENV_STATE_MACHINE_ARN,
        names.ENV_METRIC_NAMESPACE,
        names.ENV_CRITICAL_ALARM_NAME,
        names.ENV_WARNING_ALARM_NAME,
        names.ENV_CANARY_ALARM_NAMES,
    ):
        assert key in env, key
    assert env[names.ENV_METRIC_NAMESPACE] == names.METRIC_NAMESPACE
    assert env[names.ENV_CRITICAL_ALARM_NAME] == names.alarm_name(PREFIX, names.ALARM_CANARY_CRITICAL)
    assert env[names.ENV_CANARY_ALARM_NAMES].split(",") == [
        names.alarm_name(PREFIX, kind) for kind in (*names.CRITICAL_ALARM_KINDS, *names.WARNING_ALARM_KINDS)
    ]
    # Built from the fixed name (no Ref to the state machine, which references these functions).
    assert env[names.ENV_STATE_MACHINE_ARN]["Fn::Join"][1][-1].endswith(
        f":stateMachine:{names.rollout_state_machine_name(PREFIX)}"
    )


def test_only_rollout_steps_reads_the_warm_up_parameters_and_only_under_their_path(rollout):
    """The warm-up's secret headers are SecureStrings under /<prefix>/warmup/: rollout-steps (which sends the
    warm-up) may GetParameter there and nowhere else; no other rollout function may read any parameter."""
    steps = _one(rollout, "AWS::Lambda::Function", {"FunctionName": names.function_name(PREFIX, "rollout-steps")})
    env = steps[1]["Properties"]["Environment"]["Variables"]
    assert env[names.ENV_WARMUP_PARAMETER_PREFIX] == names.warmup_parameter_prefix(PREFIX) == f"/{PREFIX}/warmup/"
    readers = []
    for resource in rollout.find_resources("AWS::IAM::Policy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("ssm:") for a in _as_list(statement["Action"])):
                readers.append((resource["Properties"]["Roles"], statement))
    assert len(readers) == 1, readers
    roles, statement = readers[0]
    assert _as_list(statement["Action"]) == ["ssm:GetParameter"] and statement["Effect"] == "Allow"
    (resource,) = _as_list(statement["Resource"])
    assert resource["Fn::Join"][1][-1] == f":ssm:ap-northeast-1:123456789012:parameter/{PREFIX}/warmup/*"
    role = steps[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert roles == [{"Ref": role}]


def test_no_rollout_function_can_answer_the_approval(rollout):
    """Only a human (`kanaria rollout approve|reject`) sends the task outcome: rollout-steps stores the token and
    must not be able to approve its own promotion."""
    for statement in _statements(rollout):
        actions = set(_as_list(statement["Action"]))
        assert not actions & {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}, statement


# --- a rollback that cannot be lost ------------------------------------------------------------------------------


def test_rollout_functions_have_reserved_concurrency(rollout):
    reserved = {
        kind: _one(rollout, "AWS::Lambda::Function", {"FunctionName": names.function_name(PREFIX, kind)})[1][
            "Properties"
        ].get("ReservedConcurrentExecutions")
        for kind in ("rollout-steps", "rollback", "rollout-reconciler")
    }
    assert reserved == {"rollout-steps": 5, "rollback": 5, "rollout-reconciler": 1}


def test_rollback_async_invocations_retry_then_go_to_an_encrypted_queue(rollout):
    config = _one(rollout, "AWS::Lambda::EventInvokeConfig")[1]["Properties"]
    rollback_id = _function_arn(rollout, "rollback")["Fn::GetAtt"][0]
    assert config["FunctionName"] == {"Ref": rollback_id}
    assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 3600
    queue_id = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = rollout.to_json()["Resources"][queue_id]["Properties"]
    assert queue["QueueName"] == names.rollback_failures_queue_name(PREFIX)
    assert "Key" in queue["KmsMasterKeyId"]["Fn::ImportValue"] and queue["MessageRetentionPeriod"] == 14 * 86400
    # the rollback function may send to it, the reconciler consume it; the reconciler knows its URL
    senders = [s for s in _statements(rollout) if "sqs:SendMessage" in _as_list(s["Action"])]
    assert senders and all(s["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]} for s in senders)
    consumers = [s for s in _statements(rollout) if "sqs:DeleteMessage" in _as_list(s["Action"])]
    assert len(consumers) == 1 and consumers[0]["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    env = _one(rollout, "AWS::Lambda::Function", {"FunctionName": names.function_name(PREFIX, "rollout-reconciler")})[
        1
    ]["Properties"]["Environment"]["Variables"]
    assert env[names.ENV_ROLLBACK_FAILURES_QUEUE_URL] == {"Ref": queue_id}


def test_reconciler_runs_every_minute_and_its_failures_page(rollout):
    rule = _one(rollout, "AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"})[1]["Properties"]
    (target,) = rule["Targets"]
    assert target["Arn"] == _function_arn(rollout, "rollout-reconciler")
    alarm = _one(rollout, "AWS::CloudWatch::Alarm", {"AlarmName": f"{PREFIX}-rollout-reconciler-errors"})[1][
        "Properties"
    ]
    assert alarm["MetricName"] == "Errors" and alarm["EvaluationPeriods"] == 3 and alarm["Threshold"] == 0
    assert "AlertsTopic" in alarm["AlarmActions"][0]["Fn::ImportValue"]


def test_ended_executions_trigger_the_rollback(rollout):
    rules = [
        r["Properties"]
        for r in rollout.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"][0]["Fn::Join"][1][-1].endswith(
        f":stateMachine:{names.rollout_state_machine_name(PREFIX)}"
    )
    (target,) = rule["Targets"]
    assert target["Arn"] == _function_arn(rollout, "rollback")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4


# --- state machine -----------------------------------------------------------------------------------------------


def test_state_machine_definition_uses_every_substitution(rollout):
    props = _one(
        rollout, "AWS::StepFunctions::StateMachine", {"StateMachineName": names.rollout_state_machine_name(PREFIX)}
    )[1]["Properties"]
    definition = props["DefinitionString"]
    assert isinstance(definition, str)
    json.loads(definition)
    placeholders = set(re.findall(r"\$\{([^}]*)\}", definition))
    substitutions = props["DefinitionSubstitutions"]
    assert placeholders <= set(substitutions), f"unresolved: {placeholders - set(substitutions)}"
    assert set(substitutions) == {SUB_ROLLOUT_STEPS_ARN, SUB_ROLLBACK_ARN, SUB_ALERTS_TOPIC_ARN}
    assert placeholders == set(substitutions), "every substitution is used by the ASL"
    assert substitutions[SUB_ROLLOUT_STEPS_ARN] == _function_arn(rollout, "rollout-steps")
    assert substitutions[SUB_ROLLBACK_ARN] == _function_arn(rollout, "rollback")
    assert "AlertsTopic" in substitutions[SUB_ALERTS_TOPIC_ARN]["Fn::ImportValue"]


def test_state_machine_standard_logged_and_traced(rollout):
    props = _one(rollout, "AWS::StepFunctions::StateMachine")[1]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    # every event, but not the state: the approval task token and warm-up headers stay out of CloudWatch Logs
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    log_group_id = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = rollout.to_json()["Resources"][log_group_id]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/{names.rollout_state_machine_name(PREFIX)}"
    assert "Key" in log_group["KmsKeyId"]["Fn::ImportValue"]


# --- pipeline ----------------------------------------------------------------------------------------------------


def test_pipeline_s3_source_then_step_functions_invoke(rollout):
    state_machine_id = _one(rollout, "AWS::StepFunctions::StateMachine")[0]
    props = _one(rollout, "AWS::CodePipeline::Pipeline", {"Name": names.rollout_pipeline_name(PREFIX)})[1]["Properties"]
    assert props["PipelineType"] == "V2" and props["ExecutionMode"] == "QUEUED"
    source, rollout_stage = props["Stages"]
    (source_action,) = source["Actions"]
    assert source_action["ActionTypeId"] == {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"}
    assert source_action["Configuration"]["S3ObjectKey"] == names.ROLLOUT_REQUEST_OBJECT_KEY
    assert source_action["Configuration"]["PollForSourceChanges"] is False
    (invoke,) = rollout_stage["Actions"]
    assert invoke["ActionTypeId"] == {"Category": "Invoke", "Owner": "AWS", "Provider": "StepFunctions", "Version": "1"}
    assert invoke["Configuration"]["StateMachineArn"] == {"Ref": state_machine_id}
    assert invoke["Configuration"]["InputType"] == "FilePath"
    artifact = source_action["OutputArtifacts"][0]["Name"]
    assert invoke["Configuration"]["Input"] == f"{artifact}::{names.ROLLOUT_REQUEST_FILE}"
    assert invoke["InputArtifacts"] == [{"Name": artifact}]
    assert props["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS"


def test_request_bucket_versioned_encrypted_and_triggers_the_pipeline(rollout):
    bucket_id, bucket = _one(
        rollout,
        "AWS::S3::Bucket",
        {"BucketName": names.rollout_request_bucket_name(PREFIX, "123456789012", "ap-northeast-1")},
    )
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert (
        props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rule = next(
        r["Properties"]
        for r in rollout.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    )
    assert rule["EventPattern"]["detail"] == {
        "bucket": {"name": [{"Ref": bucket_id}]},
        "object": {"key": [names.ROLLOUT_REQUEST_OBJECT_KEY]},
    }
    pipeline_id = _one(rollout, "AWS::CodePipeline::Pipeline")[0]
    assert {"Ref": pipeline_id} in rule["Targets"][0]["Arn"]["Fn::Join"][1]


def test_pipeline_roles_stay_within_the_pipeline(rollout):
    role_ids = [i for i in rollout.find_resources("AWS::IAM::Role") if i.startswith("Pipeline")]
    actions = {
        a
        for resource in rollout.find_resources("AWS::IAM::Policy").values()
        if any(r["Ref"] in role_ids for r in resource["Properties"]["Roles"])
        for s in resource["Properties"]["PolicyDocument"]["Statement"]
        for a in _as_list(s["Action"])
    }
    assert {a.split(":")[0] for a in actions} == {"s3", "kms", "sts", "states", "codepipeline"}
    assert {a for a in actions if a.startswith("states:")} == {
        "states:StartExecution",
        "states:DescribeStateMachine",
        "states:DescribeExecution",
    }


# --- dashboard ---------------------------------------------------------------------------------------------------


def test_dashboard_shows_weights_and_alarms(rollout):
    props = _one(rollout, "AWS::CloudWatch::Dashboard", {"DashboardName": names.rollout_dashboard_name(PREFIX)})[1][
        "Properties"
    ]
    body = json.dumps(props["DashboardBody"])
    for fragment in (
        names.METRIC_CANARY_WEIGHT,
        names.METRIC_QUALITY,
        names.METRIC_LATENCY,
        "HTTPCode_Target_5XX_Count",
        '\\"type\\":\\"alarm\\"',
    ):
        assert fragment in body, fragment


# --- ALB ---------------------------------------------------------------------------------------------------------


def test_demo_listener_forwards_100_0_with_stickiness(alb):
    props = _one(alb, "AWS::ElasticLoadBalancingV2::Listener")[1]["Properties"]
    (action,) = props["DefaultActions"]
    assert action["Type"] == "forward"
    weights = [group["Weight"] for group in action["ForwardConfig"]["TargetGroups"]]
    assert weights == [100, 0]
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"]["Enabled"] is True


def test_demo_alb_is_cheap_logged_and_strict(alb):
    alb.resource_count_is("AWS::EC2::NatGateway", 0)
    alb.resource_count_is("AWS::EC2::Subnet", 2)
    alb.resource_count_is("AWS::EC2::FlowLog", 1)
    balancer = _one(alb, "AWS::ElasticLoadBalancingV2::LoadBalancer")[1]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    bucket = alb.to_json()["Resources"][attributes["access_logs.s3.bucket"]["Ref"]]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }  # ALB log delivery supports SSE-S3 only
    subnets = alb.find_resources("AWS::EC2::Subnet")
    zones = sorted(s["Properties"]["AvailabilityZone"] for s in subnets.values())
    assert zones == ["ap-northeast-1a", "ap-northeast-1c"]  # from cdk.json context, no lookup


def test_existing_listener_mode(existing_assembly):
    stack_names = {stack.stack_name for stack in existing_assembly.stacks}
    assert ALB not in stack_names and ROLLOUT in stack_names
    template = Template.from_json(existing_assembly.get_stack_by_name(ROLLOUT).template)
    statements = [s for s in _statements(template) if "elasticloadbalancing:ModifyListener" in _as_list(s["Action"])]
    assert {s["Resource"] for s in statements} == {EXISTING["kanaria:listenerArn"]}
    error_rate = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": names.alarm_name(PREFIX, names.ALARM_CANARY_ERROR_RATE)}}
    )
    (props,) = [r["Properties"] for r in error_rate.values()]
    for stat in _metric_stats(props).values():
        assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == {
            "LoadBalancer": "app/chatbot/50dc6c495c0c9188",
            "TargetGroup": "targetgroup/chatbot-canary/0123456789abcdef",
        }


def test_rollout_stack_never_references_alarms_or_pipeline_by_getatt(existing_assembly):
    """moto's CloudFormation skips CloudWatch alarms and CodePipeline; a GetAtt on a skipped resource fails the
    whole stack there, so the local rehearsal can deploy KanariaRollout only if nothing GetAtt's them."""
    template = existing_assembly.get_stack_by_name(ROLLOUT).template
    skipped = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"]
        in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::CodePipeline::Pipeline"}
    }
    for logical_id, resource in template["Resources"].items():
        if logical_id in skipped:
            continue
        text = json.dumps(resource)
        for target in skipped:
            assert f'"Fn::GetAtt": ["{target}"' not in text, (logical_id, target)


def test_templates_are_cfn_lint_clean(assembly, existing_assembly):
    from cfnlint.api import lint_all

    for cloud_assembly, stacks in ((assembly, (ROLLOUT, ALB)), (existing_assembly, (ROLLOUT,))):
        for stack in stacks:
            template = json.dumps(cloud_assembly.get_stack_by_name(stack).template)
            errors = [m for m in lint_all(template) if m.rule.id.startswith("E")]
            assert not errors, [str(m) for m in errors]


def test_only_the_rollback_path_may_write_experiments(rollout):
    """rollout-steps reads the candidate's experiment at stage 0; only a rollback stops a variant."""
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    writers = []
    for resource in rollout.find_resources("AWS::IAM::Policy").values():
        roles = json.dumps(resource["Properties"]["Roles"])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            targets = json.dumps(statement["Resource"])
            if "Experiments" not in targets or not writes & set(_as_list(statement["Action"])):
                continue
            assert "RolloutSteps" not in roles, (roles, statement)
            writers.append(roles)
    assert any("Rollback" in r for r in writers) and any("Reconciler" in r for r in writers), writers
