"""Bench section Rollout: how fast a faulty canary is rolled back, per fault type, and what `cdk synth` costs.

1. The shipped fault scenarios are run by the real local rehearsal, each as its own process
   (`kanaria rehearse NAME --plain --reports DIR`: its in-process moto server, its own free port, a real
   CDK deploy), two at a time by default. Each run's `result.json` gives, per rollout phase, the outcome against the
   expectation, the scenario-clock times of the fault and of the completed rollback, and what reacted (gates,
   alarms, the rollback function) and when. The section reads those; it measures nothing the rehearsal does not
   record itself, apart from each process's wall time.
2. The alarm windows that bound the detection time are read from the synthesized KanariaRollout template (the
   same definitions the rehearsal evaluates), the stage plans from the scenario files.
3. `cdk synth --quiet` wall time into a fresh temporary `--output` directory, without pip bundling
   (`-c kanaria:bundle=false`, what the rehearsal and the tests synthesize), median of three; then once with the
   bundling `make synth` does (pip into the layer assets; CDK skips it only when `asset.<source hash>` already
   exists in the output directory, so a fresh directory always bundles).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from kanaria_tools.bench.common import Options
from kanaria_tools.bench.rollout_alarms import AlarmWindow, alarm_table, alarm_windows, duration, md_cell
from kanaria_tools.bench.rollout_runs import (
    ROLLOUT_STACK,
    ScenarioRun,
    SynthResult,
    reports_folder,
    run_scenarios,
    time_synth,
)
from kanaria_tools.rehearsal.clock import fmt
from kanaria_tools.rehearsal.scenario import RolloutPhase, Scenario, load_scenario

# The gate thresholds the rehearsal adds to every stage unless a scenario overrides them (docs/rehearsal.md,
# "Scenario files"); copied here for the text only.
REHEARSAL_GATE_DEFAULTS = "max_error_rate 0.02, max_latency_p99_increase 1.0 (+100%), min_observations 30"


ROLLBACK_ALERT = re.compile(r"\[Kanaria\] ROLLBACK (?P<rollout>\S+) at (?P<stage>\S+) \((?P<trigger>[^)]+)\)")


@dataclass(frozen=True)
class FaultScenario:
    """A shipped scenario and the rollout phase of it whose fault this row measures."""

    fault: str
    scenario: str
    phase: str


# Longest first (measured ~2 min, 1.5 min, 1 min, 50 s, 50 s wall at the scenarios' own 60x): with two at a time
# the longest one starts first.
FAULT_SCENARIOS = (
    FaultScenario("latency regression (Bedrock cold start)", "canary-latency-regression", "cold"),
    FaultScenario("missing metrics", "missing-metrics", "missing-metrics"),
    FaultScenario("5xx error spike", "error-spike", "error-spike"),
    FaultScenario("Bedrock throttling", "throttling", "throttling"),
    FaultScenario("hallucination spike", "hallucination-spike", "hallucination-spike"),
    FaultScenario("intent-local regression (recommendation)", "intent-regression", "intent-regression"),
    FaultScenario(
        "5xx error spike with the rollback function failing", "rollback-function-failure", "rollback-function-failure"
    ),
)


QUICK_SCENARIOS = ("throttling", "hallucination-spike")


def offset(at: float, fault_at: float | None) -> str:
    """'+5m 28s' after the fault (or the scenario time when there is no fault)."""
    if fault_at is None:
        return f"T+{duration(at)}"
    return f"+{duration(at - fault_at)}" if at >= fault_at else f"-{duration(fault_at - at)}"


def fault_position(fault_at: float | None, period_s: int = 300) -> str:
    """'at T+00:08:52, 1m 08s before a 5-min alarm boundary': where the fault fell in the alarms' periods."""
    if fault_at is None:
        return ""
    to_boundary = (-fault_at) % period_s
    return f"at {fmt(fault_at)}, {duration(to_boundary)} before a {duration(period_s).replace('m 00s', '-min')} alarm boundary"


def rollback_trigger(alerts: Iterable[Mapping[str, Any]], started: float, ended: float) -> tuple[str, str] | None:
    """(trigger kind, stage) of the rollback alert the rollback function sent during the phase, if any."""
    for alert in alerts:
        match = ROLLBACK_ALERT.search(str(alert.get("subject", "")))
        if match and started <= float(alert.get("at", -1)) <= ended:
            return match["trigger"], match["stage"]
    return None


def reacting(phase: Mapping[str, Any], limit: int = 4) -> list[str]:
    """What reacted after the fault: failing or holding gates, alarms going to ALARM, the rollback function;
    each with its delay after the fault, in order, marked when it came after the rollback had completed."""
    fault_at = phase.get("fault_at")
    rolled = phase.get("rollback_completed_at")
    out = []
    for reaction in phase.get("reactions", []):
        at, kind, what = float(reaction["at"]), reaction["kind"], str(reaction["what"])
        if fault_at is not None and at < fault_at:
            continue
        if kind == "gate":
            match = re.match(r"gate (\w+) -> (\w+): (.*)", what, re.S)
            if not match or match[1] == "PASS":
                continue  # a passing gate (e.g. the state machine noticing an alarm's rollback) reacted to nothing
            reasons = match[3].split("; ")
            text = f"gate {match[1]} → {match[2]} ({reasons[0].strip()}{'; …' if len(reasons) > 1 else ''})"
        elif kind in {"alarm", "composite"} and what.split(" -> ")[1:2] == ["ALARM"]:
            target = what.split(" -> ", 2)[2] if what.count(" -> ") >= 2 else ""
            text = f"{kind} `{what.split(' ', 1)[0]}` ALARM" + (f" → {target}" if target else "")
        elif kind == "rollback":
            text = "reconciler done (100/0)" if what.startswith("reconciler") else "rollback function done (100/0)"
        else:
            continue
        after = kind != "rollback" and rolled is not None and at > rolled
        out.append(f"{text} {offset(at, fault_at)}" + (" (after the rollback)" if after else ""))
    return out[:limit]


def phase_row(
    case: FaultScenario,
    rollout: RolloutPhase | None,
    result: Mapping[str, Any] | None,
    wall_s: float | None,
    failure: str | None = None,
) -> str:
    """One markdown table row: fault | scenario | expected | outcome | reacted | fault → rollback | wall."""
    fault = fault_text(rollout)
    label = f"{case.fault}<br>{fault}" if fault else case.fault
    where = f"`{case.scenario}`" + (f" (rollout `{case.phase}`)" if case.phase != case.scenario else "")
    wall = "-" if wall_s is None else f"{wall_s:.0f} s"
    phase = next((p for p in (result or {}).get("phases", []) if p.get("name") == case.phase), None)
    if phase is None:
        why = failure or (result or {}).get("error") or f"no phase `{case.phase}` in result.json"
        expected = rollout.expect if rollout else "?"
        return f"| {label} | {where} | {expected} | **no result**: {md_cell(str(why))[:300]} | - | - | {wall} |"
    assert result is not None
    position = fault_position(phase.get("fault_at"))
    if position:
        label += f"<br>{position}"
    if result.get("deploy_seconds") is not None and wall_s is not None:
        wall += f" (deploy {float(result['deploy_seconds']):.0f} s)"
    ok = bool(phase.get("ok"))
    outcome = f"{phase.get('outcome')} (as expected)" if ok else f"**{phase.get('outcome')}: NOT as expected**"
    trigger = rollback_trigger(result.get("alerts", []), float(phase["started_at"]), float(phase["ended_at"]))
    reacted = reacting(phase)
    if trigger:
        reacted.insert(0, f"rollback trigger **{trigger[0]}** at {trigger[1]}")
    seconds = phase.get("fault_to_rollback_seconds")
    to_rollback = f"**{duration(seconds)}**" if seconds is not None else "no rollback"
    return (
        f"| {label} | {where} | {phase.get('expected') or 'any'} | {outcome} | {md_cell('; '.join(reacted)) or '-'} |"
        f" {to_rollback} | {wall} |"
    )


def phase_ok(result: Mapping[str, Any] | None, name: str) -> bool:
    """Whether the run has that phase and it ended as expected."""
    return any(p.get("name") == name and p.get("ok") for p in (result or {}).get("phases", []))


def rollout_phase(scenario: Scenario, name: str) -> RolloutPhase | None:
    """The scenario's rollout phase of that name."""
    return next((r for r in scenario.rollouts if r.name == name), None)


def fault_text(rollout: RolloutPhase | None) -> str:
    """'error_spike 6% on the canary from +28 min' for the rollout's faults."""
    parts = []
    for fault in rollout.faults if rollout else ():
        what: str = fault.kind
        if fault.rate is not None:
            what += f" {fault.rate * 100:g}%"
        if fault.latency_factor is not None:
            what += f" {fault.latency_factor:g}× latency"
            if fault.warm_after_requests:
                what += f" fading over {fault.warm_after_requests} requests"
        what += f" on the {fault.target} from +{fault.at_minute:g} min"
        if fault.duration_minutes:
            what += f" for {fault.duration_minutes:g} min"
        parts.append(what)
    return "; ".join(parts)


def stage_plan(rollout: RolloutPhase | None) -> str:
    """'5% 20 min → 25% 20 min → 50% 15 min, checks every 5 min, gates: …' (rehearsal: hold bound = stage minimum)."""
    if rollout is None:
        return "?"
    stages = " → ".join(f"{s.percent}% {s.minutes:g} min" for s in rollout.stages)
    text = f"{stages} → approval → 100%, gate checks every {rollout.check_minutes:g} min"
    if rollout.gates:
        text += ", gates " + ", ".join(
            f"{k} {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}"
            for k, v in rollout.gates.items()
        )
    if rollout.warmup_requests:
        text += f", {rollout.warmup_requests} warm-up requests"
    return text


def median_text(times: Sequence[float]) -> str:
    """'12.1 s (median of 3: 12.1, 12.1, 13.1)'."""
    if not times:
        return "-"
    each = ", ".join(f"{t:.1f}" for t in times)
    return f"{statistics.median(times):.1f} s" + (f" (median of {len(times)}: {each} s)" if len(times) > 1 else "")


# ---------------------------------------------------------------- the section


@dataclass
class RolloutRun:
    """What the Rollout section ran: the synths, the rehearsals, their wall times."""

    jobs: int
    speed: float | None
    cases: list[FaultScenario]
    rollouts: dict[FaultScenario, RolloutPhase | None]
    plain: SynthResult
    bundled: SynthResult | None
    synth_s: float
    runs: dict[str, ScenarioRun]
    scenarios_s: float
    started: float


def measure(options: Options) -> RolloutRun:
    """Synthesize (timed) and run the fault scenarios' rehearsals."""
    quick, jobs, speed = options.quick, max(1, options.rollout_jobs), options.rollout_speed
    started = time.perf_counter()
    cases = [c for c in FAULT_SCENARIOS if not quick or c.scenario in QUICK_SCENARIOS]
    rollouts = {c: rollout_phase(load_scenario(c.scenario), c.phase) for c in FAULT_SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="kanaria-bench-synth-") as tmp:
        work = Path(tmp)
        plain = time_synth(1 if quick else 3, bundle=False, work=work)
        bundled = None if quick else time_synth(1, bundle=True, work=work)
    synth_s = time.perf_counter() - started
    reports = reports_folder()
    reports.mkdir(parents=True, exist_ok=True)
    scenarios_started = time.perf_counter()
    runs = run_scenarios([c.scenario for c in cases], jobs, reports, speed)
    scenarios_s = time.perf_counter() - scenarios_started
    return RolloutRun(jobs, speed, cases, rollouts, plain, bundled, synth_s, runs, scenarios_s, started)


def _rows(m: RolloutRun) -> tuple[list[str], list[str], set[Any]]:
    """The table's rows, the other phases of the same runs, the speeds the runs reported."""
    rollouts, runs = m.rollouts, m.runs
    rows = []
    extra_phases = []
    speeds = set()
    for case in FAULT_SCENARIOS:
        rollout = rollouts[case]
        run_ = runs.get(case.scenario)
        if run_ is None:
            rows.append(
                f"| {case.fault} | `{case.scenario}` | {rollout.expect if rollout else '?'} |"
                " not run (`--quick`) | - | - | - |"
            )
            continue
        rows.append(phase_row(case, rollout, run_.result, run_.wall_s, run_.failure))
        if run_.result:
            speeds.add(run_.result.get("speed"))
            for phase in run_.result.get("phases", []):
                if phase.get("name") != case.phase:
                    verdict = "as expected" if phase.get("ok") else "**NOT as expected**"
                    extra_phases.append(
                        f"`{case.scenario}` {phase.get('kind')} `{phase.get('name')}`:"
                        f" {phase.get('outcome')} (expected {phase.get('expected') or 'any'}, {verdict})"
                    )
    return rows, extra_phases, speeds


def _how_to_read(plans: list[str], windows: list[AlarmWindow]) -> list[str]:
    return [
        "- *fault → rollback complete* runs from the fault's start (the scenario's `at_minute` after the rollout"
        " started; the cold start is there from minute 0, before the 5% stage gets any traffic) to the rollback"
        " function having restored the listener to primary 100 / canary 0. It is bounded below by whichever"
        " detector is faster for that fault, plus the rollback itself:",
        "- *stage gates* (`kanaria.logic.rollout_steps`, run by the state machine) read the metrics **since the stage"
        " started**, at every check interval: a fault late in a stage is diluted by the stage's healthy minutes, so"
        " the gate needs more than one check; FAIL rolls back at once (`gate_failed`); INCONCLUSIVE (e.g. no"
        " datapoints: missing data is not zero) holds until the hold bound, in the rehearsal the stage's own"
        " minimum, then rolls back (`hold_exceeded`). Stage plans (the rehearsal adds the gates"
        f" {REHEARSAL_GATE_DEFAULTS} unless the scenario overrides them):",
        *[f"  {p}" for p in plans],
        "- *alarms* are evaluated every scenario minute on complete periods aligned to multiples of the period"
        " (the scenario clock's, shown as the fault's distance to the next 5-minute boundary); the critical"
        " composite's action invokes the rollback function asynchronously (`alarm` trigger), the warning composite"
        f" only notifies. Windows of the synthesized `{ROLLOUT_STACK}` template:",
        "",
        *(alarm_table(windows) if windows else ["(not available: the synth failed)"]),
        "",
        "  The first period containing the fault ends at the next boundary, 0 to 1 period after the fault; it"
        " holds healthy minutes too, so it breaches only when the fault is strong or long enough within it (and, for"
        " the event rates, reaches the 5-event minimum). An M-of-N alarm therefore goes to ALARM (M - 1) periods"
        " after that boundary when the partial period breaches, M periods after it when only full periods do. E.g."
        " the 5xx-rate and throttling alarms (1 of 1 five-minute windows) can fire as early as the next boundary but"
        " are only sure to by 5-10 minutes after the fault; the p99 alarm (2 of 3) needs 5-15 minutes. Each scenario"
        " runs once here, so a figure can land on either side of that step from run to run (the traffic is seeded,"
        " but wall-clock jitter moves requests between minutes), and a gate check due earlier can win the race.",
        "- Resolution: the rehearsal polls every ≤ 0.5 wall s (30 scenario s at 60×) and every SDK call is a round"
        " trip into moto in the same process: a wall second of emulator latency is a scenario minute. The gap"
        " between an alarm transition and the completed rollback (one asynchronous Lambda invocation, the listener"
        " update) is that latency, not AWS's. A gate's time is when the deployed rollout-steps function returned"
        " its decision (the rehearsal's status poll sees it up to 30 scenario s later).",
        "",
    ]


def _synth_lines(m: RolloutRun) -> list[str]:
    plain, bundled = m.plain, m.bundled
    lines = [
        "**`cdk synth` wall time** (`node_modules/.bin/cdk synth --quiet` into a fresh temporary `--output`"
        " directory; every run is a new CDK CLI process starting the Python app and its jsii Node runtime, so each"
        " figure includes that start-up, and the app's cdk-nag checks):",
        "",
        "| synth | wall |",
        "| --- | ---: |",
        f"| `-c kanaria:bundle=false` (rehearsal, tests) | {median_text(plain.times) if not plain.failure else 'failed: ' + md_cell(plain.failure)} |",
    ]
    if bundled is None:
        lines.append("| with pip bundling of the layers (`make synth`) | not run (`--quick`) |")
    elif bundled.failure:
        lines.append(
            f"| with pip bundling of the layers (`make synth`) | **failed**: {md_cell(bundled.failure)[:400]} |"
        )
    else:
        lines.append(
            f"| with pip bundling of the layers (`make synth`), fresh output directory | {median_text(bundled.times)} |"
        )
        if bundled.cached_s is not None:
            lines.append(
                f"| with bundling, again into the same directory (bundled assets present, pip skipped) |"
                f" {bundled.cached_s:.1f} s |"
            )
    lines += [
        "",
        "- Bundling (`infra/constructs/bundling.py`) runs `pip install --platform manylinux2014_x86_64"
        " --platform manylinux_2_28_x86_64 --only-binary=:all: --python-version 3.14` for each layer (from the"
        " package index pip is configured with). CDK hashes the layer's source directory and"
        " skips the bundling only when `asset.<hash>` is already in the output directory, so it is cached between"
        " synths into the same `cdk.out` but not into a fresh directory (downloads every time).",
    ]
    if bundled is not None and bundled.layer_mb:
        lines.append(
            "- Bundled layer assets: " + ", ".join(f"{k}… {v:.0f} MB" for k, v in bundled.layer_mb.items()) + "."
        )
    lines += [
        f"- Synth section wall time {m.synth_s:.0f} s; section total {time.perf_counter() - m.started:.0f} s.",
        "",
    ]
    return lines


def render(m: RolloutRun) -> str:
    """The section's markdown."""
    jobs, speed, scenarios_s = m.jobs, m.speed, m.scenarios_s
    rows, extra_phases, speeds = _rows(m)
    failures = [c for c in m.cases if not phase_ok(m.runs[c.scenario].result, c.phase)]
    speed_text = ", ".join(f"{s:g}×" for s in sorted(s for s in speeds if s)) or "?"
    plans = [
        f"- `{c.scenario}`{'' if c.phase == c.scenario else f' `{c.phase}`'}: {stage_plan(m.rollouts[c])}"
        for c in FAULT_SCENARIOS
    ]
    windows = alarm_windows(m.plain.template) if m.plain.template else []
    lines = [
        "## Rollout",
        "",
        f"Time from fault to completed rollback, per fault type: the shipped fault scenarios run by the real local"
        f" rehearsal (`kanaria rehearse NAME --plain --reports DIR`, one process each: moto in process on its own free"
        f" port, a real CDK deploy, the deployed state machine, gates and rollback function, the alarms evaluated by"
        f" the rehearsal), {jobs} at a time, at the scenarios' own clock ({speed_text} scenario time per wall"
        f" second{'; `--speed ' + format(speed, 'g') + '` forced' if speed else ''}; each scenario once)."
        f" Everything in the table but the process wall time is read from each run's `result.json` (reports kept in"
        f" `reports/bench-rollout/<scenario>/`); scenario part wall time {scenarios_s:.0f} s.",
        "",
        "| fault | scenario | expected | outcome | what reacted (rollback trigger; delay after the fault) |"
        " fault → rollback complete (scenario clock) | wall (process) |",
        "| --- | --- | --- | --- | --- | ---: | ---: |",
        *rows,
        "",
    ]
    if failures:
        lines += [
            f"**{len(failures)} scenario(s) did not end as expected:** "
            + ", ".join(f"`{c.scenario}`" for c in failures)
            + " (see their report.md).",
            "",
        ]
    if extra_phases:
        lines += ["Other phases of the same runs: " + "; ".join(extra_phases) + ".", ""]
    lines += ["How to read these numbers:", "", *_how_to_read(plans, windows), *_synth_lines(m)]
    return "\n".join(lines)


def run(options: Options) -> str:
    """The Rollout section of docs/benchmarks.md."""
    return render(measure(options))
