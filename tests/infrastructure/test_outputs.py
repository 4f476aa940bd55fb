"""What a chatbot and the on-call need from a deployment is in the stack outputs (and so in `make deploy`)."""

from __future__ import annotations

import json

from tests.infrastructure.conftest import resources


def output(templates: dict[str, dict], stack: str, name: str) -> dict:
    outputs = templates[stack].get("Outputs", {})
    assert name in outputs, f"{stack} has no output {name}: {sorted(outputs)}"
    return outputs[name]


def test_api_url_points_at_the_http_api_default_stage(templates):
    value = json.dumps(output(templates, "KanariaExperiments", "ApiUrl")["Value"])
    [api_id] = resources(templates["KanariaExperiments"], "AWS::ApiGatewayV2::Api")
    [stage] = resources(templates["KanariaExperiments"], "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "$default"
    assert '"https://"' in value and f'{{"Ref": "{api_id}"}}' in value and ".execute-api." in value


def test_region_and_alerts_topic_are_outputs(templates):
    assert output(templates, "KanariaExperiments", "Region")["Value"] == "ap-northeast-1"
    [topic_id] = resources(templates["KanariaData"], "AWS::SNS::Topic")
    assert output(templates, "KanariaData", "AlertsTopicArn")["Value"] == {"Ref": topic_id}


def test_the_rollout_and_evaluation_entry_points_stay_outputs(templates):
    for stack, name in (
        ("KanariaRollout", "StateMachineArn"),
        ("KanariaRollout", "RolloutRequestBucket"),
        ("KanariaEvaluation", "EvaluationBucketName"),
        ("KanariaEvaluation", "EvaluationStateMachineArn"),
    ):
        output(templates, stack, name)
