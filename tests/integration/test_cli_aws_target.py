"""--region, --profile and AWS_REGION decide where the CLI's AWS calls go (moto keeps one world per region):
the rollouts table exists in ap-northeast-1 only, so a listing that finds it went there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from moto import mock_aws

from kanaria import names
from kanaria_tools.cli.main import main

HOME, ELSEWHERE = "ap-northeast-1", "eu-west-1"


@pytest.fixture
def rollouts_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The rollouts table in HOME with one rollout; an AWS config whose profile `ops` points at HOME."""
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile ops]\nregion = {HOME}\n[profile far]\nregion = {ELSEWHERE}\n", encoding="utf-8")
    credentials.write_text(
        "[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        "[far]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    with mock_aws():
        table = boto3.resource("dynamodb", region_name=HOME).create_table(
            TableName=names.table_name(names.DEFAULT_PREFIX, "rollouts"),
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "rollout_id", "KeyType": "HASH"},
                {"AttributeName": "record", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "rollout_id", "AttributeType": "S"},
                {"AttributeName": "record", "AttributeType": "S"},
            ],
        )
        table.put_item(
            Item={
                "rollout_id": "r-1",
                "record": "META",
                "status": "running",
                "model_id": "m",
                "config_hash": "cfg-0001",
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
                "progress": json.dumps({"stage_name": "canary-5", "percent": 5}),
            }
        )
        yield


def _listing(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], dict]:
    code = main(["rollout", "list", *argv])
    captured = capsys.readouterr()
    found = [r["rollout_id"] for r in json.loads(captured.out)["rollouts"]] if code == 0 else []
    return code, found, json.loads(captured.err)["error"] if captured.err else {}


@pytest.mark.parametrize(
    ("env", "argv", "reaches_home"),
    [
        pytest.param({"AWS_REGION": HOME}, [], True, id="AWS_REGION"),
        pytest.param({"AWS_REGION": ELSEWHERE, "AWS_DEFAULT_REGION": HOME}, [], False, id="AWS_REGION-over-default"),
        pytest.param({"AWS_REGION": ELSEWHERE}, ["--region", HOME], True, id="--region-over-AWS_REGION"),
        pytest.param({"AWS_REGION": HOME}, ["--region", ELSEWHERE], False, id="--region-elsewhere"),
        pytest.param({}, ["--profile", "ops"], True, id="--profile-region"),
        pytest.param({}, ["--profile", "far"], False, id="--profile-elsewhere"),
        pytest.param({}, ["--profile", "far", "--region", HOME], True, id="--region-over-profile"),
    ],
)
def test_the_region_comes_from_the_flag_then_aws_region_then_the_profile(
    rollouts_table: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    reaches_home: bool,
) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, found, error = _listing(capsys, *argv)
    if reaches_home:
        assert (code, found) == (0, ["r-1"]), error
    else:  # the table is not there: an operational failure, not bad input
        assert code == 1 and error["code"] == "ResourceNotFoundException", error


def test_no_region_anywhere_is_bad_input(
    rollouts_table: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    code, _, error = _listing(capsys)
    assert code == 2 and error["field"] == "--region" and "AWS_REGION" in error["reason"]


def test_the_command_region_does_not_leak_into_the_next_call(
    rollouts_table: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_REGION", HOME)
    assert _listing(capsys, "--region", ELSEWHERE)[0] == 1
    assert _listing(capsys)[:2] == (0, ["r-1"])
    assert boto3.DEFAULT_SESSION is None or boto3.DEFAULT_SESSION.region_name != ELSEWHERE
