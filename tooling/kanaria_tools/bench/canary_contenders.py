"""The canary deciders compared by `make bench` (Canary judge section), each reading a simulated rollout minute
by minute (`canary_sim`) and saying when it would roll back.

* KanariaJudge: the real kanaria.canary.judge (start / new_stage / observe / judge every minute); it also
  drives the rollout's schedule (PASS at a stage's minimum advances, CONTINUE holds up to the minimum again,
  then the rollout is rolled back), as the state machine does.
* TodaysRules (in `old_rules`): the rules before the judge (lambdas/kanaria/domain/rollout.py evaluate_gates + next_step and the
  alarms of infra/constructs/canary_alarms.py before the one-minute alarms): stage gates on everything since the
  stage started, checked every 5 or 15 minutes (max_error_rate 0.02, p99 at most +100%, hallucinations at most
  +1 point over the primary, min_observations 30 per side; a warning alarm holds), the critical 5-minute alarms
  (5xx > 2% and throttles > 5% of the canary's requests with >= 20 requests and >= 5 events, 1 of 1 window;
  p99 > 2x the primary's in 2 of 3 windows with >= 20 samples) that roll back at once, and the warning alarms
  (hallucinations > 3% over 15 minutes with >= 5 events; mean quality > 5% below the primary's in 2 of 2
  15-minute windows). Alarm windows are aligned to the rollout's minute 0.
* KayentaStyle: every 10 minutes, on that window's per-minute rates of each metric (all intents), a one-sided
  Mann-Whitney test canary > primary at p < 0.01 (the lower end of Kayenta's 98% interval above zero); the
  window fails when a critical metric (5xx, slow responses) fails or the score (share of metrics passing) falls below 75.
  Kayenta's IQR outlier removal and its effect margin (25% of the Hodges-Lehmann estimate) are left out.
* FlaggerStyle: every minute (Flagger/Argo analysis interval 1m), thresholds on the canary's own minute: 5xx
  > 1%, throttles > 5%, hallucinations > 5%, p99 > 2x the primary's p99 of that minute; the rollout rolls back at
  the fifth failed interval (`threshold: 5` of Flagger's documented example, counted over the whole analysis;
  with 3, one 5xx among the 5% stage's ~30 requests a minute fails a minute often enough to roll back 22% of
  identical candidates).
* Oracle: a CUSUM of the log-likelihood ratio of the faulty streams' canary counts with their true rates
  before and after the fault, its threshold calibrated to the same false-alarm probability over a healthy
  rollout (canary_sim.oracle_threshold).

observe(minute, elapsed, minimum) returns None, or why the decider rolls back now: "harm" (it saw harm) or
"hold" (a stage stayed inconclusive up to its hold bound); `detail` says which rule decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats

from kanaria.canary import judge as J
from kanaria_tools.bench import canary_sim as sim
from kanaria_tools.bench.old_rules import TodaysRules

T0 = datetime(2026, 12, 5, tzinfo=timezone.utc)
SETTINGS = J.JudgeSettings(settle_seconds=0)  # the simulation has no ingestion delay
MIN_OBSERVATIONS = 200  # StageGates.min_observations' default, which the rollout passes to the judge
HORIZON = J.horizon_periods(SETTINGS, (2 * 60 * minutes for _, minutes in sim.STAGES))
_METRICS = [J.Metric(m) for m in sim.METRICS]


def judge_minute(minute: sim.Minute, settings: J.JudgeSettings = SETTINGS) -> J.MinuteCounts:
    """A simulated minute as the judge reads it: every judged metric per intent and overall."""
    counts = minute.judge_counts()
    streams = {}
    for m, metric in enumerate(_METRICS):
        if metric not in settings.metrics:
            continue
        for i, intent in enumerate(sim.INTENTS):
            x_c, n_c, x_p, n_p = counts[m, i].tolist()
            streams[J.stream_key(metric, intent)] = J.Counts(
                canary_events=x_c, canary_trials=n_c, primary_events=x_p, primary_trials=n_p
            )
        x_c, n_c, x_p, n_p = counts[m].sum(axis=0).tolist()
        streams[J.stream_key(metric, J.OVERALL)] = J.Counts(
            canary_events=x_c, canary_trials=n_c, primary_events=x_p, primary_trials=n_p
        )
    return J.MinuteCounts(minute=T0 + timedelta(minutes=minute.index), streams=streams)


class KanariaJudge:
    """kanaria.canary.judge read every minute; `verdict` drives the rollout's schedule."""

    name = "Kanaria judge"

    def __init__(
        self,
        settings: J.JudgeSettings = SETTINGS,
        min_observations: int = MIN_OBSERVATIONS,
        holds: bool = True,
        name: str | None = None,
    ):
        self.settings, self.min_observations, self.holds = settings, min_observations, holds
        self.name = name or self.name
        self.state = J.start(settings, T0, HORIZON)
        self.stage = 0
        self.verdict = J.Verdict.CONTINUE
        self.judgement: J.Judgement | None = None
        self.detail = ""

    def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
        if minute.stage != self.stage:
            self.state, self.stage = J.new_stage(self.state), minute.stage
        until = T0 + timedelta(minutes=minute.index + 1)
        self.state = J.observe(self.settings, self.state, [judge_minute(minute, self.settings)], until)
        self.judgement = J.judge(self.settings, self.state, self.min_observations)
        self.verdict = self.judgement.verdict
        if self.verdict is J.Verdict.ROLLBACK:
            first = self.judgement.findings[0]
            self.detail = f"harm on {first.metric.value}@{first.intent}"
            return "harm"
        if self.holds and self.verdict is not J.Verdict.PASS and elapsed >= 2 * minimum:
            first = self.judgement.findings[0]
            self.detail = f"held in stage {self.stage + 1} on {first.metric.value}@{first.intent}"
            return "hold"
        return None


class KayentaStyle:
    """Mann-Whitney per metric on fixed 10-minute windows of per-minute rates; a failing window rolls back."""

    name = "Kayenta-style (Mann-Whitney, 10-min windows)"
    WINDOW, P_VALUE, MARGINAL_SCORE, CRITICAL = 10, 0.01, 75.0, ("errors", "slow_responses")

    def __init__(self) -> None:
        self.window: list[sim.Minute] = []
        self.detail = ""

    def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
        self.window.append(minute)
        if len(self.window) < self.WINDOW:
            return None
        window, self.window = self.window, []
        failed = []
        for metric in sim.METRICS:
            rows = [(sim.overall_counts(m.canary, metric), sim.overall_counts(m.primary, metric)) for m in window]
            canary = [x / n for (x, n), _ in rows if n > 0]
            primary = [x / n for _, (x, n) in rows if n > 0]
            if len(canary) < 3 or len(primary) < 3 or len(set(canary) | set(primary)) == 1:
                continue  # no data, or identical values: Kayenta's Pass
            if stats.mannwhitneyu(canary, primary, alternative="greater").pvalue < self.P_VALUE:
                failed.append(metric)
        score = 100.0 * (len(sim.METRICS) - len(failed)) / len(sim.METRICS)
        self.detail = ", ".join(failed)
        return "harm" if set(failed) & set(self.CRITICAL) or score < self.MARGINAL_SCORE else None


class FlaggerStyle:
    """Per-minute thresholds on the canary's own rates; the fifth failed minute rolls back."""

    name = "Argo/Flagger-style (1-min thresholds, 5 failures)"
    LIMITS = (("errors", 0.01), ("throttles", 0.05), ("hallucinations", 0.05))
    FAILURE_LIMIT = 5

    def __init__(self) -> None:
        self.failures = 0
        self.detail = ""

    def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
        n = minute.canary.requests
        if n == 0:
            return None
        failed = [metric for metric, limit in self.LIMITS if sim.overall_counts(minute.canary, metric)[0] / n > limit]
        canary, primary = sim.p99(minute.canary.latencies), sim.p99(minute.primary.latencies)
        if canary is not None and primary is not None and canary > 2.0 * primary:
            failed.append("p99")
        if failed:
            self.failures += 1
            self.detail = ", ".join(failed)
        return "harm" if self.failures >= self.FAILURE_LIMIT else None


class Oracle:
    """CUSUM on the faulty streams' canary counts, knowing their rates before and after the fault."""

    name = "oracle CUSUM"

    def __init__(self, candidate: sim.Candidate, threshold: float):
        self.candidate, self.threshold = candidate, threshold
        self.streams = sim.oracle_streams(candidate)
        self.intents = np.array([i in candidate.faulty_intents() for i in sim.INTENTS])
        self.cusum = 0.0
        self.served = 0  # canary requests so far (a cold start fades with them)
        self.detail = ""

    def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
        llr = 0.0
        for s in self.streams:
            events, trials = minute.canary.counts[sim.M[s.metric]][self.intents].sum(axis=0).tolist()
            after = None
            if self.candidate.warm_requests:
                after = float(
                    sim.cold_start_slow_rate(self.candidate, np.array(float(self.served)), np.array(float(trials)))
                )
            llr += float(sim.oracle_llr(s, np.array(events), np.array(trials), after))
        self.served += minute.canary.requests
        self.cusum = max(0.0, self.cusum + llr)
        return "harm" if self.cusum > self.threshold else None


def faulty_streams_only(candidate: sim.Candidate) -> KanariaJudge:
    """Diagnostic: the judge's statistic on the fault's own streams (its metrics; its intents if it is
    intent-local, else overall) with the whole alpha: what the judge would do if it knew where to look."""
    metrics = {sim.DRIVES[name] for name in candidate.fault}
    local = candidate.intents is not None
    settings = J.JudgeSettings(
        settle_seconds=0,
        metrics={m: None for m in sim.METRICS if m not in metrics},
        intents={i: 1.0 for i in candidate.intents or ()} if local else {"_none": 1.0},
        critical_intents=(),
        overall_share=0.001 if local else 0.999,
    )
    return KanariaJudge(settings, holds=False, name="judge statistic on the faulty streams only (diagnostic)")


def contenders() -> list:
    """A fresh set of the compared deciders (the judge first: it drives the schedule)."""
    return [KanariaJudge(), TodaysRules(5), TodaysRules(15), KayentaStyle(), FlaggerStyle()]


@dataclass
class Rollout:
    """What happened in one simulated rollout: each decider's rollback (minute index, "harm" | "hold"), the
    affected canary requests of every minute (exposure), and how long the judge kept each stage."""

    fault_start: int | None
    decisions: dict[str, tuple[int, str, str]]
    affected: list[int]
    stage_minutes: list[int]
    completed: bool  # the judge passed every stage


def run_rollout(
    rng: np.random.Generator,
    candidate: sim.Candidate,
    fault_start: int | None,
    deciders: list,
    stop_when_decided: bool = True,
) -> Rollout:
    """One rollout. The first decider (the judge; any decider without a `verdict` gives every stage its minimum)
    drives the schedule while it runs: a stage advances when it
    passes at or after the minimum, holds while it continues, and the rollout ends when it rolls back. After
    that the other deciders keep reading, every remaining stage at its minimum, so that each can be timed on
    the same data. Stops early once every decider has decided (`stop_when_decided`)."""
    traffic = sim.Traffic(rng, candidate, fault_start if fault_start is not None else 0)
    driver = deciders[0]
    decisions: dict[str, tuple[int, str, str]] = {}
    affected: list[int] = []
    stage_minutes: list[int] = []
    for stage, (percent, minimum) in enumerate(sim.STAGES):
        elapsed = 0
        while True:
            minute = traffic.next_minute(stage, percent)
            elapsed += 1
            affected.append(minute.affected_canary_requests)
            for decider in deciders:
                if decider.name in decisions:
                    continue
                kind = decider.observe(minute, elapsed, minimum)
                if kind is not None:
                    decisions[decider.name] = (minute.index, kind, decider.detail)
            if stop_when_decided and len(decisions) == len(deciders):
                stage_minutes.append(elapsed)
                return Rollout(fault_start, decisions, affected, stage_minutes, False)
            verdict = getattr(driver, "verdict", J.Verdict.PASS)  # a driver without verdicts: fixed schedule
            if elapsed >= minimum and (driver.name in decisions or verdict is J.Verdict.PASS):
                break
        stage_minutes.append(elapsed)
    return Rollout(fault_start, decisions, affected, stage_minutes, driver.name not in decisions)
