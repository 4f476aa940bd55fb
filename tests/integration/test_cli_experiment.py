"""`kanaria experiment ...` end to end: CLI → Lambda Invoke (routed in-process to the real handler) → moto DynamoDB."""

from __future__ import annotations

import importlib
import io
import json

import pytest
from moto import mock_aws

from kanaria_tools.cli.main import main
from tests.support.aws import FakeLambdaContext, api_environment, create_tables, put_profiles
from tests.unit.assignment.conftest import definition


class InProcessLambda:
    """Stands in for the boto3 Lambda client: runs the experiments handler in this process."""

    def __init__(self, handler):
        self._handler = handler
        self.calls: list[str] = []

    def invoke(self, FunctionName: str, Payload: bytes):  # noqa: N803 - boto3 signature
        self.calls.append(FunctionName)
        result = self._handler(json.loads(Payload), FakeLambdaContext())
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


@pytest.fixture
def cli(monkeypatch):
    with mock_aws():
        for key, value in api_environment(prefix="kanaria").items():
            monkeypatch.setenv(key, value)
        create_tables(prefix="kanaria")
        put_profiles(prefix="kanaria")
        from kanaria.handlers import env

        env.api_environment.cache_clear()
        handler = importlib.reload(importlib.import_module("kanaria.handlers.experiments")).handler
        fake = InProcessLambda(handler)
        import kanaria_tools.lambda_api as lambda_api

        original = lambda_api.LambdaApiClient.__init__

        def patched(self, kind, prefix="kanaria", session=None):
            original(self, kind, prefix, session)
            self._lambda = fake

        monkeypatch.setattr(lambda_api.LambdaApiClient, "__init__", patched)
        yield fake


def test_create_start_get_through_the_cli(cli, tmp_path, capsys):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(definition()))
    assert main(["experiment", "create", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "draft"
    assert main(["experiment", "start", "exp-temp", "--expected-version", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "running"
    assert main(["experiment", "get", "exp-temp"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [a["action"] for a in shown["audit"]] == ["create", "start"]
    assert shown["audit"][0]["actor"].startswith("arn:aws:")  # the caller's IAM identity (moto STS)
    assert main(["experiment", "list"]) == 0
    assert [e["experiment"]["id"] for e in json.loads(capsys.readouterr().out)["experiments"]] == ["exp-temp"]
    assert set(cli.calls) == {"kanaria-experiments"}


def test_cli_errors_are_json_with_exit_2(cli, tmp_path, capsys):
    assert main(["experiment", "pause", "exp-missing"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "experiment_id"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition(decision={"mde": -1})))
    assert main(["experiment", "create", str(path)]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["field"] == "decision.mde" and "greater than 0" in error["reason"]
    assert main(["experiment", "create", str(tmp_path / "absent.json")]) == 2
