"""Shared pieces of the HTTP handlers: error mapping, caller identity, JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from kanaria.errors import KanariaError, ValidationError


def error_response(exc: KanariaError) -> Response:
    """4xx/5xx with a JSON body naming the field and the reason."""
    return Response(
        status_code=exc.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": exc.to_dict()}, ensure_ascii=False),
    )


def new_resolver() -> APIGatewayHttpResolver:
    """Resolver whose domain errors become 4xx responses instead of stack traces."""
    app = APIGatewayHttpResolver()
    app.exception_handler(KanariaError)(error_response)
    return app


def json_body(app: APIGatewayHttpResolver) -> Any:
    """The request body as JSON, or a 400 naming the body."""
    raw = app.current_event.body
    if raw is None or raw == "":
        raise ValidationError("request body is required", field="body")
    try:
        return json.loads(app.current_event.decoded_body or "")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not valid JSON ({exc})", field="body") from None


def caller(app: APIGatewayHttpResolver) -> str:
    """IAM identity of the caller (SigV4), recorded in the audit trail."""
    context = app.current_event.raw_event.get("requestContext", {})
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return iam.get("userArn") or iam.get("callerId") or "unknown"
