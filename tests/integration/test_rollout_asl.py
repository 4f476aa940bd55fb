"""Static checks of state_machines/canary_rollout.asl.json (the contract with the infrastructure)."""

from __future__ import annotations

import json
import re
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

ASL_FILE = Path(__file__).resolve().parents[2] / "state_machines" / "canary_rollout.asl.json"
SUBSTITUTIONS = {"RolloutStepsFunctionArn", "RollbackFunctionArn", "AlertsTopicArn"}  # documented contract
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
TERMINAL = {"Succeed", "Fail"}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_FILE.read_text(encoding="utf-8"))


def _targets(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def test_start_at_and_every_transition_target_exist(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert asl["StartAt"] in states
    for name, state in states.items():
        for target in _targets(state):
            assert target in states, f"{name} -> {target!r} does not exist"
        if state["Type"] not in TERMINAL and state["Type"] != "Choice":
            assert "Next" in state or state.get("End") is True, f"{name} neither continues nor ends"


def _reachable(states: dict[str, Any], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_targets(states[name]))
    return seen


def test_every_state_is_reachable_and_can_reach_an_end(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert _reachable(states, asl["StartAt"]) == set(states), "unreachable states"
    ends = {n for n, s in states.items() if s["Type"] in TERMINAL or s.get("End")}
    assert {"Completed", "RolledBack", "RollbackFailed", "StartRefused"} <= ends
    for name in states:
        assert _reachable(states, name) & ends, f"{name} cannot reach a terminal state (stuck execution)"


def test_every_task_retries_lambda_errors_and_catches_everything(asl: dict[str, Any]) -> None:
    for name, state in asl["States"].items():
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        assert any(c["ErrorEquals"] == ["States.ALL"] for c in state.get("Catch", [])), f"{name} has no catch-all"
        if ":lambda:invoke" in state["Resource"]:
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert LAMBDA_SERVICE_ERRORS <= retried, f"{name} does not retry {LAMBDA_SERVICE_ERRORS - retried}"


def test_every_failure_after_prepare_leads_to_the_rollback(asl: dict[str, Any]) -> None:
    states = asl["States"]
    for name, state in states.items():
        if state["Type"] == "Task" and name not in {"Prepare", "Rollback", "AlertRollbackFailed"}:
            assert {c["Next"] for c in state["Catch"]} == {"Rollback"}, name
    assert states["Prepare"]["Catch"][0]["Next"] == "StartRefused"  # before any traffic: nothing to roll back
    assert states["Rollback"]["Catch"][0]["Next"] == "AlertRollbackFailed"
    assert states["GateDecision"]["Default"] == "Rollback"


def test_substitutions_are_exactly_the_documented_set(asl: dict[str, Any]) -> None:
    text = ASL_FILE.read_text(encoding="utf-8")
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == SUBSTITUTIONS


def test_functions_and_actions_match_the_handlers(asl: dict[str, Any]) -> None:
    from kanaria.handlers.rollout_steps import PrepareEvent, StepEvent

    accepted = set(typing.get_args(PrepareEvent.model_fields["action"].annotation)) | set(
        typing.get_args(StepEvent.model_fields["action"].annotation)
    )
    used = set()
    for name, state in asl["States"].items():
        if ":lambda:invoke" not in state.get("Resource", ""):
            continue
        params = state["Parameters"]
        payload = params["Payload"]
        if params["FunctionName"] == "${RollbackFunctionArn}":
            assert payload["source"] == "state_machine", name
        else:
            assert params["FunctionName"] == "${RolloutStepsFunctionArn}", name
            assert payload["action"] in accepted, name
            used.add(payload["action"])
    assert used == accepted, f"actions never used by the state machine: {accepted - used}"
    assert asl["States"]["RequestApproval"]["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert asl["States"]["RequestApproval"]["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"


READ_KEYS = (
    "SecondsPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "CausePath",
    "ErrorPath",
    "InputPath",
    "Variable",
)


def _paths(node: Any) -> Iterator[str]:
    """JSONPaths a state reads: "x.$" values (also inside intrinsic functions), *Path readers, Choice variables."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key.endswith(".$") or key in READ_KEYS):
                yield from re.findall(r"(?<![$\w])\$\.[A-Za-z_][\w.]*", value)
            yield from _paths(value)
    elif isinstance(node, list):
        for item in node:
            yield from _paths(item)


def _resolve(document: Any, path: str) -> Any:
    node = document
    for part in path[2:].split("."):
        assert isinstance(node, dict) and part in node, f"{path}: no {part!r}"
        node = node[part]
    return node


def test_every_path_the_asl_reads_exists_in_the_state_prepare_produces(asl: dict[str, Any]) -> None:
    """States.Runtime (a missing path) cannot be caught in AWS: it would fail the execution without rollback."""
    from kanaria.domain.rollout import admission
    from kanaria.domain.rollout_plan import parse_rollout_request
    from kanaria.domain.rollout_state import Progress, Rollout, RolloutState
    from tests.support.rollout_world import request

    parsed = parse_rollout_request(request())
    state = RolloutState(
        rollout_id="r",
        progress=Progress(),
        rollout=Rollout(
            rollout_id="r",
            execution_arn="e",
            listener_arn="l",
            primary_target_group="p",
            canary_target_group="c",
            candidate=parsed.candidate,
            plan=parsed.plan,
            offline_evaluation=parsed.offline_evaluation,
            admission=admission([], False, datetime.now(timezone.utc)),
            created_at="t",
        ),
    ).to_state()
    caught = {"$.failure.Cause", "$.rollback_failure"}  # written by the Catch that leads to the reading state
    for name, node in asl["States"].items():
        for path in _paths({k: v for k, v in node.items() if k != "ResultSelector"}):
            if path in caught or path.startswith("$.Payload"):
                continue
            value = _resolve(state, path)
            if path.endswith("seconds") or path.endswith("_seconds"):
                assert isinstance(value, int) and value >= 0, (name, path, value)
    approval = state["rollout"]["plan"]["approval"]
    assert approval["heartbeat_seconds"] < approval["timeout_seconds"]


def test_choice_handles_every_decision_the_gate_can_return(asl: dict[str, Any]) -> None:
    from kanaria.domain.rollout import Decision

    handled = set()
    for choice in asl["States"]["GateDecision"]["Choices"]:
        for rule in choice.get("Or", [choice]):
            assert rule["Variable"] == "$.progress.decision"
            handled.add(rule["StringEquals"])
    assert handled == set(typing.get_args(Decision))


def test_the_rollback_task_retries_everything_before_paging(asl: dict[str, Any]) -> None:
    """A rollback is safe to repeat: a crashed sandbox, an unknown Lambda error, a timeout or a plain client error
    is retried before AlertRollbackFailed pages a human (States.ALL last, as Step Functions requires)."""
    retriers = asl["States"]["Rollback"]["Retry"]
    retried = {e for r in retriers for e in r["ErrorEquals"]}
    assert {"Lambda.Unknown", "Sandbox.Timedout", "States.Timeout", "RollbackInProgressError"} <= retried
    assert retriers[-1]["ErrorEquals"] == ["States.ALL"] and retriers[-1]["MaxAttempts"] >= 2
    assert all("States.ALL" not in r["ErrorEquals"] for r in retriers[:-1])
