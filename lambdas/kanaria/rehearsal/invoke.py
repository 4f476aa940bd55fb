"""Calling the deployed functions the way their triggers do: API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from kanaria.errors import OperationalError

REHEARSAL_CALLER = "arn:aws:iam::123456789012:user/kanaria-rehearsal"


class InvokeError(OperationalError):
    """A deployed function failed (its error payload is in the message)."""


def http_event(method: str, path: str, body: Any = None, *, route_key: str | None = None,
               path_parameters: dict[str, str] | None = None, caller: str = REHEARSAL_CALLER,
               query: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2.0) proxy event with an IAM-authorized caller, as the deployed API sends."""
    now = datetime.now(timezone.utc)
    raw_body = None if body is None else json.dumps(body, separators=(",", ":"))
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "queryStringParameters": query or None,
        "headers": {"content-type": "application/json", "host": "rehearsal.execute-api.localhost",
                    "user-agent": "kanaria-rehearsal"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "rehearsal",
            "authorizer": {"iam": {"accessKey": "testing", "accountId": "123456789012", "callerId": "AIDAREHEARSAL",
                                   "userArn": caller, "userId": "AIDAREHEARSAL"}},
            "domainName": "rehearsal.execute-api.localhost",
            "domainPrefix": "rehearsal",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "kanaria-rehearsal"},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "pathParameters": path_parameters or None,
        "body": raw_body,
        "isBase64Encoded": False,
    }


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
        result = self.invoke(function_name, http_event(method, path, body, route_key=route_key,
                                                       path_parameters=path_parameters))
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        raw = result.get("body") if isinstance(result, dict) else result
        decoded = json.loads(raw) if isinstance(raw, str) and raw else raw
        if status not in expect:
            raise InvokeError(f"{method} {path} via {function_name} answered {status}: {decoded}", field="function")
        return decoded
