"""Calling the deployed functions the way their triggers do: API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import json
from typing import Any

from kanaria_tools.lambda_api import http_event
from kanaria.errors import OperationalError

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

    def http(self, function_name: str, method: str, path: str, body: Any = None, *, route_key: str | None = None,
             path_parameters: dict[str, str] | None = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        """Call a function behind the HTTP API; the decoded JSON body, InvokeError on an unexpected status."""
        result = self.invoke(function_name, http_event(method, path, body, REHEARSAL_CALLER, path_parameters,
                                                       route_key=route_key))
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        raw = result.get("body") if isinstance(result, dict) else result
        decoded = json.loads(raw) if isinstance(raw, str) and raw else raw
        if status not in expect:
            raise InvokeError(f"{method} {path} via {function_name} answered {status}: {decoded}", field="function")
        return decoded
