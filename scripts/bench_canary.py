"""`make bench`, Canary judge section: the live judge against today's rules, a Kayenta-style judge, an
Argo/Flagger-style analysis and the oracle CUSUM, on the same simulated rollouts (scripts/canary_sim.py).

Every contender sees the same minutes (fixed schedule 5% 20 min, 25% 20 min, 50% 15 min). A detection is the
minute whose data made the contender decide; delays are minutes of faulty data until then (the judge adds its
settle time in AWS: ~1 minute of EMF ingestion). The judge's own progression (advance on PASS, roll back at a
hold bound) is simulated separately for healthy candidates, since a stage that never passes is a false
rollback too.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanaria.canary import judge as J  # noqa: E402
from scripts import canary_sim as sim  # noqa: E402

SEED = 20261205
T0 = datetime(2026, 12, 5, tzinfo=timezone.utc)
CHECK_MINUTES_TODAY = 5
KAYENTA_WINDOW = 10
FLAGGER_FAILURE_LIMIT = 5  # Flagger's analysis `threshold` (failed checks before a rollback)

FAULTS = (
    sim.Fault("5xx error spike 6%", None, {"errors": 0.06}),
    sim.Fault("throttling 12%", None, {"throttles": 0.12}),
    sim.Fault("hallucination spike 9%", None, {"hallucinations": 0.09}),
    sim.Fault("latency regression 3x", None, latency_factor=3.0),
    sim.Fault("cold start 5x fading over 900 canary requests", 0, latency_factor=5.0, warm_requests=900),
    sim.Fault("recommendation: 7% errors, quality 0.55", None,
              {"errors": 0.07, "poor_quality": sim.poor_rate(0.55)}, intents=("recommendation",)),
    sim.Fault("order_status: 4% errors", None, {"errors": 0.04}, intents=("order_status",)),
)


def progress(message: str) -> None:
    print(f"[bench canary {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- contenders: each returns the minute whose data decided a rollback, or None ---------------------------


def _counts(minute: sim.Minute) -> J.MinuteCounts:
    streams = {}
    for metric in sim.METRICS:
        m = J.Metric(metric)
        for intent, (x_c, n_c, x_p, n_p) in minute.counts[metric].items():
            streams[J.stream_key(m, intent)] = J.Counts(canary_events=x_c, canary_trials=n_c, primary_events=x_p,
                                                        primary_trials=n_p)
        x_c, n_c, x_p, n_p = sim.overall(minute, metric)
        streams[J.stream_key(m, J.OVERALL)] = J.Counts(canary_events=x_c, canary_trials=n_c, primary_events=x_p,
                                                       primary_trials=n_p)
    return J.MinuteCounts(minute=T0 + timedelta(minutes=minute.index), streams=streams)


SETTINGS = J.JudgeSettings(settle_seconds=0)
HORIZON = J.horizon_periods(SETTINGS, (2 * 60 * m for _, m in sim.STAGES))


def kanaria(minutes: list[sim.Minute], rng: np.random.Generator) -> int | None:
    """The judge (kanaria.canary.judge) reading every minute."""
    state = J.start(SETTINGS, T0, HORIZON)
    stage_starts = {sum(m for _, m in sim.STAGES[:i]) for i in range(1, len(sim.STAGES))}
    for minute in minutes:
        if minute.index in stage_starts:
            state = J.new_stage(state)
        at = T0 + timedelta(minutes=minute.index + 1)
        state = J.observe(SETTINGS, state, [_counts(minute)], at)
        if J.judge(SETTINGS, state, 200).verdict is J.Verdict.ROLLBACK:
            return minute.index
    return None


def today(minutes: list[sim.Minute], rng: np.random.Generator) -> int | None:
    """Stage gates on everything since the stage started, every 5 minutes (max_error_rate 0.02, p99 +100%,
    hallucinations +1 point, min_observations 200 per side), and the 5-minute alarms (5xx > 2% / throttles > 5%
    with >= 5 events, 1 of 1; p99 ratio > 2 in 2 of 3 windows): the rules before the judge."""
    stage_start, p99_breaches = 0, []
    for minute in minutes:
        t = minute.index
        if t > 0 and minute.percent != minutes[t - 1].percent:
            stage_start = t
        if (t + 1) % 5 == 0:  # an alarm window [t-4, t] ends
            window = minutes[t - 4:t + 1]
            for metric, limit in (("errors", 0.02), ("throttles", 0.05)):
                x = sum(sim.overall(m, metric)[0] for m in window)
                n = sum(sim.overall(m, metric)[1] for m in window)
                if n >= 20 and x >= 5 and x / n > limit:
                    return t
            n_c = sum(m.canary_requests for m in window)
            factor = statistics.fmean(m.latency_factor for m in window)
            canary = sim.window_p99(rng, n_c, factor) if n_c >= 20 else None
            primary = sim.window_p99(rng, sum(m.primary_requests for m in window), 1.0)
            p99_breaches.append(canary is not None and primary is not None and canary / primary > 2.0)
            if sum(p99_breaches[-3:]) >= 2:
                return t
        if (t + 1 - stage_start) % CHECK_MINUTES_TODAY == 0:  # a gate check
            stage = minutes[stage_start:t + 1]
            x_c, n_c, x_p, n_p = (sum(sim.overall(m, "errors")[i] for m in stage) for i in range(4))
            if n_c < 200 or n_p < 200:
                continue
            if x_c / n_c >= 0.02:
                return t
            h = [sum(sim.overall(m, "hallucinations")[i] for m in stage) for i in range(4)]
            if h[0] / h[1] - h[2] / h[3] > 0.01:
                return t
            factor = statistics.fmean(m.latency_factor for m in stage)
            canary = sim.window_p99(rng, n_c, factor)
            primary = sim.window_p99(rng, n_p, 1.0)
            if canary is not None and primary is not None and canary > 2.0 * primary:
                return t
    return None


def kayenta(minutes: list[sim.Minute], rng: np.random.Generator) -> int | None:
    """Every 10 minutes: one-sided Mann-Whitney at 98% confidence (Kayenta's NetflixACAJudge default) on the
    window's per-minute canary vs primary rates per metric; the window fails if the critical metric (errors)
    fails or its score (metrics passing) falls below 75 (Kayenta's marginal threshold)."""
    critical = {"errors"}
    for end in range(KAYENTA_WINDOW - 1, len(minutes), KAYENTA_WINDOW):
        window = minutes[end - KAYENTA_WINDOW + 1:end + 1]
        failed = set()
        for metric in sim.METRICS:
            rows = [sim.overall(m, metric) for m in window]
            canary = [x / n for x, n, _, _ in rows if n > 0]
            primary = [x / n for _, _, x, n in rows if n > 0]
            comparable = len(canary) >= 3 and len(primary) >= 3 and len(set(canary + primary)) > 1
            if comparable and stats.mannwhitneyu(canary, primary, alternative="greater").pvalue < 0.02:
                failed.add(metric)
        if failed & critical or len(failed) / len(sim.METRICS) > 0.25:
            return end
    return None


def flagger(minutes: list[sim.Minute], rng: np.random.Generator) -> int | None:
    """Argo Rollouts / Flagger analysis: every minute, thresholds on the canary's own minute (5xx > 1%,
    throttles > 5%, hallucinations > 5%, p99 > 2x the primary's), >= 20 requests; 5 failed intervals in a
    stage roll back."""
    failures, stage_percent = 0, None
    for minute in minutes:
        if minute.percent != stage_percent:
            failures, stage_percent = 0, minute.percent
        if minute.canary_requests < 20:
            continue
        failed = any(sim.overall(minute, metric)[0] / max(1, sim.overall(minute, metric)[1]) > limit
                     for metric, limit in (("errors", 0.01), ("throttles", 0.05), ("hallucinations", 0.05)))
        canary = sim.window_p99(rng, minute.canary_requests, minute.latency_factor)
        primary = sim.window_p99(rng, minute.primary_requests, 1.0)
        failed = failed or (canary is not None and primary is not None and canary > 2.0 * primary)
        failures += failed
        if failures >= FLAGGER_FAILURE_LIMIT:
            return minute.index
    return None


CONTENDERS: dict[str, Callable[[list[sim.Minute], np.random.Generator], int | None]] = {
    "Kanaria judge": kanaria, "today's gates + 5-min alarms": today, "Kayenta-style (Mann-Whitney, 10-min windows)":
    kayenta, "Argo/Flagger-style (1-min thresholds, failure limit 5)": flagger,
}


# --- the oracle ---------------------------------------------------------------------------------------------


def _oracle_stream(fault: sim.Fault) -> tuple[str, tuple[str, ...] | None]:
    if fault.latency_factor:
        return "slow_responses", None
    metric = max(fault.rates, key=lambda m: _kl(fault.rates[m], sim.BASE[m]))
    return metric, fault.intents


def _kl(p1: float, p0: float) -> float:
    return p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))


def _stream_counts(minute: sim.Minute, metric: str, intents: tuple[str, ...] | None) -> tuple[int, int]:
    rows = [minute.counts[metric][i] for i in (intents or sim.INTENTS)]
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


def oracle_threshold(fault: sim.Fault, rng: np.random.Generator, alpha: float, runs: int) -> float:
    """Calibrated on healthy rollouts: P(the oracle's CUSUM alarms over the whole schedule) = alpha."""
    metric, intents = _oracle_stream(fault)
    share = sum(sim.MIX[i] for i in (intents or sim.INTENTS))
    trials = np.array([sim.REQUESTS_PER_MINUTE * share * sim.percent_at(t) / 100 for t in range(sim.minutes_total())])
    p1 = sim.slow_rate(fault.latency_factor) if fault.latency_factor else fault.rates[metric]
    return sim.oracle_threshold(rng, sim.BASE[metric], p1, trials, alpha, runs)


def oracle(fault: sim.Fault, threshold: float, minutes: list[sim.Minute]) -> int | None:
    """CUSUM on the faulty stream's canary counts with the true pre- and post-fault rates."""
    metric, intents = _oracle_stream(fault)
    p0, w = sim.BASE[metric], 0.0
    for minute in minutes:
        x, n = _stream_counts(minute, metric, intents)
        if fault.latency_factor:
            p1 = sim.slow_rate(minute.latency_factor) if minute.latency_factor > 1.0 else sim.slow_rate(
                fault.latency_factor)
        else:
            p1 = fault.rates[metric]
        if p1 <= p0:
            continue
        w = max(0.0, w + x * math.log(p1 / p0) + (n - x) * math.log((1 - p1) / (1 - p0)))
        if w > threshold:
            return minute.index
    return None


# --- the judge's own progression (healthy candidates: holds that time out are false rollbacks too) -----------


def judge_progression(rng: np.random.Generator, ratio: dict[str, float] | None = None) -> str:
    """completed | rollback (harm) | hold_exceeded, with PASS advancing a stage at its minimum."""
    state = J.start(SETTINGS, T0, HORIZON)
    t, served = 0, 0
    for index, (percent, length) in enumerate(sim.STAGES):
        if index:
            state = J.new_stage(state)
        for elapsed in range(1, 2 * length + 1):
            minute = sim.draw_minute(rng, t, percent, None, 0, served, ratio)
            served += minute.canary_requests
            t += 1
            state = J.observe(SETTINGS, state, [_counts(minute)], T0 + timedelta(minutes=t))
            verdict = J.judge(SETTINGS, state, 200).verdict
            if verdict is J.Verdict.ROLLBACK:
                return "rollback"
            if verdict is J.Verdict.PASS and elapsed >= length:
                break
        else:
            return "hold_exceeded"
    return "completed"


# --- the section ----------------------------------------------------------------------------------------------


def _interval(k: int, n: int) -> str:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k}/{n} = {k / n:.2%} [{low:.2%}, {high:.2%}]"


@dataclass
class FaultResult:
    delays: list[int]
    exposed: list[int]
    missed: int
    early: int


def _fault_runs(fault: sim.Fault, runs: int, rng: np.random.Generator, thresholds: dict[str, float]) -> dict[
        str, FaultResult]:
    results = {name: FaultResult([], [], 0, 0) for name in [*CONTENDERS, "oracle CUSUM"]}
    for _ in range(runs):
        start = fault.start if fault.start is not None else int(rng.integers(2, sim.minutes_total() - 10))
        minutes = sim.simulate(rng, fault, start)
        decided = {name: contender(minutes, rng) for name, contender in CONTENDERS.items()}
        decided["oracle CUSUM"] = oracle(fault, thresholds[fault.name], minutes)
        for name, at in decided.items():
            result = results[name]
            if at is None:
                result.missed += 1
            elif at < start:
                result.early += 1
            else:
                result.delays.append(at + 1 - start)
                result.exposed.append(sum(m.canary_requests for m in minutes[start:at + 1]))
    return results


def _healthy_chunk(task: tuple[dict[str, float] | None, int, int]) -> dict[str, int]:
    """False rollbacks of each contender over `runs` healthy rollouts (one worker's share)."""
    ratio, runs, seed = task
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(CONTENDERS, 0)
    for _ in range(runs):
        minutes = sim.simulate(rng, ratio=ratio)
        for name, contender in CONTENDERS.items():
            counts[name] += contender(minutes, rng) is not None
    return counts


def _progression_chunk(task: tuple[int, int]) -> list[str]:
    runs, seed = task
    rng = np.random.default_rng(seed)
    return [judge_progression(rng) for _ in range(runs)]


def _fault_chunk(task: tuple[int, int, int, dict[str, float]]) -> dict[str, FaultResult]:
    index, runs, seed, thresholds = task
    return _fault_runs(FAULTS[index], runs, np.random.default_rng(seed), thresholds)


def run(args: object) -> str:
    """The section's markdown (two worker processes, seeds spawned from SEED)."""
    from concurrent.futures import ProcessPoolExecutor

    quick = getattr(args, "bench_quick", False)
    healthy_runs, other_runs, progression_runs, fault_runs = (300, 150, 200, 40) if quick else (2000, 400, 600, 200)
    workers = 2
    seeds = iter(np.random.SeedSequence(SEED).generate_state(64))
    started = time.perf_counter()
    kinds = {"identical arms": None, "at the ratio tolerance (every rate x1.25)": {m: 1.25 for m in sim.METRICS},
             "harmless but different (every rate x1.2)": {m: 1.2 for m in sim.METRICS}}
    healthy: dict[str, dict[str, int]] = {}
    with ProcessPoolExecutor(workers) as pool:
        for kind, ratio in kinds.items():
            runs = healthy_runs if ratio is None else other_runs
            progress(f"healthy: {kind}, {runs} rollouts, every contender on the same minutes")
            parts = list(pool.map(_healthy_chunk, [(ratio, runs // workers, int(next(seeds))) for _ in range(workers)]))
            healthy[kind] = {name: sum(p[name] for p in parts) for name in CONTENDERS} | {"runs": runs // workers * workers}
        progress(f"the judge's own progression: {progression_runs} healthy rollouts")
        outcomes = [o for part in pool.map(_progression_chunk, [(progression_runs // workers, int(next(seeds)))
                                                                 for _ in range(workers)]) for o in part]
        progress("oracle thresholds (1% false alarms over a healthy rollout)")
        rng = np.random.default_rng(int(next(seeds)))
        thresholds = {f.name: oracle_threshold(f, rng, 0.01, 5_000 if quick else 20_000) for f in FAULTS}
        faults = {}
        for index, fault in enumerate(FAULTS):
            progress(f"fault: {fault.name} ({fault_runs} rollouts)")
            parts = list(pool.map(_fault_chunk, [(index, fault_runs // workers, int(next(seeds)), thresholds)
                                                 for _ in range(workers)]))
            faults[fault.name] = {name: FaultResult([d for p in parts for d in p[name].delays],
                                                    [e for p in parts for e in p[name].exposed],
                                                    sum(p[name].missed for p in parts),
                                                    sum(p[name].early for p in parts)) for name in parts[0]}
    seconds = time.perf_counter() - started
    return _markdown(healthy, outcomes, faults, thresholds, seconds, healthy_runs, fault_runs)


def _q(values: list[int], q: float) -> str:
    return "–" if not values else f"{np.quantile(values, q, method='inverted_cdf'):g}"


def _markdown(healthy: dict[str, dict[str, int]], outcomes: list[str], faults: dict[str, dict[str, FaultResult]],
              thresholds: dict[str, float], seconds: float, healthy_runs: int, fault_runs: int) -> str:
    lines = [
        "## Canary judge",
        "",
        f"Simulated rollouts (`scripts/canary_sim.py`, seed {SEED}, two worker processes; section wall time"
        f" {seconds:.0f} s): 600 requests"
        " a minute, six intents (recommendation 24%, product_search 20%, manga_qa 18%, order_status 16%,"
        " shipping_info 12%, chitchat 10%), stages 5% / 25% / 50% of 20, 20 and 15 minutes on a fixed schedule so"
        " that every contender reads the same minutes. Healthy rates: 5xx 0.1%, throttles 0.2%, hallucinations 1%,"
        " safety stops 0.3%, slow (above the primary's p95) 5%, poor (at or below the primary's p10) 10%, CSAT"
        " answered by 20% with 15% dissatisfied. Requests are independent draws (the judge's own assumption; real"
        " sessions are clustered by the ALB's stickiness). Missing metrics are out of scope here (a count"
        " simulation has no ingestion): the rehearsal covers them.",
        "",
        "**False rollbacks of healthy candidates** (any rollback during the 55-minute schedule; 95% Clopper-Pearson"
        " intervals). Goal for the judge: at most 1% of healthy rollouts (its alpha).",
        "",
        "| candidate | " + " | ".join(CONTENDERS) + " |",
        "| --- | " + " | ".join("---:" for _ in CONTENDERS) + " |",
    ]
    for kind, counts in healthy.items():
        lines.append(f"| {kind} | " + " | ".join(_interval(counts[c], counts["runs"]) for c in CONTENDERS) + " |")
    completed = outcomes.count("completed")
    lines += [
        "",
        f"The judge's own progression (a stage advances when the judge passes at its minimum, holds while it"
        f" continues, rolls back at its hold bound = the minimum again), {len(outcomes)} healthy rollouts:"
        f" completed {_interval(completed, len(outcomes))}; rolled back for harm"
        f" {outcomes.count('rollback')}; held past a hold bound {outcomes.count('hold_exceeded')}.",
        "",
        f"**Detection** ({fault_runs} rollouts per fault, starting at a random minute of the schedule unless"
        " stated; delay = minutes of faulty data until the deciding minute, the judge adds its settle time in"
        " AWS, ~1 minute; exposed = canary requests served with the fault before the decision). The oracle"
        " CUSUM knows which stream breaks and its pre- and post-fault rates, its threshold calibrated to the same"
        " 1% false alarms over a healthy rollout:",
        "",
        "| fault | contender | detected | median delay (min) | p90 delay | median exposed | vs oracle (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, results in faults.items():
        oracle_median = statistics.median(results["oracle CUSUM"].delays) if results["oracle CUSUM"].delays else None
        for contender, r in results.items():
            n = len(r.delays) + r.missed + r.early
            median = statistics.median(r.delays) if r.delays else None
            ratio = "–" if median is None or not oracle_median else f"{median / oracle_median:.2f}×"
            early = f" ({r.early} before the fault)" if r.early else ""
            lines.append(f"| {name} | {contender} | {len(r.delays)}/{n}{early} | {_q(r.delays, 0.5)} |"
                         f" {_q(r.delays, 0.9)} | {_q(r.exposed, 0.5)} | {ratio} |")
    lines += [
        "",
        "Oracle thresholds (log-likelihood ratio): " + ", ".join(f"{k}: {v:.1f}" for k, v in thresholds.items())
        + ".",
        "",
        "How to read the gap to the oracle: the oracle tests one stream against its known healthy rate with no"
        " tolerance; the judge must (a) compare with the primary's concurrent minutes instead of a known rate,"
        " (b) leave room for a candidate up to 1.25x the primary's rate, (c) spread the 1% budget over 49"
        " streams (7 metrics x overall + 6 intents, severity-weighted) and (d) mix eight alternatives it does"
        " not know. At 5% traffic a 9% hallucination spike brings ~2.7 bad canary answers a minute, so even"
        " the oracle needs a few minutes; where the judge's delay is more than 1.5x the oracle's, (a)-(d) are"
        " the price of a 1% false-rollback bound that holds without knowing the fault.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    namespace = parser.parse_args()
    namespace.bench_quick = namespace.quick
    print(run(namespace))
