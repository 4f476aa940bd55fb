"""Stage 0 (prepare): what it refuses before any traffic moves, and the warm-up."""

from __future__ import annotations

from typing import Any

import pytest

from kanaria.domain.rollout_plan import Warmup
from kanaria.errors import ConflictError, NotFoundError, OperationalError, ValidationError
from kanaria.handlers.rollout_env import deployment
from kanaria.logic import rollout_prepare
from tests.support.rollout_world import World, request, world  # noqa: F401

EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:kanaria-canary-rollout:"


class FakeWarmup:
    """WarmupSender that records what it was asked and answers with `failed` failures."""

    def __init__(self, failed: int = 0):
        self.failed = failed
        self.sent: list[Warmup] = []

    def send(self, warmup: Warmup) -> dict[str, Any]:
        self.sent.append(warmup)
        return {
            "sent": warmup.requests,
            "succeeded": warmup.requests - self.failed,
            "failed": self.failed,
            "failure_rate": self.failed / warmup.requests,
            "seconds": 0.1,
        }


def prepare(w: World, document: dict[str, Any], name: str = "p-1") -> Any:
    return rollout_prepare.prepare(w.services(), deployment(), document, EXECUTION + name, name)


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


def test_a_literal_secret_header_is_refused_and_nothing_is_written(world: World) -> None:
    world.services().warmup = sender = FakeWarmup()
    warmup = {**WARMUP, "headers": {"Authorization": "Bearer literal-4711"}}
    with pytest.raises(ValidationError, match="'Authorization' looks like a credential") as caught:
        prepare(world, request(warmup=warmup))
    assert caught.value.field == "warmup.headers" and "literal-4711" not in str(caught.value)
    assert sender.sent == [] and world.meta("p-1") is None


def test_a_secret_header_parameter_outside_the_deployment_path_refuses_to_start(world: World) -> None:
    from kanaria.dal.warmup import HttpWarmupSender

    world.services().warmup = HttpWarmupSender("/kanaria/warmup/", resolve=lambda name: "never read")
    warmup = {**WARMUP, "secret_headers": {"Authorization": "/kanaria/db/password"}}
    with pytest.raises(ValidationError, match="not a warm-up parameter of this deployment") as caught:
        prepare(world, request(warmup=warmup))
    assert caught.value.field == "warmup.secret_headers.Authorization"
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
        rollout_prepare.prepare(world.services(), deployment(), request(), EXECUTION + "other", "p-1")


def _stored(passed_recommendation: bool, offline: bool = False):
    from kanaria.evaluation.report import EvaluationSummary, IntentResult

    def intent(passed: bool, rate: float) -> IntentResult:
        return IntentResult(
            n=10,
            pass_rate=rate,
            mean_quality=0.9 if passed else 0.7,
            quality_target=0.8,
            min_pass_rate=0.8,
            hallucinations=0,
            errors=0,
            passed=passed,
            reasons=() if passed else (f"pass rate {rate:.0%} < required 80%",),
        )

    return EvaluationSummary(
        config_hash="cfg-0001",
        config_name="haiku",
        run_id="run-1",
        created_at="2026-11-01T00:00:00+00:00",
        dataset_version="manga_store_v1",
        report_uri="s3://evals/run-1/report.md",
        scorer_version="1",
        price_table_version="p1",
        offline=offline,
        per_intent={
            "chitchat": intent(True, 1.0),
            "recommendation": intent(passed_recommendation, 0.6 if not passed_recommendation else 0.9),
        },
    )


def test_a_stored_failing_evaluation_refuses_even_when_the_request_claims_a_pass(world: World) -> None:
    # Given a stored evaluation of the candidate's config hash that failed recommendation
    world.services().evaluations = {"cfg-0001": _stored(passed_recommendation=False)}.get
    document = request()
    document["candidate"]["intents"] = ["chitchat", "recommendation"]
    # When the rollout is prepared with a request that claims the evaluation passed
    with pytest.raises(ValidationError) as caught:
        prepare(world, document)
    # Then the stored result decides: refused, naming the intent, nothing recorded, no traffic
    assert caught.value.field == "offline_evaluation" and "recommendation" in caught.value.reason
    assert world.meta("p-1") is None
    assert world.forward().weights == {world.primary_tg: 100, world.canary_tg: 0}


def test_a_stored_passing_evaluation_for_the_served_intents_is_recorded_as_evidence(world: World) -> None:
    world.services().evaluations = {"cfg-0001": _stored(passed_recommendation=False)}.get
    document = request()
    del document["offline_evaluation"]  # nothing claimed: the stored evaluation is the evidence
    document["candidate"]["intents"] = ["chitchat"]  # it serves chitchat only, which passed
    state = prepare(world, document)
    evidence = state.rollout.offline_evaluation
    assert evidence.passed and evidence.report_uri == "s3://evals/run-1/report.md"
    assert set(evidence.per_intent) == {"chitchat"}


def test_an_offline_adapter_evaluation_is_refused_outside_the_rehearsal(world: World) -> None:
    world.services().evaluations = {"cfg-0001": _stored(passed_recommendation=True, offline=True)}.get
    document = request()
    document["candidate"]["intents"] = ["chitchat"]
    with pytest.raises(ValidationError, match="offline adapter"):
        prepare(world, document)
    world.services().allow_offline_evaluation = True
    assert prepare(world, document).rollout.offline_evaluation.passed


def test_no_stored_and_no_claimed_evaluation_refuses(world: World) -> None:
    world.services().evaluations = {}.get
    document = request()
    del document["offline_evaluation"]
    with pytest.raises(ValidationError) as caught:
        prepare(world, document)
    assert caught.value.field == "offline_evaluation" and "kanaria evaluate" in caught.value.reason


def test_a_critical_alarm_still_in_alarm_refuses_to_start(world: World) -> None:
    # Given the previous canary's critical composite is still in ALARM (it would not fire again for this canary)
    world.services().metrics.critical_state = "ALARM"
    # When a rollout starts, Then it is refused naming the alarm, and nothing is recorded or moved
    with pytest.raises(ConflictError, match="kanaria-canary-critical is in ALARM") as caught:
        prepare(world, request())
    assert caught.value.field == "alarms"
    assert world.meta("p-1") is None and world.services().store.active(world.listener_arn) is None
    # And once it is back to OK the same request starts
    world.services().metrics.critical_state = "OK"
    assert prepare(world, request()).rollout.rollout_id == "p-1"
