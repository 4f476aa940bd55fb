"""`kanaria rollout start|status|approve|reject|abort` through the real CLI entry point against the moto world."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kanaria_tools.cli.main import main
from tests.support.rollout_world import World, request, world  # noqa: F401


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["rollout", *argv])
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if not line.startswith('{"level"') and not line.startswith('{"_aws"')]
    text = "\n".join(lines).strip()
    return code, json.loads(text) if text else None, err


def write(tmp_path: Path, document: dict[str, Any], name: str = "request.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_start_status_approve_end_to_end(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = request()
    document["plan"]["stages"] = document["plan"]["stages"][:1]
    code, started, _ = run(capsys, "start", "--request", write(tmp_path, document))
    assert code == 0
    rollout_id = started["rollout_id"]
    assert re.fullmatch(r"anthropic-claude-3-5-sonnet-v2-\d{8}T\d{6}Z-[0-9a-f]{6}", rollout_id)
    assert started["execution_arn"].endswith(f":execution:kanaria-canary-rollout:{rollout_id}")

    def approve_when_waiting() -> None:
        meta = world.meta(rollout_id)
        if meta and meta.approval_token and not approved:
            code, status, _ = run(capsys, "status", rollout_id)
            assert code == 0 and status["status"] == "awaiting_approval" and status["awaiting_approval"]
            assert status["gate"]["outcome"] == "PASS" and status["percent"] == 5
            approved.append(run(capsys, "approve", rollout_id, "--comment", "A/B looks good"))

    approved: list[Any] = []
    assert world.wait(started["execution_arn"], while_running=approve_when_waiting)["status"] == "SUCCEEDED"
    assert approved[0][0] == 0 and approved[0][1]["approved"] is True
    code, status, _ = run(capsys, "status", rollout_id)
    assert (status["status"], status["percent"], status["execution_status"]) == ("completed", 100, "SUCCEEDED")
    assert status["weights"] == {world.canary_tg: 100}


def test_each_start_gets_a_unique_execution_name(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, request())
    started = [run(capsys, "start", "--request", path)[1] for _ in range(3)]
    assert len({s["rollout_id"] for s in started}) == 3
    executions = world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
    assert {e["name"] for e in executions} == {s["rollout_id"] for s in started}
    ended = [world.wait(s["execution_arn"], while_running=lambda: None) for s in started[1:]]
    # one listener, one rollout at a time: the later starts are refused before any traffic moves (by then the
    # first may be past its first stage on a loaded machine)
    assert {(e["status"], e["error"]) for e in ended} == {("FAILED", "Kanaria.StartRefused")}
    assert all(
        "is active on this listener" in e["cause"] or re.search(r"already sends \d+% to the canary", e["cause"])
        for e in ended
    )


def test_bad_request_exits_2_naming_the_field(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = request()
    document["plan"]["stages"][1]["percent"] = 3
    code, _, err = run(capsys, "start", "--request", write(tmp_path, document))
    assert code == 2
    assert json.loads(err)["error"]["field"] == "plan"
    assert "percents must increase" in json.loads(err)["error"]["reason"]
    code, _, err = run(capsys, "start", "--request", str(tmp_path / "missing.json"))
    assert code == 2 and json.loads(err)["error"]["field"] == "request"
    assert world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer abc.def"},
        {"X-Api-Key": "k-123"},
        {"X-Session-Token": "tok-4711"},
        {"X-Trace": "Basic Zm9v"},
    ],
)
def test_a_literal_secret_warm_up_header_is_refused_before_anything_starts(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], headers: dict[str, str]
) -> None:
    document = request()
    document["warmup"] = {"url": "http://canary.internal/chat", "requests": 5, "headers": headers}
    code, _, err = run(capsys, "start", "--request", write(tmp_path, document))
    assert code == 2
    error = json.loads(err)["error"]
    (name,) = headers
    assert error["field"] == "warmup.headers" and repr(name) in error["reason"] and "secret_headers" in error["reason"]
    assert headers[name] not in err  # the refusal names the header, never its value
    assert world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"] == []


def test_a_warm_up_header_by_parameter_reference_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = request()
    document["warmup"] = {
        "url": "http://canary.internal/chat",
        "requests": 5,
        "headers": {"X-Trace": "warm-up"},
        "secret_headers": {"Authorization": "/kanaria/warmup/chatbot-token"},
    }
    code, result, _ = run(capsys, "start", "--request", write(tmp_path, document), "--dry-run")
    assert code == 0 and result["request"]["warmup"]["secret_headers"] == {
        "Authorization": "/kanaria/warmup/chatbot-token"
    }


def test_dry_run_validates_without_aws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = run(capsys, "start", "--request", write(tmp_path, request()), "--dry-run")
    assert code == 0 and result["valid"] and result["request"]["plan"]["stages"][0]["name"] == "canary-5"


def test_start_refuses_a_configuration_in_cooldown(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime, timezone

    from kanaria.domain.rollout import CandidateEvent

    world.services().store.add_candidate_event(
        "cfg-0001", CandidateEvent(kind="rollback", at=datetime.now(timezone.utc), rollout_id="earlier")
    )
    code, _, err = run(capsys, "start", "--request", write(tmp_path, request()))
    assert code == 2 and "cooldown" in json.loads(err)["error"]["reason"]


def test_abort_invokes_the_rollback_function(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, started, _ = run(capsys, "start", "--request", write(tmp_path, request()))
    rollout_id = started["rollout_id"]
    aborted: list[Any] = []

    def abort_once_running() -> None:
        meta = world.meta(rollout_id)
        if not aborted and meta and meta.progress.stage_started_at:
            aborted.append(run(capsys, "abort", rollout_id, "--reason", "saw bad answers in the transcripts"))

    world.wait(started["execution_arn"], while_running=abort_once_running)
    code, result, _ = aborted[0]
    assert code == 0 and result["status"] == "rolled_back"
    assert result["record"]["trigger"]["summary"].endswith("saw bad answers in the transcripts")
    assert result["record"]["execution_stopped"] is True
    code, status, _ = run(capsys, "status", rollout_id)
    assert status["status"] == "rolled_back" and status["rollback"]["trigger"]["kind"] == "manual_abort"
    assert world.forward().weights == {world.primary_tg: 100}


def test_answers_to_a_rollout_that_is_not_waiting_are_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "approve", "nope")
    assert code == 2 and json.loads(err)["error"]["field"] == "rollout_id"
    code, _, err = run(capsys, "reject", "--token", "not-a-token", "--reason", "x")
    assert code == 2 and "no longer pending" in json.loads(err)["error"]["reason"]
    code, _, err = run(capsys, "approve")
    assert code == 2 and "give the rollout id or --token" in json.loads(err)["error"]["reason"]


def test_start_without_a_claimed_evaluation_leaves_stage_0_to_the_stored_one(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request that claims no offline evaluation, and none stored for its config hash
    world.services().evaluations = {}.get
    document = request()
    del document["offline_evaluation"]
    # When it is started from the CLI, Then the CLI starts it and the deployed stage 0 refuses it before any traffic
    code, started, _ = run(capsys, "start", "--request", write(tmp_path, document))
    assert code == 0
    ended = world.wait(started["execution_arn"], while_running=lambda: None)
    assert (ended["status"], ended["error"]) == ("FAILED", "Kanaria.StartRefused")
    assert "kanaria evaluate" in ended["cause"]
    assert world.forward().weights == {world.primary_tg: 100, world.canary_tg: 0}
