"""Whole-rule simulation of the scheduled analysis: every guardrail, every 5-minute read, reads past the plan.

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
from dataclasses import dataclass, field, replace
from typing import Any, Callable

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


# ---------------------------------------------------------------- shared statistics (scipy only)


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


# ---------------------------------------------------------------- outcomes

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


# ---------------------------------------------------------------- the rules of main before #13 (c97cfe9)


def _current_obf_nominal(scenario: Scenario, alpha: float) -> np.ndarray:
    """The nominal alpha of each read's O'Brien–Fleming look as the scheduled analysis of c97cfe9 computes it:
    obf_look(n / planned, looks stored by the previous read, alpha, 20), the history starting empty. A read whose
    look schedule equals the previous read's (a re-read of the capped final look) has the same boundary."""
    from kanaria.stats.sequential import _check_fractions, information_schedule, obf_look

    nominal = np.empty(scenario.reads)
    looks: tuple[float, ...] = ()
    last: tuple[tuple[float, ...], float] | None = None
    for k in range(scenario.reads):
        fractions = _check_fractions(information_schedule((k + 1) / scenario.planned_n, list(looks), 20))
        if last is not None and last[0] == fractions:
            nominal[k] = last[1]
        else:
            look = obf_look((k + 1) / scenario.planned_n, list(looks), alpha, 20)
            assert look.fractions == fractions
            nominal[k] = look.nominal_alpha
            last = (fractions, look.nominal_alpha)
        looks = fractions
    return nominal


_NOMINAL_CACHE: dict[tuple[int, int, float], np.ndarray] = {}


def current_obf_nominal(scenario: Scenario, alpha: float = ALPHA) -> np.ndarray:
    """Cached per (planned n, reads, alpha)."""
    key = (scenario.planned_n, scenario.reads, alpha)
    if key not in _NOMINAL_CACHE:
        _NOMINAL_CACHE[key] = _current_obf_nominal(scenario, alpha)
    return _NOMINAL_CACHE[key]


def current_codes(control: Arm, treatment: Arm, scenario: Scenario, method: str) -> np.ndarray:
    """Decision codes at every read by the rules of c97cfe9 (defaults; one treatment), shape (runs, reads)."""
    n = control.n.astype(float)
    a = ALPHA
    enough = n >= MIN_N
    w = welch(n, *control.quality, n, *treatment.quality, p_value=method != "always_valid")
    nominal = current_obf_nominal(scenario) if method == "obf" else None

    def significant(test: dict[str, np.ndarray], tau: Any, n_min: np.ndarray) -> np.ndarray:
        if method == "fixed":
            sig = test["p"] < a
        elif method == "obf":
            sig = test["p"] <= nominal
        else:
            sig = msprt_two_sided(test["effect"], test["se"] ** 2, tau) <= a
        return sig & test["valid"] & (n_min >= MIN_N)

    primary_sig = significant(w, scenario.mde**2, n)
    worse = primary_sig & (w["effect"] < 0)
    better = primary_sig & (w["effect"] > 0)
    at_horizon = n >= scenario.planned_n
    # guardrails (fixed-level intervals at alpha on every read)
    p99 = histogram_p99(treatment.tail_le)
    p99_fail = (n >= 1000) & (p99 > 5000.0)
    p99_pass = (n >= 1000) & (p99 <= 5000.0)
    err_pass, err_fail = clopper_pearson_vs(treatment.error, control.n, 0.005, a)
    fails = [p99_fail, err_fail]
    passes = [p99_pass, err_pass]
    for metric, margin in (("hallucination", 0.01), ("safety", 0.005)):
        low, high = newcombe(getattr(control, metric).astype(float), n, getattr(treatment, metric).astype(float), n, a)
        fails.append(low > margin)
        passes.append(high <= margin)
    c = welch(n, *control.cost, n, *treatment.cost, p_value=False)
    crit = special.stdtrit(np.where(c["valid"], c["df"], 1.0), 1 - a / 2)
    low, high = c["effect"] - crit * c["se"], c["effect"] + crit * c["se"]
    margin = 0.5 * np.abs(c["mean_c"])
    fails.append(c["valid"] & (low > margin))
    passes.append(c["valid"] & (high <= margin))
    guardrail_fail = np.logical_or.reduce(fails)
    guardrails_pass = np.logical_and.reduce(passes)
    cost_review = (c["mean_t"] - c["mean_c"]) / np.abs(c["mean_c"]) > 0.10

    intent_rollback = np.zeros_like(worse)
    intent_block = np.zeros_like(worse)
    composite_ok = np.ones_like(worse)
    if treatment.intents:
        from kanaria.analysis.catalogue import default_intent_weight

        weighted = np.zeros(w["effect"].shape)
        total = np.zeros(w["effect"].shape)
        for intent in INTENT_SHARES:
            nc, sc, qc = control.intents[intent]
            nt, st, qt = treatment.intents[intent]
            wi = welch(nc, sc, qc, nt, st, qt, p_value=method != "always_valid")
            n_min = np.minimum(nc, nt)
            sig = significant(wi, scenario.mde**2, n_min)
            with np.errstate(divide="ignore", invalid="ignore"):
                improvement = (wi["mean_t"] - wi["mean_c"]) / np.abs(wi["mean_c"])
            has = np.isfinite(improvement)
            weight = default_intent_weight(intent)
            weighted += np.where(has, weight * np.where(has, improvement, 0.0), 0.0)
            total += np.where(has, weight, 0.0)
            if intent in CRITICAL_INTENTS:
                insufficient = ~has | (n_min < MIN_N)
                blocked = ~insufficient & (-improvement > 0.05)
                intent_block |= insufficient | blocked
                intent_rollback |= blocked & sig & (wi["effect"] < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            composite_ok = np.where(total > 0, weighted / np.where(total > 0, total, 1.0) > 0, True)

    rollback = guardrail_fail | worse | intent_rollback
    win = better & (at_horizon if method == "fixed" else True) & ~intent_block & composite_ok & guardrails_pass
    return np.where(rollback, ROLLBACK, np.where(win, np.where(cost_review, REVIEW, PROMOTE), NONE))


# ---------------------------------------------------------------- snapshots of one read (for the engine)


def _mean_entry(n: int, total: float, squares: float) -> dict[str, Any]:
    return {"n": int(n), "sum": float(total), "sum_sq": float(squares)}


def _histogram(tail_le: np.ndarray) -> dict[str, int]:
    """The lumped histogram of one read: latencies below the tail in bucket TAIL_FIRST - 1."""
    counts = np.diff(np.concatenate([[0], tail_le.astype(np.int64)]))
    return {str(TAIL_FIRST - 1 + j): int(c) for j, c in enumerate(counts) if c}


def arm_aggregate(arm: Arm, run: int, read: int) -> dict[str, Any]:
    """The snapshot aggregate of one arm at one read."""
    from kanaria.domain.observation import histogram_quantile

    n = int(arm.n[read])
    histogram = _histogram(arm.tail_le[run, read])
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


def current_looks_at(scenario: Scenario, reads: set[int], alpha: float = ALPHA) -> dict[int, list[float]]:
    """The look history the c97cfe9 scheduled analysis carries into each of `reads` (what the previous read stored:
    the fractions of its obf_look, i.e. its information schedule)."""
    from kanaria.stats.sequential import _check_fractions, information_schedule

    out: dict[int, list[float]] = {}
    looks: list[float] = []
    for k in range(max(reads) + 1):
        if k in reads:
            out[k] = list(looks)
        looks = list(_check_fractions(information_schedule((k + 1) / scenario.planned_n, looks, 20)))
    return out


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


# ---------------------------------------------------------------- the rules of this engine (issue #13)

PLANNED_LOOKS = 4
LOOK_SPACING = 1e-3


def new_obf_schedule(scenario: Scenario, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Per read: whether it is an efficacy look, its nominal alpha, and the look history it carries in (the
    engine's planned-look rule: a read is the look when n/planned reaches the next j/4 within 0.001)."""
    from kanaria.stats.sequential import obf_look

    is_look = np.zeros(scenario.reads, dtype=bool)
    nominal = np.zeros(scenario.reads)
    carried: list[list[float]] = []
    looks: list[float] = []
    for k in range(scenario.reads):
        carried.append(list(looks))
        t = min((k + 1) / scenario.planned_n, 1.0)
        last = looks[-1] if looks else 0.0
        grid = next(
            (j / PLANNED_LOOKS for j in range(1, PLANNED_LOOKS + 1) if j / PLANNED_LOOKS > last + LOOK_SPACING), None
        )
        if grid is not None and t >= grid - LOOK_SPACING:
            look = obf_look(t, looks, alpha, PLANNED_LOOKS)
            is_look[k], nominal[k] = True, look.nominal_alpha
            looks = list(look.fractions)
    return is_look, nominal, carried


_SCHEDULES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, list[list[float]]]] = {}
_RANKS: dict[tuple[int, float, float, bool], tuple[np.ndarray, np.ndarray]] = {}


def _schedule(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    key = (scenario.planned_n, scenario.reads)
    if key not in _SCHEDULES:
        _SCHEDULES[key] = new_obf_schedule(scenario)
    return _SCHEDULES[key]


def _ranks(reads: int, alpha_low: float, alpha_high: float, sequential: bool) -> tuple[np.ndarray, np.ndarray]:
    """p99 ranks (l, u) for n = 1 … reads, as the engine's p99 guardrail computes them."""
    from kanaria.stats.quantiles import quantile_rank_bounds_sequential, quantile_rank_interval

    key = (reads, alpha_low, alpha_high, sequential)
    if key not in _RANKS:
        n = np.arange(1, reads + 1)
        if sequential:
            _RANKS[key] = quantile_rank_bounds_sequential(n, 0.99, alpha_low, alpha_high)
        else:
            low = quantile_rank_interval(n, 0.99, 2 * alpha_low)[0] if alpha_low > 0 else np.zeros(reads, np.int64)
            high = quantile_rank_interval(n, 0.99, 2 * alpha_high)[1] if alpha_high > 0 else n + 1
            _RANKS[key] = (low, high)
    return _RANKS[key]


def one_sided(effect: np.ndarray, variance: np.ndarray, tau: Any) -> np.ndarray:
    """kanaria.stats.sequential.msprt_one_sided p-values (nan where undefined)."""
    from kanaria.stats.sequential import msprt_one_sided

    tau = np.asarray(tau, dtype=float)
    return msprt_one_sided(effect, variance, tau * tau).p_value


def _ac(x: np.ndarray, n: Any) -> tuple[np.ndarray, np.ndarray]:
    rate = (x + 1.0) / (n + 2.0)
    return rate, rate * (1 - rate) / (n + 2.0)


def new_codes(
    control: Arm,
    treatment: Arm,
    scenario: Scenario,
    method: str,
    guardrails: bool = True,
    state: dict[str, Any] | None = None,
) -> np.ndarray:
    """Decision codes at every read by this engine's rules (defaults; one treatment), shape (runs, reads).
    Reads after the planned sample are cut off by the caller for fixed/obf (the decision there is final).
    guardrails=False: the primary-metric rule alone (no guardrail can fail or block, the harm level unchanged)."""
    n = control.n.astype(float)
    a = ALPHA
    enough = n >= MIN_N
    per_treatment = 1 + 5 + (len(CRITICAL_INTENTS) if control.intents else 0)
    level = (a / 2) / per_treatment
    w = welch(n, *control.quality, n, *treatment.quality, p_value=method != "always_valid")
    v_q = w["var_c"] / n + w["var_t"] / n
    sd_primary = np.sqrt(w["var_c"])
    tau_per_sd = np.where(sd_primary > 0, scenario.mde / np.where(sd_primary > 0, sd_primary, 1.0), 0.1)
    z = stats.norm.ppf(1 - a / 2)

    harm = enough & (one_sided(w["mean_c"] - w["mean_t"], v_q, scenario.mde) <= level)
    # guardrails: fail = one-sided always-valid harm at `level`; pass = fixed-level interval at a planned look,
    # an always-valid one-sided test of "within the bound" at α/2 at every other read
    rate = {}
    for metric in ("error", "hallucination", "safety"):
        x_c, x_t = getattr(control, metric).astype(float), getattr(treatment, metric).astype(float)
        rc, vc = _ac(x_c, n)
        _, vt = _ac(x_t, n)
        rate[metric] = (x_c / n, x_t / n, vc, vt, np.sqrt(rc * (1 - rc)), x_c, x_t)
    # error: ceiling 0.5% (intersection-union: above the ceiling AND worse than control)
    p_c, p_t, vc, vt, sd_c, x_c, x_t = rate["error"]
    limit = 0.005
    own_v = np.broadcast_to(limit * (1 - limit) / n, p_t.shape)
    tau_own = tau_per_sd * math.sqrt(limit * (1 - limit))
    p_own = one_sided(p_t - limit, own_v, tau_own)
    p_vs = one_sided(p_t - p_c, vc + vt, tau_per_sd * sd_c)
    fails = [enough & (np.maximum(p_own, p_vs) <= level)]
    err_pass, _ = clopper_pearson_vs(treatment.error, control.n, limit, a)
    passes = [err_pass]
    seq_passes = [enough & (one_sided(limit - p_t, own_v, limit / 2) <= a / 2)]
    for metric, margin in (("hallucination", 0.01), ("safety", 0.005)):
        p_c, p_t, vc, vt, sd_c, x_c, x_t = rate[metric]
        fails.append(enough & (one_sided(p_t - p_c - margin, vc + vt, tau_per_sd * sd_c) <= level))
        _, high = newcombe(x_c, n, x_t, n, a)
        passes.append(high <= margin)
        seq_passes.append(enough & (one_sided(margin - (p_t - p_c), vc + vt, margin) <= a / 2))
    c = welch(n, *control.cost, n, *treatment.cost, p_value=False)
    vcost_c, vcost_t = c["var_c"] / n, c["var_t"] / n
    d = c["mean_t"] - 1.5 * c["mean_c"]
    v = vcost_t + 2.25 * vcost_c
    tau_cost = tau_per_sd * np.sqrt(c["var_c"])
    fails.append(enough & (one_sided(d, v, tau_cost) <= level))
    passes.append(d + z * np.sqrt(v) <= 0)
    seq_passes.append(enough & (one_sided(-d, v, 0.5 * np.abs(c["mean_c"])) <= a / 2))
    # p99 ceiling 5,000 ms: beyond it (time-uniform lower bound at `level`) AND above control's p99 (level/2 each)
    own_l, _ = _ranks(scenario.reads, level, 0.0, True)
    t_l, _ = _ranks(scenario.reads, level / 2, 0.0, True)
    _, c_u = _ranks(scenario.reads, 0.0, level / 2, True)
    beyond = bucket_value(treatment.tail_le, own_l, "low") > 5000.0
    worse = bucket_value(treatment.tail_le, t_l, "low") > bucket_value(control.tail_le, c_u, "high")
    fails.append(enough & beyond & worse)
    _, pass_u = _ranks(scenario.reads, 0.0, a / 2, False)
    passes.append(bucket_value(treatment.tail_le, pass_u, "high") <= 5000.0)
    _, seq_u = _ranks(scenario.reads, 0.0, a / 2, True)
    seq_passes.append(bucket_value(treatment.tail_le, seq_u, "high") <= 5000.0)
    guardrail_fail = np.logical_or.reduce(fails)
    fixed_pass = np.logical_and.reduce(passes)
    sequential_pass = np.logical_and.reduce(seq_passes)
    ratio = c["mean_t"] / c["mean_c"]
    cost_high = ratio - 1 + z * ratio * np.sqrt(vcost_t / c["mean_t"] ** 2 + vcost_c / c["mean_c"] ** 2)
    cost_review = ~(cost_high <= 0.10)

    intent_harm = np.zeros(w["effect"].shape, dtype=bool)
    intent_block = np.zeros_like(intent_harm)
    composite_ok = np.ones_like(intent_harm)
    if treatment.intents:
        from kanaria.analysis.catalogue import default_intent_weight

        weighted = np.zeros(w["effect"].shape)
        total = np.zeros(w["effect"].shape)
        for intent in INTENT_SHARES:
            nc, sc, qc = control.intents[intent]
            nt, st, qt = treatment.intents[intent]
            wi = welch(nc, sc, qc, nt, st, qt, p_value=False)
            n_min = np.minimum(nc, nt)
            with np.errstate(divide="ignore", invalid="ignore"):
                improvement = (wi["mean_t"] - wi["mean_c"]) / np.abs(wi["mean_c"])
                v_i = wi["var_t"] / nt + 0.95**2 * wi["var_c"] / nc
            has = np.isfinite(improvement)
            weight = default_intent_weight(intent)
            weighted += np.where(has, weight * np.where(has, improvement, 0.0), 0.0)
            total += np.where(has, weight, 0.0)
            if intent in CRITICAL_INTENTS:
                insufficient = ~has | (n_min < MIN_N)
                intent_block |= insufficient | (~insufficient & (-improvement > 0.05))
                p = one_sided(0.95 * wi["mean_c"] - wi["mean_t"], v_i, scenario.mde)
                intent_harm |= ~insufficient & (p <= level)
        with np.errstate(divide="ignore", invalid="ignore"):
            composite_ok = np.where(total > 0, weighted / np.where(total > 0, total, 1.0) > 0, True)

    plan = scenario.planned_n - 1  # the read reaching the plan
    look = np.zeros(scenario.reads, dtype=bool)
    if method == "fixed":
        look[plan] = True
        better = look & w["valid"] & enough & (w["p"] < a) & (w["effect"] > 0)
    elif method == "obf":
        is_look, nominal, _ = _schedule(scenario)
        look = is_look
        better = is_look & w["valid"] & enough & (w["p"] <= nominal) & (w["effect"] > 0)
    else:
        better = enough & (one_sided(w["mean_t"] - w["mean_c"], v_q, scenario.mde) <= a / 2)
    shown = np.logical_or.accumulate(better, axis=1)  # a win shown at a look is kept (efficacy_shown)
    if state is not None:
        state["shown"] = shown
    if not guardrails:
        guardrail_fail, fixed_pass, sequential_pass, cost_review = False, True, True, False
    guardrails_pass = np.where(look[None, :] & (method != "always_valid"), fixed_pass, sequential_pass)
    rollback = guardrail_fail | harm | intent_harm
    win = shown & ~intent_block & composite_ok & guardrails_pass
    codes = np.where(rollback, ROLLBACK, np.where(win, np.where(cost_review, REVIEW, PROMOTE), NONE))
    if method != "always_valid":  # the plan's read is final unless a win waits for its guardrails
        ends = (codes[:, plan] == NONE) & ~shown[:, plan]
        codes[ends, plan] = FINAL
        codes[ends, plan + 1 :] = NONE
    return codes


def efficacy_shown_at(codes_shown: np.ndarray, run: int, read: int) -> dict[str, float]:
    """The efficacy_shown the scheduled analysis carries into `read` (shown at an earlier read)."""
    return {"B": 1.0} if read > 0 and codes_shown[run, read - 1] else {}


def final_read(method: str, scenario: Scenario) -> int | None:
    """The read whose decision is final (obf/fixed: the first at the planned sample), None for always_valid."""
    return None if method == "always_valid" else scenario.planned_n - 1


# ---------------------------------------------------------------- driver


@dataclass(frozen=True)
class Rule:
    """A decision rule read on the simulated data: its codes function, method and where its decision is final."""

    label: str
    codes: Callable[..., np.ndarray]  # (control, treatment, scenario, state) -> codes; state gets "shown"
    method: str
    engine: str  # "current" (c97cfe9) or "new": which analyze_snapshot it is checked against
    final: bool  # decisions at the planned sample are final (reads after it ignored)


def rules(primary_only: bool = False) -> dict[str, Rule]:
    """The rules compared: each method under the current (c97cfe9) and the new rules."""
    out: dict[str, Rule] = {}
    for method in ("fixed", "obf", "always_valid"):
        out[f"current {method}"] = Rule(
            f"current `{method}` (c97cfe9)",
            lambda c, t, sc, st, m=method: current_codes(c, t, sc, m),
            method,
            "current",
            False,
        )
        out[f"new {method}"] = Rule(
            f"new `{method}`", lambda c, t, sc, st, m=method: new_codes(c, t, sc, m, state=st), method, "new", False
        )
        if primary_only:
            out[f"new {method} primary"] = Rule(
                f"new `{method}`, primary rule only (no guardrail; replica only)",
                lambda c, t, sc, st, m=method: new_codes(c, t, sc, m, guardrails=False, state=st),
                method,
                "none",
                False,
            )
    return out


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


def _current_engine_decisions(snapshots: list[dict[str, Any]]) -> list[str] | str:
    """Decisions of c97cfe9's analyze_snapshot on the snapshots (its tree from git, in a subprocess), or why not."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", CURRENT_COMMIT, "lambdas/kanaria"], capture_output=True
        )
        if archive.returncode != 0:
            return f"git archive {CURRENT_COMMIT} failed: {archive.stderr.decode().strip()[:200]}"
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        code = (
            "import json, sys\nfrom kanaria.analysis import analyze_snapshot\n"
            "for line in sys.stdin:\n    print(analyze_snapshot(json.loads(line))['decision'])\n"
        )
        env = {"PYTHONPATH": str(Path(tmp) / "lambdas"), "PATH": "/usr/bin:/bin"}
        run = subprocess.run(
            [sys.executable, "-c", code],
            input="\n".join(json.dumps(s) for s in snapshots),
            capture_output=True,
            text=True,
            env=env,
        )
        if run.returncode != 0:
            return f"the c97cfe9 engine failed: {run.stderr.strip()[-300:]}"
        return run.stdout.split()


CURRENT_COMMIT = "c97cfe9"


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
        decisions = _current_engine_decisions([body for *_, body in pending])
        if isinstance(decisions, str):
            notes.append(f"current rules not checked: {decisions}")
        else:
            for (name, run, read, _), decision in zip(pending, decisions):
                checked += 1
                if CODES.get(decision, NONE) != codes[name][run, read]:
                    bad += 1
                    notes.append(f"{name} run {run} read {read}: engine {decision}, replica {codes[name][run, read]}")
    return checked, bad, notes


# ---------------------------------------------------------------- the section


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

    from scripts.bench_statistics import GbstatsSequential, Reads

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
        runs = len(o.kind)
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


def run(args: Any) -> str:
    """The Statistics section of docs/benchmarks.md: whole-rule A/A rates and power, current vs new rules."""
    import sys

    def progress(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    quick = bool(getattr(args, "bench_quick", False))
    aa_runs, intent_runs, error_runs, design_runs, gb_runs = (
        (200, 100, 100, 100, 50) if quick else (800, 500, 200, 250, 100)
    )
    seed = 20261205
    started = time.perf_counter()
    compared = rules()
    powered = rules(primary_only=True)
    aa = [
        Scenario("no intents", 2000),
        Scenario("2 revenue-critical intents", 2000, intents=True),
        Scenario("1% errors in both arms", 2000, error_rate=0.01),
    ]
    designs = [
        (Scenario("design 1", 2000, effect=0.02), (0.97, 0.50)),
        (Scenario("design 2", 883, effect=0.02), (0.78, 0.75)),
    ]
    aa_lines, power_lines, notes = [], [], []
    checked = disagree = 0
    gb_tuning = {}
    for i, scenario in enumerate(aa):
        runs = error_runs if scenario.error_rate != 0.002 else intent_runs if scenario.intents else aa_runs
        progress(f"statistics: A/A {scenario.name}: {runs:,} runs × {scenario.reads:,} reads, {len(compared)} rules")
        sim = simulate(scenario, runs, seed + i, compared, keep_primary=gb_runs if i == 0 else 0)
        aa_lines += _aa_rows(scenario, sim, compared)
        c, b, n = verify(scenario, sim, compared, seed + 100 + i)
        checked, disagree, notes = checked + c, disagree + b, notes + n
        if i == 0:
            tuning = 2.0 * scenario.planned_n
            gb, elapsed = _gbstats_outcome(sim.primary, scenario, tuning)
            gb_tuning["aa"] = (gb, elapsed)
            runs_gb = len(gb.kind)
            decided = int((gb.kind != NONE).sum())
            rollback = int((gb.kind == ROLLBACK).sum())
            aa_lines.append(
                f"| {scenario.name} | GrowthBook gbstats sequential, primary metric only (no guardrails), tuning 2·n"
                f" = {tuning:,.0f}; {runs_gb} runs | {_rate(int((gb.within(scenario.planned_n).kind != NONE).sum()), runs_gb)} |"
                f" {_rate(decided, runs_gb)} | {_rate(rollback, runs_gb)} | {_rate(decided - rollback, runs_gb)} |"
                f" {'yes' if decided / runs_gb <= ALPHA and rollback / runs_gb <= ALPHA / 2 else '**no**'} |"
            )
            notes.append(f"gbstats A/A: {runs_gb} runs × {scenario.reads:,} reads evaluated in {elapsed:.0f} s.")
    for j, (scenario, goal) in enumerate(designs):
        progress(f"statistics: {scenario.name}: {design_runs:,} runs × {scenario.reads:,} reads, {len(powered)} rules")
        sim = simulate(scenario, design_runs, seed + 10 + j, powered, keep_primary=gb_runs)
        lines = _power_rows(scenario, sim, powered, goal)
        c, b, n = verify(scenario, sim, powered, seed + 200 + j, per_rule=16)
        checked, disagree, notes = checked + c, disagree + b, notes + n
        tuning = 2.0 * scenario.planned_n
        gb, elapsed = _gbstats_outcome(sim.primary, scenario, tuning)
        win = gb.kind == PROMOTE
        n_at = _n_at(gb, scenario.reads)
        ratio = float(np.median(n_at)) / scenario.planned_n
        lines.append(
            f"| GrowthBook gbstats sequential, primary only, tuning 2·n = {tuning:,.0f} ({len(gb.kind)} runs)"
            f" | {np.isin(gb.within(scenario.planned_n).kind, [PROMOTE]).mean():.3f} | {win.mean():.3f} |"
            f" {(gb.kind == ROLLBACK).mean():.3f} | {np.median(n_at):,.0f} | {ratio:.2f} |"
            f" {'yes' if win.mean() >= goal[0] and ratio <= goal[1] else '**no**'} |"
        )
        notes.append(f"gbstats {scenario.name}: {len(gb.kind)} runs evaluated in {elapsed:.0f} s.")
        power_lines.append((scenario, goal, lines))
    elapsed = time.perf_counter() - started
    return _section(
        (aa_runs, intent_runs, error_runs), design_runs, seed, elapsed, aa_lines, power_lines, checked, disagree, notes
    )


def _section(
    aa_runs: tuple[int, int, int],
    design_runs: int,
    seed: int,
    elapsed: float,
    aa_lines: list[str],
    power_lines: list[tuple[Scenario, tuple[float, float], list[str]]],
    checked: int,
    disagree: int,
    notes: list[str],
) -> str:
    sigma = math.sqrt(math.log(1 + COST_CV**2))
    lines = [
        "## Statistics",
        "",
        "Decisions of the **whole rule as used** by the scheduled analysis, by simulation (`scripts/bench_decisions.py`;"
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
        f" `git archive` and run in a subprocess). **{checked:,} reads checked, {disagree} disagreements.**",
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
    for scenario, (min_power, max_ratio), rows in power_lines:
        lines += [
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
    lines += [f"- {note}" for note in notes[:12]]
    if len(notes) > 12:
        lines.append(f"- … {len(notes) - 12} more notes")
    return "\n".join(lines) + "\n"
