"""Model calls to a SageMaker real-time endpoint ("sagemaker:<endpoint name>") through InvokeEndpoint.

The endpoint must serve the OpenAI-compatible chat Messages API that the Hugging Face TGI and LMI (DJL) containers
and vLLM serve: a JSON body {messages, max_tokens, temperature, top_p, stop} in, {choices, usage} out. The Converse
request the evaluation builds is translated to that body, and the answer back to a ModelResponse, so scoring,
pricing and records are the same as for Bedrock. top_k and frequency_penalty are not sent (not in that API); they
stay part of the configuration hash.

Retries are botocore's standard mode (exponential backoff with jitter on throttling and 5xx), with the same number
of attempts as the Bedrock retry policy; the attempts come from the response metadata. Latency is that of the last
attempt (from its send to the parsed answer), so backoff waits are not counted as model latency.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Protocol

from botocore.exceptions import ClientError

from kanaria.errors import OperationalError
from kanaria.evaluation.calls import ModelResponse, ThrottledError
from kanaria.evaluation.configs import endpoint_name

CONTENT_TYPE = "application/json"
SEND_EVENT = "before-send.sagemaker-runtime.InvokeEndpoint"
# Errors botocore's standard mode retries, so still failing means the attempts ran out (recorded, not raised).
RETRIED_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException"}
)
# OpenAI finish_reason -> the Converse stopReason the scorer reads ("max_tokens" marks a truncated answer).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "eos_token": "end_turn", "stop_sequence": "stop_sequence"}


class EndpointRuntime(Protocol):
    """What the adapter needs of a boto3 sagemaker-runtime client."""

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]: ...


def new_sagemaker_client(max_attempts: int, region: str | None = None) -> Any:
    """boto3 sagemaker-runtime client with botocore's standard retries, `max_attempts` attempts in all."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        region_name=region,
        config=Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}, read_timeout=120),
    )


def _text_of(blocks: list[dict[str, Any]]) -> str:
    return "".join(str(block.get("text", "")) for block in blocks if isinstance(block, dict))


def endpoint_body(request: dict[str, Any]) -> dict[str, Any]:
    """The Messages API body of a Converse request (system prompt first, then the conversation)."""
    inference = request.get("inferenceConfig", {})
    messages = [{"role": "system", "content": _text_of(request.get("system", []))}]
    messages += [{"role": m["role"], "content": _text_of(m["content"])} for m in request["messages"]]
    body: dict[str, Any] = {"messages": messages}
    for source, target in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p")):
        if source in inference:
            body[target] = inference[source]
    if inference.get("stopSequences"):
        body["stop"] = list(inference["stopSequences"])
    return body


def _bad_answer(model_id: str, reason: str) -> OperationalError:
    return OperationalError(f"{model_id}: the endpoint's answer {reason}", field="model_id")


def parse_answer(model_id: str, raw: bytes) -> tuple[str, int, int, str]:
    """(text, input tokens, output tokens, stop reason) of a Messages API answer; OperationalError when malformed."""
    try:
        answer = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad_answer(model_id, "is not JSON") from None
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _bad_answer(model_id, "has no choices (it must speak the chat Messages API)")
    message = choices[0].get("message") or {}
    usage = answer.get("usage") or {}
    try:
        input_tokens, output_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        raise _bad_answer(model_id, "has no usage.prompt_tokens and usage.completion_tokens") from None
    finish = str(choices[0].get("finish_reason") or "")
    return str(message.get("content") or ""), input_tokens, output_tokens, STOP_REASONS.get(finish, finish)


class SageMakerAdapter:
    """Invokes endpoints for Converse requests whose model id is "sagemaker:<endpoint name>"."""

    def __init__(self, client: EndpointRuntime, clock: Callable[[], float] = time.perf_counter):
        self._client = client
        self._clock = clock
        self._sent = threading.local()  # per thread: when its latest attempt was sent
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register(SEND_EVENT, self._mark_send)

    def _mark_send(self, **_: Any) -> None:
        self._sent.at = self._clock()

    def converse(self, request: dict[str, Any]) -> ModelResponse:
        """One InvokeEndpoint call for a Converse request (botocore retries it); ThrottledError when the retries
        ran out, OperationalError naming the model for any other error or a malformed answer."""
        model_id = request["modelId"]
        self._sent.at = self._clock()  # a client without the send event: the whole call
        try:
            response = self._client.invoke_endpoint(
                EndpointName=endpoint_name(model_id),
                ContentType=CONTENT_TYPE,
                Accept=CONTENT_TYPE,
                Body=json.dumps(endpoint_body(request), ensure_ascii=False).encode("utf-8"),
            )
        except ClientError as exc:
            raise _client_error(model_id, exc) from exc
        text, input_tokens, output_tokens, stop_reason = parse_answer(model_id, response["Body"].read())
        retried = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return ModelResponse(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=(self._clock() - self._sent.at) * 1000.0,
            stop_reason=stop_reason,
            attempts=retried + 1,
            throttles=retried,
        )


def _client_error(model_id: str, exc: ClientError) -> OperationalError:
    """ThrottledError when botocore's retries ran out, else an OperationalError naming the model."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    retried = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
    if code in RETRIED_CODES or retried:
        return ThrottledError(f"{code} from {model_id} on all {retried + 1} attempts", attempts=retried + 1)
    return OperationalError(f"{code or 'error'} from {model_id}: {error.get('Message', exc)}", field="model_id")
