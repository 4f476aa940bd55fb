"""Simulated canary rollouts for the judge's benchmark and tests (pure numpy, no emulator, no AWS).

Traffic as in the local rehearsal: 600 requests a minute, six intents, stages 5% / 25% / 50% of 20, 20 and 15
minutes on a fixed schedule (so every contender sees the same data). Per minute, intent and side: Poisson
requests split binomially by the stage weight, then binomial bad events per judged metric. Requests are
independent draws (real traffic is session-clustered: the ALB's target-group stickiness keeps a session on one
side), which is the judge's own assumption.

Latency and quality enter as the judge reads them: "slow" = above the primary's p95, "poor" = at or below the
primary's p10, so both are 5% / 10% on a healthy side. A latency factor f on a lognormal latency (sigma 0.376,
the rehearsal's sonnet-v1: median 1250 ms, p99 3000 ms) makes P(slow) = 1 - Phi(z95 - ln f / sigma); a mean
quality drop to q (sd 0.1) makes P(poor) = Phi((q10 - q) / 0.1). p99-based contenders get each window's p99 as
an order statistic (a beta draw) of the window's lognormal latencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

REQUESTS_PER_MINUTE = 600
MIX = {"recommendation": 0.24, "product_search": 0.20, "manga_qa": 0.18, "order_status": 0.16,
       "shipping_info": 0.12, "chitchat": 0.10}
INTENTS = tuple(MIX)
STAGES = ((5, 20), (25, 20), (50, 15))  # (percent, minutes): the schedule shared by every contender
LATENCY_SIGMA = math.log(3000 / 1250) / stats.norm.ppf(0.99)
QUALITY_MEAN, QUALITY_SD = 0.84, 0.10
Q10 = QUALITY_MEAN + QUALITY_SD * stats.norm.ppf(0.10)
# Healthy rates per judged metric (the rehearsal's sonnet-v1 and fleet).
BASE = {"errors": 0.001, "throttles": 0.002, "hallucinations": 0.01, "safety_stops": 0.003,
        "slow_responses": 0.05, "poor_quality": 0.10, "dissatisfied": 0.15}
CSAT_ANSWER_RATE = 0.2
METRICS = tuple(BASE)


def minutes_total() -> int:
    return sum(m for _, m in STAGES)


def percent_at(minute: int) -> int:
    """Canary share in effect during `minute` of the fixed schedule."""
    elapsed = 0
    for percent, length in STAGES:
        elapsed += length
        if minute < elapsed:
            return percent
    return STAGES[-1][0]


def slow_rate(latency_factor: float) -> float:
    """P(latency above the primary's p95) for a canary whose latency is `latency_factor` x the primary's."""
    return float(stats.norm.sf(stats.norm.ppf(0.95) - math.log(latency_factor) / LATENCY_SIGMA))


def poor_rate(mean_quality: float) -> float:
    """P(quality at or below the primary's p10) for a canary with this mean quality."""
    return float(stats.norm.cdf((Q10 - mean_quality) / QUALITY_SD))


@dataclass(frozen=True)
class Fault:
    """What goes wrong on the canary: from `start` (minute), on `intents` (None = all), metric -> rate, or a
    latency factor that fades out over `warm_requests` canary requests (a cold start)."""

    name: str
    start: int | None  # None: drawn at random by the runner
    rates: dict[str, float] = field(default_factory=dict)
    intents: tuple[str, ...] | None = None
    latency_factor: float | None = None
    warm_requests: int | None = None


@dataclass
class Minute:
    """One minute of both sides: counts[metric][intent] = (x_c, n_c, x_p, n_p), latency factor on the canary."""

    index: int
    percent: int
    counts: dict[str, dict[str, tuple[int, int, int, int]]]
    canary_requests: int
    primary_requests: int
    latency_factor: float


def draw_minute(rng: np.random.Generator, t: int, percent: int, fault: Fault | None, fault_start: int, served: int,
                ratio: dict[str, float] | None = None) -> Minute:
    """Minute `t` at `percent` canary, `served` canary requests so far (for a cold start's fade)."""
    active = fault is not None and t >= fault_start
    factor = 1.0
    if active and fault is not None and fault.latency_factor:
        fade = 1.0 if not fault.warm_requests else max(0.0, 1.0 - served / fault.warm_requests)
        factor = 1.0 + (fault.latency_factor - 1.0) * fade
    counts: dict[str, dict[str, tuple[int, int, int, int]]] = {m: {} for m in METRICS}
    total_c = total_p = 0
    for intent, share in MIX.items():
        requests = int(rng.poisson(REQUESTS_PER_MINUTE * share))
        n_c = int(rng.binomial(requests, percent / 100))
        n_p = requests - n_c
        total_c += n_c
        total_p += n_p
        for metric, base in BASE.items():
            rate = base * (ratio or {}).get(metric, 1.0)
            if metric == "slow_responses" and factor != 1.0:
                rate = slow_rate(factor)
            if active and fault is not None and metric in fault.rates and (
                    fault.intents is None or intent in fault.intents):
                rate = fault.rates[metric]
            trials_c, trials_p = n_c, n_p
            if metric == "dissatisfied":
                trials_c = int(rng.binomial(n_c, CSAT_ANSWER_RATE))
                trials_p = int(rng.binomial(n_p, CSAT_ANSWER_RATE))
            counts[metric][intent] = (int(rng.binomial(trials_c, min(1.0, rate))), trials_c,
                                      int(rng.binomial(trials_p, base)), trials_p)
    return Minute(t, percent, counts, total_c, total_p, factor)


def simulate(rng: np.random.Generator, fault: Fault | None = None, fault_start: int = 0,
             ratio: dict[str, float] | None = None, minutes: int | None = None) -> list[Minute]:
    """One rollout's minutes on the fixed schedule. `ratio` scales the canary's healthy rates (tolerance runs)."""
    out: list[Minute] = []
    served = 0
    for t in range(minutes or minutes_total()):
        minute = draw_minute(rng, t, percent_at(t), fault, fault_start, served, ratio)
        served += minute.canary_requests
        out.append(minute)
    return out


def overall(minute: Minute, metric: str) -> tuple[int, int, int, int]:
    """A metric's counts summed over intents."""
    rows = minute.counts[metric].values()
    return tuple(int(sum(r[i] for r in rows)) for i in range(4))  # type: ignore[return-value]


def window_p99(rng: np.random.Generator, n: int, latency_factor: float) -> float | None:
    """The p99 (nearest rank) of n lognormal latencies, as an order statistic: U_(k) ~ Beta(k, n - k + 1)."""
    if n <= 0:
        return None
    k = max(1, math.ceil(0.99 * n))
    u = rng.beta(k, n - k + 1)
    return float(1250 * latency_factor * math.exp(LATENCY_SIGMA * stats.norm.ppf(u)))


# --- the oracle ---------------------------------------------------------------------------------------------


def oracle_llr(x: np.ndarray, n: np.ndarray, p0: float, p1: float) -> np.ndarray:
    """Per-minute log-likelihood ratio of the canary's counts, post-fault rate p1 against pre-fault p0."""
    return x * math.log(p1 / p0) + (n - x) * math.log((1 - p1) / (1 - p0))


def oracle_threshold(rng: np.random.Generator, p0: float, p1: float, trials_per_minute: np.ndarray, alpha: float,
                     runs: int = 20_000) -> float:
    """The CUSUM threshold whose false-alarm probability over a healthy rollout (these canary trials per minute)
    is at most `alpha`, by simulation: the (1 - alpha) quantile of the healthy runs' maximum CUSUM; the alarm is
    a CUSUM strictly above it (with discrete counts the quantile can be 0, so >= would alarm at once)."""
    n = rng.poisson(np.broadcast_to(trials_per_minute, (runs, len(trials_per_minute))))
    x = rng.binomial(n, p0)
    llr = oracle_llr(x, n, p0, p1)
    w = np.zeros(runs)
    peak = np.zeros(runs)
    for t in range(llr.shape[1]):
        w = np.maximum(0.0, w + llr[:, t])
        peak = np.maximum(peak, w)
    return float(np.quantile(peak, 1 - alpha))
