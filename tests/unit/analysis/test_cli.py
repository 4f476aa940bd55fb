"""`kanaria sample-size` and `kanaria analyze` through the CLI entry point."""

import io
import json

import pytest

from kanaria_tools.cli.main import main

from .builders import snapshot, variant


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_of(err: str) -> dict:
    return json.loads(err)["error"]


def test_sample_size_for_two_proportions(capsys):
    code, out, _ = run(capsys, "sample-size", "--baseline", "0.78", "--mde", "0.02")
    body = json.loads(out)
    assert code == 0 and body["n_per_variant"] == 6507 and body["metric"] == "proportion"


def test_sample_size_for_two_means(capsys):
    code, out, _ = run(capsys, "sample-size", "--metric", "mean", "--sd", "1", "--mde", "0.5", "--power", "0.8")
    assert code == 0 and json.loads(out)["n_per_variant"] == 63


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--baseline", "0.78"], "--mde"),
        (["--baseline", "1.2", "--mde", "0.02"], "--baseline"),
        (["--baseline", "0.99", "--mde", "0.02"], "--mde"),
        (["--baseline", "0.5", "--mde", "0"], "--mde"),
        (["--baseline", "0.5", "--mde", "0.01", "--alpha", "abc"], "--alpha"),
        (["--baseline", "0.5", "--mde", "0.01", "--power", "1"], "--power"),
        (["--baseline", "0.5", "--mde", "0.01", "--sd", "2"], "--sd"),
        (["--metric", "mean", "--mde", "0.5"], "--sd"),
        (["--metric", "mean", "--sd", "-1", "--mde", "0.5"], "--sd"),
    ],
)
def test_sample_size_bad_input_exits_2_naming_the_option(capsys, argv, field):
    code, out, err = run(capsys, "sample-size", *argv)
    assert code == 2 and out == ""
    assert error_of(err)["field"] == field


@pytest.fixture
def good():
    return snapshot(variant(10_000), variant(10_000, quality=0.86))


def test_analyze_one_json_object(capsys, tmp_path, good):
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(good, indent=2))
    code, out, _ = run(capsys, "analyze", "--input", str(path))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1
    assert json.loads(lines[0])["decision"] == "PROMOTE"


def test_analyze_json_lines_gives_one_result_per_line(capsys, tmp_path, good):
    worse = snapshot(variant(10_000), variant(10_000, quality=0.84))
    path = tmp_path / "snapshots.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in (good, worse, good)) + "\n")
    code, out, _ = run(capsys, "analyze", "--input", str(path))
    assert code == 0
    assert [json.loads(line)["decision"] for line in out.splitlines()] == ["PROMOTE", "ROLLBACK", "PROMOTE"]


def test_analyze_reads_stdin(capsys, monkeypatch, good):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(good)))
    code, out, _ = run(capsys, "analyze", "--input", "-")
    assert code == 0 and json.loads(out)["experiment_id"] == "exp-test"


def test_analyze_bad_snapshot_exits_2_naming_the_field(capsys, tmp_path, good):
    bad = json.loads(json.dumps(good))
    bad["experiment"]["weights"] = {"A": 0.5, "B": 0.6}
    path = tmp_path / "snapshots.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in (good, bad, good)))
    code, out, err = run(capsys, "analyze", "--input", str(path))
    assert code == 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3 and lines[1] == {"line": 2, "error": lines[1]["error"]}
    assert lines[1]["error"]["field"] == "experiment.weights"
    error = error_of(err)
    assert (
        error["field"] == "experiment.weights" and "line 2" in error["message"] and "must sum to 1" in error["message"]
    )


@pytest.mark.parametrize(
    "content, field",
    [("{not json\n{}\n", "snapshot"), ("   \n", "--input"), ("[1]", "snapshot")],
)
def test_analyze_unparseable_input_exits_2(capsys, tmp_path, content, field):
    path = tmp_path / "input.jsonl"
    path.write_text(content)
    code, _, err = run(capsys, "analyze", "--input", str(path))
    assert code == 2 and error_of(err)["field"] == field


def test_analyze_missing_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "analyze", "--input", str(tmp_path / "nope.json"))
    assert code == 2 and error_of(err)["field"] == "--input"


def test_cli_module_does_not_import_scipy_at_registration():
    import subprocess
    import sys

    probe = "import sys, kanaria_tools.cli.analyze; print('scipy' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_analyze_with_worker_processes_gives_the_same_lines_in_order(capsys, tmp_path, good):
    worse = snapshot(variant(10_000), variant(10_000, quality=0.84))
    path = tmp_path / "snapshots.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in [good, worse] * 4))
    _, sequential, _ = run(capsys, "analyze", "--input", str(path), "--jobs", "1")
    code, parallel, _ = run(capsys, "analyze", "--input", str(path), "--jobs", "2")
    assert code == 0 and parallel == sequential and len(parallel.splitlines()) == 8


def test_analyze_rejects_a_bad_jobs_count(capsys, tmp_path, good):
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(good))
    code, _, err = run(capsys, "analyze", "--input", str(path), "--jobs", "1.5")
    assert code == 2 and error_of(err)["field"] == "--jobs"
