"""Bench section Statistics: whole-rule simulation of the scheduled analysis: every guardrail, every 5-minute read, reads past the plan.

The scheduled analysis reads a running experiment every 5 minutes. This module simulates experiments the way
that analysis sees them: one unit per arm per read (each unit observed on every metric), read after every read
for 4 weeks (8,064 reads), and it applies a decision rule *as a whole* at every read — primary metric, every
default guardrail, the revenue-critical intents and the rule's horizon — recording the first read at which the
rule says PROMOTE/REVIEW or ROLLBACK.

Running `analyze_snapshot` 8,064 times per run costs ~4 s a run, so the rules are re-expressed on arrays
(`CurrentRules`: the engine of main before issue #13, commit c97cfe9; `NewRules`: this engine). Each replica is
checked against its engine on randomly drawn reads (`verify`): the snapshot of that read, the look history the
scheduled analysis would carry, and the engine's decision must equal the replica's.

Metrics (both arms identical in A/A; the effect scenarios add `effect` to the treatment's quality):
quality ~ N(0.80, 0.15) (primary), latency ~ lognormal(median 1,200 ms, σ_log 0.5) kept as the aggregator's
4% histogram, cost ~ lognormal(mean $0.008, CV 0.5), error / hallucination / safety_filtered ~ Bernoulli.
With intents, each unit belongs to product_search (30%), recommendation (30%, both revenue-critical) or
manga_qa (40%).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from kanaria_tools.bench.common import Options, progress
from kanaria_tools.bench.decision_rules import Rule, efficacy_shown_at, new_obf_schedule, rules
from kanaria_tools.bench.decision_sim import (
    ALPHA,
    CODES,
    COST_CV,
    COST_MEAN,
    FINAL,
    LATENCY_MEDIAN_MS,
    LATENCY_SIGMA,
    MIN_N,
    NONE,
    PROMOTE,
    READS,
    REVIEW,
    ROLLBACK,
    Arm,
    Outcome,
    Scenario,
    simulate_arm,
    snapshot_at,
    verification_points,
)
from kanaria_tools.bench.gbstats_sequential import GbstatsSequential, Reads
from kanaria_tools.bench.old_rules import current_engine_decisions, current_looks_at


@dataclass
class Simulated:
    """Outcomes per rule, the first chunk kept for the engine check, and primary sums for gbstats."""

    outcomes: dict[str, Outcome]
    first: tuple[Arm, Arm, dict[str, np.ndarray], dict[str, dict[str, Any]]]
    primary: list[tuple[np.ndarray, ...]]  # (sum_c, sq_c, sum_t, sq_t) of the runs kept for gbstats


def simulate(
    scenario: Scenario, runs: int, seed: int, compared: dict[str, Rule], chunk: int = 50, keep_primary: int = 0
) -> Simulated:
    """Simulate `runs` experiments in chunks; every rule reads the same data."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Outcome]] = {name: [] for name in compared}
    first: tuple[Arm, Arm, dict[str, np.ndarray], dict[str, dict[str, Any]]] | None = None
    primary: list[tuple[np.ndarray, ...]] = []
    done = 0
    while done < runs:
        size = min(chunk, runs - done)
        control = simulate_arm(rng, size, scenario)
        treatment = simulate_arm(rng, size, scenario, treatment=True)
        codes_by_rule, states = {}, {}
        for name, rule in compared.items():
            state: dict[str, Any] = {}
            codes = rule.codes(control, treatment, scenario, state)
            if rule.final:
                codes = codes[:, : scenario.planned_n]
            parts[name].append(Outcome.first(codes))
            if first is None:
                codes_by_rule[name], states[name] = codes, state
        if first is None:
            first = (control, treatment, codes_by_rule, states)
        if done < keep_primary:
            take = min(size, keep_primary - done)
            primary.append(
                (
                    control.quality[0][:take],
                    control.quality[1][:take],
                    treatment.quality[0][:take],
                    treatment.quality[1][:take],
                )
            )
        done += size
    assert first is not None
    return Simulated({name: Outcome.concat(p) for name, p in parts.items()}, first, primary)


def verify(
    scenario: Scenario, sim: Simulated, compared: dict[str, Rule], seed: int, per_rule: int = 30
) -> tuple[int, int, list[str]]:
    """(checked, disagreeing, notes): the replica's code against analyze_snapshot at sampled reads of the first
    chunk (first decisions, the reads before them, random reads), with the look history each read carries."""
    from kanaria.analysis import analyze_snapshot

    control, treatment, codes, states = sim.first
    rng = np.random.default_rng(seed)
    checked, bad, notes = 0, 0, []
    pending: list[tuple[str, int, int, dict[str, Any]]] = []
    for name, rule in compared.items():
        if rule.engine == "none":
            continue
        first = Outcome.first(codes[name])
        reads = codes[name].shape[1]
        # reads up to each run's first decision (after it the scheduled analysis has stopped or frozen)
        points = [
            (r, k)
            for r, k in verification_points(first, reads, rng, per_rule // 2, per_rule // 2)
            if first.index[r] < 0 or k <= first.index[r]
        ]
        carried: Mapping[int, list[float]] | Sequence[list[float]] | None
        if rule.engine == "new":
            carried = new_obf_schedule(scenario)[2] if rule.method == "obf" else None
        else:
            carried = current_looks_at(scenario, {r for _, r in points}) if rule.method == "obf" else None
        for run, read in points:
            looks = carried[read] if carried is not None else None
            body = snapshot_at(control, treatment, scenario, rule.method, run, read, looks)
            if rule.engine == "new":
                if rule.method == "fixed":
                    body["experiment"]["looks"] = [1.0] if read > scenario.planned_n - 1 else []
                body["experiment"]["efficacy_shown"] = efficacy_shown_at(states[name]["shown"], run, read)
                result = analyze_snapshot(body)
                decision = result.decision.value
                got = FINAL if decision == "NO_DECISION" and result.final else CODES.get(decision, NONE)
                checked += 1
                if got != codes[name][run, read]:
                    bad += 1
                    notes.append(f"{name} run {run} read {read}: engine {decision}, replica {codes[name][run, read]}")
            else:
                pending.append((name, run, read, body))
    if pending:
        decisions = current_engine_decisions([body for *_, body in pending])
        if isinstance(decisions, str):
            notes.append(f"current rules not checked: {decisions}")
        else:
            for (name, run, read, _), decision in zip(pending, decisions):
                checked += 1
                if CODES.get(decision, NONE) != codes[name][run, read]:
                    bad += 1
                    notes.append(f"{name} run {run} read {read}: engine {decision}, replica {codes[name][run, read]}")
    return checked, bad, notes


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a Monte-Carlo proportion."""
    z = 1.959963984540054
    if n == 0:
        return math.nan, math.nan
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


def _rate(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k / n:.3f} [{low:.3f}, {high:.3f}]"


def _gbstats_outcome(primary: list[tuple[np.ndarray, ...]], scenario: Scenario, tuning: float) -> tuple[Outcome, float]:
    """gbstats' sequential two-sided test of the primary metric at every read, stopping at its first p < α."""
    import warnings

    sum_c, sq_c, sum_t, sq_t = (np.concatenate([p[i] for p in primary])[:, MIN_N - 1 :] for i in range(4))
    n = np.broadcast_to(np.arange(MIN_N, scenario.reads + 1, dtype=float), sum_c.shape)  # from min_n, as Kanaria
    reads = Reads(n, sum_c, sq_c, sum_t, sq_t)
    gb = GbstatsSequential(tuning)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hits = gb.hits(reads, stop_at_first=True)
    elapsed = time.perf_counter() - started
    codes = np.where(hits, np.where(sum_t > sum_c, PROMOTE, ROLLBACK), NONE)
    codes = np.concatenate([np.zeros((len(codes), MIN_N - 1), dtype=codes.dtype), codes], axis=1)
    return Outcome.first(codes), elapsed


def _aa_rows(scenario: Scenario, sim: Simulated, compared: dict[str, Rule]) -> list[str]:
    rows = []
    for name, rule in compared.items():
        o = sim.outcomes[name]
        runs = len(o.kind)
        by_plan = o.within(scenario.planned_n)
        decided = int(o.decided.sum())
        rollback = int((o.kind == ROLLBACK).sum())
        goal = decided / runs <= ALPHA and rollback / runs <= ALPHA / 2
        rows.append(
            f"| {scenario.name} | {rule.label} | {_rate(int(by_plan.decided.sum()), runs)} |"
            f" {_rate(decided, runs)} | {_rate(rollback, runs)} |"
            f" {_rate(int(np.isin(o.kind, [PROMOTE, REVIEW]).sum()), runs)} | {'yes' if goal else '**no**'} |"
        )
    return rows


def _n_at(o: Outcome, censor: int) -> np.ndarray:
    return np.where(o.index >= 0, o.index + 1, censor)


def _power_rows(scenario: Scenario, sim: Simulated, compared: dict[str, Rule], goal: tuple[float, float]) -> list[str]:
    rows = []
    min_power, max_ratio = goal
    for name, rule in compared.items():
        o = sim.outcomes[name]
        win = np.isin(o.kind, [PROMOTE, REVIEW])
        by_plan = np.isin(o.within(scenario.planned_n).kind, [PROMOTE, REVIEW])
        censor = scenario.reads  # a final NO_DECISION is itself the read the rule stops at
        ratio = float(np.median(_n_at(o, censor))) / scenario.planned_n
        ok = win.mean() >= min_power and ratio <= max_ratio
        rows.append(
            f"| {rule.label} | {by_plan.mean():.3f} | {win.mean():.3f} | "
            f"{(o.kind == ROLLBACK).mean():.3f} | {np.median(_n_at(o, censor)):,.0f} | {ratio:.2f} |"
            f" {'yes' if ok else '**no**'} |"
        )
    return rows


@dataclass
class Checked:
    """The engine check over every scenario, and the notes of the section."""

    reads: int = 0
    disagreements: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, result: tuple[int, int, list[str]]) -> None:
        """Add one verify() result."""
        self.reads += result[0]
        self.disagreements += result[1]
        self.notes += result[2]


@dataclass(frozen=True)
class Runs:
    """Monte-Carlo runs per scenario."""

    aa: int
    intents: int
    errors: int
    design: int
    gbstats: int

    def for_aa(self, scenario: Scenario) -> int:
        """Runs of an A/A scenario."""
        return self.errors if scenario.error_rate != 0.002 else self.intents if scenario.intents else self.aa


SEED = 20261205
AA_SCENARIOS = (
    Scenario("no intents", 2000),
    Scenario("2 revenue-critical intents", 2000, intents=True),
    Scenario("1% errors in both arms", 2000, error_rate=0.01),
)
DESIGNS = (
    (Scenario("design 1", 2000, effect=0.02), (0.97, 0.50)),
    (Scenario("design 2", 883, effect=0.02), (0.78, 0.75)),
)


def _gbstats_aa_row(scenario: Scenario, sim: Simulated, checked: Checked) -> str:
    tuning = 2.0 * scenario.planned_n
    gb, elapsed = _gbstats_outcome(sim.primary, scenario, tuning)
    runs_gb = len(gb.kind)
    decided = int((gb.kind != NONE).sum())
    rollback = int((gb.kind == ROLLBACK).sum())
    checked.notes.append(f"gbstats A/A: {runs_gb} runs × {scenario.reads:,} reads evaluated in {elapsed:.0f} s.")
    return (
        f"| {scenario.name} | GrowthBook gbstats sequential, primary metric only (no guardrails), tuning 2·n"
        f" = {tuning:,.0f}; {runs_gb} runs | {_rate(int((gb.within(scenario.planned_n).kind != NONE).sum()), runs_gb)} |"
        f" {_rate(decided, runs_gb)} | {_rate(rollback, runs_gb)} | {_rate(decided - rollback, runs_gb)} |"
        f" {'yes' if decided / runs_gb <= ALPHA and rollback / runs_gb <= ALPHA / 2 else '**no**'} |"
    )


def _gbstats_power_row(scenario: Scenario, goal: tuple[float, float], sim: Simulated, checked: Checked) -> str:
    tuning = 2.0 * scenario.planned_n
    gb, elapsed = _gbstats_outcome(sim.primary, scenario, tuning)
    win = gb.kind == PROMOTE
    n_at = _n_at(gb, scenario.reads)
    ratio = float(np.median(n_at)) / scenario.planned_n
    checked.notes.append(f"gbstats {scenario.name}: {len(gb.kind)} runs evaluated in {elapsed:.0f} s.")
    return (
        f"| GrowthBook gbstats sequential, primary only, tuning 2·n = {tuning:,.0f} ({len(gb.kind)} runs)"
        f" | {np.isin(gb.within(scenario.planned_n).kind, [PROMOTE]).mean():.3f} | {win.mean():.3f} |"
        f" {(gb.kind == ROLLBACK).mean():.3f} | {np.median(n_at):,.0f} | {ratio:.2f} |"
        f" {'yes' if win.mean() >= goal[0] and ratio <= goal[1] else '**no**'} |"
    )


def _aa_lines(runs: Runs, checked: Checked) -> list[str]:
    compared = rules()
    lines: list[str] = []
    for i, scenario in enumerate(AA_SCENARIOS):
        count = runs.for_aa(scenario)
        progress(f"statistics: A/A {scenario.name}: {count:,} runs × {scenario.reads:,} reads, {len(compared)} rules")
        sim = simulate(scenario, count, SEED + i, compared, keep_primary=runs.gbstats if i == 0 else 0)
        lines += _aa_rows(scenario, sim, compared)
        checked.add(verify(scenario, sim, compared, SEED + 100 + i))
        if i == 0:
            lines.append(_gbstats_aa_row(scenario, sim, checked))
    return lines


def _power_lines(runs: Runs, checked: Checked) -> list[tuple[Scenario, tuple[float, float], list[str]]]:
    powered = rules(primary_only=True)
    out = []
    for j, (scenario, goal) in enumerate(DESIGNS):
        progress(f"statistics: {scenario.name}: {runs.design:,} runs × {scenario.reads:,} reads, {len(powered)} rules")
        sim = simulate(scenario, runs.design, SEED + 10 + j, powered, keep_primary=runs.gbstats)
        lines = _power_rows(scenario, sim, powered, goal)
        checked.add(verify(scenario, sim, powered, SEED + 200 + j, per_rule=16))
        lines.append(_gbstats_power_row(scenario, goal, sim, checked))
        out.append((scenario, goal, lines))
    return out


def run(options: Options) -> str:
    """The Statistics section of docs/benchmarks.md: whole-rule A/A rates and power, current vs new rules."""
    runs = Runs(200, 100, 100, 100, 50) if options.quick else Runs(800, 500, 200, 250, 100)
    started = time.perf_counter()
    checked = Checked()
    aa_lines = _aa_lines(runs, checked)
    power_lines = _power_lines(runs, checked)
    elapsed = time.perf_counter() - started
    return _section(runs, elapsed, aa_lines, power_lines, checked)


def _power_block(scenario: Scenario, goal: tuple[float, float], design_runs: int, rows: list[str]) -> list[str]:
    min_power, max_ratio = goal
    return [
        f"### Power: {scenario.name}, {scenario.planned_n:,} planned per arm, true effect {scenario.effect}"
        f" ({design_runs} runs)",
        "",
        f"Goal: power ≥ {min_power} with median samples to decision ≤ {max_ratio:.2f}× the planned n."
        " *Power*: PROMOTE or REVIEW of the treatment (by the plan; over the 4 weeks). *Samples to decision*:"
        " units per arm at the first PROMOTE/REVIEW/ROLLBACK, or at the last read the rule makes (the plan for"
        " the new `fixed`/`obf`, 4 weeks otherwise) when it never decides. The whole rule needs every default"
        " guardrail *proven*: at these sizes the 0.5% error ceiling (its Clopper–Pearson bound needs ~1,500"
        " units with 0.2% errors) and the +1-point hallucination margin bind; the primary-rule rows drop the"
        " guardrails to show the sequential design alone.",
        "",
        "| rule | power by the plan | power over 4 weeks | false ROLLBACK | median n/arm at decision |"
        " median ÷ planned n | goal met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
    ]


def _section(
    runs: Runs,
    elapsed: float,
    aa_lines: list[str],
    power_lines: list[tuple[Scenario, tuple[float, float], list[str]]],
    checked: Checked,
) -> str:
    aa_runs, design_runs, seed = (runs.aa, runs.intents, runs.errors), runs.design, SEED
    checked_reads, disagree, notes = checked.reads, checked.disagreements, checked.notes
    sigma = math.sqrt(math.log(1 + COST_CV**2))
    lines = [
        "## Statistics",
        "",
        "Decisions of the **whole rule as used** by the scheduled analysis, by simulation (`kanaria_tools.bench.statistics`;"
        f" numpy seed {seed}; section wall time {elapsed:.0f} s). Traffic: **one unit per arm per 5-minute read**"
        f" (12 per arm per hour), read every 5 minutes for 4 weeks ({READS:,} reads, {READS:,} units per arm), so"
        " design 1 (2,000 per arm) reaches its plan after 6.9 days and design 2 (883) after 3.1 days, and the reads"
        " go on to 4× and 9× the plan. Every unit has every metric: quality ~ N(0.80, 0.15) (the primary metric,"
        f" mde 0.02), latency ~ lognormal(median {LATENCY_MEDIAN_MS:,.0f} ms, σ_log {LATENCY_SIGMA}) kept as the"
        f" aggregator's 4% histogram, cost ~ lognormal(mean ${COST_MEAN}, σ_log {sigma:.3f}), errors 0.2%,"
        " hallucinations 1%, safety filter 0.2% (both arms, unless stated); with intents each unit is"
        " product_search (30%), recommendation (30%, both revenue-critical) or manga_qa (40%). The experiment uses"
        " the **defaults**: α = 0.05, the five default guardrails (p99 ≤ 5,000 ms, error ≤ 0.5%, hallucination"
        " +1 point, safety filter +0.5 point, cost +50%), the default revenue-critical intents.",
        "",
        "- A rule's decision at a read is what `analyze_snapshot` returns for that read's snapshot, with the look"
        " history the previous read stored (the scheduled analysis's `looks`). To afford 8,064 reads × hundreds of"
        " runs, each rule is re-expressed on arrays; the replica is checked against the engine on sampled reads (the"
        " first decisions, the reads just before them, random reads): the *new* rules against this tree's engine,"
        " the *current* rules against the engine of commit c97cfe9 (main before issue #13, extracted with"
        f" `git archive` and run in a subprocess). **{checked_reads:,} reads checked, {disagree} disagreements.**",
        "- *current* rules keep testing after the planned sample (nothing ends the experiment); the *new* `fixed`"
        " and `obf` decide finally at the read that reaches it (the scheduled analysis then stores that decision"
        " and tests no more); `always_valid` reads on for the 4 weeks by design.",
        "- Rates are shares of runs in which the rule *ever* said PROMOTE/REVIEW or ROLLBACK; brackets are Wilson"
        " 95% intervals on the Monte-Carlo count. Goal (issue #13): PROMOTE-or-ROLLBACK ≤ α = 0.05 and ROLLBACK ≤"
        " α/2 = 0.025 over the whole 4 weeks.",
        "",
        f"### A/A: false decisions over 4 weeks of 5-minute reads ({aa_runs[0]:,} runs without intents,"
        f" {aa_runs[1]:,} with, {aa_runs[2]:,} with 1% errors)",
        "",
        "| scenario | rule | PROMOTE or ROLLBACK by the plan | … over 4 weeks | ROLLBACK over 4 weeks |"
        " PROMOTE/REVIEW over 4 weeks | goal met |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        *aa_lines,
        "",
    ]
    for scenario, goal, rows in power_lines:
        lines += _power_block(scenario, goal, design_runs, rows)
    lines += [f"- {note}" for note in notes[:12]]
    if len(notes) > 12:
        lines.append(f"- … {len(notes) - 12} more notes")
    return "\n".join(lines) + "\n"
