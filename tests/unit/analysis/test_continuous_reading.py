"""A/A by simulation through the real engine, read the way the scheduled analysis reads (look history and a shown
win carried from read to read, nothing tested after a final decision): false decisions stay within alpha (ROLLBACK
within alpha/2) whatever the method, on data where reading the current rules' way is far outside it.

Seeded; sizes chosen so a wrong rule fails (the naive reading of the same snapshots is checked to be > 2·alpha).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from kanaria.analysis import analyze_snapshot
from kanaria.domain.observation import latency_bucket

RUNS = 150
PLANNED = 800
READS = [100 * k for k in range(1, 17)]  # every 100 units per arm up to 2× the plan


def _arm(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    sigma = math.sqrt(math.log(1.25))
    return {
        "quality": rng.normal(0.80, 0.15, n),
        "cost": rng.lognormal(math.log(0.008) - sigma**2 / 2, sigma, n),
        "bucket": np.array([latency_bucket(x) for x in rng.lognormal(math.log(1200), 0.5, n)]),
        "error": rng.random(n) < 0.002,
        "hallucination": rng.random(n) < 0.01,
        "safety": rng.random(n) < 0.002,
    }


def _aggregate(arm: dict[str, np.ndarray], n: int) -> dict:
    q, c = arm["quality"][:n], arm["cost"][:n]
    buckets, counts = np.unique(arm["bucket"][:n], return_counts=True)
    return {
        "units": n,
        "quality_score": {"n": n, "sum": float(q.sum()), "sum_sq": float(q @ q)},
        "cost_usd": {"n": n, "sum": float(c.sum()), "sum_sq": float(c @ c)},
        "latency_ms": {
            "n": n,
            "sum": 1300.0 * n,
            "sum_sq": 1300.0**2 * n + 250_000.0 * (n - 1),
            "histogram": {str(b): int(k) for b, k in zip(buckets, counts)},
        },
        "error": {"n": n, "successes": int(arm["error"][:n].sum())},
        "hallucination": {"n": n, "successes": int(arm["hallucination"][:n].sum())},
        "safety_filtered": {"n": n, "successes": int(arm["safety"][:n].sum())},
    }


def _scheduled_reads(method: str, seed: int) -> tuple[list[str | None], list[bool]]:
    """Per run: the first PROMOTE/REVIEW/ROLLBACK over the reads (None: none), and whether reading the same data
    the naive way (Welch's two-sided p < alpha at any of these reads, by scipy) would have decided."""
    rng = np.random.default_rng(seed)
    first, naive = [], []
    for _ in range(RUNS):
        a, b = _arm(rng, READS[-1]), _arm(rng, READS[-1])
        looks, shown, decided, peeked = [], {}, None, False
        for n in READS:
            body = {
                "experiment": {
                    "id": "aa",
                    "control": "A",
                    "weights": {"A": 0.5, "B": 0.5},
                    "primary_metric": "quality_score",
                    "method": method,
                    "mde": 0.03,
                    "planned_n_per_variant": PLANNED,
                    "looks": looks,
                    "efficacy_shown": shown,
                },
                "aggregates": {"A": _aggregate(a, n), "B": _aggregate(b, n)},
            }
            result = analyze_snapshot(body)
            peeked = peeked or stats.ttest_ind(b["quality"][:n], a["quality"][:n], equal_var=False).pvalue < 0.05
            if result.decision.value in ("PROMOTE", "REVIEW", "ROLLBACK"):
                decided = result.decision.value
                break
            if result.final:  # the scheduled analysis stores it and reads no more
                break
            looks = result.evidence["sequential"].get("looks", [])
            shown = result.evidence["efficacy_shown"]
        first.append(decided)
        naive.append(peeked)
    return first, naive


@pytest.mark.parametrize("method, seed", [("fixed", 1), ("obf", 2), ("always_valid", 3)])
def test_a_a_false_decisions_stay_within_alpha_at_every_read(method, seed):
    first, naive = _scheduled_reads(method, seed)
    rollback = sum(d == "ROLLBACK" for d in first) / RUNS
    any_decision = sum(d is not None for d in first) / RUNS
    assert any_decision <= 0.05 and rollback <= 0.025, (any_decision, rollback)
    assert sum(naive) / RUNS > 0.10  # the same reads, judged by the fixed-horizon p at every read


def test_p99_guardrail_does_not_roll_back_identical_latencies():
    # the docs' example (+10% relative) on identical lognormal latencies: comparing the two point p99s "fails"
    # often (the issue measured 0.18 at n = 1,000); the order-statistic bounds almost never
    rng = np.random.default_rng(7)
    guardrail = [{"metric": "latency_p99_ms", "max_degradation": 0.10, "relative": True}]
    fails, point_fails, runs = 0, 0, 200
    for _ in range(runs):
        a, b = _arm(rng, 5_000), _arm(rng, 5_000)
        for n in (1_000, 2_000, 5_000):
            body = {
                "experiment": {
                    "id": "p99",
                    "control": "A",
                    "weights": {"A": 0.5, "B": 0.5},
                    "primary_metric": "quality_score",
                    "method": "always_valid",
                    "mde": 0.03,
                    "guardrails": guardrail,
                },
                "aggregates": {"A": _aggregate(a, n), "B": _aggregate(b, n)},
            }
            check = next(
                g for g in analyze_snapshot(body).evidence["guardrails"]["B"] if g["metric"] == "latency_p99_ms"
            )["checks"][1]
            from kanaria.domain.observation import histogram_quantile

            point = [
                histogram_quantile({int(k): v for k, v in arm["latency_ms"]["histogram"].items()}, 0.99)
                for arm in body["aggregates"].values()
            ]
            if point[1] > 1.1 * point[0]:
                point_fails += 1
                break
            if check["status"] == "fail":
                fails += 1
                break
    assert fails / runs <= 0.025 and point_fails / runs > 0.10
