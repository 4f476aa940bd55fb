"""Calling the deployed functions the way their triggers do: API Gateway HTTP API (payload 2.0) events, and
asynchronous invocations with Lambda's retries and on-failure destination (moto runs an asynchronous invocation
once, in the request, and has neither)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from kanaria.errors import OperationalError
from kanaria_tools.lambda_api import http_event

REHEARSAL_CALLER = "arn:aws:iam::123456789012:user/kanaria-rehearsal"


class InvokeError(OperationalError):
    """A deployed function failed (its error payload is in the message)."""


class FunctionCaller:
    """Invoke deployed functions through the emulator's Lambda API."""

    def __init__(self, lambda_client: Any):
        self._lambda = lambda_client

    def invoke(self, function_name: str, event: Any, *, asynchronous: bool = False) -> Any:
        """The function's result (decoded JSON); InvokeError when the function raised."""
        response = self._lambda.invoke(
            FunctionName=function_name,
            InvocationType="Event" if asynchronous else "RequestResponse",
            Payload=json.dumps(event, default=str).encode("utf-8"),
        )
        raw = response["Payload"].read()
        if asynchronous:
            return None
        payload = json.loads(raw or b"null")
        if response.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            raise InvokeError(f"{function_name} failed: {message}", field="function")
        return payload

    def http(
        self,
        function_name: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        route_key: str | None = None,
        path_parameters: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        """Call a function behind the HTTP API; the decoded JSON body, InvokeError on an unexpected status."""
        result = self.invoke(
            function_name, http_event(method, path, body, REHEARSAL_CALLER, path_parameters, route_key=route_key)
        )
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        raw = result.get("body") if isinstance(result, dict) else result
        decoded = json.loads(raw) if isinstance(raw, str) and raw else raw
        if status not in expect:
            raise InvokeError(f"{method} {path} via {function_name} answered {status}: {decoded}", field="function")
        return decoded


@dataclass(frozen=True)
class AsyncPolicy:
    """A function's asynchronous invocation configuration (EventInvokeConfig)."""

    retries: int = 2  # Lambda's default and maximum
    delays_seconds: tuple[float, ...] = (60.0, 120.0)  # Lambda waits about 1 minute, then 2, between attempts
    on_failure: str | None = None  # destination ARN (an SQS queue here)

    @classmethod
    def of(cls, config: dict[str, Any] | None) -> "AsyncPolicy":
        """From GetFunctionEventInvokeConfig's answer (None: Lambda's defaults, no destination)."""
        config = config or {}
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(retries=int(config.get("MaximumRetryAttempts", 2)), on_failure=destination or None)


def destination_record(function_arn: str, event: Any, error: Any, attempts: int) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination once it gives an asynchronous event up."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": f"rehearsal-{time.monotonic_ns()}",
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error,
    }


def invoke_async(
    lambda_client: Any,
    function_name: str,
    event: Any,
    policy: AsyncPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    send: Callable[[str, dict[str, Any]], None] | None = None,
) -> tuple[int, Any]:
    """Lambda's asynchronous invocation: up to 1 + retries attempts with its delays in between; after the last
    failure the destination record goes to `send(destination_arn, record)`. Returns (attempts, last error or
    None when an attempt succeeded)."""
    error: Any = None
    attempts = 0
    for attempt in range(policy.retries + 1):
        if attempt:
            sleep(policy.delays_seconds[min(attempt - 1, len(policy.delays_seconds) - 1)])
        attempts += 1
        response = lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event, default=str).encode("utf-8"),
        )
        payload = response["Payload"].read()
        if not response.get("FunctionError"):
            return attempts, None
        try:
            error = json.loads(payload or b"null")
        except ValueError:
            error = {"errorMessage": payload.decode("utf-8", "replace")}
    if policy.on_failure and send is not None:
        send(policy.on_failure, destination_record(function_name, event, error, attempts))
    return attempts, error


def sqs_sender(sqs_client: Any) -> Callable[[str, dict[str, Any]], None]:
    """send() for invoke_async when the destination is an SQS queue ARN."""

    def send(queue_arn: str, record: dict[str, Any]) -> None:
        name, account = queue_arn.rsplit(":", 1)[1], queue_arn.split(":")[4]
        url = sqs_client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs_client.send_message(QueueUrl=url, MessageBody=json.dumps(record, default=str))

    return send
