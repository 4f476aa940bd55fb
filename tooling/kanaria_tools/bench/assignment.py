"""Bench section Assignment: the embedded client against bare SHA-256 bucketing and GrowthBook's local evaluation,
the CLI's throughput, and the assignment Lambda's cold initialisation."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from kanaria.percentiles import percentile
from kanaria_tools.bench.common import Options, per_call_ns, progress, root


def example_experiment() -> Path:
    """examples/experiment.json, the experiment every assignment contender reads."""
    return root() / "examples" / "experiment.json"


def contenders(experiment: Path) -> list[tuple[str, Callable[[int], object]]]:
    """(name, assign unit i) of each contender, built once."""
    from growthbook import Experiment as GbExperiment
    from growthbook import GrowthBook

    from kanaria.client import EmbeddedClient

    client = EmbeddedClient.from_files(experiment)
    experiment_id = json.loads(experiment.read_text())["id"]

    def kanaria_assign(i: int) -> object:
        return client.assign(experiment_id, f"sess-{i}", "recommendation")

    def bare_sha256(i: int) -> object:
        digest = hashlib.sha256(f"variant:{experiment_id}:sess-{i}".encode()).digest()
        return "B" if int.from_bytes(digest[:8], "big") % 10_000 < 5000 else "A"

    gb = GrowthBook(attributes={"id": "sess-0"})
    gb_experiment = GbExperiment(key=experiment_id, variations=["A", "B"], weights=[0.5, 0.5], coverage=0.25)

    def growthbook_run(i: int) -> object:
        gb.set_attributes({"id": f"sess-{i}"})
        return gb.run(gb_experiment).value

    return [
        ("Kanaria embedded client (eligibility + variant + resolved config + hash)", kanaria_assign),
        ("bare SHA-256 bucketing loop (variant only)", bare_sha256),
        ("GrowthBook SDK 4.0 local evaluation (`gb.run(Experiment)`)", growthbook_run),
    ]


def decision_table(n: int, experiment: Path) -> list[str]:
    """Median and p99 µs per decision of each contender, n distinct units each."""
    rows = []
    for name, fn in contenders(experiment):
        fn(0)
        times = per_call_ns(fn, n)
        rows.append((name, statistics.median(times) / 1000, (percentile(times, 99) or 0.0) / 1000))
    base = rows[0][1]
    table = ["| contender | median µs | p99 µs | median vs Kanaria |", "| --- | ---: | ---: | ---: |"]
    return table + [f"| {name} | {med:.2f} | {p99:.2f} | {med / base:.2f}× |" for name, med, p99 in rows]


def cli_seconds(experiment: Path, units: int = 100_000, repeats: int = 3) -> float:
    """Median wall seconds of `kanaria assign --units` over `units` units (process start and output included)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "units.txt"
        path.write_text("\n".join(f"sess-{i}" for i in range(units)) + "\n")
        command = [str(root() / ".venv" / "bin" / "kanaria"), "assign", "--experiment", str(experiment)]
        command += ["--units", str(path), "--intent", "recommendation"]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


COLD_ENV = {
    "EXPERIMENTS_TABLE": "t",
    "ASSIGNMENTS_TABLE": "t",
    "AGGREGATES_TABLE": "t",
    "PROFILES_PARAMETER": "/p",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
}
BASELINE_IMPORTS = (
    "import boto3, aws_lambda_powertools, pydantic; from aws_lambda_powertools import Logger, Metrics, Tracer; "
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; "
    "from aws_lambda_powertools.utilities.parser import parse; boto3.client('dynamodb')"
)
HANDLER_IMPORTS = "import boto3, kanaria.handlers.assign; boto3.client('dynamodb')"
HEAVY_CHECK = (
    "import sys, kanaria.handlers.assign; print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy','scipy')))"
)


def import_ms(code: str, repeats: int = 7) -> float:
    """Median wall ms of a new interpreter running `code`."""
    env = {**os.environ, **COLD_ENV}
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def heavy_modules() -> str:
    """The numpy/scipy modules the assignment handler loads (none expected)."""
    env = {**os.environ, **COLD_ENV}
    return subprocess.run(
        [sys.executable, "-c", HEAVY_CHECK], check=True, env=env, capture_output=True, text=True
    ).stdout.strip()


def run(options: Options) -> str:
    """The Assignment section of docs/benchmarks.md."""
    n = options.decisions
    experiment = example_experiment()
    progress(f"assignment: {n:,} decisions per contender")
    table = decision_table(n, experiment)
    progress("assignment: CLI over 100,000 units")
    cli = cli_seconds(experiment)
    progress("assignment: cold import of the assignment Lambda vs boto3 + Powertools alone")
    interpreter = import_ms("pass")
    base_ms, handler_ms = import_ms(BASELINE_IMPORTS), import_ms(HANDLER_IMPORTS)
    heavy = heavy_modules()
    return "\n".join(
        [
            "## Assignment",
            "",
            f"Per decision, {n:,} distinct units each, same process, same run:",
            "",
            *table,
            "",
            f"- `kanaria assign --units` over 100,000 units: **{cli:.2f} s** wall (median of 3, process start and JSON output"
            f" included) = {100_000 / cli:,.0f} assignments/s.",
            f"- Assignment Lambda cold initialisation (new interpreter, `import kanaria.handlers.assign` + a DynamoDB client):"
            f" **{handler_ms - interpreter:.0f} ms** above a bare interpreter, next to **{base_ms - interpreter:.0f} ms** for"
            f" boto3 + Powertools (Logger, Metrics, Tracer, Event Handler, Parser) + pydantic alone"
            f" (ratio {(handler_ms - interpreter) / (base_ms - interpreter):.2f}×; median of 7).",
            f"- numpy/scipy modules loaded on the assignment path: `{heavy}` (also asserted in"
            " `tests/unit/assignment/test_assignment_path_imports.py`).",
            "",
        ]
    )
