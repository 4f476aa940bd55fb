"""A SageMaker endpoint as a model under evaluation ("sagemaker:<endpoint name>"): the Converse request translated
to the Messages API, usage, latency and price recorded, botocore's standard retries counted, errors named - on moto."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from kanaria.domain import pricing
from kanaria.errors import OperationalError, ValidationError, validate
from kanaria.evaluation.bedrock import ModelInvoker, RetryPolicy, ThrottledError
from kanaria.evaluation.configs import parse_configuration
from kanaria.evaluation.grader import GraderSpec
from kanaria.evaluation.prompting import case_request
from kanaria.evaluation.runner import Task, evaluate_task
from kanaria.evaluation.sagemaker import SEND_EVENT, endpoint_body, new_sagemaker_client
from tests.support.aws import chat_answer, queue_endpoint_answers
from tests.unit.evaluation.support import case

ENDPOINT = "kanaria-manga-ft"
ANSWER = "『進撃の巨人』34巻は発送済みで、3月16日にお届け予定です。追跡番号は4821-9930-1174です。"


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any):
        yield self._body


def _error_response(code: str, status: int) -> AWSResponse:
    body = f'{{"message": "{code} (injected)"}}'.encode()
    return AWSResponse("https://runtime.sagemaker", status, {"x-amzn-ErrorType": code}, _Raw(body))


class _Ticks:
    """A clock advancing 0.6 s per reading: latency follows from how often the adapter reads it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.6
        return self.now


def _config(model_id: str = f"sagemaker:{ENDPOINT}"):
    return parse_configuration({"name": "model-d", "overrides": {"model_id": model_id}})


def _task():
    config = _config()
    return Task(config, config.config_hash(), case())


def test_the_converse_request_becomes_a_messages_api_body():
    request = case_request(case(), _config().resolved("order_status"))
    body = endpoint_body(request)
    assert body["messages"][0] == {"role": "system", "content": request["system"][0]["text"]}
    assert body["messages"][-1] == {"role": "user", "content": case().query}
    assert body["max_tokens"] == 256 and body["temperature"] == 0.15 and body["top_p"] == 0.7
    assert body["stop"] == ["\n\nUser:", "\n\nHuman:"] and "top_k" not in body


def test_an_endpoint_answer_is_scored_with_its_usage_latency_and_instance_hour_price():
    with mock_aws():
        queue_endpoint_answers([chat_answer(ANSWER, prompt_tokens=950, completion_tokens=60)])
        record = evaluate_task(_task(), ModelInvoker(clock=_Ticks()))
    assert record.error is None and record.passed
    assert (record.input_tokens, record.output_tokens) == (950, 60)
    assert record.attempts == 1 and record.throttles == 0 and record.stop_reason == "end_turn"
    # clock readings: before the call, at the send (0.6 s later is the answer): 600 ms of one instance's time
    assert record.latency_ms == pytest.approx(600.0)
    # ml.g5.2xlarge at 1.515 USD/hour, one request at a time: 1.515 * 0.6 / 3600 = 0.0002525 USD
    assert record.cost_usd == Decimal("0.000252500")


def test_a_truncated_answer_is_marked_max_tokens():
    with mock_aws():
        queue_endpoint_answers([chat_answer(ANSWER[:10], finish="length")])
        record = evaluate_task(_task(), ModelInvoker())
    assert record.stop_reason == "max_tokens"
    assert next(p for p in record.parts if p.name == "format").score == 0.0


def _invoker_with_errors(monkeypatch, codes: list[tuple[str, int]], attempts: int = 6) -> tuple[ModelInvoker, list]:
    """An invoker on moto whose first calls fail with `codes` (botocore retries them; its sleeps are recorded)."""
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", sleeps.append)
    client = new_sagemaker_client(attempts)
    invoker = ModelInvoker(sagemaker=client, retry=RetryPolicy(max_attempts=attempts))
    pending = list(codes)

    def fail_first(**_: Any) -> AWSResponse | None:
        return _error_response(*pending.pop(0)) if pending else None

    client.meta.events.register(SEND_EVENT, fail_first)
    return invoker, sleeps


def test_throttling_is_retried_by_botocore_and_counted(monkeypatch):
    with mock_aws():
        queue_endpoint_answers([chat_answer(ANSWER)])
        invoker, sleeps = _invoker_with_errors(monkeypatch, [("ThrottlingException", 400), ("ServiceUnavailable", 503)])
        record = evaluate_task(_task(), invoker)
    assert record.error is None and record.attempts == 3 and record.throttles == 2
    assert len(sleeps) == 2 and all(0 <= s <= 20 for s in sleeps)  # standard mode: jittered, capped at 20 s


def test_throttling_on_every_attempt_is_recorded_not_raised(monkeypatch):
    with mock_aws():
        invoker, sleeps = _invoker_with_errors(monkeypatch, [("ThrottlingException", 400)] * 3, attempts=3)
        record = evaluate_task(_task(), invoker)
    assert not record.passed and record.attempts == 3 and len(sleeps) == 2
    assert record.error == f"model_id: ThrottlingException from sagemaker:{ENDPOINT} on all 3 attempts"


def test_a_model_error_stops_the_run_naming_the_model(monkeypatch):
    with mock_aws():
        invoker, sleeps = _invoker_with_errors(monkeypatch, [("ModelError", 424)])
        with pytest.raises(OperationalError) as caught:
            evaluate_task(_task(), invoker)
    assert caught.value.field == "model_id" and f"ModelError from sagemaker:{ENDPOINT}" in caught.value.reason
    assert sleeps == []  # not retried
    assert not isinstance(caught.value, ThrottledError)


@pytest.mark.parametrize(
    "answer, reason",
    [
        (None, "is not JSON"),  # moto's default body when nothing is queued
        ({"generated_text": "hi"}, "has no choices"),
        ({"choices": [{"message": {"content": "hi"}}]}, "has no usage"),
    ],
)
def test_an_answer_outside_the_messages_api_is_a_clear_error(answer, reason):
    with mock_aws():
        if answer is not None:
            queue_endpoint_answers([answer])
        with pytest.raises(OperationalError) as caught:
            evaluate_task(_task(), ModelInvoker())
    assert caught.value.field == "model_id" and reason in caught.value.reason


@pytest.mark.parametrize(
    "model_id", ["sagemaker:", "sagemaker:-leading", "sagemaker:has_underscore", "sagemaker:" + "a" * 64]
)
def test_bad_endpoint_names_are_refused_naming_the_field(model_id):
    with pytest.raises(ValidationError) as caught:
        _config(model_id)
    assert caught.value.field == "config.overrides.model_id"
    assert "sagemaker:<endpoint name>" in caught.value.reason
    flat = {**_config().resolved("order_status").model_dump(mode="json"), "model_id": model_id}
    with pytest.raises(ValidationError) as resolved:
        parse_configuration({"name": "d", **flat}, where="d.json")
    assert resolved.value.field == "d.json.parameters.model_id"
    with pytest.raises(ValidationError) as judge:
        validate(GraderSpec, {"model_id": model_id}, prefix="--judge")
    assert judge.value.field == "--judge.model_id"


def test_an_unpriced_endpoint_has_no_cost():
    config = _config("sagemaker:someone-elses-endpoint")
    with mock_aws():
        queue_endpoint_answers([chat_answer(ANSWER)])
        record = evaluate_task(Task(config, config.config_hash(), case()), ModelInvoker())
    assert record.cost_usd is None and record.input_tokens == 900


def test_endpoint_prices_per_token_and_per_instance_hour():
    per_token = pricing.EndpointPrice(
        pricing.EndpointBilling.PER_TOKEN, token_price=pricing.ModelPrice(Decimal("0.0002"), Decimal("0.0008"))
    )
    # (1000 * 0.0002 + 500 * 0.0008) / 1000 = 0.0006 USD, whatever the latency
    assert pricing.endpoint_call_cost(per_token, 1000, 500, 9_999.0) == Decimal("0.000600000")
    shared = pricing.EndpointPrice(
        pricing.EndpointBilling.PER_INSTANCE_HOUR, usd_per_instance_hour=Decimal("7.09"), concurrent_requests=4
    )
    # 7.09 USD/h * 1.8 s / 3600 / 4 requests at once = 0.000886250 USD
    assert pricing.endpoint_call_cost(shared, 1, 1, 1800.0) == Decimal("0.000886250")
    with pytest.raises(ValueError, match="token_price"):
        pricing.EndpointPrice(pricing.EndpointBilling.PER_TOKEN)
    with pytest.raises(ValueError, match="usd_per_instance_hour"):
        pricing.EndpointPrice(pricing.EndpointBilling.PER_INSTANCE_HOUR)
    assert boto3 is not None
