"""Converse requests from resolved configurations, throttling retried with exponential backoff (botocore Stubber),
usage/latency/cost recorded, and the offline adapter selected by model id."""

from __future__ import annotations

import random
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from kanaria.domain import pricing
from kanaria.errors import OperationalError
from kanaria.evaluation.bedrock import ModelInvoker, RetryPolicy, ThrottledError
from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.prompting import case_request
from kanaria.evaluation.runner import Task, evaluate_task
from tests.unit.evaluation.support import case

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
ANSWER = "『進撃の巨人』34巻は発送済みで、3月16日にお届け予定です。追跡番号は4821-9930-1174です。"


def _converse_response(text: str = ANSWER) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1200, "outputTokens": 300, "totalTokens": 1500},
        "metrics": {"latencyMs": 840},
    }


def _client():
    return boto3.client("bedrock-runtime", region_name="ap-northeast-1")


def _config():
    return parse_configuration({"name": "haiku", "overrides": {"model_id": MODEL}})


def test_request_carries_the_resolved_inference_parameters():
    request = case_request(case(), _config().resolved("order_status"))
    assert request["modelId"] == MODEL
    assert request["inferenceConfig"] == {
        "maxTokens": 256,
        "temperature": 0.15,
        "topP": 0.7,
        "stopSequences": ["\n\nUser:", "\n\nHuman:"],
    }
    assert request["additionalModelRequestFields"] == {"top_k": 40}
    assert "order_status_v3" in request["system"][0]["text"]
    assert request["messages"][-1] == {"role": "user", "content": [{"text": case().query}]}


def test_history_becomes_alternating_messages():
    with_history = case(
        history=[
            {"role": "assistant", "content": "いらっしゃいませ"},
            {"role": "user", "content": "前の注文は届きました"},
            {"role": "assistant", "content": "よかったです"},
        ]
    )
    request = case_request(with_history, _config().resolved("order_status"))
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert "いらっしゃいませ" in request["system"][0]["text"]


def test_throttling_is_retried_with_exponential_backoff_then_recorded():
    client = _client()
    sleeps: list[float] = []
    config = _config()
    task = Task(config, config.config_hash(), case())
    with Stubber(client) as stub:
        stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
        stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
        stub.add_response(
            "converse", _converse_response(), expected_params=case_request(case(), config.resolved("order_status"))
        )
        invoker = ModelInvoker(bedrock=client, retry=RetryPolicy(jitter=False), sleep=sleeps.append)
        result = evaluate_task(task, invoker)
        stub.assert_no_pending_responses()
    assert sleeps == [0.5, 1.0]  # base 0.5 s, doubling
    assert (result.attempts, result.throttles) == (3, 2)
    assert (result.input_tokens, result.output_tokens, result.latency_ms) == (1200, 300, 840.0)
    # priced from the versioned table: 1200 x 0.0008/1K + 300 x 0.004/1K = 0.00096 + 0.0012
    assert result.cost_usd == Decimal("0.002160000") and result.price_table_version == pricing.PRICE_TABLE_VERSION
    assert result.passed and result.error is None


def test_exhausted_retries_fail_the_case_without_stopping_the_run():
    client = _client()
    config = _config()
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
        invoker = ModelInvoker(bedrock=client, retry=RetryPolicy(max_attempts=3, jitter=False), sleep=lambda s: None)
        result = evaluate_task(Task(config, config.config_hash(), case()), invoker)
    assert not result.passed and result.composite == 0.0
    assert (
        result.error == "model_id: ThrottlingException from anthropic.claude-3-5-haiku-20241022-v1:0 on all 3 attempts"
    )
    assert result.latency_ms is None and result.cost_usd is None


def test_other_client_errors_stop_the_run():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "converse",
            service_error_code="AccessDeniedException",
            http_status_code=403,
            service_message="not authorized to invoke",
        )
        invoker = ModelInvoker(bedrock=client, sleep=lambda s: None)
        with pytest.raises(OperationalError) as err:
            invoker.converse(case_request(case(), _config().resolved("order_status")))
    assert "AccessDeniedException" in str(err.value) and not isinstance(err.value, ThrottledError)


def test_jittered_backoff_stays_under_the_exponential_ceiling():
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=4.0)
    rng = random.Random(1)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)):
        assert all(0 <= policy.delay(attempt, rng) <= ceiling for _ in range(50))


def test_offline_model_ids_never_reach_bedrock():
    def no_bedrock():
        raise AssertionError("Bedrock client created for an offline model")

    invoker = ModelInvoker(bedrock_factory=no_bedrock)
    with pytest.raises(OperationalError) as err:
        invoker.runtime_for("offline:anthropic.claude-3-5-haiku-20241022-v1:0")
    assert "offline adapter" in str(err.value)


def test_the_deployed_runner_has_no_offline_adapter():
    from kanaria.handlers.evaluation import model_invoker

    with pytest.raises(OperationalError, match="offline adapter"):
        model_invoker().runtime_for("offline:anthropic.claude-3-5-haiku-20241022-v1:0")
