"""What `make deploy` prints at the end: the stack outputs a chatbot and the on-call need, from `cdk deploy
--outputs-file` ({stack: {output: value}})."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# (stack, output, what it is for)
CHATBOT_OUTPUTS = (
    ("KanariaExperiments", "ApiUrl", "KanariaClient.connect(api_url, ...): the HTTP API (SigV4, execute-api)"),
    ("KanariaExperiments", "Region", "KanariaClient.connect(..., region): the region to sign for"),
)
OPERATOR_OUTPUTS = (
    ("KanariaData", "AlertsTopicArn", "on-call alerts (canary alarms, rollbacks, SRM pauses): subscribe here"),
    ("KanariaRollout", "StateMachineArn", "the rollout state machine (kanaria rollout start/status)"),
    ("KanariaRollout", "RolloutRequestBucket", "rollout requests for the pipeline"),
    ("KanariaCanaryAlb", "DemoUrl", "the demo ALB (only without an existing listener)"),
    ("KanariaEvaluation", "EvaluationBucketName", "offline evaluation datasets and reports"),
)


@dataclass(frozen=True)
class DeployedOutput:
    """One stack output and what it is for."""

    stack: str
    name: str
    value: str
    purpose: str


def collect(outputs: Mapping[str, Mapping[str, str]]) -> tuple[list[DeployedOutput], list[DeployedOutput]]:
    """(chatbot outputs, operator outputs) present in a `cdk deploy --outputs-file` document."""

    def pick(wanted: tuple[tuple[str, str, str], ...]) -> list[DeployedOutput]:
        return [
            DeployedOutput(stack, name, str(outputs[stack][name]), purpose)
            for stack, name, purpose in wanted
            if name in outputs.get(stack, {})
        ]

    return pick(CHATBOT_OUTPUTS), pick(OPERATOR_OUTPUTS)


def render(outputs: Mapping[str, Mapping[str, str]]) -> str:
    """The text `make deploy` ends with."""
    chatbot, operator = collect(outputs)
    lines = ["", "Kanaria is deployed. Give the chatbot service:"]
    env_names = {"ApiUrl": "KANARIA_API_URL", "Region": "KANARIA_REGION"}
    lines += [f"  {env_names[o.name]}={o.value}    # {o.purpose}" for o in chatbot]
    missing = {name for _, name, _ in CHATBOT_OUTPUTS} - {o.name for o in chatbot}
    if missing:
        lines.append(f"  (missing outputs: {', '.join(sorted(missing))}: is KanariaExperiments deployed?)")
    lines += ["", "For the operators:"]
    lines += [f"  {o.name} = {o.value}    # {o.purpose}" for o in operator]
    lines += ["", "The chatbot's role needs execute-api:Invoke on the API (docs/deploy.md, step 5)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the deployment's outputs for the chatbot and the operators."""
    parser = argparse.ArgumentParser(prog="python -m kanaria_tools.deploy_outputs", description=__doc__)
    parser.add_argument("outputs_file", type=Path, help="the file `cdk deploy --outputs-file` wrote")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.outputs_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(
            json.dumps({"error": {"code": "validation_error", "field": "outputs_file", "reason": str(exc)}}),
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
