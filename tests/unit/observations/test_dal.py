"""The recording transaction: shape, retries of contended counter items, duplicates (botocore Stubber, no AWS)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from kanaria.dal.observations import MAX_ATTEMPTS, DynamoObservationStore, update_expression
from kanaria.domain.observation import Observation, prepare_write, resolve_cost
from kanaria.errors import OperationalError
from tests.unit.observations.support import NOW, observation


def _write():
    obs = Observation.model_validate(observation(1))
    return prepare_write(obs, resolve_cost(obs, "anthropic.claude-3-haiku-20240307-v1:0"), None, NOW)


def _cancelled(stubber: Stubber, *codes: str, item: dict | None = None) -> None:
    reasons = [{"Code": c, **({"Item": item} if item and c == "ConditionalCheckFailed" else {})} for c in codes]
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": reasons},
    )


@pytest.fixture
def store():
    resource = boto3.resource("dynamodb", region_name="ap-northeast-1")
    sleeps: list[float] = []
    store = DynamoObservationStore("obs", "agg", resource, sleep=sleeps.append)
    with Stubber(resource.meta.client) as stubber:
        yield store, stubber, sleeps
        stubber.assert_no_pending_responses()


def test_update_expression_adds_and_sets_through_placeholders():
    expr = update_expression({"obs": 1, "qs_s": 2}, {"day": "2026-01-01"})
    assert expr["UpdateExpression"] == "ADD #a0 :a0, #a1 :a1 SET #s0 = :s0"
    assert expr["ExpressionAttributeNames"] == {"#a0": "obs", "#a1": "qs_s", "#s0": "day"}


def test_one_request_when_uncontended(store):
    store, stubber, sleeps = store
    write = _write()
    stubber.add_response("transact_write_items", {})
    assert store.record(write) is None and sleeps == []


def test_contended_counter_item_is_retried_with_backoff(store):
    store, stubber, sleeps = store
    _cancelled(stubber, "None", "TransactionConflict")
    _cancelled(stubber, "None", "ThrottlingError")
    stubber.add_response("transact_write_items", {})
    assert store.record(_write()) is None and len(sleeps) == 2


def test_persistent_contention_is_an_operational_error(store):
    store, stubber, sleeps = store
    for _ in range(MAX_ATTEMPTS):
        _cancelled(stubber, "None", "TransactionConflict")
    with pytest.raises(OperationalError) as caught:
        store.record(_write())
    assert caught.value.field == "observation_id" and caught.value.status_code == 502


def test_duplicate_returns_the_stored_item_without_retry(store):
    store, stubber, sleeps = store
    _cancelled(
        stubber, "ConditionalCheckFailed", "None", item={"observation_id": {"S": "obs-000001"}, "digest": {"S": "abc"}}
    )
    assert store.record(_write()) == {"observation_id": "obs-000001", "digest": "abc"} and sleeps == []


def test_other_cancellations_are_not_hidden(store):
    store, stubber, _ = store
    _cancelled(stubber, "None", "ValidationError")
    with pytest.raises(ClientError):
        store.record(_write())
