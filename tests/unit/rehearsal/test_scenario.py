"""Scenario files: every shipped one is valid, a bad field fails with exit 2 naming it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kanaria.errors import ValidationError
from kanaria_tools.cli.main import main
from kanaria_tools.rehearsal.scenario import FAULT_KINDS, list_scenarios, load_scenario, parse_scenario


def _default() -> dict:
    return json.loads(Path(list_scenarios()[0]).parent.joinpath("default.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", list_scenarios(), ids=lambda p: p.stem)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(str(path))
    assert scenario.name == path.stem


def test_the_design_note_cases_and_every_fault_kind_are_shipped() -> None:
    names = {p.stem for p in list_scenarios()}
    assert {
        "default",
        "smoke",
        "sonnet-vs-haiku-recommendations",
        "sonnet-v1-to-v2",
        "canary-latency-regression",
        "conflicting-intent-signals",
        "haiku-recommendations-stage0",
    } <= names
    kinds = {fault.kind for p in list_scenarios() for _, fault in load_scenario(str(p)).faults()}
    assert kinds == set(FAULT_KINDS)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["traffic"].update(requests_per_minute=-5), "traffic.requests_per_minute"),
        (lambda d: d["traffic"]["intent_mix"].update(chitchat=0.5), "traffic.intent_mix"),
        (lambda d: d["rollouts"][1]["faults"][0].update(kind="meteor"), "rollouts.1.faults.0.kind"),
        (lambda d: d["rollouts"][0].update(candidate="gpt"), "rollouts.0.candidate"),
        (lambda d: d["rollouts"][0].update(colour="red"), "rollouts.0.colour"),
        (lambda d: d["configurations"]["sonnet-v1"]["effects"]["latency"].update(p99_ms=10), "p99_ms"),
        (lambda d: d["rollouts"][1]["faults"][0].pop("latency_factor"), "latency_factor"),
        (
            lambda d: d["rollouts"][0].update(offline_evaluation={"dataset": "golden.csv"}),
            "rollouts.0.offline_evaluation.dataset",
        ),
        (
            lambda d: d["rollouts"][0].update(offline_evaluation={"dataset": "d.jsonl", "intents": ["weather"]}),
            "rollouts.0.offline_evaluation.intents",
        ),
        (
            lambda d: d["rollouts"][0].update(offline_evaluation={"dataset": "d.jsonl", "intents": []}),
            "rollouts.0.offline_evaluation.intents",
        ),
        (
            lambda d: d["rollouts"][0].update(offline_evaluation={"dataset": "d.jsonl", "passed": True}),
            "rollouts.0.offline_evaluation.passed",
        ),
        (
            lambda d: d["rollouts"][0].update(offline_evaluation={"intents": ["recommendation"]}),
            "rollouts.0.offline_evaluation.dataset",
        ),
    ],
)
def test_bad_field_is_named(mutate, field: str) -> None:
    document = _default()
    mutate(document)
    with pytest.raises(ValidationError) as raised:
        parse_scenario(document)
    assert field in str(raised.value)


def test_cli_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _default()
    document["clock"]["speed"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["rehearse", str(path)]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["field"] == "clock.speed"


def test_cli_unknown_scenario_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", "no-such-scenario"]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
    assert main(["rehearse", "default", "--check"]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_port_in_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["rehearse", "smoke", "--port", str(port), "--reports", str(tmp_path), "--plain"]) == 1
    captured = capsys.readouterr()
    assert f"port {port} in use" in captured.err


def test_offline_evaluation_field() -> None:
    document = _default()
    document["rollouts"][0]["offline_evaluation"] = {
        "dataset": "datasets/golden/manga_store_v1.jsonl",
        "intents": ["recommendation"],
    }
    spec = parse_scenario(document).rollouts[0].offline_evaluation
    assert spec is not None and spec.intents == ("recommendation",)
    assert parse_scenario(_default()).rollouts[0].offline_evaluation is None
    stage0 = load_scenario("haiku-recommendations-stage0")
    assert [(r.expect, r.offline_evaluation is not None) for r in stage0.rollouts] == [
        ("refused", True),
        ("completed", True),
    ]
