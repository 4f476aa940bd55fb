"""Guards for tests/support/moto_lambda.py: the unadapted moto behaves as measured on 5.2.5 (so an upgrade that
changes it fails here, loudly), and each adaptation does what the rollout tests rely on."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
from moto import mock_aws

from tests.support.moto_lambda import (
    MOCK_CONFIG,
    MOTO_VERSION,
    check_moto_version,
    early_callback_outcomes,
    function_arn,
    in_process_lambdas,
)

REGION = "ap-northeast-1"


def test_pinned_moto_version() -> None:
    import moto

    assert moto.__version__ == MOTO_VERSION
    check_moto_version()


def _invoke(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName=name, Payload=json.dumps(payload).encode()
    )
    return {"error": response.get("FunctionError"), "payload": json.loads(response["Payload"].read())}


def test_unadapted_docker_less_lambda_echoes_without_running_code() -> None:
    with mock_aws(config=MOCK_CONFIG):
        assert _invoke("anything", {"a": 1}) == {"error": None, "payload": {"a": 1}}


def test_in_process_lambdas_run_the_handler_with_the_runtime_error_contract() -> None:
    class Boom(Exception):
        pass

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("fail"):
            raise Boom("it broke")
        return {"echo": event, "function": context.function_name}

    with mock_aws(config=MOCK_CONFIG), in_process_lambdas({"fn": handler}) as calls:
        assert _invoke(function_arn("fn"), {"x": 1}) == {"error": None, "payload": {"echo": {"x": 1}, "function": "fn"}}
        failed = _invoke("fn", {"fail": True})
        assert failed["error"] == "Unhandled"
        assert failed["payload"]["errorType"] == "Boom" and failed["payload"]["errorMessage"] == "it broke"
        assert [c.function_name for c in calls] == ["fn", "fn"]
    with mock_aws(config=MOCK_CONFIG):
        assert _invoke("fn", {"x": 1})["payload"] == {"x": 1}  # reverted on exit


def _run(definition: dict[str, Any], handler: Any, name: str, answer: Any = None) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"sm-{name}", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        if answer is not None:
            answer(sfn)
        time.sleep(0.05)
    raise AssertionError("execution did not end")


def test_step_functions_names_a_lambda_error_by_its_error_type() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn("fn"), "Payload": {}},
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.failure", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }

    def handler(event: dict[str, Any], context: Any) -> None:
        raise ValueError("no")

    with mock_aws(config=MOCK_CONFIG), in_process_lambdas({"fn": handler}):
        described = _run(definition, handler, "errors")
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["failure"]["Error"] == "ValueError"


def _callback_definition() -> dict[str, Any]:
    return {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "TimeoutSeconds": 3,
                "HeartbeatSeconds": 2,
                "Parameters": {"FunctionName": function_arn("fn"), "Payload": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Failed"}],
                "ResultPath": "$.answer",
                "End": True,
            },
            "Failed": {"Type": "Pass", "End": True},
        },
    }


def _answer_inside_the_lambda(answer: str) -> Any:
    """A handler that answers its own token before returning (as a fast human or system may in AWS)."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        if answer == "success":
            sfn.send_task_success(taskToken=event["token"], output=json.dumps({"ok": True}))
        else:
            sfn.send_task_failure(taskToken=event["token"], error="Kanaria.Rejected", cause="the reason")
        return {}

    return handler


def test_unadapted_early_answer_is_lost_to_a_heartbeat_timeout() -> None:
    with mock_aws(config=MOCK_CONFIG), in_process_lambdas({"fn": _answer_inside_the_lambda("success")}):
        described = _run(_callback_definition(), None, "early-unadapted")
    output = json.loads(described["output"])
    assert "answer" not in output  # the answer sent before the wait was armed is lost...
    assert output["failure"]["Error"] in {"States.HeartbeatTimeout", "States.Timeout"}  # ...as a timeout


def test_early_callback_outcomes_adaptation_delivers_an_early_answer() -> None:
    with (
        mock_aws(config=MOCK_CONFIG),
        early_callback_outcomes(),
        in_process_lambdas({"fn": _answer_inside_the_lambda("success")}),
    ):
        described = _run(_callback_definition(), None, "early-adapted")
    assert json.loads(described["output"])["answer"] == {"ok": True}


def test_unadapted_send_task_failure_drops_the_cause() -> None:
    with (
        mock_aws(config=MOCK_CONFIG),
        early_callback_outcomes(),
        in_process_lambdas({"fn": _answer_inside_the_lambda("failure")}),
    ):
        described = _run(_callback_definition(), None, "cause")
    failure = json.loads(described["output"])["failure"]
    assert failure["Error"] == "Kanaria.Rejected"
    assert failure.get("Cause") in (None, "")  # AWS would carry "the reason"
