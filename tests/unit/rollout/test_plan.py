"""Rollout request and stage plan validation: defaults, durations, and errors that name the field."""

from __future__ import annotations

import copy

import pytest

from kanaria.domain.rollout_plan import (
    DEFAULT_PLAN,
    HISTORY_EVENT_LIMIT,
    RolloutPlan,
    check_offline_evaluation,
    history_events,
    parse_duration,
    parse_rollout_request,
    with_first_stage_multiplier,
)
from kanaria.errors import ValidationError

BASE = {
    "candidate": {
        "model_id": "anthropic.claude-3-5-sonnet-v2",
        "config_hash": "cfg-0001",
        "experiment_id": "exp-canary",
        "variant": "treatment",
    },
    "offline_evaluation": {"passed": True, "report_uri": "s3://evals/report.html"},
}


def _with(path: str, value: object) -> dict:
    document = copy.deepcopy(BASE)
    node = document
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[last] = value
    return document


def _error(document: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_rollout_request(document)
    return caught.value


def test_default_plan_is_the_documented_one() -> None:
    request = parse_rollout_request(BASE)
    stages = request.plan.stages
    assert [(s.name, s.percent, s.min_duration_seconds) for s in stages] == [
        ("canary-5", 5, 4 * 3600),
        ("canary-25", 25, 24 * 3600),
        ("canary-50", 50, 48 * 3600),
    ]
    assert stages[0].gates.max_error_rate == 0.005 and stages[0].gates.max_latency_p99_increase == 0.10
    assert stages[0].gates.max_csat_drop is None and not stages[0].gates.require_significance
    assert stages[1].gates.max_csat_drop == 0.01 and stages[1].gates.max_hallucination_rate_increase == 0.01
    assert stages[2].gates.require_significance
    assert request.plan.approval.timeout_seconds == 3 * 86400
    assert request.plan.approval.heartbeat_seconds == 3 * 86400 - 1  # below the timeout, as Step Functions needs
    assert history_events(DEFAULT_PLAN) < HISTORY_EVENT_LIMIT


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90), ("90", 90), ("90s", 90), ("15m", 900), ("4h", 14400), ("2d", 172800)]
)
def test_durations_accept_seconds_and_units(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


def _plan(**stage: object) -> dict:
    base = {"name": "canary-5", "percent": 5, "min_duration_seconds": 60, "gates": {"max_error_rate": 0.01}}
    return {"stages": [{**base, **stage}]}


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        ({"offline_evaluation": BASE["offline_evaluation"]}, "candidate", "required field is missing"),
        (_with("plan", _plan(percent=150)), "plan.stages.0.percent", "less than or equal to 99"),
        (_with("plan", _plan(min_duration_seconds="4 hours")), "plan.stages.0.min_duration_seconds", "not a duration"),
        (
            _with("plan", _plan(check_interval_seconds=0)),
            "plan.stages.0.check_interval_seconds",
            "greater than or equal to 1",
        ),
        (_with("plan", {**_plan(gates={}), "judge": None}), "plan", "has nothing to check"),
        (_with("plan", {**_plan(), "judge": {"alpha": 0.5}}), "plan.judge.alpha", "less than or equal to 0.2"),
        (
            _with("plan", {**_plan(), "judge": {"metrics": {"errors": {"ratio": 0.9}}}}),
            "plan.judge.metrics.errors.ratio",
            "greater than or equal to 1",
        ),
        (
            _with("plan", _plan(gates={"max_error_rate": 2})),
            "plan.stages.0.gates.max_error_rate",
            "less than or equal to 1",
        ),
        (
            _with("plan", {"stages": [_plan()["stages"][0], {**_plan()["stages"][0], "name": "b", "percent": 5}]}),
            "plan",
            "percents must increase",
        ),
        (
            _with("plan", {**_plan(), "approval": {"timeout_seconds": 60, "heartbeat_seconds": 60}}),
            "plan.approval",
            "heartbeat_seconds: must be smaller",
        ),
        (_with("plan", {**_plan(), "extra": 1}), "plan.extra", "Extra inputs are not permitted"),
        (_with("candidate.config_hash", "x"), "candidate.config_hash", "String should match pattern"),
        (_with("candidate.target_group", "my-tg"), "candidate.target_group", "target group ARN"),
        (_with("candidate.variant", None), "candidate", "experiment_id and variant go together"),
        (_with("warmup", {"url": "ftp://canary", "requests": 10}), "warmup.url", "String should match pattern"),
    ],
)
def test_bad_input_names_the_field(document: dict, field: str, reason: str) -> None:
    error = _error(document)
    assert error.field == field, error.to_dict()
    assert reason in error.reason, error.to_dict()


def test_significance_gate_needs_an_experiment() -> None:
    document = copy.deepcopy(BASE)
    document["candidate"] = {"model_id": "m", "config_hash": "cfg-0001"}
    error = _error(document)  # the default plan's 50% stage gates on significance
    assert error.field == "candidate.experiment_id"
    assert "canary-50" in error.reason


def test_a_plan_too_long_for_the_execution_history_is_refused() -> None:
    error = _error(_with("plan", _plan(min_duration_seconds="14d", check_interval_seconds=30)))
    assert error.field == "plan" and "history events" in error.reason


def test_offline_evaluation_gate_refuses_with_the_reason() -> None:
    request = parse_rollout_request(
        _with(
            "offline_evaluation",
            {
                "passed": True,
                "report_uri": "s3://evals/r.html",
                "per_intent": {"faq": {"passed": False, "score": 0.6}, "chitchat": {"passed": True}},
            },
        )
    )
    with pytest.raises(ValidationError) as caught:
        check_offline_evaluation(request.candidate, request.offline_evaluation)
    assert caught.value.field == "offline_evaluation.passed"
    assert "failed intents: faq" in caught.value.reason and "s3://evals/r.html" in caught.value.reason


def test_offline_evaluation_of_another_configuration_does_not_count() -> None:
    request = parse_rollout_request(
        _with("offline_evaluation", {"passed": True, "report_uri": "s3://r", "config_hash": "cfg-9999"})
    )
    with pytest.raises(ValidationError) as caught:
        check_offline_evaluation(request.candidate, request.offline_evaluation)
    assert caught.value.field == "offline_evaluation.config_hash"


def test_extra_report_fields_of_the_evaluation_are_kept() -> None:
    request = parse_rollout_request(
        _with("offline_evaluation", {"passed": True, "report_uri": "s3://r", "golden_dataset": "v7"})
    )
    check_offline_evaluation(request.candidate, request.offline_evaluation)
    assert request.offline_evaluation.model_dump()["golden_dataset"] == "v7"


def test_first_stage_multiplier_doubles_only_the_first_minimum() -> None:
    plan = with_first_stage_multiplier(DEFAULT_PLAN, 2)
    assert plan.stages[0].min_duration_seconds == 8 * 3600
    assert plan.stages[0].hold_bound_seconds == 4 * 3600  # the hold bound stays what it was
    assert [s.min_duration_seconds for s in plan.stages[1:]] == [
        s.min_duration_seconds for s in DEFAULT_PLAN.stages[1:]
    ]
    assert with_first_stage_multiplier(DEFAULT_PLAN, 1) is DEFAULT_PLAN


def test_plan_round_trips_through_json() -> None:
    assert RolloutPlan.model_validate_json(DEFAULT_PLAN.model_dump_json()) == DEFAULT_PLAN


def test_the_offline_evaluation_gate_output_is_accepted_as_is() -> None:
    """The shape kanaria.evaluation.gate.GateResult.as_offline_evaluation() produces."""
    evidence = {
        "passed": True,
        "report_uri": "s3://evals/run-7/report.html",
        "config_hash": "cfg-0001",
        "run_id": "run-7",
        "dataset_version": "golden-v3",
        "reasons": [],
        "per_intent": {
            "faq": {"passed": True, "score": 0.88, "threshold": 0.8, "pass_rate": 0.93, "min_pass_rate": 0.8, "n": 200}
        },
    }
    request = parse_rollout_request(_with("offline_evaluation", evidence))
    check_offline_evaluation(request.candidate, request.offline_evaluation)
    assert request.offline_evaluation.model_dump()["dataset_version"] == "golden-v3"


@pytest.mark.parametrize(
    ("rollout_id", "ok"),
    [
        ("kanaria-rollout_9f2c01ab-1b4e8f6a-2c3d-4e5f-8a9b-0c1d2e3f4a5b", True),  # CodePipeline-style names
        ("v2.1-canary", True),
        ("has space", False),
        ("a/b", False),
        ("x" * 81, False),
        ("", False),
    ],
)
def test_rollout_ids_follow_step_functions_execution_names(rollout_id: str, ok: bool) -> None:
    document = {**BASE, "rollout_id": rollout_id}
    if ok:
        assert parse_rollout_request(document).rollout_id == rollout_id
    else:
        assert _error(document).field == "rollout_id"
