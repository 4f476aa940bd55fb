"""Routing recommendation and cost projection of an evaluation: per intent the cheapest configuration that passes
its gate and the latency limit (or the best quality within a monthly budget), and what the intent mix would cost
per month on each configuration alone and on the routing."""

from __future__ import annotations

import itertools
import math
from typing import Callable, Mapping, Sequence

from kanaria.domain import pricing
from kanaria.errors import ValidationError
from kanaria.evaluation.report_models import (
    DEFAULT_LATENCY_LIMIT_MS,
    DEFAULT_REQUESTS_PER_MONTH,
    MAX_ROUTING_COMBINATIONS,
    CellMetrics,
    Projection,
    RouteChoice,
    Routing,
)


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """An intent mix: non-negative shares summing to 1 (within 1e-6)."""
    if not mix:
        raise ValidationError("the intent mix is empty", field="intent_mix")
    bad = [i for i, s in mix.items() if not isinstance(s, (int, float)) or s < 0 or math.isnan(s)]
    if bad:
        raise ValidationError(f"shares must be non-negative numbers: {', '.join(bad)}", field="intent_mix")
    total = sum(mix.values())
    if abs(total - 1.0) > 1e-6:
        raise ValidationError(f"shares must sum to 1, got {total:.6f}", field="intent_mix")
    return {i: float(s) for i, s in mix.items()}


def _ineligibility(cell: CellMetrics, latency_limit_ms: float) -> list[str]:
    reasons = [f"{cell.config}: {r}" for r in cell.gate_reasons]
    if cell.latency_p95_ms is None:
        reasons.append(f"{cell.config}: no successful call")
    elif cell.latency_p95_ms > latency_limit_ms:
        reasons.append(f"{cell.config}: p95 {cell.latency_p95_ms:.0f} ms > limit {latency_limit_ms:.0f} ms")
    if cell.mean_cost_usd is None:
        reasons.append(
            f"{cell.config}: no price for its model in {pricing.PRICE_TABLE_VERSION} "
            f"or its endpoint in {pricing.ENDPOINT_PRICE_TABLE_VERSION}"
        )
    return reasons


def _eligibility(
    cells: Sequence[CellMetrics], intents: list[str], latency_limit_ms: float
) -> tuple[dict[str, list[CellMetrics]], dict[str, list[str]]]:
    """Per intent its eligible cells, cheapest first (ties: higher quality, then name), or every reason none is."""
    eligible: dict[str, list[CellMetrics]] = {}
    unrouted: dict[str, list[str]] = {}
    for intent in intents:
        group = [c for c in cells if c.intent == intent]
        ok = [c for c in group if not _ineligibility(c, latency_limit_ms)]
        if ok:
            eligible[intent] = sorted(ok, key=lambda c: (c.mean_cost_usd, -c.mean_quality, c.config))
        else:
            unrouted[intent] = [r for c in group for r in _ineligibility(c, latency_limit_ms)]
    return eligible, unrouted


def _monthly_cost(choice: Mapping[str, CellMetrics], mix: Mapping[str, float], requests_per_month: int) -> float:
    """Monthly USD of the mix on a routing (its cells are eligible, so priced)."""
    return requests_per_month * sum(mix.get(i, 0.0) * (c.mean_cost_usd or 0.0) for i, c in choice.items())


def _best_within_budget(
    eligible: Mapping[str, list[CellMetrics]],
    fallback: dict[str, CellMetrics],
    mix: Mapping[str, float],
    budget_usd: float,
    monthly: Callable[[Mapping[str, CellMetrics]], float],
) -> dict[str, CellMetrics]:
    """The combination with the highest traffic-weighted mean quality whose monthly cost fits (ties: cheaper)."""
    order = list(eligible)
    chosen, best_key = fallback, None
    for combo in itertools.product(*(eligible[i] for i in order)):
        choice = dict(zip(order, combo))
        cost = monthly(choice)
        if cost > budget_usd + 1e-9:
            continue
        key = (sum(mix.get(i, 0.0) * c.mean_quality for i, c in choice.items()), -cost)
        if best_key is None or key > best_key:
            best_key, chosen = key, choice
    return chosen


def _budgeted(
    eligible: Mapping[str, list[CellMetrics]],
    cheapest: dict[str, CellMetrics],
    mix: Mapping[str, float],
    budget_usd: float,
    monthly: Callable[[Mapping[str, CellMetrics]], float],
) -> tuple[dict[str, CellMetrics], bool, list[str]]:
    """The routing under a budget, whether it fits, and a note when the search was not made."""
    if monthly(cheapest) > budget_usd:
        note = (
            f"even the cheapest passing routing costs {monthly(cheapest):,.2f} USD/month, over the "
            f"budget of {budget_usd:,.2f}"
        )
        return cheapest, False, [note]
    combinations = math.prod(len(g) for g in eligible.values()) if eligible else 0
    if combinations > MAX_ROUTING_COMBINATIONS:
        return cheapest, True, [f"{combinations} combinations: kept the cheapest routing instead of searching"]
    return _best_within_budget(eligible, cheapest, mix, budget_usd, monthly), True, []


def _route_choice(
    intent: str, share: float, chosen: Mapping[str, CellMetrics], unrouted: Mapping[str, list[str]]
) -> RouteChoice:
    """The intent's routed configuration, or none with the reasons."""
    if intent not in chosen:
        return RouteChoice(intent=intent, config=None, share=share, reasons=tuple(unrouted[intent]))
    c = chosen[intent]
    return RouteChoice(
        intent=intent,
        config=c.config,
        share=share,
        mean_quality=c.mean_quality,
        mean_cost_usd=c.mean_cost_usd,
        latency_p95_ms=c.latency_p95_ms,
    )


def route(
    cells: Sequence[CellMetrics],
    mix: Mapping[str, float],
    *,
    latency_limit_ms: float = DEFAULT_LATENCY_LIMIT_MS,
    monthly_budget_usd: float | None = None,
    requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH,
) -> Routing:
    """Recommended routing. Eligible per intent: gate passed, p95 <= limit, priced. Without a budget: the cheapest
    eligible configuration per intent (ties: higher quality). With a budget: the combination with the highest
    traffic-weighted mean quality whose monthly cost fits (ties: cheaper); if even the cheapest does not fit,
    the cheapest, flagged over budget."""
    intents = list(dict.fromkeys(c.intent for c in cells))
    eligible, unrouted = _eligibility(cells, intents, latency_limit_ms)

    def monthly(choice: Mapping[str, CellMetrics]) -> float:
        return _monthly_cost(choice, mix, requests_per_month)

    cheapest = {intent: group[0] for intent, group in eligible.items()}
    chosen: dict[str, CellMetrics] = cheapest
    within: bool | None = None
    notes: list[str] = []
    if monthly_budget_usd is not None:
        chosen, within, notes = _budgeted(eligible, cheapest, mix, monthly_budget_usd, monthly)
    missing = sorted(i for i, s in mix.items() if s > 0 and i not in intents)
    if missing:
        notes.append(f"not evaluated, left out of the projection: {', '.join(missing)}")
    if unrouted:
        notes.append(f"no configuration qualifies for: {', '.join(unrouted)}")
    return Routing(
        latency_limit_ms=latency_limit_ms,
        monthly_budget_usd=monthly_budget_usd,
        objective="min_cost" if monthly_budget_usd is None else "max_quality_within_budget",
        choices=tuple(_route_choice(i, mix.get(i, 0.0), chosen, unrouted) for i in intents),
        monthly_cost_usd=monthly(chosen) if chosen else None,
        within_budget=within,
        notes=tuple(notes),
    )


def _alone_monthly_cost(
    cells: Sequence[CellMetrics], config: str, mix: Mapping[str, float], evaluated: set[str], requests_per_month: int
) -> float | None:
    """Monthly USD of the mix's evaluated intents on one configuration alone (None when one of them is unpriced)."""
    total = 0.0
    for intent, share in mix.items():
        if intent not in evaluated or share == 0:
            continue
        cell = next((c for c in cells if c.config == config and c.intent == intent), None)
        if cell is None or cell.mean_cost_usd is None:
            return None
        total += share * cell.mean_cost_usd
    return requests_per_month * total


def project(
    cells: Sequence[CellMetrics],
    routing: Routing,
    mix: Mapping[str, float],
    requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH,
) -> Projection:
    """Monthly USD of the mix's evaluated intents on each configuration alone (None when the configuration lacks a
    priced result for one of them) and on the recommended routing (None when a mixed intent is unrouted)."""
    evaluated = {c.intent for c in cells}
    covered = sum(s for i, s in mix.items() if i in evaluated)
    per_config = {
        config: _alone_monthly_cost(cells, config, mix, evaluated, requests_per_month)
        for config in dict.fromkeys(c.config for c in cells)
    }
    routed_complete = all(ch.config is not None for ch in routing.choices if mix.get(ch.intent, 0) > 0)
    routed = routing.monthly_cost_usd if routed_complete else None
    savings = {
        name: (value - routed if value is not None and routed is not None else None)
        for name, value in per_config.items()
    }
    return Projection(
        requests_per_month=requests_per_month,
        intent_mix=dict(mix),
        per_configuration_usd=per_config,
        routed_usd=routed,
        covered_share=covered,
        savings_vs_usd=savings,
    )
