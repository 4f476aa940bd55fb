"""Metric catalogue and the analysis defaults (thresholds from the design notes, all overridable per experiment)."""

from __future__ import annotations

from kanaria.domain.experiment import BINARY_METRICS, MEAN_METRICS
from kanaria.domain.observation import NO_INTENT
from kanaria.domain.profiles import DEFAULT_PROFILES, FALLBACK_INTENT, REVENUE_CRITICAL_INTENTS

# metric -> True when higher is better ("satisfactory": responses at or above the intent's quality target)
HIGHER_IS_BETTER: dict[str, bool] = {**MEAN_METRICS, **BINARY_METRICS, "satisfactory": True}
KNOWN_MEAN_METRICS = frozenset(MEAN_METRICS)
KNOWN_BINARY_METRICS = frozenset({*BINARY_METRICS, "satisfactory"})
P99_METRIC = "latency_p99_ms"  # guardrail on the latency_ms aggregate's "p99"
GUARDRAIL_METRICS = frozenset({*HIGHER_IS_BETTER, P99_METRIC})

# Guardrails every promotion must pass (design notes, canary A2); an experiment's own guardrail on the same
# metric replaces the default. "max": absolute ceiling on the treatment; "max_degradation": worsening vs control.
DEFAULT_GUARDRAILS: tuple[dict[str, object], ...] = (
    {"metric": P99_METRIC, "max": 5000.0},
    {"metric": "error", "max": 0.005},
    {"metric": "hallucination", "max_degradation": 0.01, "relative": False},
    {"metric": "safety_filtered", "max_degradation": 0.005, "relative": False},
    {"metric": "cost_usd", "max_degradation": 0.50, "relative": True},
)

# metrics whose values are never negative: a negative sum is a client bug (rejected with the field named)
NON_NEGATIVE_METRICS = frozenset(
    {"quality_score", "relevance_score", "csat", "latency_ms", "input_tokens", "output_tokens", "cost_usd"}
)
PLANNED_LOOKS = 4  # obf efficacy looks at 25/50/75/100% of the plan (harm is judged at every read; see docs)
MIN_N_PER_VARIANT = 30  # below this a test is reported but not acted on (CLT for skewed latency/cost)
P99_MIN_N = 1000  # a p99 from fewer observations rests on fewer than 10 values above it
SRM_THRESHOLD = 0.001
MAX_INTENT_REGRESSION = 0.05  # relative, on the primary metric, for revenue-critical intents
REVIEW_COST_INCREASE = 0.10  # relative cost increase that turns a win into REVIEW
QUALITY_FLOOR = 0.80  # bandit arms with mean quality below are removed
BANDIT_MIN_SHARE = 0.10
DEFAULT_STANDARDISED_MDE = 0.1  # for mSPRT mixing scales when the primary metric's SD is unknown

SEVERITY_WEIGHTS = {"high": 3.0, "medium": 2.0, "low": 1.0}
UNKNOWN_INTENT = NO_INTENT


def higher_is_better(metric: str, lower_is_better: frozenset[str] = frozenset()) -> bool:
    """Direction of a metric (unknown metrics: higher is better unless listed in lower_is_better)."""
    if metric in lower_is_better:
        return False
    return HIGHER_IS_BETTER.get(metric, True)


def default_quality_target(intent: str) -> float | None:
    """Quality target of an intent from the default profiles (None for an unknown intent)."""
    profile = DEFAULT_PROFILES.get(intent)
    return profile.quality_target if profile and intent != FALLBACK_INTENT else None


def default_intent_weight(intent: str) -> float:
    """Severity weight of an intent (unknown intents: medium; the no-intent bucket: 0)."""
    if intent == UNKNOWN_INTENT:
        return 0.0
    profile = DEFAULT_PROFILES.get(intent)
    return SEVERITY_WEIGHTS[profile.severity] if profile and intent != FALLBACK_INTENT else SEVERITY_WEIGHTS["medium"]


DEFAULT_REVENUE_CRITICAL_INTENTS: tuple[str, ...] = tuple(REVENUE_CRITICAL_INTENTS)
