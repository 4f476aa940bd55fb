"""A real deployment goes to the caller's account and region, never to the offline placeholder account; what
`make deploy` prints at the end is what the chatbot needs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.settings import OFFLINE_REGION, PLACEHOLDER_ACCOUNT, DeploymentTargetError, Settings, deployment_target
from kanaria_tools.deploy_outputs import main, render

ROOT = Path(__file__).resolve().parents[2]
CALLER = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "eu-west-1"}


@pytest.mark.parametrize(
    ("account", "region", "deploy", "environ", "expected"),
    [
        ("", "", False, {}, (PLACEHOLDER_ACCOUNT, OFFLINE_REGION)),  # offline synth, tests, rehearsal
        ("", "", False, CALLER, ("111122223333", "eu-west-1")),  # `make synth` with credentials
        ("", "", True, CALLER, ("111122223333", "eu-west-1")),  # `make deploy`: the caller's account
        ("444455556666", "us-east-1", True, CALLER, ("444455556666", "us-east-1")),  # the context wins
        ("", "ap-northeast-1", True, {"CDK_DEFAULT_ACCOUNT": "111122223333"}, ("111122223333", "ap-northeast-1")),
    ],
)
def test_account_and_region_come_from_the_context_then_the_credentials(account, region, deploy, environ, expected):
    assert deployment_target(account, region, deploy, environ) == expected


@pytest.mark.parametrize(
    ("account", "environ", "field"),
    [
        ("", {}, "real AWS account"),  # no credentials: nothing to deploy to
        (PLACEHOLDER_ACCOUNT, CALLER, "real AWS account"),  # the placeholder given explicitly
        ("", {"CDK_DEFAULT_ACCOUNT": PLACEHOLDER_ACCOUNT, "CDK_DEFAULT_REGION": "us-east-1"}, "real AWS account"),
        ("1234", CALLER, "12 digits"),
        ("", {"CDK_DEFAULT_ACCOUNT": "111122223333"}, "needs a region"),
    ],
)
def test_a_real_deployment_refuses_the_placeholder_and_missing_targets(account, environ, field):
    with pytest.raises(DeploymentTargetError, match=field):
        deployment_target(account, "", True, environ)


def test_settings_read_the_deploy_flag_from_the_context(monkeypatch):
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    with pytest.raises(DeploymentTargetError):
        Settings.from_node(cdk.App(context={"kanaria:deploy": "true"}).node)
    for key, value in CALLER.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_node(cdk.App(context={"kanaria:deploy": True}).node)
    assert (settings.account, settings.region) == ("111122223333", "eu-west-1")


def test_cdk_json_does_not_pin_the_placeholder_account():
    text = (ROOT / "cdk.json").read_text()
    assert '"kanaria:account"' not in text and '"kanaria:region"' not in text


def test_make_deploy_synthesizes_as_a_deployment_and_prints_the_outputs():
    dry_run = subprocess.run(
        ["make", "-n", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    ).stdout.splitlines()
    synth = next(line for line in dry_run if " synth " in line)
    deploy = next(line for line in dry_run if " deploy " in line)
    assert "-c kanaria:deploy=true" in synth
    assert "--outputs-file reports/deploy-outputs.json" in deploy
    assert dry_run.index(deploy) < dry_run.index(
        next(line for line in dry_run if "kanaria_tools.deploy_outputs" in line)
    )


def test_deploy_outputs_print_what_the_chatbot_needs(tmp_path, capsys):
    outputs = {
        "KanariaExperiments": {"ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/", "Region": "eu-west-1"},
        "KanariaData": {"AlertsTopicArn": "arn:aws:sns:eu-west-1:111122223333:kanaria-alerts"},
        "KanariaRollout": {"StateMachineArn": "arn:aws:states:eu-west-1:111122223333:stateMachine:kanaria-rollout"},
    }
    text = render(outputs)
    assert "KANARIA_API_URL=https://abc123.execute-api.eu-west-1.amazonaws.com/" in text
    assert "KANARIA_REGION=eu-west-1" in text and "AlertsTopicArn = arn:aws:sns:" in text
    assert "missing outputs" in render({"KanariaData": outputs["KanariaData"]})
    (tmp_path / "o.json").write_text(json.dumps(outputs))
    assert main([str(tmp_path / "o.json")]) == 0 and "KANARIA_API_URL" in capsys.readouterr().out
    assert main([str(tmp_path / "absent.json")]) == 2
