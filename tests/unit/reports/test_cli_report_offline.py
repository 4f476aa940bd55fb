"""`kanaria report --result`: the experiment of a rehearsal read offline from its result.json (no AWS account),
with every look's effect and relative lift; a missing file, an unknown experiment or a run without analysis are
clear errors (exit 2, the field named)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kanaria_tools.cli.main import main
from kanaria_tools.rehearsal.report_files import write_report
from tests.unit.rehearsal.test_progress_report import rehearsal_result


@pytest.fixture
def result_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # offline: nothing may need credentials
    write_report(rehearsal_result(tmp_path))
    return tmp_path / "smoke-run" / "result.json"


def test_the_report_reads_a_rehearsals_experiment_offline(
    result_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "exp", "--result", str(result_json)]) == 0
    text = capsys.readouterr().out
    assert "Experiment exp-test" in text and "Decision: CONTINUE" in text and "Sample ratio: ok" in text
    assert "A (control)" in text and "quality_score" in text and "Guardrails" in text
    assert "Looks (primary metric, treatment vs control)" in text
    assert "1 (30 min)" in text and "2 (60 min)" in text and "+3.5% [" in text


def test_the_json_holds_the_analysis_and_every_look(result_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "exp", "--result", str(result_json), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["result"]["decision"] == "CONTINUE" and len(body["looks"]) == 2


def test_bad_input_names_the_field(result_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "exp", "--result", str(tmp_path / "missing.json")]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "result"
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert main(["report", "exp", "--result", str(tmp_path / "bad.json")]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "result"
    assert main(["report", "other-exp", "--result", str(result_json)]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["field"] == "experiment_id" and "exp" in error["message"]
    summary = json.loads(result_json.read_text(encoding="utf-8"))
    summary["phases"][0]["detail"].pop("analysis")
    result_json.write_text(json.dumps(summary), encoding="utf-8")
    assert main(["report", "exp", "--result", str(result_json)]) == 2
    assert "stored no analysis" in json.loads(capsys.readouterr().err)["error"]["message"]
