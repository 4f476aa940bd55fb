"""Cost and efficiency per configuration: cost per satisfactory response, token efficiency, latency-to-quality
ratio, and the Pareto-optimal configurations (minimise cost and latency, maximise quality)."""

from __future__ import annotations

from typing import Any, Mapping

from kanaria.analysis.schema import VariantAggregate
from kanaria.stats.frequentist import finite_or_none
from kanaria.stats.ratios import ratio_interval

RATIO_ALPHA = 0.05  # 95% delta-method intervals of the efficiency ratios


def _mean(agg: VariantAggregate, metric: str) -> float | None:
    m = agg.means.get(metric)
    return m.sum / m.n if m is not None and m.n > 0 else None


def _var_of_mean(agg: VariantAggregate, metric: str) -> float | None:
    m = agg.means.get(metric)
    return m.m2 / (m.n - 1) / m.n if m is not None and m.n > 1 else None


def _rate(agg: VariantAggregate, metric: str) -> float | None:
    b = agg.binaries.get(metric)
    return b.successes / b.n if b is not None and b.n > 0 else None


def _var_of_rate(agg: VariantAggregate, metric: str) -> float | None:
    b = agg.binaries.get(metric)
    if b is None or b.n == 0:
        return None
    p = (b.successes + 1) / (b.n + 2)  # Agresti–Caffo: an all-or-nothing count keeps some uncertainty
    return p * (1 - p) / (b.n + 2)


def _interval(
    numerator: float | None,
    var_numerator: float | None,
    denominator: float | None,
    var_denominator: float | None,
    scale: float = 1.0,
) -> list[float | None] | None:
    """95% delta-method interval of numerator/denominator (same responses, covariance unknown: worst case)."""
    if None in (numerator, var_numerator, denominator, var_denominator):
        return None
    r = ratio_interval(numerator, var_numerator, denominator, var_denominator, RATIO_ALPHA)  # type: ignore[arg-type]
    if r.low is None or r.high is None:
        return None
    return [finite_or_none(r.low * scale), finite_or_none(r.high * scale)]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return finite_or_none(numerator / denominator)


def variant_efficiency(agg: VariantAggregate, quality_target: float | None) -> dict[str, Any]:
    """Efficiency figures of one configuration (None where an input is missing)."""
    cost, quality, latency = _mean(agg, "cost_usd"), _mean(agg, "quality_score"), _mean(agg, "latency_ms")
    tokens_in, tokens_out = _mean(agg, "input_tokens"), _mean(agg, "output_tokens")
    tokens = tokens_in + tokens_out if tokens_in is not None and tokens_out is not None else None
    satisfactory = _rate(agg, "satisfactory")  # share of responses with quality >= the intent's target
    per_token = _ratio(quality, tokens)
    var_in, var_out = _var_of_mean(agg, "input_tokens"), _var_of_mean(agg, "output_tokens")
    # Var(in + out) ≤ (SE_in + SE_out)²: the two token counts of a response are correlated in an unknown way
    var_tokens = (var_in**0.5 + var_out**0.5) ** 2 if var_in is not None and var_out is not None else None
    return {
        "cost_per_request": finite_or_none(cost),
        "quality": finite_or_none(quality),
        "latency_ms": finite_or_none(latency),
        "tokens_per_request": finite_or_none(tokens),
        "satisfactory_rate": finite_or_none(satisfactory),
        "cost_per_satisfactory_response": _ratio(cost, satisfactory),
        "cost_per_satisfactory_response_ci": _interval(
            cost, _var_of_mean(agg, "cost_usd"), satisfactory, _var_of_rate(agg, "satisfactory")
        ),
        "quality_per_1k_tokens": None if per_token is None else per_token * 1000.0,
        "quality_per_1k_tokens_ci": _interval(quality, _var_of_mean(agg, "quality_score"), tokens, var_tokens, 1000.0),
        "latency_to_quality_ms": _ratio(latency, quality),
        "quality_target": quality_target,
        "meets_quality_target": None if quality is None or quality_target is None else quality >= quality_target,
    }


def pareto_front(points: Mapping[str, tuple[float, float, float]]) -> list[str]:
    """Names not dominated on (cost ↓, latency ↓, quality ↑): no other is as good on all and better on one."""

    def dominates(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
        as_good = a[0] <= b[0] and a[1] <= b[1] and a[2] >= b[2]
        return as_good and (a[0] < b[0] or a[1] < b[1] or a[2] > b[2])

    return [
        name for name, p in points.items() if not any(dominates(q, p) for other, q in points.items() if other != name)
    ]


def efficiency_report(per_variant: Mapping[str, VariantAggregate], quality_target: float | None) -> dict[str, Any]:
    """Every variant's efficiency and the Pareto-optimal ones among those with cost, latency and quality."""
    variants = {name: variant_efficiency(agg, quality_target) for name, agg in per_variant.items()}
    points = {
        name: (v["cost_per_request"], v["latency_ms"], v["quality"])
        for name, v in variants.items()
        if None not in (v["cost_per_request"], v["latency_ms"], v["quality"])
    }
    return {"variants": variants, "pareto_optimal": pareto_front(points)}
