"""Stored analysis looks of an A/B experiment and judged rollout streams, for the report tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from kanaria.canary.judge import Counts, JudgeSettings, MinuteCounts, stream_key
from kanaria_tools.reports.decision_tiles import StreamSeries, replay
from tests.unit.analysis.builders import analyze, snapshot, variant

GUARDRAILS = [
    {"metric": "latency_p99_ms", "max_degradation": 0.1},
    {"metric": "error", "max_degradation": 0.005, "relative": False},
]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stored_look(units: int, looks: list[float] | None = None) -> dict[str, Any]:
    """A stored analysis (as `kanaria report --json` prints it) of A (control) vs B at `units` per arm."""
    body = snapshot(
        variant(units),
        variant(units, quality=0.88),
        method="obf",
        planned_n=1200,
        guardrails=GUARDRAILS,
        **({"looks": looks} if looks else {}),
    )
    half = units // 2
    body["intents"] = {
        "order_status": {"A": variant(half), "B": variant(half, quality=0.90)},
        "chitchat": {"A": variant(half), "B": variant(half, quality=0.85)},
    }
    result = analyze(body)
    return {
        "experiment_id": "exp-test",
        "computed_at": "2026-01-01T00:30:00+00:00",
        "decision": result["decision"],
        "result": result,
        "snapshot": body,
    }


def experiment_detail() -> dict[str, Any]:
    """An experiment phase's detail with two looks."""
    looks = [
        {"label": "1 (30 min)", "minute": 30, "stored": stored_look(300)},
        {"label": "2 (60 min)", "minute": 60, "stored": stored_look(600, looks=[0.25])},
    ]
    return {
        "control": "A",
        "treatment": "B",
        "mde": 0.02,
        "looks": looks,
        "analysis": looks[-1]["stored"],
        "rows": [["1 (30 min)", 300, 300, "0.850", "0.880", "CONTINUE", "ok"]],
    }


def minute_counts(minutes: int = 20, fault_minute: int = 10, quiet_minute: int = 5) -> list[MinuteCounts]:
    """Errors per minute: 1% on both sides, the canary at 12% from `fault_minute` on (all intents and
    order_status); no traffic at all in `quiet_minute`."""
    settings = JudgeSettings()
    out = []
    for m in range(minutes):
        streams: dict[str, Counts] = {}
        if m != quiet_minute:
            canary_rate = 0.12 if m >= fault_minute else 0.01
            for intent, trials in (("*", (100.0, 900.0)), ("order_status", (20.0, 180.0))):
                for metric in settings.metrics:
                    bad = canary_rate if metric.value == "errors" else 0.01
                    streams[stream_key(metric, intent)] = Counts(
                        canary_events=round(bad * trials[0]),
                        canary_trials=trials[0],
                        primary_events=round(0.01 * trials[1]),
                        primary_trials=trials[1],
                    )
        out.append(MinuteCounts(minute=T0 + timedelta(minutes=m), streams=streams))
    return out


def rollout_streams(start_minute: float = 10.0) -> list[StreamSeries]:
    """Every judged stream of a 20-minute rollout that starts at scenario minute `start_minute`."""
    return replay(
        JudgeSettings(),
        60,
        minute_counts(),
        lambda moment: start_minute + (moment - T0).total_seconds() / 60,
    )
