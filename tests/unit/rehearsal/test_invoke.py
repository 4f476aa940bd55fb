"""The rehearsal calls the functions with the shared HTTP API event builder (kanaria_tools.lambda_api.http_event)."""

from __future__ import annotations

import io
import json
from typing import Any

from kanaria_tools.lambda_api import http_event
from kanaria_tools.rehearsal.invoke import REHEARSAL_CALLER, FunctionCaller


class FakeLambda:
    """Records the invoked events and answers 201 with an empty JSON object."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.events.append(json.loads(Payload))
        return {"Payload": io.BytesIO(json.dumps({"statusCode": 201, "body": "{}"}).encode())}


def test_default_event_has_no_query_and_routes_on_method_and_path() -> None:
    event = http_event("GET", "/experiments", None, "arn:aws:iam::111122223333:user/alice")
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /experiments"
    assert event["rawQueryString"] == "" and "queryStringParameters" not in event
    assert event["requestContext"]["accountId"] == "111122223333" and event["body"] is None


def test_query_and_route_key() -> None:
    event = http_event(
        "GET",
        "/experiments/e-1/report",
        None,
        REHEARSAL_CALLER,
        {"experiment_id": "e-1"},
        query={"format": "json", "q": "a b&c"},
        route_key="GET /experiments/{experiment_id}/report",
    )
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /experiments/{experiment_id}/report"
    assert event["rawQueryString"] == "format=json&q=a+b%26c"
    assert event["queryStringParameters"] == {"format": "json", "q": "a b&c"}
    assert event["pathParameters"] == {"experiment_id": "e-1"}


def test_function_caller_sends_the_rehearsal_identity_and_route() -> None:
    fake = FakeLambda()
    answer = FunctionCaller(fake).http(
        "fn",
        "POST",
        "/experiments/e-1/transitions",
        {"action": "start"},
        route_key="POST /experiments/{experiment_id}/transitions",
        path_parameters={"experiment_id": "e-1"},
    )
    assert answer == {}
    [event] = fake.events
    assert event["routeKey"] == "POST /experiments/{experiment_id}/transitions"
    assert event["requestContext"]["authorizer"]["iam"]["userArn"] == REHEARSAL_CALLER
    assert event["pathParameters"] == {"experiment_id": "e-1"} and json.loads(event["body"]) == {"action": "start"}
