"""The rollout judge's evidence per stream and minute, for the decision tiles: the judge replayed minute by
minute on the minutes it reads (kanaria.canary, unchanged), so each minute shows the canary - primary difference
with its 95% interval (Newcombe), the tolerance (harm is a canary rate above max(ratio x primary, primary +
points)) and the stream's evidence statistic against its threshold. A minute without traffic on a side has no
difference: it is left empty, never joined across."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Sequence

from kanaria.canary import evidence
from kanaria.canary import judge as canary_judge
from kanaria.canary.judge import OVERALL, JudgeSettings, MinuteCounts, parse_key
from kanaria.stats.frequentist import newcombe_difference_interval

CONFIDENCE = 0.95


@dataclass(frozen=True)
class StreamMinute:
    """One judged minute of one stream (scenario minute of its start)."""

    minute: float
    canary_events: float
    canary_trials: float
    primary_events: float
    primary_trials: float
    difference: float | None  # canary rate - primary rate; None without traffic on a side
    low: float | None
    high: float | None
    tolerance: float | None  # the difference at which the canary would be harmful this minute
    statistic: float  # the detector's log evidence after this minute
    threshold: float


@dataclass(frozen=True)
class StreamSeries:
    """One judged stream (metric x intent) over the rollout."""

    metric: str
    intent: str
    ratio: float
    points: float
    minutes: tuple[StreamMinute, ...]

    @property
    def key(self) -> str:
        return f"{self.metric}|{self.intent}"

    @property
    def label(self) -> str:
        """'errors on all intents' / 'errors on intent order_status'."""
        return f"{self.metric} on {'all intents' if self.intent == OVERALL else f'intent {self.intent}'}"

    @property
    def crossed_at(self) -> float | None:
        """The first minute the statistic reached its threshold, or None."""
        return next((m.minute for m in self.minutes if m.statistic >= m.threshold), None)

    @property
    def closeness(self) -> float:
        """How near the statistic came to its threshold (>= 1: crossed)."""
        return max((m.statistic / m.threshold for m in self.minutes if m.threshold > 0), default=0.0)

    @property
    def trials(self) -> tuple[float, float]:
        """Canary and primary trials over the rollout."""
        return sum(m.canary_trials for m in self.minutes), sum(m.primary_trials for m in self.minutes)


def _difference(x_c: float, n_c: float, x_p: float, n_p: float) -> tuple[float | None, float | None, float | None]:
    if n_c <= 0 or n_p <= 0:
        return None, None, None
    low, high = newcombe_difference_interval(x_p, n_p, x_c, n_c, alpha=1 - CONFIDENCE)
    return x_c / n_c - x_p / n_p, float(low), float(high)


def replay(
    settings: JudgeSettings,
    horizon_periods: int,
    minutes: Iterable[MinuteCounts],
    scenario_minute: Callable[[datetime], float],
) -> list[StreamSeries]:
    """Every stream's minutes, as the judge saw them in order (its detectors fed one minute at a time)."""
    ordered = sorted(minutes, key=lambda m: m.minute)
    if not ordered:
        return []
    state = canary_judge.start(settings, ordered[0].minute, horizon_periods)
    per_stream: dict[str, list[StreamMinute]] = {key: [] for key in state.streams}
    for minute in ordered:
        state = canary_judge.observe(settings, state, [minute], minute.minute)
        for key, stream in state.streams.items():
            metric, intent = parse_key(key)
            rule = settings.metrics[metric]
            counts = minute.streams.get(key, canary_judge.Counts())
            difference, low, high = _difference(
                counts.canary_events, counts.canary_trials, counts.primary_events, counts.primary_trials
            )
            primary = counts.primary_rate
            per_stream[key].append(
                StreamMinute(
                    minute=scenario_minute(minute.minute),
                    canary_events=counts.canary_events,
                    canary_trials=counts.canary_trials,
                    primary_events=counts.primary_events,
                    primary_trials=counts.primary_trials,
                    difference=difference,
                    low=low,
                    high=high,
                    tolerance=None
                    if primary is None or difference is None
                    else max((rule.ratio - 1) * primary, rule.points),
                    statistic=evidence.log_mixture(stream.log_r),
                    threshold=evidence.log_threshold(horizon_periods, settings.stream_alpha(metric, intent)),
                )
            )
    return [
        StreamSeries(
            metric=parse_key(key)[0].value,
            intent=parse_key(key)[1],
            ratio=settings.metrics[parse_key(key)[0]].ratio,
            points=settings.metrics[parse_key(key)[0]].points,
            minutes=tuple(series),
        )
        for key, series in per_stream.items()
    ]


def mattered(streams: Sequence[StreamSeries], most: int = 3) -> list[StreamSeries]:
    """The streams a person should look at: every one that crossed its threshold (earliest first), otherwise the
    ones that came nearest to it."""
    crossed = sorted(
        (s for s in streams if s.crossed_at is not None), key=lambda s: (s.crossed_at, s.intent != OVERALL)
    )
    if crossed:
        return crossed[:most]
    with_data = [s for s in streams if s.trials[0] > 0]
    return sorted(with_data, key=lambda s: -s.closeness)[:most]


def series_json(series: StreamSeries) -> dict[str, object]:
    """A stream as JSON (result.json keeps the streams that mattered)."""
    return {
        "metric": series.metric,
        "intent": series.intent,
        "ratio": series.ratio,
        "points": series.points,
        "minutes": [[round(v, 6) if isinstance(v, float) else v for v in vars(m).values()] for m in series.minutes],
    }


def series_from_json(body: dict[str, object]) -> StreamSeries:
    """The stream back from its JSON."""
    minutes = body["minutes"]
    assert isinstance(minutes, list)
    return StreamSeries(
        metric=str(body["metric"]),
        intent=str(body["intent"]),
        ratio=float(body["ratio"]),  # type: ignore[arg-type]
        points=float(body["points"]),  # type: ignore[arg-type]
        minutes=tuple(StreamMinute(*values) for values in minutes),
    )
