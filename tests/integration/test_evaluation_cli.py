"""`kanaria evaluate` end to end on the offline adapter: output, files, exit codes and JSON errors."""

from __future__ import annotations

import json

import pytest

from kanaria_tools.cli.main import main
from tests.unit.evaluation.support import EXAMPLES, SAMPLE_DATASET

CONFIGS = ["--config", str(EXAMPLES / "sonnet.json"), "--config", str(EXAMPLES / "haiku.json")]


def _error(capsys) -> dict:
    return json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]


def test_evaluate_prints_the_table_and_writes_the_report(tmp_path, capsys):
    code = main(
        [
            "evaluate",
            "--dataset",
            str(SAMPLE_DATASET),
            *CONFIGS,
            "--intent",
            "recommendation",
            "--intent",
            "chitchat",
            "--out",
            str(tmp_path),
            "--run-id",
            "cli-test",
            "--throttle-every",
            "5",
            "--judge",
            str(EXAMPLES / "judge.json"),
            "--monthly-budget",
            "100000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "| recommendation | haiku-3.5 | 10 |" in out and "| FAIL |" in out
    assert "objective `max_quality_within_budget`" in out
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "report.json", "chart.svg", "records.jsonl"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["judge"]["judge_hash"] and report["dataset"]["cases"] == 20
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 40 and any(r["throttles"] for r in records)
    assert all(any(p["name"] == "judge" for p in r["parts"]) for r in records)
    assert (tmp_path / "chart.svg").read_text().startswith("<svg")
    assert "![Mean quality vs mean cost per intent](chart.svg)" in (tmp_path / "report.md").read_text()


def test_missing_dataset_file_exits_2_with_a_json_error(tmp_path, capsys):
    assert main(["evaluate", "--dataset", str(tmp_path / "none.jsonl"), *CONFIGS, "--out", str(tmp_path)]) == 2
    error = _error(capsys)
    assert error["code"] == "validation_error" and error["field"] == "--dataset"


def test_bad_dataset_line_names_the_line_and_field(tmp_path, capsys):
    lines = SAMPLE_DATASET.read_text(encoding="utf-8").splitlines()[:3]
    bad = json.loads(lines[2])
    bad["expected_format"]["max_chars"] = "many"
    path = tmp_path / "golden.jsonl"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(bad, ensure_ascii=False)]) + "\n", encoding="utf-8")
    assert main(["evaluate", "--dataset", str(path), *CONFIGS, "--out", str(tmp_path / "out")]) == 2
    error = _error(capsys)
    assert error["field"] == "golden:3.expected_format.max_chars"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--config", "missing.json"], "--config"),
        (["--intent", "faq"], "intent"),
        (["--bucket", "b"], "--bucket"),
        (["--concurrency", "99"], "options.concurrency"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, args, field):
    assert main(["evaluate", "--dataset", str(SAMPLE_DATASET), *CONFIGS, "--out", str(tmp_path), *args]) == 2
    assert _error(capsys)["field"] == field


def test_bad_configuration_content_names_the_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "overrides": {"temperature": 2.5}}))
    assert main(["evaluate", "--dataset", str(SAMPLE_DATASET), "--config", str(bad), "--out", str(tmp_path)]) == 2
    assert _error(capsys)["field"] == "bad.json.overrides.temperature"
    dup = ["--config", str(EXAMPLES / "haiku.json"), "--config", str(EXAMPLES / "haiku.json")]
    assert main(["evaluate", "--dataset", str(SAMPLE_DATASET), *dup, "--out", str(tmp_path)]) == 2
    assert _error(capsys)["field"] == "config.name"
