"""`make bench`, "Canary judge (simulation)" section: the live judge beside today's rules, a Kayenta-style judge,
an Argo/Flagger-style analysis and the oracle CUSUM, all reading the same simulated rollouts.

The model is scripts/canary_sim.py, the deciders scripts/canary_contenders.py. Healthy candidates give each
decider's false-rollback rate per rollout, faulty ones its detection delay, the canary requests exposed to the
fault before the decision, and its detection probability within the rollout. Runs are spread over 2 worker
processes, each chunk with its own seed derived from SEED, so the figures do not depend on the scheduling.

    .venv/bin/python scripts/bench.py --only canary      # this section into docs/benchmarks.md
    .venv/bin/python scripts/bench_canary.py --quick     # print a smoke-size section
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "lambdas"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from kanaria.canary import judge as J  # noqa: E402
from scripts import canary_contenders as C  # noqa: E402
from scripts import canary_sim as sim  # noqa: E402

SEED = 20261205
ALPHA = 0.01
WORKERS = 2
CHUNK = 50
LATEST_FAULT_START = 45  # faults start uniformly in minutes [0, 45): at least 10 minutes before the last stage ends
SIZES = {
    "full": {"aa": 2000, "other_healthy": 400, "fault": 200, "oracle": 20_000},
    "quick": {"aa": 100, "other_healthy": 50, "fault": 30, "oracle": 5_000},
}

_RULES = J.DEFAULT_METRICS


def _at_tolerance_ratio() -> dict[str, float]:
    return {m: _RULES[J.Metric(m)].ratio * rate for m, rate in sim.BASE.items()}


HEALTHY = (
    ("identical arms (A/A)", sim.Candidate("A/A")),
    (
        "at the ratio tolerance: every metric at ratio x the primary's rate",
        sim.Candidate("ratio", effects=sim.with_rates(_at_tolerance_ratio())),
    ),
    (
        "harmless but different: every metric x1.2, 5xx +0.3 points (0.4%)",
        sim.Candidate(
            "different",
            effects=sim.with_rates({**{m: 1.2 * r for m, r in sim.BASE.items()}, "errors": sim.BASE["errors"] + 0.003}),
        ),
    ),
    (
        "half the points tolerance: 5xx +0.5 point (0.6%)",
        sim.Candidate(
            "half points", effects=sim.with_rates({"errors": sim.BASE["errors"] + _RULES[J.Metric.ERRORS].points / 2})
        ),
    ),
    (
        "at the points tolerance: 5xx +1 point (1.1%)",
        sim.Candidate(
            "points", effects=sim.with_rates({"errors": sim.BASE["errors"] + _RULES[J.Metric.ERRORS].points})
        ),
    ),
)
FAULTS = (
    sim.Candidate("5xx error spike 6%", fault={"error": 0.06}),
    sim.Candidate("throttling 12%", fault={"throttle": 0.12}),
    sim.Candidate("hallucination spike 9%", fault={"hallucination": 0.09}),
    sim.Candidate(
        "cold start: latency 5x fading over 900 canary requests (from minute 0)",
        fault={"latency_factor": 5.0},
        start=0,
        warm_requests=900,
    ),
    sim.Candidate("latency 3x, persistent", fault={"latency_factor": 3.0}),
    sim.Candidate(
        "recommendation only: 7% 5xx, quality 0.55", fault={"error": 0.07, "quality": 0.55}, intents=("recommendation",)
    ),
    sim.Candidate(
        "order_status only: 2% 5xx, quality 0.78", fault={"error": 0.02, "quality": 0.78}, intents=("order_status",)
    ),
)
# #11's rehearsal goals (fault -> rollback complete, scenario clock): fault -> (stage index where the shipped
# scenario's fault starts, goal in minutes)
REHEARSAL_GOALS = {
    FAULTS[0].name: (1, 2),
    FAULTS[1].name: (0, 2),
    FAULTS[2].name: (0, 5),
    FAULTS[3].name: (0, 3),
    FAULTS[5].name: (0, 5),
}
DECIDERS = [d.name for d in C.contenders()]
JUDGE = C.KanariaJudge.name
ORACLE = C.Oracle.name
DIAGNOSTIC = C.faulty_streams_only(FAULTS[0]).name


def progress(message: str) -> None:
    print(f"[bench canary {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- runs (in worker processes) -------------------------------------------------------------------------------


@dataclass
class Run:
    """One rollout as the report needs it: per decider (minute, kind, detail, exposed canary requests)."""

    fault_start: int | None
    decisions: dict[str, tuple[int, str, str, int]]
    stage_minutes: list[int]
    completed: bool


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
        for label, runs in zip(owners, pool.map(_chunk, tasks)):
            results[label].extend(runs)
            done[label] += len(runs)
            if done[label] == totals[label] or done[label] % 500 == 0:
                progress(f"  {label}: {done[label]}/{totals[label]} rollouts")
    return results


# --- figures ----------------------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low = float(stats.beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    high = float(stats.beta.ppf(1 - tail, k + 1, n - k)) if k < n else 1.0
    return low, high


def _rate(k: int, n: int) -> str:
    low, high = clopper_pearson(k, n)
    return f"{k}/{n} = {k / n:.2%} [{low:.2%}, {high:.2%}]"


@dataclass
class Detection:
    delays: list[int] = field(default_factory=list)
    by_stage: dict[int, list[int]] = field(default_factory=dict)  # delays by the stage the fault starts in
    late_delays: list[int] = field(default_factory=list)  # faults starting in a stage's last 5 minutes
    exposed: list[int] = field(default_factory=list)
    early: int = 0
    missed: int = 0
    runs: int = 0


def _rule_counts(runs: list[Run], name: str) -> Counter[str]:
    """What made `name` roll back, over these runs."""
    counts: Counter[str] = Counter()
    for run in runs:
        if name in run.decisions:
            detail = run.decisions[name][2]
            counts.update(detail.split(", ") if name == C.KayentaStyle.name else [detail])
    return counts


def _start_stage(run: Run) -> tuple[int, bool]:
    """The stage the fault starts in (on the run's schedule) and whether in that stage's last 5 minutes."""
    start = run.fault_start or 0
    ends = np.cumsum(run.stage_minutes)
    stage = int(np.searchsorted(ends, start, side="right"))
    return stage, stage < len(ends) - 1 and ends[stage] - 5 <= start


def detections(runs: list[Run], names: list[str]) -> dict[str, Detection]:
    out = {name: Detection() for name in names}
    for run in runs:
        start = run.fault_start or 0
        stage, late = _start_stage(run)
        for name in names:
            d = out[name]
            d.runs += 1
            decided = run.decisions.get(name)
            if decided is None:
                d.missed += 1
            elif decided[0] < start:
                d.early += 1
            else:
                delay = decided[0] + 1 - start
                d.delays.append(delay)
                d.by_stage.setdefault(stage, []).append(delay)
                d.exposed.append(decided[3])
                if late:
                    d.late_delays.append(delay)
    return out


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _med(values: list[int]) -> str:
    return "–" if not values else f"{statistics.median(values):g}"


def _p90(values: list[int]) -> str:
    return "–" if not values else f"{np.quantile(values, 0.9, method='inverted_cdf'):g}"


def _mean(values: list[int]) -> str:
    return "–" if not values else f"{statistics.fmean(values):.1f}"


# --- the section ----------------------------------------------------------------------------------------------


def run(args: object) -> str:
    """The section's markdown (bench.py calls this)."""
    size = SIZES["quick" if getattr(args, "bench_quick", False) else "full"]
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


def markdown(
    results: dict[str, list[Run]],
    calibrated: dict[str, tuple[float, float]],
    seconds: float,
    cpu: float,
    size: dict[str, int],
) -> str:
    rules = ", ".join(f"{m.value} {r.ratio:g}x / +{r.points:.0%}" for m, r in _RULES.items())
    lines = [
        "## Canary judge (simulation)",
        "",
        f"Generated by `scripts/bench_canary.py` (model `scripts/canary_sim.py`, deciders"
        f" `scripts/canary_contenders.py`), seed {SEED}: {sum(map(len, results.values())):,} simulated rollouts on"
        f" {WORKERS} worker processes, section wall time {seconds:.0f} s ({cpu:.0f} s CPU in the workers; the VM is"
        " shared). Pure simulation: no emulator, no AWS.",
        "",
        "- **Traffic** as in the rehearsal: 600 requests a minute, Poisson per minute and intent (recommendation"
        " 24%, product_search 20%, manga_qa 18%, order_status 16%, shipping_info 12%, chitchat 10%), each request"
        " sent to the canary with the stage's probability: 5% / 25% / 50% for at least 20 / 20 / 15 minutes. The"
        " judge drives the schedule as the state machine does (PASS at or after the minimum advances, CONTINUE"
        " holds up to the minimum again, then the rollout is rolled back); once it has decided, the other deciders"
        " keep reading with every remaining stage at its minimum.",
        "- **Requests are independent draws.** Real traffic is clustered by session (the ALB's target-group"
        " stickiness keeps a session on one side), so real counts are overdispersed and every figure here is"
        " optimistic for every decider alike.",
        "- **Outcomes** drawn per request as the rehearsal's response model draws them: throttled calls (0.2%) are"
        " answered fast with a poor fallback, else 5xx (0.1%), else an answer that is a hallucination in 1% (its"
        " quality 0.3 lower); safety stops 0.3%; latency lognormal (median 1250 ms, p99 3000 ms) times the side's"
        " factor; quality normal (0.84, sd 0.1); CSAT answered by 20% of answers, 15% of them dissatisfied. Slow ="
        f" above the healthy primary's p95 ({sim.SLOW_CUT_MS:.0f} ms), poor = at or below its p10"
        f" ({sim.POOR_CUT:.3f}), so 5% and 10% on a healthy side (the judge takes both from the primary's preceding"
        " 15 minutes). A throttling fault therefore also raises poor quality, and a hallucination spike too, as in"
        " the rehearsal.",
        "- **Delay** = minutes of faulty data up to and including the minute whose data decided (a fault that"
        " starts at minute s and is caught on minute s's data has delay 1); CloudWatch's ingestion (~1 minute,"
        " the judge's settle time) and alarm evaluation come on top, alike for all. **Exposed** = canary requests"
        " of the faulty intents served with the fault up to that minute. Faults start at a uniformly drawn minute"
        f' in [0, {LATEST_FAULT_START}) unless stated, so some start late in a stage; "late" = the fault starts in a'
        " stage's last 5 minutes. A fault the decider has not caught when the rollout ends (at the approval step)"
        " is missed; delays are over the detected runs.",
        "- **Missing metrics** (the missing-metrics scenario) are out of scope for a count simulation: the"
        " judge's handling of absent data is covered by its unit tests and the rehearsal.",
        f"- **Judge settings**: the defaults (alpha {ALPHA:.0%} per rollout, half to the overall streams; {rules};"
        f" min_observations {C.MIN_OBSERVATIONS}), horizon {C.HORIZON} periods, settle time 0 (no ingestion here).",
        "",
        "### Deciders",
        "",
        "- **Kanaria judge**: the real `kanaria.canary.judge` (start, new_stage, observe, judge) read every minute.",
        "- **Today's rules**: the rules before the judge, `evaluate_gates`/`next_step` on everything since the stage"
        " started, checked every 5 or 15 minutes (5xx rate < 2%, canary p99 <= 2x primary p99, hallucinations at"
        " most +1 point over the primary, at least 30 observations per side; a warning alarm holds), plus the"
        " 5-minute alarms of `canary_alarms.py` before #11 (5xx > 2% and throttles > 5% of the canary's requests"
        " with >= 20 requests and >= 5 events, 1 of 1 window; p99 ratio > 2 in 2 of 3 windows: roll back at once;"
        " hallucinations > 3% over 15 minutes and mean quality > 5% below the primary's in 2 of 2 15-minute"
        " windows: warnings that hold). Windows aligned to minute 0.",
        "- **Kayenta-style**: every 10 minutes, each metric's 10 per-minute rates (all intents) canary vs primary,"
        " one-sided Mann-Whitney (`scipy.stats.mannwhitneyu`) at p < 0.01 (the lower end of Kayenta's 98% interval"
        " above zero); the window fails when 5xx (critical) fails or the score (share of the 7 metrics passing)"
        " is below 75 (Kayenta's marginal threshold), and a failed window rolls back. Kayenta's outlier removal and"
        " effect margin are left out.",
        "- **Argo/Flagger-style**: every minute, thresholds on the canary's own minute (5xx > 1%, throttles > 5%,"
        " hallucinations > 5%, p99 > 2x the primary's p99 of that minute); the fifth failed minute of the rollout"
        " rolls back (`threshold: 5` in Flagger's documented example; Argo's failureLimit). With 3, a single 5xx"
        " among the 5% stage's ~30 canary requests a minute fails that minute often enough to roll back 22% of"
        " identical candidates.",
        f"- **Oracle CUSUM**: knows which streams the fault drives (metric and intents) and their canary rates"
        " before and after (for the cold start, after as a function of the canary requests served); a CUSUM of the"
        " log-likelihood ratio of those streams' canary counts per minute, its threshold the 99th percentile of its"
        f" maximum over {size['oracle']:,} simulated healthy rollouts, so its false-alarm probability per rollout is"
        " the judge's 1%. No decider with that false-alarm rate detects a known change faster on average (Lorden,"
        " Moustakides), so it is the bound: the judge knows neither the stream nor the size nor the healthy rate.",
        "",
        "### Healthy candidates: false rollbacks per rollout",
        "",
        "95% Clopper-Pearson intervals. The judge's two ways to roll back a healthy candidate are counted apart:"
        " harm shown (the statistic's budget, alpha = 1%) and a stage that stays CONTINUE up to its hold bound."
        " Today's rules likewise (a held warning). Goal: at most 1% for the judge.",
        "",
    ]
    names = DECIDERS
    header = [f"{JUDGE}: harm", f"{JUDGE}: hold bound", *names[1:]]
    lines += ["| candidate | " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(header)]
    for label, _ in HEALTHY:
        runs = results[label]
        cells = [
            _rate(sum(r.decisions.get(JUDGE, (0, ""))[1] == kind for r in runs), len(runs)) for kind in ("harm", "hold")
        ]
        cells += [_rate(sum(name in r.decisions for r in runs), len(runs)) for name in names[1:]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    aa = results[HEALTHY[0][0]]
    at_minimum = sum(r.stage_minutes == [m for _, m in sim.STAGES] for r in aa if r.completed)
    lines += [
        "",
        f"The judge's schedule on the A/A rollouts: {sum(r.completed for r in aa)} of {len(aa)} completed,"
        f" {at_minimum} of them with every stage passed at its minimum.",
        "",
        "What decided the false rollbacks (for Kayenta: the metrics failing in the failed window; for"
        " Argo/Flagger: the thresholds crossed in the last failed minute):",
        "",
    ]
    for label, _ in HEALTHY:
        parts = []
        for name in names:
            counts = _rule_counts(results[label], name)
            if counts:
                parts.append(
                    f"{name}: "
                    + ", ".join(f"{rule} {n}" for rule, n in counts.most_common(4))
                    + (", ..." if len(counts) > 4 else "")
                )
        lines.append(f"- {label}: " + ("; ".join(parts) or "none") + ".")
    lines += [
        "",
        "### Faulty candidates: detection",
        "",
        f"{size['fault']} rollouts per fault. detected = rolled back at or after the fault's start (before it: a"
        " false rollback, counted apart); delays in minutes of faulty data over the detected runs, also by the"
        " stage the fault starts in; exposed = canary requests of the faulty intents served with the fault until"
        ' the deciding minute. A decider that rolls back healthy candidates often also "detects" some faults by'
        " chance (a false alarm that falls after the start): read its detections beside its A/A rate above.",
        "",
        "| fault | decider | detected | median delay | p90 | mean | median by start stage 5% / 25% / 50% |"
        " median, late starts | median exposed | median vs oracle |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    summary = []
    for fault in FAULTS:
        found = detections(results[fault.name], [*names, ORACLE])
        oracle_median = _median(found[ORACLE].delays)
        for name in [*names, ORACLE]:
            d = found[name]
            early = f" ({d.early} before the fault)" if d.early else ""
            median = _median(d.delays)
            ratio = f"{median / oracle_median:.2f}×" if median is not None and oracle_median else ""
            stages = " / ".join(_med(d.by_stage.get(i, [])) for i in range(len(sim.STAGES)))
            lines.append(
                f"| {fault.name} | {name} | {len(d.delays)}/{d.runs}{early} | {_med(d.delays)} |"
                f" {_p90(d.delays)} | {_mean(d.delays)} | {stages} | {_med(d.late_delays)} |"
                f" {_med(d.exposed)} | {ratio} |"
            )
        summary.append((fault, found[JUDGE], found[ORACLE]))
    lines += [
        "",
        "Oracle thresholds (log-likelihood ratio) and their false-alarm probability per healthy rollout on"
        " the calibration runs: "
        + "; ".join(f"{name}: {h:.2f} ({p:.2%})" for name, (h, p) in calibrated.items())
        + ". With counts the CUSUM's maximum has atoms: where no healthy minute ever has a positive"
        " log-likelihood ratio (a 3x latency) the threshold is 0 and the oracle's false alarms are below 1%, so"
        " it is a bound there all the more.",
        "",
    ]
    lines += _diagnostics(results)
    lines += _goals(results, summary)
    return "\n".join(lines) + "\n"


def _diagnostics(results: dict[str, list[Run]]) -> list[str]:
    """Where the judge's delay goes: its statistic on the fault's own streams with the whole alpha."""
    lines = [
        "### Where the gap to the oracle comes from",
        "",
        "The same runs, read also by the judge's statistic restricted to the streams the fault drives (its metrics;"
        " its intents when it is intent-local, else overall) with the whole alpha: the judge if it knew where to"
        " look. Judge → restricted = the price of watching 49 streams (Bonferroni, severity weights) and the"
        " materiality check; restricted → oracle = the price of not knowing the healthy rate (comparing with the"
        " primary's concurrent minutes), the ratio tolerance, the unknown size (mixture of alternatives) and the"
        " Shiryaev-Roberts threshold log(T/alpha) for an unknown change time.",
        "",
        "| fault | judge median (mean) | restricted median (mean) | oracle median (mean) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for fault in FAULTS:
        found = detections(results[fault.name], [JUDGE, DIAGNOSTIC, ORACLE])
        cells = []
        for name in (JUDGE, DIAGNOSTIC, ORACLE):
            d = found[name]
            cells.append("–" if not d.delays else f"{_med(d.delays)} ({_mean(d.delays)}), {len(d.delays)}/{d.runs}")
        lines.append(f"| {fault.name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _goals(results: dict[str, list[Run]], summary: list[tuple[sim.Candidate, Detection, Detection]]) -> list[str]:
    aa = results[HEALTHY[0][0]]
    harm = sum(r.decisions.get(JUDGE, (0, ""))[1] == "harm" for r in aa)
    hold = sum(r.decisions.get(JUDGE, (0, ""))[1] == "hold" for r in aa)
    low, high = clopper_pearson(harm + hold, len(aa))
    ok = "met" if high <= 0.01 or (harm + hold) / len(aa) <= 0.01 else "NOT met"
    lines = [
        "### Against the goals of #11",
        "",
        f"- False rollbacks of identical arms <= 1% ({ok}): the judge rolled back {harm + hold} of {len(aa)}"
        f" ({(harm + hold) / len(aa):.2%}, 95% interval [{low:.2%}, {high:.2%}]; harm {harm}, hold bound {hold}).",
        "- Median detection delay within 1.5x the oracle's, overall and by the stage the fault starts in (judge /"
        " oracle, minutes of faulty data; at one-minute reads the oracle's floor is 1 minute, so where it needs 1"
        " the goal asks the judge for 1 too):",
        "",
        "| fault | judge / oracle median | ratio | 5% stage | 25% stage | 50% stage | judge / oracle mean |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fault, judge, oracle in summary:
        jm, om = _median(judge.delays), _median(oracle.delays)
        ratio = f"{jm / om:.2f}×" if jm is not None and om else "–"
        stages = [
            f"{_med(judge.by_stage.get(i, []))} / {_med(oracle.by_stage.get(i, []))}" for i in range(len(sim.STAGES))
        ]
        means = f"{_mean(judge.delays)} / {_mean(oracle.delays)}"
        lines.append(
            f"| {fault.name} | {_med(judge.delays)} / {_med(oracle.delays)} | {ratio} | "
            + " | ".join(stages)
            + f" | {means} |"
        )
    lines += [
        "",
        "- #11's rehearsal goals (fault → rollback complete on the scenario clock) against the delays here for a"
        " fault starting in the stage where the shipped scenario's starts. The rehearsal adds the judge's settle"
        " time (one period) and the rollback itself to these minutes of data, so a goal is out of reach where the"
        " oracle's p90 alone nearly fills it:",
        "",
        "| shipped fault | starts in | goal | judge median / p90 | oracle median / p90 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for fault, judge, oracle in summary:
        if fault.name not in REHEARSAL_GOALS:
            continue
        stage, goal = REHEARSAL_GOALS[fault.name]
        j, o = judge.by_stage.get(stage, []), oracle.by_stage.get(stage, [])
        lines.append(
            f"| {fault.name} | {sim.STAGES[stage][0]}% stage | {goal} min | {_med(j)} / {_p90(j)} |"
            f" {_med(o)} / {_p90(o)} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    namespace = parser.parse_args()
    namespace.bench_quick = namespace.quick
    print(run(namespace))
