"""Shared pieces of the HTTP handlers: error mapping, caller identity, JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from kanaria.errors import KanariaError, NotFoundError, ValidationError


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

    def no_route(_: Exception) -> Response:
        event = app.current_event
        return error_response(NotFoundError(f"no route for {event.http_method} {event.path[:200]}", field="path"))

    app.not_found(no_route)
    return app


MAX_JSON_DEPTH = 32  # no Kanaria body nests deeper than ~6; deeper is an attack or a bug


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def json_body(app: APIGatewayHttpResolver) -> Any:
    """The request body as strict JSON (no NaN/Infinity), at most MAX_JSON_DEPTH deep, or a 400 naming the body."""
    raw = app.current_event.body
    if raw is None or raw == "":
        raise ValidationError("request body is required", field="body")
    try:
        document = json.loads(app.current_event.decoded_body or "", parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body") from None
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise ValidationError(f"not valid JSON ({str(exc)[:200]})", field="body") from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise ValidationError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", field="body")
    return document


def caller(app: APIGatewayHttpResolver) -> str:
    """IAM identity of the caller (SigV4), recorded in the audit trail."""
    context = app.current_event.raw_event.get("requestContext", {})
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return iam.get("userArn") or iam.get("callerId") or "unknown"
