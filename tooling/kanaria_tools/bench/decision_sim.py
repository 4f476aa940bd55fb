"""The whole-rule simulation of the scheduled analysis: simulated arms read every 5 minutes for 4 weeks, the
statistics every rule shares, the outcomes of a rule, and the snapshot of one read (for the engine check).

Metrics (both arms identical in A/A; the effect scenarios add `effect` to the treatment's quality):
quality ~ N(0.80, 0.15) (primary), latency ~ lognormal(median 1,200 ms, σ_log 0.5) kept as the aggregator's
4% histogram, cost ~ lognormal(mean $0.008, CV 0.5), error / hallucination / safety_filtered ~ Bernoulli.
With intents, each unit belongs to product_search (30%), recommendation (30%, both revenue-critical) or
manga_qa (40%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

READS_PER_DAY = 288  # one read every 5 minutes


DAYS = 28


READS = READS_PER_DAY * DAYS


ALPHA = 0.05


MIN_N = 30


QUALITY_MEAN, QUALITY_SD = 0.80, 0.15


LATENCY_MEDIAN_MS, LATENCY_SIGMA = 1200.0, 0.5


COST_MEAN, COST_CV = 0.008, 0.5


INTENT_SHARES = {"product_search": 0.3, "recommendation": 0.3, "manga_qa": 0.4}


CRITICAL_INTENTS = ("product_search", "recommendation")


# latency histogram (kanaria.domain.observation): bucket 0 = [0, 1) ms, bucket i = [1.04^(i-1), 1.04^i) ms
GROWTH = 1.04


TAIL_FIRST = 197  # buckets below (latency < 1.04^196 ≈ 2,183 ms, about the 89th percentile) are lumped together


TAIL_BUCKETS = 52  # 197 … 248 (≈ 16,900 ms); above is lumped into the last bucket


@dataclass(frozen=True)
class Scenario:
    """One simulated experiment configuration (both arms the same unless `effect`)."""

    name: str
    planned_n: int
    effect: float = 0.0
    mde: float = 0.02
    error_rate: float = 0.002
    hallucination_rate: float = 0.01
    safety_rate: float = 0.002
    intents: bool = False
    reads: int = READS
    treatment: tuple[tuple[str, float], ...] = ()  # treatment-only overrides: error_rate, hallucination_rate,
    # safety_rate, latency_factor, cost_factor (the verification's harmful treatments)

    def arm(self, treatment: bool) -> dict[str, float]:
        """The metric parameters of one arm."""
        body = {
            "error_rate": self.error_rate,
            "hallucination_rate": self.hallucination_rate,
            "safety_rate": self.safety_rate,
            "latency_factor": 1.0,
            "cost_factor": 1.0,
            "effect": self.effect if treatment else 0.0,
        }
        return body | (dict(self.treatment) if treatment else {})


@dataclass
class Arm:
    """Cumulative sufficient statistics of one arm at each read, arrays of shape (runs, reads)."""

    n: np.ndarray  # (reads,): units so far, the same for every run and metric
    quality: tuple[np.ndarray, np.ndarray]
    cost: tuple[np.ndarray, np.ndarray]
    error: np.ndarray
    hallucination: np.ndarray
    safety: np.ndarray
    tail_le: np.ndarray  # (runs, reads, TAIL_BUCKETS + 1) uint16/32: count of latencies in bucket <= TAIL_FIRST - 1 + j
    intents: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # n, sum, sum_sq


def _bucket(latency: np.ndarray) -> np.ndarray:
    index = 1 + np.floor(np.log(latency) / math.log(GROWTH) + 1e-12).astype(np.int64)
    return np.where(latency < 1.0, 0, index)


def simulate_arm(rng: np.random.Generator, runs: int, scenario: Scenario, treatment: bool = False) -> Arm:
    """One arm of `runs` experiments: one unit per read, cumulative statistics at every read."""
    p = scenario.arm(treatment)
    shape = (runs, scenario.reads)
    n = np.arange(1, scenario.reads + 1, dtype=np.int64)
    quality = rng.normal(QUALITY_MEAN + p["effect"], QUALITY_SD, size=shape)
    sigma = math.sqrt(math.log(1 + COST_CV**2))
    cost = rng.lognormal(math.log(COST_MEAN * p["cost_factor"]) - sigma**2 / 2, sigma, size=shape)
    latency = rng.lognormal(math.log(LATENCY_MEDIAN_MS * p["latency_factor"]), LATENCY_SIGMA, size=shape)
    error = rng.random(shape) < p["error_rate"]
    hallucination = rng.random(shape) < p["hallucination_rate"]
    safety = rng.random(shape) < p["safety_rate"]
    position = np.clip(_bucket(latency) - (TAIL_FIRST - 1), 0, TAIL_BUCKETS).astype(np.int64)
    counts_dtype = np.uint16 if scenario.reads < 65_000 else np.uint32
    one_hot = np.zeros((*shape, TAIL_BUCKETS + 1), dtype=counts_dtype)
    np.put_along_axis(one_hot, position[..., None], 1, axis=2)
    np.cumsum(one_hot, axis=1, out=one_hot)
    np.cumsum(one_hot, axis=2, out=one_hot)
    arm = Arm(
        n=n,
        quality=(np.cumsum(quality, axis=1), np.cumsum(quality * quality, axis=1)),
        cost=(np.cumsum(cost, axis=1), np.cumsum(cost * cost, axis=1)),
        error=np.cumsum(error, axis=1, dtype=np.int64),
        hallucination=np.cumsum(hallucination, axis=1, dtype=np.int64),
        safety=np.cumsum(safety, axis=1, dtype=np.int64),
        tail_le=one_hot,
    )
    if scenario.intents:
        draw = rng.random(shape)
        edges = np.cumsum(list(INTENT_SHARES.values()))
        which = np.searchsorted(edges, draw, side="right")
        for i, intent in enumerate(INTENT_SHARES):
            mask = which == i
            q = np.where(mask, quality, 0.0)
            arm.intents[intent] = (
                np.cumsum(mask, axis=1, dtype=np.int64),
                np.cumsum(q, axis=1),
                np.cumsum(q * q, axis=1),
            )
    return arm


def mean_var(n: Any, total: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased variance from sums (nan where undefined)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        var = np.maximum((squares - total * mean) / (n - 1), 0.0)
    return mean, np.where(n > 1, var, np.nan)


def welch(
    n_c: Any, s_c: np.ndarray, q_c: np.ndarray, n_t: Any, s_t: np.ndarray, q_t: np.ndarray, p_value: bool = True
) -> dict[str, np.ndarray]:
    """Welch t: effect, se, df, two-sided p (only if asked: the costly part), validity."""
    n_c, n_t = np.asarray(n_c, dtype=float), np.asarray(n_t, dtype=float)
    m_c, v_c = mean_var(n_c, s_c, q_c)
    m_t, v_t = mean_var(n_t, s_t, q_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v_c / n_c, v_t / n_t
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_t - 1))
        effect = m_t - m_c
        valid = (n_c >= 2) & (n_t >= 2) & (se > 0) & np.isfinite(se)
        t = np.where(valid, effect / np.where(valid, se, 1.0), 0.0)
    p = np.where(valid, 2.0 * special.stdtr(np.where(valid, df, 1.0), -np.abs(t)), np.nan) if p_value else None
    return {
        "mean_c": m_c,
        "mean_t": m_t,
        "var_c": v_c,
        "var_t": v_t,
        "effect": effect,
        "se": se,
        "df": df,
        "p": p,
        "valid": valid,
    }


def newcombe(x_c: np.ndarray, n_c: Any, x_t: np.ndarray, n_t: Any, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for p_t − p_c."""
    z = stats.norm.ppf(1 - alpha / 2)
    n_c, n_t = np.asarray(n_c, dtype=float), np.asarray(n_t, dtype=float)

    def wilson(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        center = (x + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * np.sqrt(x * (n - x) / n + z * z / 4)
        return center - half, center + half

    p_c, p_t = x_c / n_c, x_t / n_t
    lo_t, hi_t = wilson(x_t, n_t)
    lo_c, hi_c = wilson(x_c, n_c)
    d = p_t - p_c
    return d - np.sqrt((p_t - lo_t) ** 2 + (hi_c - p_c) ** 2), d + np.sqrt((hi_t - p_t) ** 2 + (p_c - lo_c) ** 2)


_CP: dict[tuple[int, float, float], tuple[np.ndarray, np.ndarray]] = {}


def clopper_pearson_vs(x: np.ndarray, n: np.ndarray, limit: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(upper bound ≤ limit, lower bound > limit) of the exact two-sided interval, by its definition as the
    inversion of the binomial tails: high ≤ L ⇔ P(X ≤ x | L) ≤ α/2, low > L ⇔ P(X ≥ x | L) ≤ α/2 (count
    thresholds per n, so the comparison is on integers)."""
    key = (len(n), limit, alpha)
    if key not in _CP:
        nn = n.astype(np.int64)
        k = stats.binom.ppf(alpha / 2, nn, limit).astype(np.int64)  # smallest k with P(X ≤ k) ≥ α/2
        pass_max = np.where(special.bdtr(k, nn, limit) <= alpha / 2, k, k - 1)  # largest x with P(X ≤ x) ≤ α/2
        m = stats.binom.isf(alpha / 2, nn, limit).astype(np.int64)  # smallest m with P(X > m) ≤ α/2
        fail_min = np.where(1.0 - special.bdtr(m - 1, nn, limit) <= alpha / 2, m, m + 1)  # smallest x: P(X ≥ x) ≤ α/2
        _CP[key] = (pass_max, fail_min)
    pass_max, fail_min = _CP[key]
    return x <= pass_max, x >= fail_min


def msprt_two_sided(effect: np.ndarray, variance: np.ndarray, tau2: Any) -> np.ndarray:
    """Always-valid p-value of the two-sided normal-mixture SPRT (nan where the variance is 0)."""
    ok = np.isfinite(variance) & (variance > 0) & np.isfinite(effect)
    v = np.where(ok, variance, 1.0)
    d = np.where(ok, effect, 0.0)
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
    return np.where(ok, np.minimum(1.0, np.exp(-np.maximum(log_lr, 0.0))), np.nan)


def bucket_value(tail_le: np.ndarray, rank: np.ndarray, where: str) -> np.ndarray:
    """Histogram edge of the rank-th smallest latency: its bucket's low ("low") or high ("high") edge; +inf for
    ranks above n, 0 for ranks below 1. tail_le (..., B+1), rank broadcastable to tail_le[..., 0]."""
    rank = np.broadcast_to(rank, tail_le.shape[:-1])
    j = (tail_le < rank[..., None]).sum(axis=-1)  # first position whose cumulative count reaches the rank
    index = TAIL_FIRST - 1 + np.minimum(j, TAIL_BUCKETS)
    edge = GROWTH ** (index - 1.0) if where == "low" else GROWTH ** index.astype(float)
    n = tail_le[..., -1].astype(float)
    return np.where(rank > n, np.inf, np.where(rank < 1, 0.0, edge))


def histogram_p99(tail_le: np.ndarray) -> np.ndarray:
    """kanaria.domain.observation.histogram_quantile(0.99) on the lumped histogram (geometric interpolation)."""
    n = tail_le[..., -1].astype(float)
    rank = 0.99 * n
    j = np.minimum((tail_le < rank[..., None]).sum(axis=-1), TAIL_BUCKETS)
    cum = np.take_along_axis(tail_le, j[..., None], axis=-1)[..., 0].astype(float)
    below = np.where(j > 0, np.take_along_axis(tail_le, np.maximum(j - 1, 0)[..., None], axis=-1)[..., 0], 0).astype(
        float
    )
    count = cum - below
    index = TAIL_FIRST - 1 + j
    low, high = GROWTH ** (index - 1.0), GROWTH ** index.astype(float)
    position = np.clip((rank - below) / np.where(count > 0, count, 1.0), 0.0, 1.0)
    return low * (high / low) ** position


NONE, PROMOTE, REVIEW, ROLLBACK, FINAL = 0, 1, 2, 3, 4  # FINAL: NO_DECISION at a final read (nothing after it)


DECIDED = (PROMOTE, REVIEW, ROLLBACK)


@dataclass(frozen=True)
class Outcome:
    """Per run: the read index of the first PROMOTE/REVIEW/ROLLBACK (-1: none within the reads) and which."""

    index: np.ndarray
    kind: np.ndarray

    @property
    def decided(self) -> np.ndarray:
        """Runs whose first decision is PROMOTE, REVIEW or ROLLBACK (not a final NO_DECISION)."""
        return np.isin(self.kind, DECIDED)

    @staticmethod
    def first(codes: np.ndarray) -> "Outcome":
        """First non-NONE code per run."""
        hit = codes != NONE
        any_hit = hit.any(axis=1)
        index = np.where(any_hit, hit.argmax(axis=1), -1)
        kind = np.where(any_hit, codes[np.arange(len(codes)), np.maximum(index, 0)], NONE)
        return Outcome(index, kind)

    @staticmethod
    def concat(parts: list["Outcome"]) -> "Outcome":
        """Outcomes of several chunks of runs."""
        return Outcome(np.concatenate([p.index for p in parts]), np.concatenate([p.kind for p in parts]))

    def within(self, reads: int) -> "Outcome":
        """Only decisions within the first `reads` reads."""
        keep = (self.index >= 0) & (self.index < reads)
        return Outcome(np.where(keep, self.index, -1), np.where(keep, self.kind, NONE))


def _mean_entry(n: int, total: float, squares: float) -> dict[str, Any]:
    return {"n": int(n), "sum": float(total), "sum_sq": float(squares)}


def lumped_histogram(tail_le: np.ndarray) -> dict[str, int]:
    """The lumped histogram of one read: latencies below the tail in bucket TAIL_FIRST - 1."""
    counts = np.diff(np.concatenate([[0], tail_le.astype(np.int64)]))
    return {str(TAIL_FIRST - 1 + j): int(c) for j, c in enumerate(counts) if c}


def arm_aggregate(arm: Arm, run: int, read: int) -> dict[str, Any]:
    """The snapshot aggregate of one arm at one read."""
    from kanaria.domain.observation import histogram_quantile

    n = int(arm.n[read])
    histogram = lumped_histogram(arm.tail_le[run, read])
    p99 = histogram_quantile({int(k): v for k, v in histogram.items()}, 0.99)
    return {
        "units": n,
        "quality_score": _mean_entry(n, arm.quality[0][run, read], arm.quality[1][run, read]),
        "cost_usd": _mean_entry(n, arm.cost[0][run, read], arm.cost[1][run, read]),
        "latency_ms": {
            **_mean_entry(n, 1300.0 * n, 1300.0**2 * n + 500.0**2 * (n - 1)),
            "p99": p99,
            "histogram": histogram,
        },
        "error": {"n": n, "successes": int(arm.error[run, read])},
        "hallucination": {"n": n, "successes": int(arm.hallucination[run, read])},
        "safety_filtered": {"n": n, "successes": int(arm.safety[run, read])},
    }


def snapshot_at(
    control: Arm, treatment: Arm, scenario: Scenario, method: str, run: int, read: int, looks: list[float] | None
) -> dict[str, Any]:
    """The snapshot the scheduled analysis builds at one read (looks: the history carried by the previous read)."""
    body: dict[str, Any] = {
        "experiment": {
            "id": "bench",
            "control": "A",
            "weights": {"A": 0.5, "B": 0.5},
            "primary_metric": "quality_score",
            "alpha": ALPHA,
            "power": 0.8,
            "mde": scenario.mde,
            "method": method,
            "planned_n_per_variant": scenario.planned_n,
        },
        "aggregates": {"A": arm_aggregate(control, run, read), "B": arm_aggregate(treatment, run, read)},
    }
    if looks is not None:
        body["experiment"]["looks"] = looks
    if control.intents:
        body["intents"] = {
            intent: {
                name: {
                    "units": int(arm.intents[intent][0][run, read]),
                    "quality_score": _mean_entry(
                        arm.intents[intent][0][run, read],
                        arm.intents[intent][1][run, read],
                        arm.intents[intent][2][run, read],
                    ),
                }
                for name, arm in (("A", control), ("B", treatment))
            }
            for intent in INTENT_SHARES
        }
    return body


CODES = {"PROMOTE": PROMOTE, "REVIEW": REVIEW, "ROLLBACK": ROLLBACK}


def verification_points(
    outcome: Outcome, reads: int, rng: np.random.Generator, decided: int = 60, random: int = 60
) -> list[tuple[int, int]]:
    """(run, read) pairs: first-decision reads and the reads just before them, plus random reads."""
    runs = np.flatnonzero(outcome.index >= 0)
    chosen = rng.choice(runs, size=min(decided, len(runs)), replace=False) if len(runs) else np.array([], int)
    points = {(int(r), int(outcome.index[r])) for r in chosen}
    points |= {(int(r), int(outcome.index[r]) - 1) for r in chosen if outcome.index[r] > 0}
    for _ in range(random):
        points.add((int(rng.integers(len(outcome.index))), int(rng.integers(reads))))
    return sorted(points)
