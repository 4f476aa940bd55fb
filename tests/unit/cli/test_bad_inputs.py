"""The CLI's one contract, as a table: every bad input is one JSON line on stderr naming the field, exit 2,
nothing on stdout, no file written, and no AWS client built (a client here fails the test with exit 1)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kanaria_tools.cli.main import main
from tests.support.rollout_world import request
from tests.unit.assignment.conftest import definition

ROOT = Path(__file__).resolve().parents[3]
DATASET = str(ROOT / "datasets" / "golden" / "manga_store_v1.jsonl")


@dataclass(frozen=True)
class Case:
    """argv (with {name} placeholders for the input files), the field the error must name, and optionally a
    substring of its reason, stdin text and environment variables."""

    argv: str | list[str]
    field: str
    reason: str | None = None
    stdin: str = ""
    env: dict[str, str] = field(default_factory=dict)


def _rollout_request(**changes: Any) -> dict[str, Any]:
    document = request()
    document.update(changes)
    return document


FILES: dict[str, Any] = {
    "good": definition(),
    "coerced": definition(traffic={"default": "0.25"}),
    "boolean_traffic": definition(traffic=True),
    "weights": definition(variants=[{"id": "A", "weight": 0.7}, {"id": "B", "weight": 0.5}]),
    "array": [definition()],
    "request": _rollout_request(),
    "request_string_percent": _rollout_request(plan={"stages": [{**request()["plan"]["stages"][0], "percent": "5"}]}),
    "nope_config": {"name": "nope", "overrides": {"model_id": "offline:nope"}},
    "haiku_config": {"name": "haiku", "overrides": {"model_id": "offline:anthropic.claude-3-5-haiku"}},
}
TEXT_FILES = {"broken": "{", "units_bad": "u1\nu 2\n", "units_tab": "u1\nu\t2\n"}


def case(argv: str | list[str], field: str, reason: str | None = None, **kwargs: Any) -> Any:
    return pytest.param(Case(argv, field, reason, **kwargs), id=argv if isinstance(argv, str) else " ".join(argv))


CASES = [
    # argparse's own errors
    case("nosuch", "COMMAND", "invalid choice"),
    case("assign", "--experiment", "is required"),
    case("assign --experiment {good}", "--unit", "give one of --unit, --units"),
    case("assign --experiment {good} --unit u1 --units {units_bad}", "--units", "not allowed with"),
    case("assign --experiment {good} --unit u1 --bogus", "--bogus", "unrecognized"),
    case("assign --experiment {good} --unit", "--unit", "expected one argument"),
    case("rollout", "ACTION", "is required"),
    case("rollout status r1 --output yaml", "--output", "invalid choice"),
    case("rollout list --status nope", "--status", "invalid choice"),
    case("rollout reject r1", "--reason", "is required"),
    case("experiment start exp-1 --expected-version abc", "--expected-version", "must be a whole number"),
    case("experiment start exp-1 --expected-version 0", "--expected-version", "must be >= 1"),
    case("evaluate --dataset {dataset} --config {haiku_config} --concurrency x", "--concurrency", "invalid int"),
    case("evaluate --dataset {dataset} --config {haiku_config} --throttle-every -1", "--throttle-every", ">= 0"),
    case("rehearse default --check --speed -5", "--speed", "must be > 0"),
    case("rehearse default --check --speed 0", "--speed", "must be > 0"),
    case("rehearse default --check --speed nan", "--speed", "must be finite"),
    case("rehearse default --check --port 70000", "--port", "must be >= 1 and <= 65535"),
    case("report exp-1 --output xml", "--output", "invalid choice"),
    # the assignment API's id rules, applied by the CLI
    case(["assign", "--experiment", "{good}", "--unit", ""], "--unit", "without whitespace, control"),
    case(["assign", "--experiment", "{good}", "--unit", "a\tb"], "--unit", "got 'a\\tb'"),
    case(["assign", "--experiment", "{good}", "--unit", "a\x00b"], "--unit"),
    case(["assign", "--experiment", "{good}", "--unit", "a\u202eb"], "--unit"),
    case(["assign", "--experiment", "{good}", "--unit", "u" * 257], "--unit"),
    case(["assign", "--experiment", "{good}", "--unit", "u1", "--intent", ""], "--intent"),
    case(["assign", "--experiment", "{good}", "--unit", "u1", "--intent", "a\x1bb"], "--intent"),
    case("assign --experiment {good} --units {units_bad}", "--units line 2"),
    case("assign --experiment {good} --units -", "--units line 2", stdin="u1\nu\t2\n"),
    case(["rollout", "status", "a b"], "rollout_id", "must match"),
    case(["rollout", "abort", "r1", "--reason", "  "], "--reason", "must not be blank"),
    case("rollout status r1 --timeout 5", "--timeout", "only with --watch"),
    case("rollout status r1 --watch --interval 0", "--interval", "must be > 0"),
    case("rollout status r1 --watch --timeout -1", "--timeout", "must be > 0"),
    case(["experiment", "start", "Bad Id"], "experiment_id", "must match"),
    case(["report", "Bad Id"], "experiment_id", "must match"),
    # files: missing, unreadable, malformed, stdin
    case("assign --experiment {missing} --unit u1", "--experiment", "file not found"),
    case("assign --experiment {broken} --unit u1", "--experiment", "not valid JSON"),
    case("assign --experiment {folder} --unit u1", "--experiment", "is a directory"),
    case("assign --experiment {good} --units {missing}", "--units", "file not found"),
    case("assign --experiment - --units -", "--units", "can be given once"),
    case("assign --experiment - --unit u1", "--experiment", "not valid JSON", stdin="{"),
    case("experiment create {missing}", "definition", "file not found"),
    case("experiment create - --dry-run", "definition", "not valid JSON", stdin="not json"),
    case("rollout start --request {missing}", "request", "file not found"),
    case("rollout start --request {array}", "request", "must be a JSON object"),
    case("rollout start --request - --dry-run", "request", "not valid JSON", stdin="{"),
    case("analyze --input {missing}", "--input", "file not found"),
    case("analyze --input -", "--input", "input is empty", stdin=""),
    case("analyze --input - --jobs 0", "--jobs", "must be > 0", stdin="{}"),
    case("evaluate --dataset {missing} --config {haiku_config}", "--dataset", "file not found"),
    case("rehearse -", "scenario", "must be a JSON object", stdin="[]"),
    case("rehearse", "scenario", "give a scenario name"),
    # no silent coercion, validation before any AWS client
    case("assign --experiment {coerced} --unit u1", "traffic.default", "valid number"),
    case("assign --experiment {boolean_traffic} --unit u1", "traffic"),
    case("assign --experiment {weights} --unit u1", "variants", "sum to 1"),
    case("assign --experiment {array} --unit u1", "experiment", "JSON object"),
    case("experiment create {weights}", "variants", "sum to 1"),
    case("experiment create {coerced}", "traffic.default", "valid number"),
    case("experiment create - --dry-run", "traffic.default", "valid number", stdin=json.dumps(FILES["coerced"])),
    case("rollout start --request {request_string_percent}", "plan.stages.0.percent", "valid integer"),
    case("evaluate --dataset {dataset} --config {nope_config} --out {out}", "nope.overrides.model_id", "offline:nope"),
    case("evaluate --dataset {dataset} --config {haiku_config} --bucket b", "--bucket", "both --bucket and --table"),
    # numbers: readable bounds
    case("sample-size --baseline 0.1 --mde 0.01 --alpha 2", "--alpha", "must be > 0 and < 1, got 2"),
    case("sample-size --metric mean --sd -1 --mde 1", "--sd", "must be > 0, got -1"),
    case("sample-size --baseline abc --mde 0.01", "--baseline", "must be a number"),
    # where the AWS calls would go
    case("rollout --region nowhere status r1", "--region", "AWS region name"),
    case("rollout status r1 --region eu_west_1", "--region", "AWS region name"),
    case("experiment list", "AWS_REGION", "AWS region name", env={"AWS_REGION": "mars"}),
    case(["experiment", "list", "--profile", "a b"], "--profile", "profile name"),
    case("rollout list --profile not-configured", "--profile", "is not in the AWS config"),
]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The input files, an empty working directory, and boto3 unable to build any client."""
    import boto3.session

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    paths = {"missing": str(inputs / "missing.json"), "folder": str(inputs), "dataset": DATASET}
    for name, document in FILES.items():
        (inputs / f"{name}.json").write_text(json.dumps(document), encoding="utf-8")
        paths[name] = str(inputs / f"{name}.json")
    for name, text in TEXT_FILES.items():
        (inputs / f"{name}.txt").write_text(text, encoding="utf-8")
        paths[name] = str(inputs / f"{name}.txt")
    work = tmp_path / "work"
    work.mkdir()
    paths["out"] = str(work / "report")
    monkeypatch.chdir(work)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(inputs / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(inputs / "no-aws-credentials"))

    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an AWS client was built before the input was validated")

    monkeypatch.setattr(boto3.session.Session, "client", no_client)
    monkeypatch.setattr(boto3.session.Session, "resource", no_client)
    return paths


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_json_line_and_exit_2(
    bad: Case,
    files: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a bad input (and nothing in the working directory)
    import io

    argv = bad.argv.split() if isinstance(bad.argv, str) else bad.argv
    monkeypatch.setattr("sys.stdin", io.StringIO(bad.stdin))
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # When the CLI runs
    code = main([arg.format(**files) for arg in argv])
    out, err = capsys.readouterr()
    # Then: exit 2, one JSON line on stderr naming the field, nothing on stdout, nothing written
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    error = json.loads(lines[0])["error"]
    assert error["field"] == bad.field, error
    assert error["reason"] and (bad.reason is None or bad.reason in error["reason"]), error
    assert "None" not in error["reason"] and "Traceback" not in err
    assert out == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_help_and_version_are_not_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("kanaria ")


def test_an_operational_failure_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Valid input, AWS unreachable: exit 1 (not 2), still one JSON line."""
    from botocore.exceptions import EndpointConnectionError

    from kanaria_tools.cli import rollout

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.ap-northeast-1.amazonaws.com")

    monkeypatch.setattr(rollout, "status", unreachable)
    monkeypatch.delenv("KANARIA_DEBUG", raising=False)
    assert main(["rollout", "status", "r-1"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["error"]["code"] == "EndpointConnectionError"


def test_the_table_covers_every_command() -> None:
    commands = {(c.values[0].argv.split() if isinstance(c.values[0].argv, str) else c.values[0].argv)[0] for c in CASES}
    assert commands >= {"assign", "experiment", "rollout", "analyze", "sample-size", "report", "rehearse", "evaluate"}
    assert len(CASES) >= 41
    assert os.path.exists(DATASET)
