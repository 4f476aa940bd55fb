"""A rehearsal that cannot run says why: the CDK CLI's own error for a failed synth, bootstrap or deploy, an
emulator that does not answer, a moto version the adaptations were not measured on."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from kanaria_tools.rehearsal import moto_adaptations
from kanaria_tools.rehearsal.deploy import DeployError, _cdk_error, deploy_app
from kanaria_tools.rehearsal.emulator import EmulatorError, LocalAws, free_port
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.runner import Rehearsal
from kanaria_tools.rehearsal.scenario import load_scenario

ACCOUNT, REGION = "123456789012", "ap-northeast-1"
NAG_ERROR = (
    "ERROR AwsSolutions-S1: The S3 Bucket has server access logs disabled.",
    "[/KanariaData/Bucket/Resource] AwsSolutions-S1",
    "Acknowledge it with: cdk acknowledge or a suppression",
)


def _app_with_cdk(app_dir: Path, script: str) -> Path:
    """An app directory whose pinned CDK CLI is `script` (a shell script standing in for node_modules/.bin/cdk)."""
    cli = app_dir / "node_modules" / ".bin" / "cdk"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    (app_dir / "cdk.json").write_text(
        json.dumps({"context": {"kanaria:account": ACCOUNT, "kanaria:region": REGION}}), encoding="utf-8"
    )
    return app_dir


def _deploy(app_dir: Path) -> None:
    deploy_app(
        account=ACCOUNT,
        region=REGION,
        env={"AWS_ENDPOINT_URL": "http://localhost:9", "AWS_REGION": REGION},
        out_dir=app_dir / "out",
        log_path=app_dir / "deploy.log",
        app_dir=app_dir,
    )


def test_cdk_error_keeps_each_error_with_its_construct_path() -> None:
    output = "\n".join(["Synthesizing...", *NAG_ERROR, "Found errors", "done"])
    assert _cdk_error(output) == "\n".join([*NAG_ERROR, "Found errors"])
    assert _cdk_error("\n".join(f"line {i}" for i in range(40))).splitlines()[0] == "line 15"  # no error words: tail


def test_a_failing_synth_is_a_deploy_error_carrying_the_cdk_message(tmp_path: Path) -> None:
    lines = "".join(f"echo '{line}'\n" for line in ("Synthesizing", *NAG_ERROR))
    app_dir = _app_with_cdk(tmp_path, lines + "exit 1\n")
    with pytest.raises(DeployError) as caught:
        _deploy(app_dir)
    message = str(caught.value)
    assert message.startswith("cdk: cdk synth failed (exit 1)") and NAG_ERROR[0] in message and NAG_ERROR[1] in message
    assert caught.value.field == "cdk" and str(app_dir / "deploy.log") in message
    assert "Synthesizing" in (app_dir / "deploy.log").read_text(encoding="utf-8")  # the full output is kept


def test_a_failing_deploy_names_the_step_and_the_stack(tmp_path: Path) -> None:
    app_dir = _app_with_cdk(
        tmp_path,
        'if [ "$1" = deploy ]; then\n'
        "  echo 'KanariaData: deploying... [1/6]'\n"
        "  echo '❌  KanariaData failed: ValidationError: Template format error'\n"
        "  exit 1\nfi\nexit 0\n",
    )
    with pytest.raises(DeployError, match=r"cdk deploy failed \(exit 1\):\n❌  KanariaData failed: ValidationError"):
        _deploy(app_dir)


def test_a_missing_cdk_cli_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="pinned CDK CLI is missing .* run `make install`"):
        _deploy(tmp_path)


def test_an_emulator_that_does_not_answer_is_named() -> None:
    aws = LocalAws(account=ACCOUNT, region=REGION, port=free_port())  # nothing listens there
    with pytest.raises(EmulatorError, match=f"emulator on http://localhost:{aws.port} does not answer") as caught:
        aws._check_answers()
    assert caught.value.field == "emulator"


def test_another_moto_version_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(EmulatorError, match=f"pinned to moto {moto_adaptations.MOTO_VERSION} but moto 5.3.0") as caught:
        LocalAws.start(account=ACCOUNT, region=REGION)
    assert caught.value.field == "moto" and moto_adaptations.active() is None


def test_a_deploy_error_ends_the_rehearsal_cleanly(tmp_path: Path) -> None:
    # Given an app whose deploy fails, When the rehearsal runs, Then it reports the CDK error, fails, and leaves
    # the emulator stopped (moto unpatched)
    app_dir = _app_with_cdk(tmp_path / "app", "".join(f"echo '{line}'\n" for line in NAG_ERROR) + "exit 1\n")
    out = io.StringIO()
    rehearsal = Rehearsal(
        load_scenario("smoke"), progress=Progress(out, live=False), reports_dir=tmp_path / "reports", app_dir=app_dir
    )
    result = rehearsal.run()
    assert not result.ok and result.error.startswith("cdk: cdk synth failed (exit 1)")
    assert f"ERROR: cdk: cdk synth failed (exit 1):\n{NAG_ERROR[0]}" in out.getvalue()
    assert moto_adaptations.active() is None
