"""Test helpers: Kanaria tables in moto, a Lambda context, and HTTP API events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from kanaria import names
from kanaria.domain.profiles import DEFAULT_PROFILES, profiles_to_json
from kanaria_tools.lambda_api import http_event

PREFIX = "test"
CALLER = "arn:aws:iam::123456789012:user/operator"


def create_tables(prefix: str = PREFIX) -> dict[str, Any]:
    """Create every Kanaria table (same key schema as the CDK construct) in the active moto mock."""
    # imported here: it loads the CDK (jsii, node), which the bench (kanaria_tools.bench.moto_env) wants inside its fake environment
    from infra.constructs.tables import TABLE_SPECS

    client = boto3.client("dynamodb")
    for spec in TABLE_SPECS:
        keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        attributes = [{"AttributeName": spec.partition_key, "AttributeType": "S"}]
        if spec.sort_key:
            keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
            attributes.append({"AttributeName": spec.sort_key, "AttributeType": "S"})
        client.create_table(
            TableName=names.table_name(prefix, spec.kind),
            KeySchema=keys,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
        )
    resource = boto3.resource("dynamodb")
    return {spec.kind: resource.Table(names.table_name(prefix, spec.kind)) for spec in TABLE_SPECS}


def put_profiles(prefix: str = PREFIX) -> str:
    """Store the default profiles in SSM like the stack does."""
    name = names.profiles_parameter(prefix)
    boto3.client("ssm").put_parameter(Name=name, Type="String", Value=json.dumps(profiles_to_json(DEFAULT_PROFILES)))
    return name


def api_environment(prefix: str = PREFIX) -> dict[str, str]:
    """Environment variables of the experiments/assign functions."""
    return {
        names.ENV_EXPERIMENTS_TABLE: names.table_name(prefix, "experiments"),
        names.ENV_ASSIGNMENTS_TABLE: names.table_name(prefix, "assignments"),
        names.ENV_AGGREGATES_TABLE: names.table_name(prefix, "aggregates"),
        names.ENV_PROFILES_PARAMETER: names.profiles_parameter(prefix),
    }


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "kanaria-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:ap-northeast-1:123456789012:function:kanaria-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def call(
    handler: Any, method: str, path: str, body: Any | None = None, caller: str = CALLER, raw_body: str | None = None
) -> tuple[int, Any]:
    """Invoke a handler with an HTTP API event; returns (status, JSON body)."""
    event = http_event(method, path, body, caller)
    if raw_body is not None:
        event["body"] = raw_body
    response = handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def item_count(table: Any) -> int:
    """Number of items in a table (scan)."""
    return table.scan(Select="COUNT")["Count"]


def queue_endpoint_answers(answers: list[dict[str, Any]], region: str = "ap-northeast-1") -> None:
    """Queue SageMaker InvokeEndpoint answers (JSON bodies) in the active moto mock, in call order: what moto's
    /moto-api/static/sagemaker/endpoint-results route does (a repeated identical request gets its first answer)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_api._internal.models import moto_api_backend

    for answer in answers:
        moto_api_backend.set_sagemaker_result(
            body=json.dumps(answer, ensure_ascii=False),
            content_type="application/json",
            prod_variant="AllTraffic",
            custom_attrs="",
            account_id=DEFAULT_ACCOUNT_ID,
            region=region,
        )


def chat_answer(text: str, prompt_tokens: int = 900, completion_tokens: int = 120, finish: str = "stop") -> dict:
    """An OpenAI-compatible chat completion, as TGI / LMI / vLLM endpoints answer the Messages API."""
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
