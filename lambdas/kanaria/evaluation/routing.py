"""Routing recommendation and cost projection of an evaluation: per intent the cheapest configuration that passes
its gate and the latency limit (or the best quality within a monthly budget), and what the intent mix would cost
per month on each configuration alone and on the routing."""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

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
        reasons.append(f"{cell.config}: no price for its model in {pricing.PRICE_TABLE_VERSION}")
    return reasons


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
    eligible: dict[str, list[CellMetrics]] = {}
    unrouted: dict[str, list[str]] = {}
    for intent in intents:
        group = [c for c in cells if c.intent == intent]
        ok = [c for c in group if not _ineligibility(c, latency_limit_ms)]
        if ok:
            eligible[intent] = sorted(ok, key=lambda c: (c.mean_cost_usd, -c.mean_quality, c.config))
        else:
            unrouted[intent] = [r for c in group for r in _ineligibility(c, latency_limit_ms)]

    def monthly(choice: Mapping[str, CellMetrics]) -> float:
        return requests_per_month * sum(mix.get(i, 0.0) * c.mean_cost_usd for i, c in choice.items())  # type: ignore[operator,misc]

    cheapest = {intent: group[0] for intent, group in eligible.items()}
    chosen, objective, notes = cheapest, "min_cost", []
    within: bool | None = None
    if monthly_budget_usd is not None:
        objective = "max_quality_within_budget"
        combinations = math.prod(len(g) for g in eligible.values()) if eligible else 0
        if monthly(cheapest) > monthly_budget_usd:
            within = False
            notes.append(
                f"even the cheapest passing routing costs {monthly(cheapest):,.2f} USD/month, over the "
                f"budget of {monthly_budget_usd:,.2f}"
            )
        elif combinations > MAX_ROUTING_COMBINATIONS:
            within = True
            notes.append(f"{combinations} combinations: kept the cheapest routing instead of searching")
        else:
            within = True
            order = list(eligible)
            best_key: tuple[float, float] | None = None
            for combo in itertools.product(*(eligible[i] for i in order)):
                choice = dict(zip(order, combo))
                cost = monthly(choice)
                if cost > monthly_budget_usd + 1e-9:
                    continue
                key = (sum(mix.get(i, 0.0) * c.mean_quality for i, c in choice.items()), -cost)
                if best_key is None or key > best_key:
                    best_key, chosen = key, choice
    missing = sorted(i for i, s in mix.items() if s > 0 and i not in intents)
    if missing:
        notes.append(f"not evaluated, left out of the projection: {', '.join(missing)}")
    choices = []
    for intent in intents:
        share = mix.get(intent, 0.0)
        if intent in chosen:
            c = chosen[intent]
            choices.append(
                RouteChoice(
                    intent=intent,
                    config=c.config,
                    share=share,
                    mean_quality=c.mean_quality,
                    mean_cost_usd=c.mean_cost_usd,
                    latency_p95_ms=c.latency_p95_ms,
                )
            )
        else:
            choices.append(RouteChoice(intent=intent, config=None, share=share, reasons=tuple(unrouted[intent])))
    if unrouted:
        notes.append(f"no configuration qualifies for: {', '.join(unrouted)}")
    return Routing(
        latency_limit_ms=latency_limit_ms,
        monthly_budget_usd=monthly_budget_usd,
        objective=objective,
        choices=tuple(choices),
        monthly_cost_usd=monthly(chosen) if chosen else None,
        within_budget=within,
        notes=tuple(notes),
    )


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
    per_config: dict[str, float | None] = {}
    for config in dict.fromkeys(c.config for c in cells):
        total: float | None = 0.0
        for intent, share in mix.items():
            if intent not in evaluated or share == 0:
                continue
            cell = next((c for c in cells if c.config == config and c.intent == intent), None)
            if cell is None or cell.mean_cost_usd is None:
                total = None
                break
            total += share * cell.mean_cost_usd  # type: ignore[operator]
        per_config[config] = None if total is None else requests_per_month * total
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
