"""Call a deployed Kanaria API function directly (Lambda Invoke with an HTTP API v2 event).

Used by the CLI and the local rehearsal: works against a real account and against the local emulator
(AWS_ENDPOINT_URL), with the caller's IAM identity recorded in the audit trail.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from kanaria.errors import ConflictError, KanariaError, NotFoundError, OperationalError, ValidationError
from kanaria.names import DEFAULT_PREFIX, function_name

_ERRORS_BY_STATUS: dict[int, type[KanariaError]] = {404: NotFoundError, 409: ConflictError}


def http_event(
    method: str,
    path: str,
    body: Any | None,
    caller_arn: str,
    path_parameters: dict[str, str] | None = None,
    *,
    query: dict[str, str] | None = None,
    route_key: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event as the IAM-authorized route would deliver it.

    `route_key` is the matched route ("POST /experiments/{experiment_id}/transitions"; default: method and path),
    `query` the query string parameters (`rawQueryString` URL-encoded, `queryStringParameters` as given).
    """
    route = route_key or f"{method} {path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": caller_arn.split(":")[4] if caller_arn.count(":") >= 5 else "000000000000",
            "apiId": "kanaria-cli",
            "authorizer": {"iam": {"userArn": caller_arn, "callerId": caller_arn}},
            "domainName": "kanaria.local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "kanaria-cli",
            },
            "requestId": "cli",
            "routeKey": route,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "pathParameters": path_parameters or {},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    return event


class LambdaApiClient:
    """Invoke `<prefix>-<kind>` with HTTP events and turn error responses back into Kanaria errors."""

    def __init__(self, kind: str, prefix: str = DEFAULT_PREFIX, session: Any | None = None):
        from kanaria_tools.aws import session as command_session

        self._session = session or command_session()
        self._lambda = self._session.client("lambda")
        self._function = function_name(prefix, kind)
        self._caller: str | None = None

    def caller(self) -> str:
        """The operator's IAM ARN (recorded as the actor)."""
        if self._caller is None:
            self._caller = self._session.client("sts").get_caller_identity()["Arn"]
        return self._caller

    def call(self, method: str, path: str, body: Any | None = None) -> Any:
        """Send one request; returns the JSON body or raises the matching KanariaError."""
        from botocore.exceptions import BotoCoreError, ClientError

        event = http_event(method, path, body, self.caller())
        try:
            response = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        except (ClientError, BotoCoreError) as exc:
            raise OperationalError(f"cannot invoke {self._function}: {exc}") from None
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            raise OperationalError(f"{self._function} failed: {payload}")
        data = json.loads(payload.get("body") or "null")
        status = int(payload["statusCode"])
        if status >= 400:
            error = (data or {}).get("error", {})
            cls = _ERRORS_BY_STATUS.get(status, ValidationError if status < 500 else OperationalError)
            raise cls(error.get("reason", str(data)), field=error.get("field"), details=error.get("details"))
        return data
