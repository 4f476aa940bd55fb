"""What every phase of a rehearsal reaches once the app is deployed: the emulator, the deployed functions, the
scenario clock, the progress output and the result being recorded."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.clock import RehearsalClock
from kanaria_tools.rehearsal.emulator import LocalAws
from kanaria_tools.rehearsal.invocation_log import InvocationLog
from kanaria_tools.rehearsal.invoke import FunctionCaller
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.results import RehearsalResult
from kanaria_tools.rehearsal.scenario import Scenario


@dataclass
class RunContext:
    """One scenario on one emulator, after the deploy."""

    scenario: Scenario
    progress: Progress
    result: RehearsalResult
    clock: RehearsalClock
    aws: LocalAws
    caller: FunctionCaller
    functions: set[str]  # the deployed function names
    invocations: InvocationLog
    rng: random.Random
    prefix: str
    account: str
    region: str
    app_dir: Path

    def function(self, kind: str) -> str:
        """The deployed name of a function kind."""
        return names.function_name(self.prefix, kind)

    def deployed(self, kind: str) -> str | None:
        """The function's name when this build deploys it."""
        name = self.function(kind)
        return name if name in self.functions else None

    def steps_environment(self) -> dict[str, str]:
        """The deployed rollout-steps function's environment (listener, target groups, tables)."""
        config = self.aws.client("lambda").get_function_configuration(FunctionName=self.function("rollout-steps"))
        variables: dict[str, str] = config.get("Environment", {}).get("Variables", {})
        return variables

    def client(self, service: str) -> Any:
        """A boto3 client of the emulator."""
        return self.aws.client(service)
