"""What the rollout's judge read, per stream and minute: the same CloudWatch minutes (the judge's own reader on
the emulator) over the rollout, replayed through the judge for the decision tiles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.context import RunContext
from kanaria_tools.reports.decision_tiles import replay, series_json

CHUNK_PERIODS = 10  # periods per read: each read takes its slow/poor cut-offs from the reference window before it


def judged_streams(ctx: RunContext, plan: dict[str, Any], started: float, ended: float) -> list[dict[str, Any]]:
    """Every judged stream of a rollout over scenario seconds [started, ended), as JSON; [] without a judge."""
    from kanaria.canary.judge import MinuteCounts, period_start
    from kanaria.dal.canary_metrics import CloudWatchCanaryReader
    from kanaria.domain.rollout_plan import RolloutPlan, judge_horizon_periods

    parsed = RolloutPlan.model_validate(plan)
    settings = parsed.judge
    if settings is None:
        return []
    namespace = ctx.steps_environment().get(names.ENV_METRIC_NAMESPACE, names.METRIC_NAMESPACE)
    reader = CloudWatchCanaryReader(namespace, ctx.client("cloudwatch"))
    at = period_start(settings, ctx.clock.wall_datetime(started))
    end = period_start(settings, ctx.clock.wall_datetime(ended))
    chunk = timedelta(seconds=CHUNK_PERIODS * settings.period_seconds)
    minutes: list[MinuteCounts] = []
    while at < end:
        until = min(end, at + chunk)
        minutes += reader.read_minutes(at, until, settings)
        at = until
    series = replay(settings, judge_horizon_periods(parsed), minutes, lambda moment: ctx.clock.to_scenario(moment) / 60)
    return [series_json(s) for s in series]
