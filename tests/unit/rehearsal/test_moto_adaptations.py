"""Pins of the emulator's behaviour that kanaria_tools/rehearsal/moto_adaptations/ works around, and the adaptations.

Each `TestMoto...Unadapted` test asserts what moto 5.2.5 does WITHOUT the adaptation. If one of them fails after
a moto upgrade, moto changed: re-measure, then drop or change the matching adaptation (and MOTO_VERSION).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from kanaria_tools.rehearsal import moto_adaptations

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture
def adapted() -> Iterator[moto_adaptations.Applied]:
    applied = moto_adaptations.apply()
    try:
        yield applied
    finally:
        applied.revert()


@pytest.fixture
def unadapted() -> None:
    assert moto_adaptations.active() is None, "an adaptation leaked from another test"


def _deploy(template: dict[str, Any], name: str = "S") -> dict[str, Any]:
    """What `cdk deploy` does: a CREATE change set, executed."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_change_set(
        StackName=name, ChangeSetName="cdk", ChangeSetType="CREATE", TemplateBody=json.dumps(template)
    )
    cfn.execute_change_set(StackName=name, ChangeSetName="cdk")
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


GLOBAL_TABLE = {
    "Type": "AWS::DynamoDB::GlobalTable",
    "Properties": {
        "TableName": "t",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
        "Replicas": [{"Region": REGION, "Tags": [{"Key": "project", "Value": "kanaria"}]}],
    },
}
KMS_KEY = {
    "Type": "AWS::KMS::Key",
    "Properties": {
        "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
        "Tags": [{"Key": "project", "Value": "kanaria"}],
    },
}
SSM_PARAMETER = {
    "Type": "AWS::SSM::Parameter",
    "Properties": {"Name": "/p", "Type": "String", "Value": "v", "Tags": {"project": "kanaria"}},
}
ALARM = {
    "Type": "AWS::CloudWatch::Alarm",
    "Properties": {
        "AlarmName": "a",
        "Namespace": "N",
        "MetricName": "M",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanThreshold",
    },
}
COMPOSITE = {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmName": "c", "AlarmRule": "ALARM(a)"}}
EXPORTING = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}}},
    "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": "S:TopicArn"}}},
}
IMPORTING = {
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": "q", "Tags": [{"Key": "topic", "Value": {"Fn::ImportValue": "S:TopicArn"}}]},
        }
    }
}
HTTP_API = {
    "Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "api", "ProtocolType": "HTTP"}},
        "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {"ApiId": {"Ref": "Api"}, "RouteKey": "GET /x"}},
        "Stage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {"ApiId": {"Ref": "Api"}, "StageName": "$default"}},
    },
    "Outputs": {"ApiId": {"Value": {"Ref": "Api"}, "Export": {"Name": "S:ApiId"}}},
}


def _state_machine(definition: dict[str, Any], substitutions: dict[str, str] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "StateMachineName": "sm",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
        "DefinitionString": json.dumps(definition),
    }
    if substitutions:
        properties["DefinitionSubstitutions"] = substitutions
    return {"Resources": {"Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}}}


def _alb_template() -> dict[str, Any]:
    return {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "A": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/24", "AvailabilityZone": f"{REGION}a"},
            },
            "B": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": f"{REGION}c"},
            },
            "Lb": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Subnets": [{"Ref": "A"}, {"Ref": "B"}]},
            },
            "Primary": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {"Name": "primary", "Port": 80, "Protocol": "HTTP", "VpcId": {"Ref": "Vpc"}},
            },
            "Canary": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {"Name": "canary", "Port": 80, "Protocol": "HTTP", "VpcId": {"Ref": "Vpc"}},
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": {"Ref": "Lb"},
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": [
                        {
                            "Type": "forward",
                            "ForwardConfig": {
                                "TargetGroups": [
                                    {"TargetGroupArn": {"Ref": "Primary"}, "Weight": 100},
                                    {"TargetGroupArn": {"Ref": "Canary"}, "Weight": 0},
                                ]
                            },
                        }
                    ],
                },
            },
        },
        "Outputs": {
            "LbName": {"Value": {"Fn::GetAtt": ["Lb", "LoadBalancerFullName"]}},
            "TgName": {"Value": {"Fn::GetAtt": ["Canary", "TargetGroupFullName"]}},
        },
    }


def test_pinned_version() -> None:
    import moto

    assert moto.__version__ == moto_adaptations.MOTO_VERSION
    moto_adaptations.check_moto_version()


def test_every_adaptation_is_documented() -> None:
    names = [a.name for a in moto_adaptations.ADAPTATIONS]
    assert len(names) == len(set(names))
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "rehearsal.md")
    with open(docs, encoding="utf-8") as file:
        text = file.read()
    assert [n for n in names if n not in text] == []


def _racing_conditional_puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two threads put the same new key under attribute_not_exists, each pausing (up to 1 s) after reading the
    current item until the other has read it too; returns each put's outcome."""
    from moto.dynamodb.models import table as ddb_table

    meet = threading.Barrier(2, timeout=1.0)
    real = ddb_table.get_filter_expression

    def paused(*args: Any, **kwargs: Any) -> Any:
        try:
            meet.wait()
        except threading.BrokenBarrierError:  # the other write was kept out (serialized): go on alone
            pass
        return real(*args, **kwargs)

    monkeypatch.setattr(ddb_table, "get_filter_expression", paused)
    outcomes: list[str] = []
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def put(owner: str) -> None:
            try:
                ddb.put_item(
                    TableName="t",
                    Item={"pk": {"S": "lock"}, "owner": {"S": owner}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                outcomes.append("written")
            except ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])

        threads = [threading.Thread(target=put, args=(owner,)) for owner in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    return sorted(outcomes)


def _async_config_stack() -> dict[str, Any]:
    """A function, a queue and the function's EventInvokeConfig (retries, on-failure destination) in one template."""
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "fn",
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def handler(e, c): pass"},
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "failures"}},
            "Config": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 2,
                    "MaximumEventAgeInSeconds": 3600,
                    "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Queue", "Arn"]}}},
                },
            },
        }
    }


class TestMotoUnadapted:
    """What moto 5.2.5 does without the adaptations (fails loudly when an upgrade changes it)."""

    def test_event_invoke_config_is_silently_skipped(self, unadapted: None) -> None:
        with mock_aws():
            assert _deploy(_async_config_stack())["StackStatus"] == "CREATE_COMPLETE"
            with pytest.raises(ClientError, match="ResourceNotFound|not found|EventInvokeConfig"):
                boto3.client("lambda", region_name=REGION).get_function_event_invoke_config(FunctionName="fn")

    def test_global_table_is_silently_skipped(self, unadapted: None) -> None:
        with mock_aws():
            stack = _deploy({"Resources": {"T": GLOBAL_TABLE}})
            assert stack["StackStatus"] == "CREATE_COMPLETE"
            assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []

    def test_kms_key_tags_crash(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(KeyError, match="TagKey"):
            _deploy({"Resources": {"K": KMS_KEY}})

    def test_ssm_parameter_tags_crash(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(TypeError):
            _deploy({"Resources": {"P": SSM_PARAMETER}})

    def test_change_set_stacks_have_no_outputs_or_exports(self, unadapted: None) -> None:
        with mock_aws():
            stack = _deploy(EXPORTING)
            assert stack.get("Outputs") is None
            assert boto3.client("cloudformation", region_name=REGION).list_exports()["Exports"] == []

    def test_alarms_are_silently_skipped(self, unadapted: None) -> None:
        with mock_aws():
            stack = _deploy({"Resources": {"A": ALARM, "C": COMPOSITE}})
            assert stack["StackStatus"] == "CREATE_COMPLETE"
            alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms()
            assert alarms["MetricAlarms"] == [] and alarms["CompositeAlarms"] == []

    def test_put_composite_alarm_is_not_implemented(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(NotImplementedError):
            boto3.client("cloudwatch", region_name=REGION).put_composite_alarm(AlarmName="c", AlarmRule="ALARM(a)")

    def test_percentiles_crash_get_metric_data(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(TypeError):  # the p99 value is None and the response serializer fails
            _p99()

    def test_get_metric_data_compares_every_query_with_every_datapoint(self, unadapted: None) -> None:
        # Given 40 datapoints of 8 dimension sets and 8 queries, moto compares dimensions per query x datapoint
        with mock_aws(), _counting_dimension_comparisons() as count:
            _many_series()
            _query_many_series()
        assert count[0] >= 8 * 40

    def test_percent_ranks_crash_get_metric_data(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(TypeError):
            _stat("PR(:25)")

    def test_http_api_is_skipped(self, unadapted: None) -> None:
        with mock_aws():
            _deploy({"Resources": {"Api": HTTP_API["Resources"]["Api"]}})
            assert boto3.client("apigatewayv2", region_name=REGION).get_apis()["Items"] == []

    def test_definition_substitutions_are_ignored(self, unadapted: None) -> None:
        with mock_aws():
            _deploy(
                _state_machine(
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${X}", "End": True}}},
                    {"X": "substituted"},
                )
            )
            sfn = boto3.client("stepfunctions", region_name=REGION)
            arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
            assert "${X}" in sfn.describe_state_machine(stateMachineArn=arn)["definition"]

    def test_executing_backend_does_not_see_cloudformation_state_machines(self, unadapted: None) -> None:
        with mock_aws(config=SFN_CONFIG):
            _deploy(_state_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
            assert boto3.client("stepfunctions", region_name=REGION).list_state_machines()["stateMachines"] == []

    def test_alb_forward_config_crashes(self, unadapted: None) -> None:
        with mock_aws(), pytest.raises(KeyError, match="TargetGroupArn"):
            _deploy(_alb_template())

    def test_transactions_deep_copy_whole_tables(self, unadapted: None) -> None:
        import inspect

        from moto.dynamodb.models import DynamoDBBackend

        source = inspect.getsource(DynamoDBBackend.transact_write_items)
        assert "copy.deepcopy(" in source and "self.tables[table_name]" in source

    def test_concurrent_conditional_writes_both_pass(self, unadapted: None, monkeypatch: pytest.MonkeyPatch) -> None:
        assert _racing_conditional_puts(monkeypatch) == ["written", "written"]

    def test_lambda_needs_docker(self, unadapted: None) -> None:
        with mock_aws():
            _function("kanaria.handlers.experiments.handler")
            response = boto3.client("lambda", region_name=REGION).invoke(FunctionName="fn", Payload=b"{}")
            assert "docker" in response["Payload"].read().decode().lower()


class TestAdapted:
    def test_global_table_is_a_table(self, adapted: Any) -> None:
        with mock_aws():
            _deploy({"Resources": {"T": GLOBAL_TABLE}})
            ddb = boto3.client("dynamodb", region_name=REGION)
            assert ddb.list_tables()["TableNames"] == ["t"]
            assert ddb.describe_time_to_live(TableName="t")["TimeToLiveDescription"]["AttributeName"] == "ttl"

    def test_transactions_back_up_and_restore_touched_items(self, adapted: Any) -> None:
        from moto.dynamodb.models import dynamodb_backends

        with mock_aws():
            ddb = boto3.client("dynamodb", region_name=REGION)
            ddb.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.put_item(TableName="t", Item={"pk": {"S": "kept"}, "n": {"N": "1"}})
            table = dynamodb_backends[ACCOUNT][REGION].tables["t"]
            with pytest.raises(ClientError, match="TransactionCanceled"):
                ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": "t",
                                "Key": {"pk": {"S": "kept"}},
                                "UpdateExpression": "SET n = :n",
                                "ExpressionAttributeValues": {":n": {"N": "2"}},
                            }
                        },
                        {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
                        {
                            "Put": {
                                "TableName": "t",
                                "Item": {"pk": {"S": "other"}},
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                    ]
                )
            assert dynamodb_backends[ACCOUNT][REGION].tables["t"] is table  # restored in place, not replaced
            items = {i["pk"]["S"]: i for i in ddb.scan(TableName="t")["Items"]}
            assert set(items) == {"kept"} and items["kept"]["n"] == {"N": "1"}
            ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}}])
            assert ddb.get_item(TableName="t", Key={"pk": {"S": "new"}}).get("Item")

    def test_concurrent_conditional_writes_one_wins(self, adapted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        assert _racing_conditional_puts(monkeypatch) == ["ConditionalCheckFailedException", "written"]

    def test_atomic_writes_alone_one_wins_and_reverts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        before = DynamoDBBackend.put_item
        with moto_adaptations.atomic_dynamodb_writes():
            assert _racing_conditional_puts(monkeypatch) == ["ConditionalCheckFailedException", "written"]
        assert DynamoDBBackend.put_item is before

    def test_tagged_key_and_parameter(self, adapted: Any) -> None:
        with mock_aws():
            _deploy({"Resources": {"K": KMS_KEY, "P": SSM_PARAMETER}})
            assert boto3.client("ssm", region_name=REGION).get_parameter(Name="/p")["Parameter"]["Value"] == "v"
            assert len(boto3.client("kms", region_name=REGION).list_keys()["Keys"]) == 1

    def test_outputs_exports_and_imports(self, adapted: Any) -> None:
        with mock_aws():
            stack = _deploy(EXPORTING, "S")
            assert stack["Outputs"][0]["ExportName"] == "S:TopicArn"
            _deploy(IMPORTING, "T")
            sqs = boto3.client("sqs", region_name=REGION)
            url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
            assert sqs.list_queue_tags(QueueUrl=url)["Tags"]["topic"].endswith(":alerts")

    def test_failing_resource_rolls_the_stack_back_with_its_reason(self, adapted: Any) -> None:
        broken = {
            "Resources": {
                "Bad": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": "q", "Tags": [{"Key": "x", "Value": {"Fn::ImportValue": "nope"}}]},
                }
            }
        }
        with mock_aws():
            stack = _deploy(broken)
            assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
            events = boto3.client("cloudformation", region_name=REGION).describe_stack_events(StackName="S")[
                "StackEvents"
            ]
            failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
            assert failed and failed[0]["LogicalResourceId"] == "Bad" and "nope" in failed[0]["ResourceStatusReason"]

    def test_http_api(self, adapted: Any) -> None:
        with mock_aws():
            stack = _deploy(HTTP_API)
            api_id = stack["Outputs"][0]["OutputValue"]
            client = boto3.client("apigatewayv2", region_name=REGION)
            assert [r["RouteKey"] for r in client.get_routes(ApiId=api_id)["Items"]] == ["GET /x"]

    def test_state_machine_substituted_and_executable(self, adapted: Any) -> None:
        with mock_aws(config=SFN_CONFIG):
            _deploy(
                _state_machine(
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${X}", "End": True}}},
                    {"X": "substituted"},
                )
            )
            sfn = boto3.client("stepfunctions", region_name=REGION)
            arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
            first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
            second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
            assert first != second  # sfn-unnamed-executions
            assert "substituted" in _wait(sfn, first)["output"]

    def test_alb_weighted_listener_and_full_names(self, adapted: Any) -> None:
        with mock_aws():
            stack = _deploy(_alb_template())
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
            assert outputs["LbName"].startswith("app/") and outputs["TgName"].startswith("targetgroup/canary/")
            elbv2 = boto3.client("elbv2", region_name=REGION)
            lb = elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
            action = elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["DefaultActions"][0]
            assert [g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]] == [100, 0]

    def test_composite_alarm_and_percentiles(self, adapted: Any) -> None:
        with mock_aws():
            cloudwatch = boto3.client("cloudwatch", region_name=REGION)
            cloudwatch.put_composite_alarm(AlarmName="c", AlarmRule="ALARM(a)")
            assert cloudwatch.describe_alarms()["CompositeAlarms"][0]["AlarmRule"] == "ALARM(a)"
            assert _p99() == [99.0]

    def test_get_metric_data_reads_each_querys_group(self, adapted: Any) -> None:
        # Given the same data, the indexed read returns what plain moto returns, with far fewer comparisons
        with mock_aws(), _counting_dimension_comparisons() as count:
            _many_series()
            values = _query_many_series()
        assert values == {
            f"q{i}": [float(10 * i + 1 + 10 * i + 2 + 10 * i + 3 + 10 * i + 4 + 10 * i + 5)] for i in range(8)
        }
        assert count[0] < 8 * 40

    def test_percent_ranks(self, adapted: Any) -> None:
        # Given the values 1..100, PR(:25) is 25%, PR(90:) 10%, PR(10:20) 10% (lower bound excluded)
        with mock_aws():
            assert _stat("PR(:25)") == [25.0]
        with mock_aws():
            assert _stat("PR(90:)") == [10.0]
        with mock_aws():
            assert _stat("PR(10:20)") == [10.0]

    def test_event_invoke_config_is_created(self, adapted: Any) -> None:
        with mock_aws():
            assert _deploy(_async_config_stack())["StackStatus"] == "CREATE_COMPLETE"
            config = boto3.client("lambda", region_name=REGION).get_function_event_invoke_config(FunctionName="fn")
            assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 3600
            assert config["DestinationConfig"]["OnFailure"]["Destination"] == (
                f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"
            )

    def test_before_invoke_hook_can_fail_a_function(self, adapted: Any) -> None:
        calls: list[Any] = []

        def broken(function_name: str, event: Any) -> None:
            raise RuntimeError(f"injected fault in {function_name}")

        adapted.hooks.on_invoke, adapted.hooks.before_invoke = calls.append, broken
        try:
            with mock_aws():
                _function(
                    "kanaria.handlers.experiments.handler",
                    {
                        "EXPERIMENTS_TABLE": "e",
                        "ASSIGNMENTS_TABLE": "a",
                        "AGGREGATES_TABLE": "g",
                        "PROFILES_PARAMETER": "/p",
                    },
                )
                response = boto3.client("lambda", region_name=REGION).invoke(FunctionName="fn", Payload=b"{}")
                assert response["FunctionError"]
                assert json.loads(response["Payload"].read())["errorMessage"] == "injected fault in fn"
                assert calls[0].error == "RuntimeError: injected fault in fn"
        finally:
            adapted.hooks.before_invoke = None

    def test_kanaria_handler_runs_in_process(self, adapted: Any) -> None:
        calls: list[Any] = []
        adapted.hooks.on_invoke = calls.append
        with mock_aws():
            boto3.client("dynamodb", region_name=REGION).create_table(
                TableName="e",
                KeySchema=[
                    {"AttributeName": "experiment_id", "KeyType": "HASH"},
                    {"AttributeName": "record", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "experiment_id", "AttributeType": "S"},
                    {"AttributeName": "record", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            _function(
                "kanaria.handlers.experiments.handler",
                {
                    "EXPERIMENTS_TABLE": "e",
                    "ASSIGNMENTS_TABLE": "a",
                    "AGGREGATES_TABLE": "g",
                    "PROFILES_PARAMETER": "/p",
                },
            )
            from kanaria.handlers import env
            from kanaria_tools.lambda_api import http_event
            from kanaria_tools.rehearsal.invoke import REHEARSAL_CALLER

            # an earlier test in this worker may have cached other table names and clients
            env.api_environment.cache_clear()
            importlib.reload(importlib.import_module("kanaria.handlers.experiments"))
            response = boto3.client("lambda", region_name=REGION).invoke(
                FunctionName="fn",
                Payload=json.dumps(http_event("GET", "/experiments", None, REHEARSAL_CALLER)).encode(),
            )
            body = json.loads(json.loads(response["Payload"].read())["body"])
            assert body == {"experiments": []}
            assert calls and calls[0].function_name == "fn" and "START RequestId" in calls[0].logs

    def test_function_environment_is_added_once_and_removed_on_revert(self) -> None:
        assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ
        applied = moto_adaptations.apply()
        try:
            with mock_aws():
                _function("kanaria.handlers.experiments.handler", {"EXPERIMENTS_TABLE": "e"})
                assert moto_adaptations.prepare_environment(ACCOUNT, REGION) == 1
                assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == "fn" and os.environ["EXPERIMENTS_TABLE"] == "e"
        finally:
            applied.revert()
        assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ and "EXPERIMENTS_TABLE" not in os.environ

    def test_emf_records_become_metrics(self) -> None:
        record = {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Kanaria",
                        "Dimensions": [["target"], []],
                        "Metrics": [{"Name": "LatencyMs", "Unit": "Milliseconds"}, {"Name": "Errors"}],
                    }
                ],
            },
            "target": "canary",
            "LatencyMs": [120.0, 80.0],
            "Errors": 1,
        }
        [(namespace, data)] = moto_adaptations.emf_metric_data(record)
        assert namespace == "Kanaria"
        assert [(d["MetricName"], d["Dimensions"], d["Values"]) for d in data] == [
            ("LatencyMs", [{"Name": "target", "Value": "canary"}], [120.0, 80.0]),
            ("Errors", [{"Name": "target", "Value": "canary"}], [1.0]),
            ("LatencyMs", [], [120.0, 80.0]),
            ("Errors", [], [1.0]),
        ]
        assert data[0]["Timestamp"] == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)

    def test_revert_restores_moto(self) -> None:
        from moto.cloudformation import parsing

        before = parsing.resource_class_from_type
        applied = moto_adaptations.apply()
        assert parsing.resource_class_from_type is not before
        applied.revert()
        assert parsing.resource_class_from_type is before and moto_adaptations.active() is None


def test_busy_port_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert not moto_adaptations.port_is_free(port)
        with pytest.raises(moto_adaptations.AdaptationError, match=f"port {port} in use"):
            moto_adaptations.start_server(port)


def _function(handler: str, environment: dict[str, str] | None = None) -> None:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role,
        Handler=handler,
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        Environment={"Variables": environment or {}},
    )


@contextlib.contextmanager
def _counting_dimension_comparisons() -> Iterator[list[int]]:
    from moto.cloudwatch import models as cw_models

    count = [0]
    original = cw_models.Dimension.__eq__

    def counted(self: Any, other: Any) -> bool:
        count[0] += 1
        return original(self, other)

    cw_models.Dimension.__eq__ = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        cw_models.Dimension.__eq__ = original  # type: ignore[method-assign]


_SERIES_START = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)


def _many_series() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    data = [
        {
            "MetricName": "M",
            "Dimensions": [{"Name": "target", "Value": "canary"}, {"Name": "intent", "Value": f"i{i}"}],
            "Timestamp": _SERIES_START + timedelta(seconds=5 * k),
            "Value": float(10 * i + k + 1),
        }
        for i in range(8)
        for k in range(5)
    ]
    cloudwatch.put_metric_data(Namespace="N", MetricData=data)


def _query_many_series() -> dict[str, list[float]]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "N",
                    "MetricName": "M",
                    "Dimensions": [{"Name": "target", "Value": "canary"}, {"Name": "intent", "Value": f"i{i}"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }
        for i in range(8)
    ]
    result = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=_SERIES_START, EndTime=_SERIES_START + timedelta(minutes=1)
    )
    return {r["Id"]: r["Values"] for r in result["MetricDataResults"]}


def _p99() -> Any:
    return _stat("p99")


def _stat(stat: str) -> Any:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="N", MetricData=[{"MetricName": "M", "Values": [float(v) for v in range(1, 101)], "Timestamp": now}]
    )
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {"Id": "p", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 60, "Stat": stat}}
        ],
        StartTime=now - timedelta(minutes=1),
        EndTime=now + timedelta(minutes=1),
    )
    return result["MetricDataResults"][0]["Values"]


def _wait(sfn: Any, arn: str) -> dict[str, Any]:
    import time

    for _ in range(100):
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.05)
    raise AssertionError("execution did not finish")
