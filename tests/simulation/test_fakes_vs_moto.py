"""The simulation's in-memory DynamoDB pinned against moto: the real rollouts store runs the same sequence of
conditional writes on both, and every answer (value or error) and the items left behind must be the same."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

from kanaria.dal.rollouts import DynamoRolloutStore
from kanaria.domain.rollout import CandidateEvent
from tests.support.simulation.explore import Replay, document
from tests.support.simulation.world import ROLLOUTS_TABLE, World

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _state(rollout_id: str) -> Any:
    from kanaria.domain.rollout import admission
    from kanaria.domain.rollout_plan import parse_rollout_request
    from kanaria.domain.rollout_state import Progress, Rollout, RolloutState

    request = parse_rollout_request(document())
    rollout = Rollout(
        rollout_id=rollout_id,
        execution_arn=f"arn:aws:states:ap-northeast-1:123456789012:execution:sm:{rollout_id}",
        listener_arn="L",
        primary_target_group="P",
        canary_target_group="C",
        candidate=request.candidate,
        plan=request.plan,
        offline_evaluation=request.offline_evaluation,
        admission=admission([], False, T),
        created_at=T.isoformat(),
    )
    return RolloutState(rollout_id=rollout_id, rollout=rollout, progress=Progress(stage_name="canary-5"))


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - the error's type is the answer being compared
        return ("error", type(exc).__name__)
    return ("ok", value if not hasattr(value, "model_dump") else value.model_dump(mode="json"))


def scenario(store: DynamoRolloutStore) -> list[Any]:
    """Every conditional path of the store the rollout protocol relies on."""
    from kanaria.domain.rollout_state import Progress

    state = _state("r-1")
    progress = Progress(stage_name="canary-5", percent=5)
    steps: list[Callable[[], Any]] = [
        lambda: store.put_new(state, "running", T),
        lambda: store.put_new(state, "running", T),  # taken
        lambda: store.update("r-1", "running", progress, T),
        lambda: store.update("r-1", "awaiting_approval", progress, T, approval_token="tok"),
        lambda: store.update("nope", "running", progress, T),  # does not exist
        lambda: store.acquire_active("L", "r-1", "arn-1", T),
        lambda: store.acquire_active("L", "r-1", "arn-1", T),  # its own slot again
        lambda: store.acquire_active("L", "r-2", "arn-2", T),  # held
        lambda: store.acquire_rollback_lock("r-1", "a", T, 120),
        lambda: store.acquire_rollback_lock("r-1", "b", T + timedelta(seconds=60), 120),  # leased
        lambda: store.acquire_rollback_lock("r-1", "b", T + timedelta(seconds=200), 120),  # lease over
        lambda: store.release_rollback_lock("r-1", "a"),  # not the owner any more: kept
        lambda: store.finish_rollback_lock("r-1", "b", T),
        lambda: store.acquire_rollback_lock("r-1", "c", T + timedelta(seconds=900), 120),  # done
        lambda: store.release_rollback_lock("r-1", "b"),  # done: kept
        lambda: store.update("r-1", "rolled_back", progress, T),
        lambda: store.update("r-1", "running", progress, T),  # rolled back: refused
        lambda: store.release_active("L", "r-2"),  # not the holder: kept
        lambda: store.release_active("L", "r-1"),
        lambda: store.release_active("L", "r-1"),  # already free
        lambda: store.add_candidate_event("h", CandidateEvent(kind="rollback", at=T, rollout_id="r-1")),
        lambda: store.mark_rejected("h", "three", T),
        lambda: store.mark_rejected("h", "again", T),  # first marker wins
        lambda: store.candidate_history("h"),
        lambda: store.rollback_lock("r-1"),
        lambda: store.get("r-1").status,
    ]
    return [_outcome(step) for step in steps]


def _plain(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def value(v: Any) -> Any:
        return int(v) if isinstance(v, Decimal) else v

    return sorted(({k: value(v) for k, v in i.items()} for i in items), key=lambda i: (i["rollout_id"], i["record"]))


def _on_moto() -> tuple[list[Any], list[dict[str, Any]]]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name="ap-northeast-1")
        resource.create_table(
            TableName=ROLLOUTS_TABLE,
            KeySchema=[
                {"AttributeName": "rollout_id", "KeyType": "HASH"},
                {"AttributeName": "record", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "rollout_id", "AttributeType": "S"},
                {"AttributeName": "record", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        answers = scenario(DynamoRolloutStore(ROLLOUTS_TABLE, dynamodb_resource=resource))
        return answers, _plain(resource.Table(ROLLOUTS_TABLE).scan()["Items"])


def _on_fake() -> tuple[list[Any], list[dict[str, Any]]]:
    world = World(Replay([]), fault_budget=0)
    answers: list[Any] = []
    world.sched.spawn("test", lambda: answers.extend(scenario(world.services.store)))
    world.sched.run()
    return answers, _plain(list(world.tables[ROLLOUTS_TABLE].items.values()))


@pytest.mark.slow
def test_the_fake_dynamodb_answers_the_rollouts_store_as_moto_does() -> None:
    moto_answers, moto_items = _on_moto()
    fake_answers, fake_items = _on_fake()
    assert fake_answers == moto_answers
    assert fake_items == moto_items
