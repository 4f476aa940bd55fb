"""Snapshot builders for the analysis tests: sufficient statistics from target means, SDs and rates."""

from __future__ import annotations

import copy
from typing import Any

from kanaria.analysis import analyze_snapshot


def mean_stats(n: int, mean: float, sd: float) -> dict[str, float]:
    """(n, sum, sum_sq) of n observations with this sample mean and sample SD."""
    return {"n": n, "sum": n * mean, "sum_sq": (n - 1) * sd * sd + n * mean * mean}


def latency_histogram(n: int, p99: float, sigma: float = 0.25) -> dict[str, int]:
    """The aggregator's latency histogram of n lognormal latencies (σ_log = sigma) placed at their quantiles
    (i − ½)/n, the distribution's p99 being `p99`: a deterministic sample for the p99 guardrail."""
    import numpy as np
    from scipy import stats

    from kanaria.domain.observation import latency_bucket

    median = p99 / np.exp(sigma * stats.norm.ppf(0.99))
    values = median * np.exp(sigma * stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    counts: dict[str, int] = {}
    for value in values:
        key = str(latency_bucket(float(value)))
        counts[key] = counts.get(key, 0) + 1
    return counts


def rate_stats(n: int, rate: float) -> dict[str, int]:
    """(n, successes) with successes = round(n · rate)."""
    return {"n": n, "successes": round(n * rate)}


def variant(
    units: int,
    *,
    quality: float = 0.85,
    quality_sd: float = 0.12,
    latency: float = 2000.0,
    latency_sd: float = 500.0,
    p99: float | None = 4000.0,
    cost: float = 0.0080,
    cost_sd: float = 0.0020,
    error: float = 0.001,
    hallucination: float = 0.010,
    safety: float = 0.002,
    task_completed: float = 0.78,
    drop: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One variant's aggregates: every metric observed on every unit unless dropped."""
    body: dict[str, Any] = {
        "units": units,
        "quality_score": mean_stats(units, quality, quality_sd),
        "latency_ms": {
            **mean_stats(units, latency, latency_sd),
            "p99": p99,
            **({"histogram": latency_histogram(units, p99)} if p99 is not None and units else {}),
        },
        "cost_usd": mean_stats(units, cost, cost_sd),
        "input_tokens": mean_stats(units, 1500.0, 300.0),
        "output_tokens": mean_stats(units, 300.0, 80.0),
        "error": rate_stats(units, error),
        "hallucination": rate_stats(units, hallucination),
        "safety_filtered": rate_stats(units, safety),
        "task_completed": rate_stats(units, task_completed),
    }
    for metric in drop:
        body.pop(metric)
    return body


def snapshot(
    control: dict[str, Any],
    treatment: dict[str, Any],
    *,
    method: str = "fixed",
    planned_n: int | None = 10_000,
    primary: str = "quality_score",
    **experiment: Any,
) -> dict[str, Any]:
    """A two-variant A/B snapshot (A control, B treatment, 50/50)."""
    body = {
        "experiment": {
            "id": "exp-test",
            "control": "A",
            "weights": {"A": 0.5, "B": 0.5},
            "primary_metric": primary,
            "alpha": 0.05,
            "power": 0.8,
            "mde": 0.01,
            "method": method,
            "planned_n_per_variant": planned_n,
            **experiment,
        },
        "aggregates": {"A": copy.deepcopy(control), "B": copy.deepcopy(treatment)},
    }
    return body


def analyze(body: dict[str, Any]) -> dict[str, Any]:
    """The engine's result in its stored JSON shape."""
    return analyze_snapshot(body).to_json()
