"""The canary simulation (kanaria_tools.bench.canary_sim) and the real judge's rates on it (kanaria_tools.bench.canary_contenders):
the model matches its definitions, the oracle's threshold gives its false-alarm rate, A/A false rollbacks stay
within alpha, faults are caught after they start and never before. Fixed seeds; sizes that fail a wrong
implementation; the whole module runs in about half a minute."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kanaria_tools.bench import canary_contenders as C
from kanaria_tools.bench import canary_sim as sim


def _rates(effects: sim.Effects, minutes: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    total = np.zeros((len(sim.METRICS), 2))
    for _ in range(minutes):
        requests = rng.poisson(sim.REQUESTS_PER_MINUTE * sim.SHARES)
        side = sim.draw_side(rng, requests, sim.effect_table([effects] * len(sim.INTENTS)))
        total += side.counts.sum(axis=1)
    return {m: total[i, 0] / total[i, 1] for i, m in enumerate(sim.METRICS)}


def test_a_healthy_side_draws_the_stated_rates():
    # Given 400 minutes of one healthy side (240,000 requests): every judged rate within 4 standard errors.
    observed = _rates(sim.HEALTHY, 400, seed=1)
    assert sim.BASE["slow_responses"] == pytest.approx(0.05) and sim.BASE["poor_quality"] == pytest.approx(0.10)
    assert sim.BASE["errors"] == pytest.approx(0.001, rel=0.01) and sim.BASE["throttles"] == 0.002
    for metric, expected in sim.BASE.items():
        trials = 240_000 * (0.2 if metric == "dissatisfied" else 1.0)
        assert abs(observed[metric] - expected) < 4 * np.sqrt(expected * (1 - expected) / trials), metric


def test_candidates_are_built_to_their_rates_and_faults_move_what_they_move_in_the_rehearsal():
    ratio = sim.with_rates({m: 1.25 * r for m, r in sim.BASE.items()})
    assert sim.marginal_rates(ratio) == pytest.approx({m: 1.25 * r for m, r in sim.BASE.items()})
    only_errors = sim.marginal_rates(sim.with_rates({"errors": 0.011}))
    assert only_errors["errors"] == pytest.approx(0.011)
    assert only_errors["slow_responses"] == pytest.approx(0.05) and only_errors["poor_quality"] == pytest.approx(
        0.1, rel=1e-3
    )
    # A throttled call is a fast poor fallback; a hallucination loses 0.3 quality: both raise poor quality.
    assert sim.marginal_rates(sim.Effects(throttle=0.12))["poor_quality"] > 0.19
    assert sim.marginal_rates(sim.Effects(hallucination=0.09))["poor_quality"] > 0.15
    assert sim.marginal_rates(sim.Effects(quality=0.55))["poor_quality"] > 0.9
    simulated = _rates(sim.with_rates({"errors": 0.011}), 100, seed=2)
    assert simulated["errors"] == pytest.approx(0.011, abs=4 * np.sqrt(0.011 / 60_000))


def test_a_fault_touches_only_its_intents_from_its_start_and_a_cold_start_fades():
    rng = np.random.default_rng(3)
    fault = sim.Candidate("rec", fault={"error": 0.5}, intents=("recommendation",))
    traffic = sim.Traffic(rng, fault, fault_start=3)
    minutes = [traffic.next_minute(0, 50) for _ in range(6)]
    errors = [m.canary.counts[sim.M["errors"]] for m in minutes]
    assert all(e[:, 0].sum() <= 3 for e in errors[:3])  # healthy before minute 3 (0.1%)
    assert all(e[0, 0] > 0.3 * e[0, 1] for e in errors[3:])  # recommendation at 50%
    assert all(e[1:, 0].sum() <= 3 for e in errors[3:])  # the other intents untouched
    assert [m.affected_canary_requests > 0 for m in minutes] == [False] * 3 + [True] * 3
    cold = sim.Candidate("cold", fault={"latency_factor": 5.0}, start=0, warm_requests=900)
    traffic = sim.Traffic(rng, cold, 0)
    slow = [traffic.next_minute(0, 50).canary.counts[sim.M["slow_responses"]].sum(axis=0) for _ in range(6)]
    assert slow[0][0] / slow[0][1] > 0.5 and slow[-1][0] / slow[-1][1] < 0.12  # warm after ~900 requests


def test_the_oracle_threshold_gives_its_false_alarm_rate():
    # Given a threshold calibrated at 5% on 4,000 healthy rollouts, 4,000 fresh ones alarm in 5% +- 1.1 points
    # (99.9% binomial band: 3.1 standard errors of 0.34 points, plus the calibration's own error).
    fault = sim.Candidate("errors", fault={"error": 0.06})
    threshold, achieved = sim.oracle_threshold(sim.oracle_peaks(np.random.default_rng(4), fault, 4000), 0.05)
    assert achieved == pytest.approx(0.05, abs=0.002)
    fresh = sim.oracle_peaks(np.random.default_rng(5), fault, 4000)
    assert abs(np.mean(fresh > threshold) - 0.05) < 0.011
    # The oracle reading simulated rollouts alarms as its (vectorised) calibration says: at 20%, 150 rollouts
    # alarm 30 times on average, 99.9% binomial band [15, 47].
    threshold, _ = sim.oracle_threshold(sim.oracle_peaks(np.random.default_rng(6), fault, 4000), 0.20)
    rng = np.random.default_rng(7)
    alarms = sum(
        bool(C.run_rollout(rng, sim.Candidate("A/A"), None, [C.Oracle(fault, threshold)]).decisions) for _ in range(150)
    )
    assert 15 <= alarms <= 47


def test_the_judge_rolls_back_at_most_alpha_of_identical_rollouts():
    # 300 A/A rollouts through the real judge, every minute, with its own stage progression. At the promised
    # alpha = 1%, P(X >= 9 | Binomial(300, 1%)) = 0.4%: a correct judge passes this (seeded) check with 99.6%
    # certainty, and one rolling back 5% of healthy rollouts fails it with 97% (P(X <= 8 | 300, 5%) = 3.4%).
    assert stats.binom.sf(8, 300, 0.01) < 0.005 and stats.binom.cdf(8, 300, 0.05) < 0.035
    rng = np.random.default_rng(7)
    harm = hold = 0
    for _ in range(300):
        rollout = C.run_rollout(rng, sim.Candidate("A/A"), None, [C.KanariaJudge()])
        kind = rollout.decisions.get(C.KanariaJudge.name, (0, "", ""))[1]
        harm += kind == "harm"
        hold += kind == "hold"
    assert harm + hold <= 8, (harm, hold)


# fault -> (candidate, largest median delay, largest delay) in minutes of faulty data, 50 rollouts each
FAULTS = {
    "5xx 6%": (sim.Candidate("5xx", fault={"error": 0.06}), 3, 12),
    "throttling 12%": (sim.Candidate("throttling", fault={"throttle": 0.12}), 3, 6),
    "cold start": (sim.Candidate("cold", fault={"latency_factor": 5.0}, start=0, warm_requests=900), 1, 2),
    "recommendation 7% 5xx, quality 0.55": (
        sim.Candidate("rec", fault={"error": 0.07, "quality": 0.55}, intents=("recommendation",)),
        3,
        8,
    ),
}


@pytest.mark.parametrize("name", FAULTS)
def test_the_judge_detects_a_fault_after_it_starts_and_never_before(name):
    # 50 rollouts each, the fault starting at a random minute of [0, 45) (the cold start at 0, as shipped): every
    # one rolled back for harm, at or after the fault's first minute, within the stated minutes of faulty data
    # (a fault starting in the 5% stage takes longest: ~1.8 bad canary responses a minute for a 6% 5xx spike).
    candidate, median, longest = FAULTS[name]
    rng = np.random.default_rng(8)
    delays = []
    for _ in range(50):
        start = candidate.start if candidate.start is not None else int(rng.integers(0, 45))
        rollout = C.run_rollout(rng, candidate, start, [C.KanariaJudge()])
        minute, kind, detail = rollout.decisions[C.KanariaJudge.name]
        assert kind == "harm" and minute >= start, (start, minute, detail)
        delays.append(minute + 1 - start)
    assert np.median(delays) <= median and max(delays) <= longest, sorted(delays)


def test_the_judge_drives_the_schedule_and_the_other_deciders_read_the_same_minutes():
    rng = np.random.default_rng(9)
    seen: dict[str, list[int]] = {}

    class Recorder:
        def __init__(self, name: str):
            self.name, self.detail = name, ""
            seen[name] = []

        def observe(self, minute: sim.Minute, elapsed: int, minimum: int) -> str | None:
            seen[self.name].append(int(minute.judge_counts().sum()))
            return None

    rollout = C.run_rollout(
        rng, sim.Candidate("A/A"), None, [C.KanariaJudge(), Recorder("a"), Recorder("b")], stop_when_decided=False
    )
    assert rollout.completed and rollout.stage_minutes == [m for _, m in sim.STAGES]
    assert seen["a"] == seen["b"] and len(seen["a"]) == sim.minutes_total()
