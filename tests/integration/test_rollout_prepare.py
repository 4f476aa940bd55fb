"""Stage 0 (prepare): what it refuses before any traffic moves, and the warm-up."""

from __future__ import annotations

from typing import Any

import pytest

from kanaria.domain.rollout import Warmup
from kanaria.errors import ConflictError, NotFoundError, OperationalError, ValidationError
from kanaria.handlers.rollout_env import deployment
from kanaria.logic import rollouts
from tests.support.rollout_world import World, request, world  # noqa: F401

EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:kanaria-canary-rollout:"


class FakeWarmup:
    """WarmupSender that records what it was asked and answers with `failed` failures."""

    def __init__(self, failed: int = 0):
        self.failed = failed
        self.sent: list[Warmup] = []

    def send(self, warmup: Warmup) -> dict[str, Any]:
        self.sent.append(warmup)
        return {"sent": warmup.requests, "succeeded": warmup.requests - self.failed, "failed": self.failed,
                "failure_rate": self.failed / warmup.requests, "seconds": 0.1}


def prepare(w: World, document: dict[str, Any], name: str = "p-1") -> Any:
    return rollouts.prepare(w.services(), deployment(), document, EXECUTION + name, name)


WARMUP = {"url": "http://canary.internal:8080/chat", "requests": 500, "concurrency": 16}


def test_warm_up_runs_before_any_traffic_and_is_recorded(world: World) -> None:
    world.services().warmup = sender = FakeWarmup(failed=5)
    state = prepare(world, request(warmup=WARMUP))
    assert sender.sent[0].requests == 500 and sender.sent[0].url == WARMUP["url"]
    assert state.rollout.warmup_result["failed"] == 5
    assert world.forward().weights == {world.primary_tg: 100, world.canary_tg: 0}  # prepare moves no traffic


def test_a_failed_warm_up_refuses_to_start(world: World) -> None:
    world.services().warmup = FakeWarmup(failed=100)
    with pytest.raises(OperationalError, match="warm-up failed: 100 of 500") as caught:
        prepare(world, request(warmup=WARMUP))
    assert caught.value.field == "warmup"
    assert world.meta("p-1") is None and world.services().store.active(world.listener_arn) is None


def test_the_candidate_variant_must_exist_and_not_be_control(world: World) -> None:
    with pytest.raises(NotFoundError):
        prepare(world, request(experiment=True))
    world.create_experiment()
    document = request(experiment=True)
    document["candidate"]["variant"] = "control"
    with pytest.raises(ValidationError, match="cannot be the experiment's control"):
        prepare(world, document)
    document["candidate"]["variant"] = "nope"
    with pytest.raises(ValidationError, match="has no variant 'nope'"):
        prepare(world, document)


def test_significance_without_the_aggregates_table_refuses(world: World) -> None:
    world.create_experiment()
    world.services().analysis = None
    with pytest.raises(OperationalError, match="AGGREGATES_TABLE"):
        prepare(world, request(experiment=True))


def test_canary_and_primary_must_differ(world: World) -> None:
    document = request()
    document["candidate"]["target_group"] = world.primary_tg
    with pytest.raises(ValidationError) as caught:
        prepare(world, document)
    assert caught.value.field == "candidate.target_group"


def test_a_retried_prepare_returns_the_recorded_state_and_a_reused_id_is_refused(world: World) -> None:
    first = prepare(world, request())
    assert prepare(world, request()) == first  # Lambda retry of the same execution
    with pytest.raises(ConflictError, match="use a new rollout_id"):
        rollouts.prepare(world.services(), deployment(), request(), EXECUTION + "other", "p-1")
