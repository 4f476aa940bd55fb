"""The processes of the Rollout section: `kanaria rehearse` per scenario and `cdk synth`, each in its own process
group with a timeout; what they returned."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kanaria_tools.bench.common import progress, root


def kanaria_executable() -> Path:
    """The `kanaria` CLI of the checkout's virtualenv."""
    return root() / ".venv" / "bin" / "kanaria"


def reports_folder() -> Path:
    """Where each scenario's report.md / timeline.svg stays (gitignored)."""
    return root() / "reports" / "bench-rollout"


ROLLOUT_STACK = "KanariaRollout"


SCENARIO_TIMEOUT_S = 480  # wall seconds per rehearsal process (the longest takes ~2 min)


SYNTH_TIMEOUT_S = 600


CDK_ENV = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "CDK_DISABLE_VERSION_CHECK": "true",
    "CDK_CLI_TELEMETRY": "false",
}


def failure_line(output: str) -> str:
    """The most telling line of a failed CDK or pip run: pip's ERROR, else the last RuntimeError/Error line."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in output.splitlines() if line.strip()]
    for pattern in (r"^ERROR: ", r"RuntimeError: ", r"Error: ", r"error"):
        hits = [line for line in lines if re.search(pattern, line)]
        if hits:
            return hits[0] if pattern == r"^ERROR: " else hits[-1]
    return lines[-1] if lines else "(no output)"


@dataclass
class ScenarioRun:
    """One `kanaria rehearse` process."""

    scenario: str
    returncode: int | None = None
    wall_s: float | None = None
    result: dict[str, Any] | None = None
    failure: str | None = None
    reports: Path | None = None
    attempts: int = 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in CDK_ENV.items():
        env.setdefault(key, value)
    return env


def _run(command: Sequence[str], log: Path, timeout: float) -> tuple[int | None, float]:
    """Run a command in its own process group, output to log; kill the group on timeout. (returncode, wall)."""
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command, cwd=root(), env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            code = None
    return code, time.perf_counter() - started


def run_scenario(name: str, reports_root: Path, speed: float | None = None) -> ScenarioRun:
    """`kanaria rehearse NAME --plain --reports DIR`; reads DIR/*/result.json. Retried once when the emulator's
    free port was taken by the other rehearsal in the meantime."""
    reports = reports_root / name
    run = ScenarioRun(name, reports=reports)
    for attempt in (1, 2):
        run.attempts = attempt
        shutil.rmtree(reports, ignore_errors=True)
        reports.mkdir(parents=True)
        log = reports / "rehearse.log"
        command = [str(kanaria_executable()), "rehearse", name, "--plain", "--reports", str(reports)]
        if speed:
            command += ["--speed", f"{speed:g}"]
        run.returncode, run.wall_s = _run(command, log, SCENARIO_TIMEOUT_S)
        results = sorted(reports.glob("*/result.json"))
        output = log.read_text(encoding="utf-8", errors="replace")
        if results:
            run.result = json.loads(results[-1].read_text(encoding="utf-8"))
            run.failure = None
            return run
        run.failure = (
            f"no result after {SCENARIO_TIMEOUT_S} s (killed)"
            if run.returncode is None
            else f"exit {run.returncode}: {failure_line(output)}"
        )
        if "in use" not in output:
            break
    return run


def run_scenarios(names: Sequence[str], jobs: int, reports_root: Path, speed: float | None) -> dict[str, ScenarioRun]:
    """Run the scenarios `jobs` at a time, in the given order, with start/finish progress."""

    def one(name: str) -> ScenarioRun:
        progress(f"rollout: rehearse {name} (start)")
        try:
            run = run_scenario(name, reports_root, speed)
        except Exception as exc:  # noqa: BLE001 - reported in the table; the other scenarios and sections go on
            run = ScenarioRun(name, failure=f"{type(exc).__name__}: {exc}")
        phases = ", ".join(
            f"{p['name']} {p['outcome']}{'' if p['ok'] else ' NOT as expected'}"
            for p in (run.result or {}).get("phases", [])
        )
        progress(f"rollout: rehearse {name} done in {run.wall_s or 0:.0f} s: {phases or run.failure}")
        return run

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(names, pool.map(one, names)))


@dataclass
class SynthResult:
    """Wall times of `cdk synth` runs (or why they failed)."""

    times: list[float] = field(default_factory=list)
    failure: str | None = None
    cached_s: float | None = None
    layer_mb: dict[str, float] = field(default_factory=dict)
    template: dict[str, Any] | None = None


def _synth(output: Path, bundle: bool, log: Path) -> tuple[int | None, float]:
    command = [str(root() / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--output", str(output)]
    if not bundle:
        command += ["-c", "kanaria:bundle=false"]
    return _run(command, log, SYNTH_TIMEOUT_S)


def time_synth(runs: int, bundle: bool, work: Path) -> SynthResult:
    """`cdk synth --quiet` into a fresh output directory, `runs` times; with bundling, once more into the
    same directory (bundled assets already there: CDK skips pip)."""
    result = SynthResult()
    label = "with bundling" if bundle else "kanaria:bundle=false"
    output = work / ("bundled" if bundle else "unbundled")
    for index in range(runs):
        shutil.rmtree(output, ignore_errors=True)
        log = work / f"synth-{'bundled' if bundle else 'unbundled'}-{index}.log"
        progress(f"rollout: cdk synth ({label}) {index + 1}/{runs}")
        code, wall = _synth(output, bundle, log)
        if code != 0:
            result.failure = (
                f"killed after {SYNTH_TIMEOUT_S} s"
                if code is None
                else f"exit {code} after {wall:.1f} s: {failure_line(log.read_text(encoding='utf-8', errors='replace'))}"
            )
            return result
        result.times.append(wall)
    template = output / f"{ROLLOUT_STACK}.template.json"
    if template.exists():
        result.template = json.loads(template.read_text(encoding="utf-8"))
    if bundle:
        for asset in output.glob("asset.*"):
            size = sum(f.stat().st_size for f in asset.rglob("*") if f.is_file())
            if (asset / "python").is_dir():
                result.layer_mb[asset.name[:18]] = size / 1e6
        progress(f"rollout: cdk synth ({label}) again into the same directory (bundled assets present)")
        code, wall = _synth(output, bundle, work / "synth-bundled-cached.log")
        if code == 0:
            result.cached_s = wall
    return result
