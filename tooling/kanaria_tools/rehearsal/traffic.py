"""Synthetic chatbot responses with known true effects: what a configuration answers to one request, and what the
scenario's faults change in it (error, latency, throttling, hallucination, quality, missing metrics, the
assignment bug). The rollout's fleet (rehearsal.fleet) and the experiment's sessions
(rehearsal.experiment_traffic) draw from it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from kanaria_tools.rehearsal.scenario import Configuration, Fault


@dataclass
class Response:
    """One simulated chatbot response and its outcome."""

    intent: str
    latency_ms: float
    error: bool
    throttled: bool
    hallucination: bool
    quality: float | None
    csat: int | None
    cost_usd: float
    task_completed: bool
    cart_add: bool
    safety_filtered: bool = False


@dataclass
class FaultState:
    """What the active faults do to one side right now."""

    error_rate: float | None = None
    throttle_rate: float | None = None
    hallucination_rate: float | None = None
    latency_factor: float = 1.0
    quality_score: float | None = None
    metrics_missing: bool = False
    srm_skip_rate: float = 0.0


def fault_state(
    faults: tuple[Fault, ...] | list[Fault], side: str, minute: float, served: int, intent: str | None = None
) -> FaultState:
    """Combined effect of the faults on `side` at phase minute `minute` after `served` requests of that side
    (on a request of `intent`: intent-local faults affect only theirs)."""
    state = FaultState()
    for fault in faults:
        if fault.target != side or not fault.active(minute, intent):
            continue
        if fault.kind == "error_spike":
            state.error_rate = max(state.error_rate or 0.0, fault.rate or 0.0)
        elif fault.kind == "throttling":
            state.throttle_rate = max(state.throttle_rate or 0.0, fault.rate or 0.0)
        elif fault.kind == "hallucination_spike":
            state.hallucination_rate = max(state.hallucination_rate or 0.0, fault.rate or 0.0)
        elif fault.kind == "latency_regression":
            factor = fault.latency_factor or 1.0
            if fault.warm_after_requests:
                factor = 1.0 + (factor - 1.0) * max(0.0, 1.0 - served / fault.warm_after_requests)
            state.latency_factor *= factor
        elif fault.kind == "quality_drop":
            state.quality_score = fault.quality_score
        elif fault.kind == "missing_metrics":
            state.metrics_missing = True
        elif fault.kind == "srm_assignment_bug":
            state.srm_skip_rate = max(state.srm_skip_rate, fault.rate or 0.0)
    return state


class ResponseModel:
    """Draws responses from a configuration's true effects (seeded, reproducible)."""

    def __init__(self, rng: random.Random):
        self._rng = rng

    def draw(self, config: Configuration, intent: str, faults: FaultState) -> Response:
        effects = config.effects_for(intent)
        rng = self._rng
        throttle_rate = faults.throttle_rate if faults.throttle_rate is not None else effects.throttle_rate
        # A throttled model call is answered with the service's fallback message: HTTP 200 (not a 5xx), fast,
        # counted in Throttles, and a poor answer.
        throttled = rng.random() < throttle_rate
        error_rate = faults.error_rate if faults.error_rate is not None else effects.error_rate
        error = (not throttled) and rng.random() < error_rate
        latency = rng.lognormvariate(math.log(effects.latency.median_ms), effects.latency.sigma) * faults.latency_factor
        if throttled:
            latency = min(latency, 250.0 + rng.random() * 100)
        hallucination_rate = (
            faults.hallucination_rate if faults.hallucination_rate is not None else effects.hallucination_rate
        )
        hallucination = not (error or throttled) and rng.random() < hallucination_rate
        if error:
            quality = None
        elif throttled:
            quality = min(1.0, max(0.0, rng.gauss(0.35, 0.05)))
        else:
            mean = effects.quality_score if faults.quality_score is None else faults.quality_score
            quality = min(1.0, max(0.0, rng.gauss(mean, effects.quality_sd)))
        if hallucination and quality is not None:
            quality = max(0.0, quality - 0.3)
        csat = None
        if not (error or throttled) and rng.random() < effects.csat_response_rate:
            csat = int(min(4, max(1, round(rng.gauss(effects.csat, 0.8)))))
        return Response(
            intent=intent,
            latency_ms=round(latency, 1),
            error=error,
            throttled=throttled,
            hallucination=hallucination,
            quality=None if quality is None else round(quality, 4),
            csat=csat,
            cost_usd=round(max(0.0, rng.gauss(effects.cost_usd, effects.cost_usd * 0.2)), 6),
            task_completed=not (error or throttled) and rng.random() < effects.task_completion_rate,
            cart_add=not (error or throttled) and rng.random() < effects.cart_add_rate,
            safety_filtered=not error and rng.random() < effects.safety_filter_rate,
        )


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 50)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def pick_intent(rng: random.Random, mix: dict[str, float]) -> str:
    point, edge = rng.random(), 0.0
    for intent, share in mix.items():
        edge += share
        if point < edge:
            return intent
    return next(reversed(mix))
