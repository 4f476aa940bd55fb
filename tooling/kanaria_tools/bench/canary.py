"""Bench section "Canary judge (simulation)": the live judge beside the rules before it, a Kayenta-style judge,
an Argo/Flagger-style analysis and the oracle CUSUM, all reading the same simulated rollouts.

The model is `kanaria_tools.bench.canary_sim`, the deciders `kanaria_tools.bench.canary_contenders`, the
candidates `canary_cases`, the report `canary_report`. Healthy candidates give each decider's false-rollback
rate per rollout, faulty ones its detection delay, the canary requests exposed to the fault before the
decision, and its detection probability within the rollout. Runs are spread over 2 worker processes, each chunk
with its own seed derived from SEED, so the figures do not depend on the scheduling.

    python -m kanaria_tools.bench --only canary      # this section into docs/benchmarks.md
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from kanaria_tools.bench import canary_contenders as C
from kanaria_tools.bench import canary_sim as sim
from kanaria_tools.bench.canary_cases import (
    ALPHA,
    CHUNK,
    FAULTS,
    HEALTHY,
    LATEST_FAULT_START,
    SEED,
    SIZES,
    WORKERS,
    Run,
)
from kanaria_tools.bench.canary_report import markdown
from kanaria_tools.bench.common import Options, progress


def _chunk(args: tuple[sim.Candidate, int, np.random.SeedSequence, float | None]) -> list[Run]:
    candidate, runs, seed, threshold = args
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        start = None
        if candidate.faulty:
            start = candidate.start if candidate.start is not None else int(rng.integers(0, LATEST_FAULT_START))
        deciders = C.contenders()
        if threshold is not None:
            deciders += [C.Oracle(candidate, threshold), C.faulty_streams_only(candidate)]
        rollout = C.run_rollout(rng, candidate, start, deciders, stop_when_decided=candidate.faulty)
        exposed = np.cumsum(rollout.affected)
        decisions = {
            name: (minute, kind, detail, int(exposed[minute]))
            for name, (minute, kind, detail) in rollout.decisions.items()
        }
        out.append(Run(start, decisions, rollout.stage_minutes, rollout.completed))
    return out


def _run_all(jobs: list[tuple[str, sim.Candidate, int, float | None]], seed: int) -> dict[str, list[Run]]:
    """Every job's runs, in chunks over the worker processes; progress as chunks finish."""
    sequences = iter(np.random.SeedSequence(seed).spawn(10_000))
    tasks, owners = [], []
    for label, candidate, runs, threshold in jobs:
        for first in range(0, runs, CHUNK):
            tasks.append((candidate, min(CHUNK, runs - first), next(sequences), threshold))
            owners.append(label)
    results: dict[str, list[Run]] = {label: [] for label, *_ in jobs}
    done: dict[str, int] = dict.fromkeys(results, 0)
    totals = {label: runs for label, _, runs, _ in jobs}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        for label, chunk in zip(owners, pool.map(_chunk, tasks)):
            results[label].extend(chunk)
            done[label] += len(chunk)
            if done[label] == totals[label] or done[label] % 500 == 0:
                progress(f"  {label}: {done[label]}/{totals[label]} rollouts")
    return results


def run(options: Options) -> str:
    """The Canary judge section of docs/benchmarks.md."""
    size = SIZES["quick" if options.quick else "full"]
    results, calibrated, seconds, cpu = measure(size)
    return markdown(results, calibrated, seconds, cpu, size)


def measure(size: dict[str, int]) -> tuple[dict[str, list[Run]], dict[str, tuple[float, float]], float, float]:
    """Every run of the section: results per candidate label, oracle (threshold, false-alarm rate) per fault,
    wall seconds, CPU seconds of the worker processes."""
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    progress(
        "oracle thresholds: CUSUM false-alarm probability 1% over a healthy rollout "
        f"({size['oracle']:,} simulated healthy rollouts per fault)"
    )
    calibrated = {f.name: sim.oracle_threshold(sim.oracle_peaks(rng, f, size["oracle"]), ALPHA) for f in FAULTS}
    jobs: list[tuple[str, sim.Candidate, int, float | None]] = []
    for index, (label, candidate) in enumerate(HEALTHY):
        jobs.append((label, candidate, size["aa"] if index == 0 else size["other_healthy"], None))
    for fault in FAULTS:
        jobs.append((fault.name, fault, size["fault"], calibrated[fault.name][0]))
    total = sum(j[2] for j in jobs)
    progress(
        f"{total:,} simulated rollouts ({len(HEALTHY)} healthy kinds, {len(FAULTS)} faults) on {WORKERS}"
        " worker processes; every decider reads the same minutes"
    )
    before = _worker_cpu()
    results = _run_all(jobs, SEED)
    seconds = time.perf_counter() - started
    cpu = _worker_cpu() - before
    progress(f"canary simulation took {seconds:.0f} s wall, {cpu:.0f} s CPU in the workers")
    return results, calibrated, seconds, cpu


def _worker_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
