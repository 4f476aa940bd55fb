"""Deploy the real CDK app into the emulator with the pinned CDK CLI (bootstrap + deploy --all)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kanaria.errors import OperationalError
from kanaria_tools.paths import repository_root

_CDK_ENV = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_VERSION_CHECK": "true",
    "CDK_CLI_TELEMETRY": "false",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "FORCE_COLOR": "0",
    "NO_COLOR": "1",
    "CI": "true",  # plain, line-by-line progress instead of a redrawn bar
}
# CDK output lines worth echoing while deploying (the rest goes to the deploy log).
_INTERESTING = re.compile(
    r"(✅|❌|failed|Error|error|CREATE_FAILED|ROLLBACK|deploying\.\.\.|Deployment time|bootstrapp)", re.I
)


class DeployError(OperationalError):
    """`cdk bootstrap` or `cdk deploy` failed; the message carries the CDK CLI's own error output."""


@dataclass
class DeployedStack:
    """One deployed stack: physical ids by logical id and its synthesized template."""

    name: str
    status: str
    resources: dict[str, str]
    resource_types: dict[str, str]
    template: dict[str, Any]


@dataclass
class Deployment:
    """What `cdk deploy --all` produced in the emulator."""

    out_dir: Path
    stacks: dict[str, DeployedStack] = field(default_factory=dict)
    seconds: float = 0.0
    log_path: Path | None = None

    def physical_id(self, logical_id: str) -> str | None:
        """Physical id of a logical resource in any stack."""
        for stack in self.stacks.values():
            if logical_id in stack.resources:
                return stack.resources[logical_id]
        return None

    def templates(self) -> dict[str, dict[str, Any]]:
        """Synthesized template of every deployed stack."""
        return {name: stack.template for name, stack in self.stacks.items()}


def _run(
    args: list[str], cwd: Path, env: dict[str, str], log: Any, echo: Callable[[str], None] | None, timeout: float
) -> tuple[int, str]:
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    output: list[str] = []
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        log.write(line)
        if echo and _INTERESTING.search(line):
            echo(line.rstrip())
        if time.monotonic() > deadline:
            process.kill()
            output.append(f"\n(timed out after {timeout:.0f}s)\n")
            break
    process.wait()
    log.flush()
    return process.returncode, "".join(output)


def _cdk_error(output: str) -> str:
    """The lines of CDK output that say what went wrong (falls back to the tail).

    Synth errors (cdk-nag, validation) are "ERROR <message>" followed by the construct path and how to
    acknowledge it: those three lines are kept together."""
    lines = [ln.rstrip() for ln in output.splitlines() if ln.strip()]
    keep: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("ERROR"):
            keep.extend(lines[index : index + 3])
        elif re.search(r"(❌|Error|error|failed|FAILED|ROLLBACK|Exception|Traceback)", line) and line not in keep:
            keep.append(line)
    chosen = keep[-30:] if keep else lines[-25:]
    return "\n".join(chosen)


@dataclass
class _Cdk:
    """The pinned CDK CLI run in the app directory, its output logged (interesting lines echoed)."""

    cli: Path
    app_dir: Path
    env: dict[str, str]
    log: Any
    log_path: Path
    echo: Callable[[str], None] | None
    timeout: float

    def run(self, command: str, *args: str) -> None:
        """`cdk <command> <args>`; DeployError with the CLI's own error when it fails."""
        code, output = _run([str(self.cli), command, *args], self.app_dir, self.env, self.log, self.echo, self.timeout)
        if code != 0:
            raise DeployError(
                f"cdk {command} failed (exit {code}):\n{_cdk_error(output)}\n(full log: {self.log_path})", field="cdk"
            )


def deploy_app(
    *,
    account: str,
    region: str,
    env: dict[str, str],
    out_dir: Path,
    log_path: Path,
    echo: Callable[[str], None] | None = None,
    context: dict[str, str] | None = None,
    timeout: float = 480.0,
    app_dir: Path | None = None,
) -> Deployment:
    """`cdk bootstrap` then `cdk deploy --all --require-approval never -c kanaria:bundle=false` into the emulator."""
    app_dir = app_dir or repository_root()
    cli = app_dir / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        raise DeployError(f"the pinned CDK CLI is missing at {cli}; run `make install`", field="cdk")
    started = time.monotonic()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update(_CDK_ENV)
    full_env.update(env)
    context_args: list[str] = []
    for key, value in {
        "kanaria:bundle": "false",
        "kanaria:account": account,
        "kanaria:region": region,
        **(context or {}),
    }.items():
        context_args += ["-c", f"{key}={value}"]
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    app = str(out_dir)
    with open(log_path, "w", encoding="utf-8") as log:
        cdk = _Cdk(cli, app_dir, full_env, log, log_path, echo, timeout)
        cdk.run("synth", "--quiet", *context_args, "-o", app)
        cdk.run("bootstrap", f"aws://{account}/{region}", "--app", app)
        cdk.run("deploy", "--all", "--require-approval", "never", "--app", app, "--progress", "events", *context_args)
    deployment = Deployment(out_dir=out_dir, log_path=log_path)
    deployment.stacks = _describe_stacks(out_dir, env)
    deployment.seconds = time.monotonic() - started
    return deployment


def stack_names(out_dir: Path) -> list[str]:
    """Stacks of the synthesized cloud assembly, in the manifest's order."""
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    return [
        name
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]


def _describe_stacks(out_dir: Path, env: dict[str, str]) -> dict[str, DeployedStack]:
    import boto3

    cfn = boto3.client(
        "cloudformation",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stacks: dict[str, DeployedStack] = {}
    for name in stack_names(out_dir):
        description = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = description["StackStatus"]
        if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
            raise DeployError(f"stack {name} is {status}: {description.get('StackStatusReason', '')}", field="cdk")
        resources = {}
        types = {}
        for resource in cfn.describe_stack_resources(StackName=name)["StackResources"]:
            if "LogicalResourceId" not in resource:
                continue  # moto lists template parameters among the resources
            resources[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId", "")
            types[resource["LogicalResourceId"]] = resource.get("ResourceType", "")
        template = json.loads((out_dir / f"{name}.template.json").read_text(encoding="utf-8"))
        stacks[name] = DeployedStack(name, status, resources, types, template)
    return stacks
