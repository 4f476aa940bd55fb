"""Simulated canary rollouts for the judge's benchmark and tests (pure numpy, no emulator, no AWS).

Traffic as in the local rehearsal: 600 requests a minute, six intents (recommendation 24%, product_search 20%,
manga_qa 18%, order_status 16%, shipping_info 12%, chitchat 10%), Poisson requests per minute and intent, each
sent to the canary with the stage's probability. Requests are independent draws: real traffic is clustered by
session (the ALB's target-group stickiness keeps a session on one side), which would make every count
overdispersed; the judge assumes independent requests too.

Each request's outcome is drawn as the rehearsal's ResponseModel draws it (kanaria_tools.rehearsal.traffic):
throttled (answered fast with a poor fallback, quality ~0.35), else a 5xx, else an answer that may be a
hallucination (its quality 0.3 lower); latency lognormal (median 1250 ms, p99 3000 ms) times the side's latency
factor; quality normal (mean 0.84, sd 0.1); a safety-filter stop on any response but a 5xx; a CSAT answer on 20%
of the answers, dissatisfied (CSAT <= 2) in 15% of them. So faults move several metrics as in the rehearsal:
throttling and hallucinations also raise poor quality.

What the judge counts (kanaria.canary.judge.Metric), per intent and side: 5xx / requests, throttled / requests,
hallucinations / requests, safety stops / requests, slow (latency above the primary's p95) / requests, poor
(quality at or below the primary's p10) / scored responses (all but 5xx), dissatisfied / CSAT answers. The judge
takes the p95 and p10 cut-offs from the primary's preceding 15 minutes; here they are the healthy primary's exact
quantiles (SLOW_CUT_MS, POOR_CUT), so the primary's slow and poor rates are 5% and 10%.

Healthy rates (the brief's): 5xx 0.1%, throttles 0.2%, hallucinations 1%, safety stops 0.3%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
from scipy import optimize, stats

REQUESTS_PER_MINUTE = 600
MIX = {
    "recommendation": 0.24,
    "product_search": 0.20,
    "manga_qa": 0.18,
    "order_status": 0.16,
    "shipping_info": 0.12,
    "chitchat": 0.10,
}
INTENTS = tuple(MIX)
SHARES = np.array([MIX[i] for i in INTENTS])
# (percent, minimum minutes); a stage may hold up to its minimum again (the rollout's hold bound).
STAGES = ((5, 20), (25, 20), (50, 15))
METRICS = ("errors", "throttles", "hallucinations", "safety_stops", "slow_responses", "poor_quality", "dissatisfied")
M = {name: index for index, name in enumerate(METRICS)}

LATENCY_MEDIAN_MS, LATENCY_P99_MS = 1250.0, 3000.0
LATENCY_SIGMA = math.log(LATENCY_P99_MS / LATENCY_MEDIAN_MS) / float(stats.norm.ppf(0.99))
QUALITY_SD = 0.10
FALLBACK_QUALITY, FALLBACK_SD = 0.35, 0.05  # a throttled call's fallback answer
HALLUCINATION_PENALTY = 0.3
CSAT_ANSWER_RATE = 0.20


@dataclass(frozen=True)
class Effects:
    """One side's true behaviour on one intent (the rehearsal's per-request draw order)."""

    throttle: float = 0.002  # of requests
    error: float = 0.001  # of requests not throttled
    hallucination: float = 0.01  # of answers (neither throttled nor 5xx)
    safety: float = 0.003  # of responses other than 5xx
    latency_factor: float = 1.0
    quality: float = 0.84  # mean quality of an answer
    dissatisfied: float = 0.15  # of CSAT answers


HEALTHY = Effects()


def _slow_given_factor(factor: float | np.ndarray) -> float | np.ndarray:
    """P(latency > SLOW_CUT_MS) of a request that is not throttled, latency factor `factor`."""
    return stats.norm.sf((math.log(SLOW_CUT_MS / LATENCY_MEDIAN_MS) - np.log(factor)) / LATENCY_SIGMA)


def _poor_rate(e: Effects, cut: float) -> float:
    """P(quality <= cut) of a scored response (all but 5xx): throttled fallbacks, answers, hallucinations."""
    answered = (1 - e.throttle) * (1 - e.error)
    scored = 1 - (1 - e.throttle) * e.error
    fallback = float(stats.norm.cdf((cut - FALLBACK_QUALITY) / FALLBACK_SD))
    answer = float(stats.norm.cdf((cut - e.quality) / QUALITY_SD))
    hallucinated = float(stats.norm.cdf((cut - e.quality + HALLUCINATION_PENALTY) / QUALITY_SD))
    return (
        e.throttle * fallback + answered * ((1 - e.hallucination) * answer + e.hallucination * hallucinated)
    ) / scored


# The cut-offs: the healthy primary's p95 latency (throttled calls are fast) and p10 quality.
SLOW_CUT_MS = LATENCY_MEDIAN_MS * math.exp(LATENCY_SIGMA * float(stats.norm.isf(0.05 / (1 - HEALTHY.throttle))))
POOR_CUT = float(optimize.brentq(lambda cut: _poor_rate(HEALTHY, cut) - 0.10, 0.3, 0.84))


def marginal_rates(e: Effects) -> dict[str, float]:
    """Each judged metric's expected rate on a side with these effects."""
    answered = (1 - e.throttle) * (1 - e.error)
    scored = 1 - (1 - e.throttle) * e.error
    return {
        "errors": (1 - e.throttle) * e.error,
        "throttles": e.throttle,
        "hallucinations": answered * e.hallucination,
        "safety_stops": scored * e.safety,
        "slow_responses": (1 - e.throttle) * float(_slow_given_factor(e.latency_factor)),
        "poor_quality": _poor_rate(e, POOR_CUT),
        "dissatisfied": e.dissatisfied,
    }


BASE = marginal_rates(HEALTHY)
# The metric each Effects field drives (the oracle's streams: given these counts, the rest is drawn as before).
DRIVES = {
    "throttle": "throttles",
    "error": "errors",
    "hallucination": "hallucinations",
    "safety": "safety_stops",
    "latency_factor": "slow_responses",
    "quality": "poor_quality",
    "dissatisfied": "dissatisfied",
}


def with_rates(targets: dict[str, float], base: Effects = HEALTHY) -> Effects:
    """Effects whose judged rates are `targets` (the other metrics as `base`): each parameter solved in the
    draw order, so e.g. {"errors": 0.011} raises only the 5xx rate."""
    e = base
    if "throttles" in targets:
        e = replace(e, throttle=targets["throttles"])
    if "errors" in targets:
        e = replace(e, error=targets["errors"] / (1 - e.throttle))
    if "hallucinations" in targets:
        e = replace(e, hallucination=targets["hallucinations"] / ((1 - e.throttle) * (1 - e.error)))
    if "safety_stops" in targets:
        e = replace(e, safety=targets["safety_stops"] / (1 - (1 - e.throttle) * e.error))
    if "slow_responses" in targets:
        goal = targets["slow_responses"]
        e = replace(
            e,
            latency_factor=float(
                optimize.brentq(
                    lambda f: marginal_rates(replace(e, latency_factor=f))["slow_responses"] - goal, 0.2, 50.0
                )
            ),
        )
    if "poor_quality" in targets:
        goal = targets["poor_quality"]
        e = replace(
            e,
            quality=float(
                optimize.brentq(lambda q: marginal_rates(replace(e, quality=q))["poor_quality"] - goal, 0.0, 1.5)
            ),
        )
    if "dissatisfied" in targets:
        e = replace(e, dissatisfied=targets["dissatisfied"])
    return e


@dataclass(frozen=True)
class Candidate:
    """What the canary runs: `effects` on every intent from the start, then from minute `start` (None: drawn by
    the runner) the `fault` fields on `intents` (None = all). `warm_requests`: the fault's latency factor fades
    linearly to 1 over that many canary requests after the fault starts (a cold start)."""

    name: str
    effects: Effects = HEALTHY
    fault: dict[str, float] = field(default_factory=dict)
    intents: tuple[str, ...] | None = None
    start: int | None = None
    warm_requests: int | None = None

    @property
    def faulty(self) -> bool:
        return bool(self.fault)

    def faulty_intents(self) -> tuple[str, ...]:
        return self.intents or INTENTS


@dataclass
class Side:
    """One side's minute: per-intent counts, the requests' latencies (ms), the sum of the scored qualities."""

    counts: np.ndarray  # (metric, intent, 2): events, trials
    latencies: np.ndarray
    quality_sum: float
    requests: int


@dataclass
class Minute:
    """One simulated minute of both sides."""

    index: int
    stage: int
    percent: int
    canary: Side
    primary: Side
    fault_active: bool
    affected_canary_requests: int  # canary requests of the faulty intents while the fault is active

    def judge_counts(self) -> np.ndarray:
        """(metric, intent, 4): canary events, canary trials, primary events, primary trials."""
        return np.concatenate([self.canary.counts, self.primary.counts], axis=2)


_FIELDS = ("throttle", "error", "hallucination", "safety", "latency_factor", "quality", "dissatisfied")


def effect_table(effects: list[Effects]) -> np.ndarray:
    """(field, intent) array of the intents' effects, in _FIELDS order (what draw_side reads)."""
    return np.array([[getattr(e, name) for e in effects] for name in _FIELDS])


def draw_side(
    rng: np.random.Generator, requests: np.ndarray, table: np.ndarray, latency_factors: np.ndarray | None = None
) -> Side:
    """Requests per intent through the response model, with the intents' effects `table` (effect_table);
    `latency_factors` per request in arrival order (None: each intent's own factor)."""
    total = int(requests.sum())
    n = len(INTENTS)
    intent = rng.permutation(np.repeat(np.arange(n), requests))
    throttle, error, hallucination_rate, safety_rate, factor, mean_quality, unhappy = table[:, intent]
    u = rng.random((7, total))
    throttled = u[0] < throttle
    error = ~throttled & (u[1] < error)
    answer = ~throttled & ~error
    hallucination = answer & (u[2] < hallucination_rate)
    safety = ~error & (u[3] < safety_rate)
    if latency_factors is not None:
        factor = latency_factors
    latency = LATENCY_MEDIAN_MS * factor * np.exp(LATENCY_SIGMA * rng.standard_normal(total))
    latency = np.where(throttled, np.minimum(latency, 250.0 + 100.0 * u[4]), latency)
    noise = rng.standard_normal(total)
    quality = np.clip(
        np.where(throttled, FALLBACK_QUALITY + FALLBACK_SD * noise, mean_quality + QUALITY_SD * noise), 0.0, 1.0
    )
    quality = np.where(hallucination, np.maximum(0.0, quality - HALLUCINATION_PENALTY), quality)
    scored = ~error
    csat = answer & (u[5] < CSAT_ANSWER_RATE)
    flags = np.stack(
        (
            error,
            throttled,
            hallucination,
            safety,
            latency > SLOW_CUT_MS,
            scored & (quality <= POOR_CUT),
            csat & (u[6] < unhappy),
            scored,
            csat,
        )
    )
    rows, columns = np.nonzero(flags)
    tallies = np.bincount(rows * n + intent[columns], minlength=flags.shape[0] * n).reshape(flags.shape[0], n)
    counts = np.empty((len(METRICS), n, 2), dtype=np.int64)
    counts[:, :, 0] = tallies[: len(METRICS)]
    counts[:, :, 1] = requests
    counts[M["poor_quality"], :, 1] = tallies[len(METRICS)]
    counts[M["dissatisfied"], :, 1] = tallies[len(METRICS) + 1]
    return Side(counts, latency, float(quality[scored].sum()), total)


class Traffic:
    """A rollout's traffic, minute by minute, at whatever canary percentage the caller sets."""

    def __init__(self, rng: np.random.Generator, candidate: Candidate, fault_start: int = 0):
        self.rng, self.candidate, self.fault_start = rng, candidate, fault_start
        self.served_since_fault = 0  # canary requests since the fault started (a cold start's fade)
        self.index = 0
        c = candidate
        self._healthy = effect_table([c.effects] * len(INTENTS))
        faulty = replace(c.effects, **c.fault) if c.fault else c.effects
        self._faulty = effect_table([faulty if c.intents is None or i in c.intents else c.effects for i in INTENTS])
        self._primary = effect_table([HEALTHY] * len(INTENTS))
        self._affected = np.array([c.intents is None or i in c.intents for i in INTENTS])

    def fault_active(self, minute: int) -> bool:
        return self.candidate.faulty and minute >= self.fault_start

    def next_minute(self, stage: int, percent: int) -> Minute:
        rng, t = self.rng, self.index
        requests = rng.poisson(REQUESTS_PER_MINUTE * SHARES)
        canary_requests = rng.binomial(requests, percent / 100)
        active = self.fault_active(t)
        effects = self._faulty if active else self._healthy
        factors = None
        if active and self.candidate.warm_requests:
            n = int(canary_requests.sum())
            served = self.served_since_fault + np.arange(n)
            fade = np.maximum(0.0, 1.0 - served / self.candidate.warm_requests)
            base = self.candidate.effects.latency_factor
            factors = base + (self.candidate.fault.get("latency_factor", base) - base) * fade
        canary = draw_side(rng, canary_requests, effects, factors)
        primary = draw_side(rng, requests - canary_requests, self._primary)
        if active:
            self.served_since_fault += canary.requests
        affected = int(canary_requests[self._affected].sum()) if active else 0
        self.index += 1
        return Minute(t, stage, percent, canary, primary, active, affected)


def fixed_schedule() -> Iterator[tuple[int, int]]:
    """(stage, percent) of each minute when every stage lasts its minimum."""
    for stage, (percent, minutes) in enumerate(STAGES):
        for _ in range(minutes):
            yield stage, percent


def minutes_total() -> int:
    return sum(m for _, m in STAGES)


def p99(latencies: np.ndarray) -> float | None:
    """Nearest-rank p99 (as kanaria.quantiles.percentile)."""
    n = len(latencies)
    if n == 0:
        return None
    k = max(0, math.ceil(0.99 * n) - 1)
    return float(np.partition(latencies, k)[k])


# --- the oracle: a CUSUM that knows which streams break and their rates before and after -------------------


@dataclass(frozen=True)
class OracleStream:
    """A faulty stream as the oracle knows it: metric on intents, healthy and faulty rates of one request."""

    metric: str
    intents: tuple[str, ...]
    before: float
    after: float


def oracle_streams(candidate: Candidate) -> list[OracleStream]:
    """The streams the fault drives and their rates before and after. A throttling fault also raises poor
    quality (fallback answers) and a hallucination spike too, but given the throttle / hallucination counts the
    rest is drawn as before: those counts carry all the information."""
    before = marginal_rates(candidate.effects)
    after = marginal_rates(replace(candidate.effects, **candidate.fault))
    return [
        OracleStream(DRIVES[name], candidate.faulty_intents(), before[DRIVES[name]], after[DRIVES[name]])
        for name in candidate.fault
    ]


def oracle_llr(
    stream: OracleStream, events: np.ndarray, trials: np.ndarray, after: float | np.ndarray | None = None
) -> np.ndarray:
    """Per-minute log-likelihood ratio of the canary's counts: faulty rate against healthy rate."""
    p1 = stream.after if after is None else after
    p0 = stream.before
    return events * np.log(p1 / p0) + (trials - events) * (np.log1p(-p1) - np.log1p(-p0))


def cold_start_slow_rate(candidate: Candidate, served: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Expected slow rate of a minute's n canary requests after `served` (a cold start's fade, vectorised:
    the mean of P(slow | factor) over the minute's requests, by 8-point midpoint rule)."""
    base = candidate.effects.latency_factor
    peak = candidate.fault["latency_factor"]
    steps = (np.arange(8) + 0.5) / 8
    position = served[..., None] + np.maximum(n, 1)[..., None] * steps
    fade = np.maximum(0.0, 1.0 - position / (candidate.warm_requests or 1))
    factor = base + (peak - base) * fade
    slow = np.asarray((1 - candidate.effects.throttle) * _slow_given_factor(factor))
    return np.clip(slow.mean(axis=-1), BASE["slow_responses"] * 1.0001, None)


def oracle_peaks(rng: np.random.Generator, candidate: Candidate, runs: int) -> np.ndarray:
    """The oracle CUSUM's largest value over each of `runs` healthy rollouts (every stage at its minimum)."""
    streams = oracle_streams(candidate)
    percents = np.array([p for _, p in fixed_schedule()]) / 100
    w = np.zeros(runs)
    peak = np.zeros(runs)
    served = np.zeros(runs)
    for percent in percents:
        llr = np.zeros(runs)
        for s in streams:
            share = sum(MIX[i] for i in s.intents)
            trials = rng.binomial(rng.poisson(REQUESTS_PER_MINUTE * share, runs), percent)
            if s.metric == "poor_quality":  # scored responses: all but 5xx
                trials = trials - rng.binomial(trials, BASE["errors"])
            if s.metric == "dissatisfied":
                trials = rng.binomial(trials, CSAT_ANSWER_RATE * (1 - BASE["throttles"]) * (1 - HEALTHY.error))
            events = rng.binomial(trials, s.before)
            after = cold_start_slow_rate(candidate, served, trials) if candidate.warm_requests else None
            llr += oracle_llr(s, events, trials, after)
            if s is streams[0]:
                served = served + trials
        w = np.maximum(0.0, w + llr)
        peak = np.maximum(peak, w)
    return peak


def oracle_threshold(peaks: np.ndarray, alpha: float) -> tuple[float, float]:
    """The CUSUM threshold whose false-alarm probability over a healthy rollout is at most `alpha`: the
    (1 - alpha) quantile of the healthy runs' peaks, the oracle alarming when its CUSUM is strictly above it.
    With discrete counts the quantile can sit on an atom (often 0: no healthy minute has a positive LLR), so the
    achieved probability (returned second) can be below alpha."""
    threshold = float(np.quantile(peaks, 1 - alpha))
    return threshold, float(np.mean(peaks > threshold))


def overall_counts(side: Side, metric: str) -> tuple[int, int]:
    """(events, trials) of one metric on one side of a minute, all intents together."""
    events, trials = side.counts[M[metric]].sum(axis=0).tolist()
    return events, trials
