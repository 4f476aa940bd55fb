#!/usr/bin/env python3
"""`make bench`: measure Kanaria side by side with the obvious alternative and write docs/benchmarks.md.

Every figure is measured in this run on this machine; ratios compare things measured in the same run.
Sections whose feature is not built yet say so instead of printing a number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from kanaria.percentiles import percentile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "benchmarks.md"
EXAMPLE = ROOT / "examples" / "experiment.json"


def progress(message: str) -> None:
    """Progress on stderr so long runs are visibly alive."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def per_call_ns(fn: Callable[[int], object], n: int) -> list[int]:
    """Wall time of each of n calls, in ns."""
    times = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        fn(i)
        times.append(clock() - start)
    return times


def bench_assignment(n: int) -> str:
    """Embedded client vs bare SHA-256 bucketing vs GrowthBook local evaluation; CLI throughput; cold import."""
    import hashlib

    from growthbook import Experiment as GbExperiment
    from growthbook import GrowthBook

    from kanaria.client import EmbeddedClient

    progress(f"assignment: {n:,} decisions per contender")
    client = EmbeddedClient.from_files(EXAMPLE)
    experiment_id = json.loads(EXAMPLE.read_text())["id"]

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

    rows = []
    for name, fn in (
        ("Kanaria embedded client (eligibility + variant + resolved config + hash)", kanaria_assign),
        ("bare SHA-256 bucketing loop (variant only)", bare_sha256),
        ("GrowthBook SDK 4.0 local evaluation (`gb.run(Experiment)`)", growthbook_run),
    ):
        fn(0)
        times = per_call_ns(fn, n)
        rows.append((name, statistics.median(times) / 1000, percentile(times, 99) / 1000))
    base = rows[0][1]
    table = ["| contender | median µs | p99 µs | median vs Kanaria |", "| --- | ---: | ---: | ---: |"]
    table += [f"| {name} | {med:.2f} | {p99:.2f} | {med / base:.2f}× |" for name, med, p99 in rows]

    progress("assignment: CLI over 100,000 units")
    with tempfile.TemporaryDirectory() as tmp:
        units = Path(tmp) / "units.txt"
        units.write_text("\n".join(f"sess-{i}" for i in range(100_000)) + "\n")
        cli_times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [
                    str(ROOT / ".venv" / "bin" / "kanaria"),
                    "assign",
                    "--experiment",
                    str(EXAMPLE),
                    "--units",
                    str(units),
                    "--intent",
                    "recommendation",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cli_times.append(time.perf_counter() - start)
    cli = statistics.median(cli_times)

    progress("assignment: cold import of the assignment Lambda vs boto3 + Powertools alone")
    env = {
        **os.environ,
        "EXPERIMENTS_TABLE": "t",
        "ASSIGNMENTS_TABLE": "t",
        "AGGREGATES_TABLE": "t",
        "PROFILES_PARAMETER": "/p",
        "AWS_DEFAULT_REGION": "ap-northeast-1",
    }
    baseline = (
        "import boto3, aws_lambda_powertools, pydantic; from aws_lambda_powertools import Logger, Metrics, Tracer; "
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; "
        "from aws_lambda_powertools.utilities.parser import parse; boto3.client('dynamodb')"
    )
    handler = "import boto3, kanaria.handlers.assign; boto3.client('dynamodb')"
    check = "import sys, kanaria.handlers.assign; print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy','scipy')))"

    def import_ms(code: str) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    interpreter = import_ms("pass")
    base_ms, handler_ms = import_ms(baseline), import_ms(handler)
    heavy = subprocess.run(
        [sys.executable, "-c", check], check=True, env=env, capture_output=True, text=True
    ).stdout.strip()
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


SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "assignment": lambda args: bench_assignment(args.decisions),
}
OPTIONAL_SECTIONS = ("bench_recording", "bench_analysis", "bench_statistics", "bench_canary", "bench_rollout")


def header() -> str:
    """Machine, versions, method and date."""
    versions = {
        p: md.version(p)
        for p in ("aws-cdk-lib", "aws-lambda-powertools", "moto", "scipy", "numpy", "growthbook", "gbstats")
    }
    cpu = platform.processor() or platform.machine()
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Generated by `make bench` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}.",
            "",
            f"- Machine: {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}.",
            "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
            "- Method: wall-clock timings with `time.perf_counter_ns`, contenders measured one after another in the same"
            " process and run; ratios are only between figures of this run. The machine is shared and noisy: treat"
            " absolute figures as indicative and ratios as the result.",
            "",
        ]
    )


def section_names() -> list[str]:
    """Every section's short name, in document order (`assignment`, `recording`, ..., `rollout`)."""
    return [*SECTIONS, *(m.removeprefix("bench_") for m in OPTIONAL_SECTIONS)]


def splice(document: str, parts: list[str]) -> str:
    """Replace each part's `## Title` section of the document (up to the next `## `) by the part, or append it."""
    for part in parts:
        heading = part.lstrip().splitlines()[0]
        lines = document.split("\n")
        try:
            start = lines.index(heading)
        except ValueError:
            document = document.rstrip("\n") + "\n\n" + part
            continue
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "\n".join(lines[end:])
        document = "\n".join(lines[:start]) + "\n" + part.rstrip("\n") + ("\n\n" + tail if tail else "\n")
    return document


def main() -> int:
    """Run every section (or the --only ones) and write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=50_000, help="assignments per contender")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=section_names(),
        metavar="SECTION",
        help=f"run only these sections ({', '.join(section_names())}) and replace them in the"
        " existing docs/benchmarks.md, leaving the others (and the header) as they are",
    )
    parser.add_argument(
        "--rollout-jobs", type=int, default=2, help="rollout section: rehearsals run at the same time (default 2)"
    )
    parser.add_argument(
        "--rollout-speed",
        type=float,
        default=None,
        help="rollout section: pass --speed to every rehearsal (default: each scenario's own clock)",
    )
    args = parser.parse_args()
    if args.quick:
        args.decisions = 2_000
    args.bench_quick = args.quick
    wanted = set(args.only or section_names())
    started = time.perf_counter()
    parts = [] if args.only else [header()]
    for name, section in SECTIONS.items():
        if name in wanted:
            parts.append(section(args))
    for module_name in OPTIONAL_SECTIONS:
        if module_name.removeprefix("bench_") not in wanted:
            continue
        try:
            module = importlib.import_module(f"scripts.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scripts.{module_name}":
                raise
            parts.append(
                f"## {module_name.removeprefix('bench_').capitalize()}\n\nNot measured yet: the feature's benchmark is not written.\n"
            )
            continue
        progress(f"{module_name}")
        section_started = time.perf_counter()
        parts.append(module.run(args))
        progress(f"{module_name} took {time.perf_counter() - section_started:.0f} s")
    if args.only:
        OUT.write_text(splice(OUT.read_text(encoding="utf-8"), parts), encoding="utf-8")
    else:
        OUT.write_text("\n".join(parts), encoding="utf-8")
    progress(f"wrote {OUT.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
