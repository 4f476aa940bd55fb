"""The candidates of the Canary judge section: healthy kinds and faults, the sizes, the seed, and one run's record."""

from __future__ import annotations

from dataclasses import dataclass

from kanaria.canary import judge as J
from kanaria_tools.bench import canary_contenders as C
from kanaria_tools.bench import canary_sim as sim

SEED = 20261205


ALPHA = 0.01


WORKERS = 2


CHUNK = 50


LATEST_FAULT_START = 45  # faults start uniformly in minutes [0, 45): at least 10 minutes before the last stage ends


SIZES = {
    "full": {"aa": 2000, "other_healthy": 400, "fault": 200, "oracle": 20_000},
    "quick": {"aa": 100, "other_healthy": 50, "fault": 30, "oracle": 5_000},
}


JUDGE_RULES = J.DEFAULT_METRICS


def _at_tolerance_ratio() -> dict[str, float]:
    return {m: JUDGE_RULES[J.Metric(m)].ratio * rate for m, rate in sim.BASE.items()}


HEALTHY = (
    ("identical arms (A/A)", sim.Candidate("A/A")),
    (
        "at the ratio tolerance: every metric at ratio x the primary's rate",
        sim.Candidate("ratio", effects=sim.with_rates(_at_tolerance_ratio())),
    ),
    (
        "harmless but different: every metric x1.2, 5xx +0.3 points (0.4%)",
        sim.Candidate(
            "different",
            effects=sim.with_rates({**{m: 1.2 * r for m, r in sim.BASE.items()}, "errors": sim.BASE["errors"] + 0.003}),
        ),
    ),
    (
        "half the points tolerance: 5xx +0.5 point (0.6%)",
        sim.Candidate(
            "half points",
            effects=sim.with_rates({"errors": sim.BASE["errors"] + JUDGE_RULES[J.Metric.ERRORS].points / 2}),
        ),
    ),
    (
        "at the points tolerance: 5xx +1 point (1.1%)",
        sim.Candidate(
            "points", effects=sim.with_rates({"errors": sim.BASE["errors"] + JUDGE_RULES[J.Metric.ERRORS].points})
        ),
    ),
)


FAULTS = (
    sim.Candidate("5xx error spike 6%", fault={"error": 0.06}),
    sim.Candidate("throttling 12%", fault={"throttle": 0.12}),
    sim.Candidate("hallucination spike 9%", fault={"hallucination": 0.09}),
    sim.Candidate(
        "cold start: latency 5x fading over 900 canary requests (from minute 0)",
        fault={"latency_factor": 5.0},
        start=0,
        warm_requests=900,
    ),
    sim.Candidate("latency 3x, persistent", fault={"latency_factor": 3.0}),
    sim.Candidate(
        "recommendation only: 7% 5xx, quality 0.55", fault={"error": 0.07, "quality": 0.55}, intents=("recommendation",)
    ),
    sim.Candidate(
        "order_status only: 2% 5xx, quality 0.78", fault={"error": 0.02, "quality": 0.78}, intents=("order_status",)
    ),
)


# #11's rehearsal goals (fault -> rollback complete, scenario clock): fault -> (stage index where the shipped
# scenario's fault starts, goal in minutes)
REHEARSAL_GOALS = {
    FAULTS[0].name: (1, 2),
    FAULTS[1].name: (0, 2),
    FAULTS[2].name: (0, 5),
    FAULTS[3].name: (0, 3),
    FAULTS[5].name: (0, 5),
}


DECIDERS = [d.name for d in C.contenders()]


JUDGE = C.KanariaJudge.name


ORACLE = C.Oracle.name


DIAGNOSTIC = C.faulty_streams_only(FAULTS[0]).name


@dataclass
class Run:
    """One rollout as the report needs it: per decider (minute, kind, detail, exposed canary requests)."""

    fault_start: int | None
    decisions: dict[str, tuple[int, str, str, int]]
    stage_minutes: list[int]
    completed: bool
