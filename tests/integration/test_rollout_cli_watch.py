"""`kanaria rollout list` and `kanaria rollout status --watch` through the real CLI entry point on the moto world:
the watch redraws until the rollout ends, exit 0 when it completed, 1 when it rolled back or is stuck."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from kanaria_tools import rollout_control
from kanaria_tools.cli import rollout as rollout_cli
from kanaria_tools.cli.main import main
from tests.support.rollout_world import World, request, world  # noqa: F401


def _start(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    document = request()
    document["plan"]["stages"] = document["plan"]["stages"][:1]
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["rollout", "start", "--request", str(path)]) == 0
    rollout_id = json.loads(_stdout(capsys))["rollout_id"]
    return rollout_id


def _output(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """stdout without the in-process handlers' log and metric lines, and stderr."""
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if not line.startswith(('{"level"', '{"_aws"'))]
    return "\n".join(lines), captured.err


def _stdout(capsys: pytest.CaptureFixture[str]) -> str:
    return _output(capsys)[0]


def _between_refreshes(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Run `act` where the watch sleeps (then a short real pause, so the execution moves on)."""
    import time

    def pause(seconds: float) -> None:
        act()
        time.sleep(0.1)

    monkeypatch.setattr(rollout_cli, "_pause", pause)


def test_watch_exits_0_when_the_rollout_completes_and_list_shows_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a one-stage rollout that will wait for an approval
    rollout_id = _start(world, tmp_path, capsys)
    approved: list[Any] = []

    def approve_when_waiting() -> None:
        meta = world.meta(rollout_id)
        if not approved and meta and meta.approval_token:
            approved.append(rollout_control.approve("kanaria", rollout_id, None, "watched"))

    _between_refreshes(monkeypatch, approve_when_waiting)
    # When the operator watches it (text view) and approves it meanwhile
    code = main(["rollout", "status", rollout_id, "--watch", "--interval", "1", "--timeout", "60", "--output", "text"])
    out, err = _output(capsys)
    # Then the watch redrew the view until completion and exits 0
    assert code == 0 and approved, err
    assert "Status:           awaiting_approval" in out and "Awaiting approval: yes" in out
    assert "Status:           completed" in out and out.rstrip().endswith(f"rollout {rollout_id} completed")
    assert "✔ canary-5" in out and "Last gate:        PASS" in out
    # And `rollout list` shows it, as JSON and as a table, and filters by status
    assert main(["rollout", "list"]) == 0
    listed = json.loads(_stdout(capsys))["rollouts"]
    assert [(r["rollout_id"], r["status"], r["percent"]) for r in listed] == [(rollout_id, "completed", 100)]
    assert main(["rollout", "list", "--output", "text"]) == 0
    table = _stdout(capsys).splitlines()
    assert table[0].startswith("ROLLOUT") and table[1].startswith(rollout_id) and "completed" in table[1]
    assert main(["rollout", "list", "--status", "rolled_back"]) == 0
    assert json.loads(_stdout(capsys)) == {"rollouts": []}


def test_watch_exits_1_when_the_rollout_rolls_back(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a running rollout that the operator aborts while watching it (JSON lines)
    rollout_id = _start(world, tmp_path, capsys)
    aborted: list[Any] = []

    def abort_once_running() -> None:
        meta = world.meta(rollout_id)
        if not aborted and meta and meta.progress.stage_started_at:
            aborted.append(rollout_control.abort("kanaria", rollout_id, "bad transcripts"))

    _between_refreshes(monkeypatch, abort_once_running)
    code = main(["rollout", "status", rollout_id, "--watch", "--interval", "1", "--timeout", "60"])
    out, err = _output(capsys)
    # Then one JSON status per refresh, the last one rolled back, exit 1 with the reason on stderr
    statuses = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and aborted
    assert statuses[-1]["status"] == "rolled_back" and len(statuses) >= 2
    error = json.loads(err.splitlines()[-1])["error"]
    assert error["code"] == "rolled_back" and "bad transcripts" in error["reason"]


def test_watch_exits_1_when_the_rollout_is_stuck_past_the_timeout(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a rollout waiting for an approval nobody gives, and a clock that jumps 10 minutes per refresh
    rollout_id = _start(world, tmp_path, capsys)
    now = [0.0]

    def ten_minutes_pass() -> None:
        meta = world.meta(rollout_id)
        if meta and meta.approval_token:
            now[0] += 600

    _between_refreshes(monkeypatch, ten_minutes_pass)
    monkeypatch.setattr(rollout_cli, "_clock", lambda: now[0])
    # When it is watched with a 15-minute timeout
    code = main(["rollout", "status", rollout_id, "--watch", "--interval", "1", "--timeout", "900"])
    err = capsys.readouterr().err
    # Then the watch gives up with exit 1, saying where it is stuck
    error = json.loads(err.splitlines()[-1])["error"]
    assert code == 1 and error["code"] == "timeout"
    assert "still awaiting_approval at stage canary-5 after 900 s" in error["reason"]
    # (the waiting execution is answered, so that it ends with the test)
    rollout_control.reject("kanaria", rollout_id, None, "watched long enough")
    execution_arn = world.meta(rollout_id).execution_arn  # type: ignore[union-attr]
    assert world.wait(execution_arn, while_running=lambda: None)["status"] in {"SUCCEEDED", "FAILED"}
