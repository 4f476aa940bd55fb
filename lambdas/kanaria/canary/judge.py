"""The canary judge: every (metric, intent) stream's evidence turned into ROLLBACK / PASS / CONTINUE.

Streams: each judged metric overall (intent "*") and on each configured intent. A metric is a count of bad
events out of trials per side and minute (5xx out of requests, responses slower than the primary's p95 out of
timed responses, ...). Harm on a stream means both: the canary's rate is more than `ratio` times the primary's,
shown by the stream's change detector (evidence.py) at its share of the false-rollback budget, and its recent
rate is more than `points` above the primary's (a trivial difference is not harm).

Budget (multiplicity): alpha is split over the streams, `overall_share` to the overall streams and the rest to
the intent streams, each by metric weight x intent weight (the severity weights of design note 002 A5).
Each stream's detector crosses its threshold with probability <= its share over the rollout's horizon, so a
healthy rollout (every stream within tolerance) is rolled back by the judge with probability <= alpha.

PASS needs enough canary data in the stage, non-harm shown on every overall stream of a metric required for a
pass (upper confidence bound of the canary's rate within the tolerance of the primary's lower bound) and, on
each critical intent, enough canary data and no harm (the critical-intent block). Anything else is CONTINUE.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kanaria.canary import evidence

OVERALL = "*"


class Metric(str, Enum):
    """What the judge counts as a bad event, and out of which trials."""

    ERRORS = "errors"  # 5xx responses / requests
    THROTTLES = "throttles"  # throttled model calls / requests
    HALLUCINATIONS = "hallucinations"  # flagged responses / requests
    SAFETY_STOPS = "safety_stops"  # safety-filter stops / requests
    SLOW = "slow_responses"  # latency above the primary's latency_quantile / timed responses
    POOR_QUALITY = "poor_quality"  # quality score at or below the primary's quality_quantile / scored responses
    DISSATISFIED = "dissatisfied"  # CSAT at or below dissatisfied_csat / CSAT answers


class Verdict(str, Enum):
    """What one look says about the canary."""

    ROLLBACK = "ROLLBACK"
    PASS = "PASS"
    CONTINUE = "CONTINUE"


class MetricRule(BaseModel):
    """Tolerance and severity of one metric: harm is rate > ratio x primary AND rate > primary + points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: float = Field(ge=1.0, le=100.0, description="canary rate may be up to this multiple of the primary's")
    points: float = Field(ge=0.0, le=1.0, description="... or up to this many points above it (0.01 = 1 point)")
    weight: float = Field(gt=0.0, le=1.0, description="share of the false-rollback budget (severity)")
    required_for_pass: bool = Field(description="a stage passes only when non-harm is shown on this metric")


DEFAULT_METRICS: dict[Metric, MetricRule] = {
    Metric.ERRORS: MetricRule(ratio=1.25, points=0.01, weight=0.25, required_for_pass=True),
    Metric.THROTTLES: MetricRule(ratio=1.25, points=0.02, weight=0.15, required_for_pass=True),
    Metric.SLOW: MetricRule(ratio=1.25, points=0.05, weight=0.20, required_for_pass=True),
    Metric.HALLUCINATIONS: MetricRule(ratio=1.25, points=0.02, weight=0.15, required_for_pass=True),
    Metric.POOR_QUALITY: MetricRule(ratio=1.25, points=0.05, weight=0.15, required_for_pass=True),
    Metric.SAFETY_STOPS: MetricRule(ratio=1.25, points=0.01, weight=0.05, required_for_pass=False),
    Metric.DISSATISFIED: MetricRule(ratio=1.25, points=0.10, weight=0.05, required_for_pass=False),
}
# Severity weights of the reference store's intents (design note 002 A5: revenue drivers weigh most).
DEFAULT_INTENTS: dict[str, float] = {
    "recommendation": 0.25,
    "product_search": 0.20,
    "order_status": 0.15,
    "manga_qa": 0.15,
    "shipping_info": 0.15,
    "chitchat": 0.10,
}
DEFAULT_CRITICAL_INTENTS = ("recommendation", "product_search")


class JudgeSettings(BaseModel):
    """How the judge reads and decides; part of the rollout plan (`plan.judge`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.01, gt=0.0, le=0.2, description="false-rollback probability of a healthy rollout")
    overall_share: float = Field(default=0.5, gt=0.0, lt=1.0, description="budget share of the overall streams")
    metrics: dict[Metric, MetricRule] = Field(default_factory=lambda: dict(DEFAULT_METRICS))
    intents: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_INTENTS),
        description="intent -> severity weight; other intents count overall only",
    )
    critical_intents: tuple[str, ...] = DEFAULT_CRITICAL_INTENTS
    pass_confidence: float = Field(default=0.8, ge=0.5, lt=1.0, description="one-sided bounds of a pass")
    material_confidence: float = Field(
        default=0.9, ge=0.5, lt=1.0, description="one-sided bounds of the recent rates in the materiality check"
    )
    min_intent_samples: int = Field(
        default=30, ge=1, le=1_000_000, description="canary requests a critical intent needs in the stage to pass"
    )
    latency_quantile: float = Field(default=0.95, gt=0.5, lt=1.0)
    quality_quantile: float = Field(default=0.10, gt=0.0, lt=0.5)
    dissatisfied_csat: float = Field(default=2.0, ge=1.0, le=5.0)
    period_seconds: int = Field(
        default=60,
        description="the judged period: a minute in AWS (1, 5, 10 or 30 "
        "need high-resolution metrics; the local rehearsal uses 1 s = one scenario minute)",
    )
    reference_periods: int = Field(
        default=15, ge=1, le=180, description="primary periods before a look that set the latency/quality cut-offs"
    )
    smoothing_periods: float = Field(
        default=3.0, gt=0.0, le=60.0, description="half-life of the recent rates that decide materiality"
    )
    settle_seconds: float = Field(
        default=60,
        ge=0,
        le=900,
        description="a period is judged once its end is this old (CloudWatch's ingestion delay of EMF metrics)",
    )
    late_periods: int = Field(
        default=5,
        ge=0,
        le=60,
        description="a period without any data on either side is "
        "taken as late, not quiet, until it is this many periods old",
    )

    @field_validator("period_seconds")
    @classmethod
    def _cloudwatch_period(cls, value: int) -> int:
        if value not in (1, 5, 10, 30) and (value < 60 or value % 60):
            raise ValueError("must be 1, 5, 10, 30 or a multiple of 60 (CloudWatch periods)")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _merge_defaults(cls, value: object) -> object:
        """A user's rules replace the defaults metric by metric; `{metric: null}` leaves a metric out."""
        if isinstance(value, dict):
            merged: dict[object, object] = {m.value: rule for m, rule in DEFAULT_METRICS.items()}
            for key, rule in value.items():
                name = key.value if isinstance(key, Metric) else key
                if rule is None:
                    merged.pop(name, None)
                elif isinstance(rule, dict) and isinstance(default := merged.get(name), MetricRule):
                    merged[name] = {**default.model_dump(), **rule}
                else:
                    merged[name] = rule
            return merged
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "JudgeSettings":
        if not self.metrics:
            raise ValueError("metrics: judge at least one metric")
        if any(w <= 0 for w in self.intents.values()):
            raise ValueError("intents: weights must be positive")
        unknown = [i for i in self.critical_intents if i not in self.intents]
        if unknown:
            raise ValueError(f"critical_intents: {unknown} are not in intents")
        return self

    def stream_keys(self) -> list[str]:
        """Every stream: metric|intent, overall first."""
        intents = [OVERALL, *self.intents]
        return [stream_key(m, i) for m in self.metrics for i in intents]

    def stream_alpha(self, metric: Metric, intent: str) -> float:
        """The stream's share of alpha (Bonferroni over streams, severity-weighted)."""
        metric_weights = sum(r.weight for r in self.metrics.values())
        share = self.metrics[metric].weight / metric_weights
        if intent == OVERALL:
            return self.alpha * self.overall_share * share
        intent_weights = sum(self.intents.values())
        return self.alpha * (1.0 - self.overall_share) * share * self.intents[intent] / intent_weights


def stream_key(metric: Metric, intent: str) -> str:
    return f"{metric.value}|{intent}"


def parse_key(key: str) -> tuple[Metric, str]:
    metric, _, intent = key.partition("|")
    return Metric(metric), intent


class Counts(BaseModel):
    """Events and trials per side over some minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canary_events: float = 0.0
    canary_trials: float = 0.0
    primary_events: float = 0.0
    primary_trials: float = 0.0

    def plus(self, other: "Counts", decay: float = 1.0) -> "Counts":
        """decay x self + other."""
        return Counts(
            canary_events=decay * self.canary_events + other.canary_events,
            canary_trials=decay * self.canary_trials + other.canary_trials,
            primary_events=decay * self.primary_events + other.primary_events,
            primary_trials=decay * self.primary_trials + other.primary_trials,
        )

    @property
    def canary_rate(self) -> float | None:
        return self.canary_events / self.canary_trials if self.canary_trials > 0 else None

    @property
    def primary_rate(self) -> float | None:
        return self.primary_events / self.primary_trials if self.primary_trials > 0 else None


class MinuteCounts(BaseModel):
    """One judged period (a minute in AWS) of both sides, per stream key (a stream without data is left out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minute: datetime
    streams: dict[str, Counts]


class StreamState(BaseModel):
    """What a stream carries from look to look (compact: it travels in the state machine's payload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_r: list[float]
    minutes: int = 0  # periods with events (steps of the detector)
    recent: Counts = Counts()  # exponentially weighted, half-life smoothing_periods
    stage: Counts = Counts()  # since the stage started
    total: Counts = Counts()  # since the rollout started


class JudgeState(BaseModel):
    """The judge's memory across looks: up to which minute it has read, and every stream's state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_periods: int = Field(ge=1, description="T of the detectors: the most periods a rollout can be judged")
    judged_until: datetime
    streams: dict[str, StreamState] = Field(default_factory=dict)


def period_start(settings: JudgeSettings, at: datetime) -> datetime:
    """The start of the period holding `at` (periods are aligned to the epoch, as CloudWatch's)."""
    seconds = at.timestamp()
    return datetime.fromtimestamp(seconds - seconds % settings.period_seconds, tz=at.tzinfo)


def start(settings: JudgeSettings, started_at: datetime, horizon_periods: int) -> JudgeState:
    """A fresh judge for a rollout whose first stage started at `started_at` (its period is judged)."""
    return JudgeState(
        horizon_periods=horizon_periods,
        judged_until=period_start(settings, started_at),
        streams={
            key: StreamState(log_r=evidence.initial_log_r(settings.metrics[parse_key(key)[0]].ratio))
            for key in settings.stream_keys()
        },
    )


def new_stage(state: JudgeState) -> JudgeState:
    """Weights changed: the stage's totals restart, the detectors keep their evidence."""
    return state.model_copy(
        update={
            "streams": {key: stream.model_copy(update={"stage": Counts()}) for key, stream in state.streams.items()}
        }
    )


def minutes_to_read(settings: JudgeSettings, state: JudgeState, now: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the settled whole periods not judged yet, or None."""
    end = period_start(settings, now - timedelta(seconds=settings.settle_seconds))
    return (state.judged_until, end) if end > state.judged_until else None


def arrived(settings: JudgeSettings, minutes: Iterable[MinuteCounts], now: datetime) -> list[MinuteCounts]:
    """The leading periods whose data has arrived. A period with no trials on either side is late data (EMF
    not ingested yet), not a quiet period, until it is `late_periods` old: reading it now would lose it."""
    period = timedelta(seconds=settings.period_seconds)
    ready = []
    for minute in sorted(minutes, key=lambda m: m.minute):
        empty = all(c.canary_trials <= 0 and c.primary_trials <= 0 for c in minute.streams.values())
        if empty and now - (minute.minute + period) < settings.late_periods * period:
            break
        ready.append(minute)
    return ready


def observe(settings: JudgeSettings, state: JudgeState, minutes: Iterable[MinuteCounts], until: datetime) -> JudgeState:
    """Feed judged periods (in order) to every stream; `until` is the end of what was read."""
    decay_per_minute = 0.5 ** (1.0 / settings.smoothing_periods)
    streams = dict(state.streams)
    for minute in sorted(minutes, key=lambda m: m.minute):
        for key, stream in streams.items():
            counts = minute.streams.get(key, Counts())
            rule = settings.metrics[parse_key(key)[0]]
            log_r, counted = evidence.sr_update(
                stream.log_r,
                counts.canary_events,
                counts.canary_trials,
                counts.primary_events,
                counts.primary_trials,
                rule.ratio,
            )
            streams[key] = StreamState(
                log_r=[round(v, 6) for v in log_r],
                minutes=stream.minutes + int(counted),
                recent=stream.recent.plus(counts, decay_per_minute),
                stage=stream.stage.plus(counts),
                total=stream.total.plus(counts),
            )
    return state.model_copy(update={"streams": streams, "judged_until": max(until, state.judged_until)})


class StreamFinding(BaseModel):
    """What one stream shows: the evidence a human reads in the alert and `kanaria rollout status`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric
    intent: str
    verdict: Verdict
    reason: str
    canary_rate: float | None = None
    primary_rate: float | None = None
    stage: Counts = Counts()
    log_evidence: float | None = None
    log_threshold: float | None = None
    likely_ratio: float | None = None

    def line(self) -> str:
        """One line of evidence."""
        where = "all intents" if self.intent == OVERALL else f"intent {self.intent}"
        return f"{self.metric.value} on {where}: {self.reason}"


class Judgement(BaseModel):
    """The look's verdict with the findings that decided it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict
    findings: tuple[StreamFinding, ...]
    judged_until: datetime

    @property
    def reasons(self) -> list[str]:
        return [f.line() for f in self.findings]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _material(settings: JudgeSettings, rule: MetricRule, recent: Counts) -> bool:
    """The recent canary rate is above the primary's by more than `points`, bounds included (not a point guess)."""
    canary_lower, _ = evidence.wilson_bounds(recent.canary_events, recent.canary_trials, settings.material_confidence)
    _, primary_upper = evidence.wilson_bounds(
        recent.primary_events, recent.primary_trials, settings.material_confidence
    )
    return canary_lower - primary_upper > rule.points


def _harm(settings: JudgeSettings, state: JudgeState, key: str, stream: StreamState) -> StreamFinding | None:
    metric, intent = parse_key(key)
    rule = settings.metrics[metric]
    statistic = evidence.log_mixture(stream.log_r)
    threshold = evidence.log_threshold(state.horizon_periods, settings.stream_alpha(metric, intent))
    if statistic < threshold:
        return None
    canary, primary = stream.recent.canary_rate, stream.recent.primary_rate
    if canary is None or primary is None or not _material(settings, rule, stream.recent):
        return None  # shown to exceed the ratio, but not by a material amount
    ratio = evidence.best_alternative(stream.log_r, rule.ratio)
    return StreamFinding(
        metric=metric,
        intent=intent,
        verdict=Verdict.ROLLBACK,
        canary_rate=canary,
        primary_rate=primary,
        stage=stream.stage,
        log_evidence=statistic,
        log_threshold=threshold,
        likely_ratio=ratio,
        reason=(
            f"canary {_pct(canary)} vs primary {_pct(primary)} (recent minutes; stage "
            f"{stream.stage.canary_events:g}/{stream.stage.canary_trials:g} vs "
            f"{stream.stage.primary_events:g}/{stream.stage.primary_trials:g}): evidence log M = "
            f"{statistic:.1f} >= {threshold:.1f} that the rate exceeds {rule.ratio:g}x primary "
            f"(most likely ~{ratio:g}x) and it is more than {rule.points:.2%} above"
        ),
    )


def _non_harm(settings: JudgeSettings, key: str, stream: StreamState, min_trials: float) -> StreamFinding:
    """Enough canary data in this stage, and the rollout's data bound the canary's rate within tolerance."""
    metric, intent = parse_key(key)
    rule = settings.metrics[metric]
    s, t = stream.stage, stream.total
    base = {
        "metric": metric,
        "intent": intent,
        "canary_rate": t.canary_rate,
        "primary_rate": t.primary_rate,
        "stage": s,
    }
    if s.canary_trials < min_trials or s.primary_trials <= 0:
        what = (
            "no canary data in this stage (missing data is not zero)"
            if s.canary_trials == 0
            else (
                f"only {s.canary_trials:g} canary and {s.primary_trials:g} primary trials in this stage, "
                f"need {min_trials:g} canary"
            )
        )
        return StreamFinding(**base, verdict=Verdict.CONTINUE, reason=what)
    _, canary_upper = evidence.wilson_bounds(t.canary_events, t.canary_trials, settings.pass_confidence)
    primary_lower, _ = evidence.wilson_bounds(t.primary_events, t.primary_trials, settings.pass_confidence)
    limit = max(rule.ratio * primary_lower, primary_lower + rule.points)
    shown = canary_upper <= limit
    return StreamFinding(
        **base,
        verdict=Verdict.PASS if shown else Verdict.CONTINUE,
        reason=(
            f"canary {_pct(t.canary_rate)} ({t.canary_events:g}/{t.canary_trials:g} since the rollout "
            f"started, upper bound {_pct(canary_upper)}) {'within' if shown else 'not yet shown within'} "
            f"{_pct(limit)} (primary {_pct(t.primary_rate)}, lower bound {_pct(primary_lower)}; tolerance "
            f"{rule.ratio:g}x or +{rule.points:.2%})"
        ),
    )


def judge(settings: JudgeSettings, state: JudgeState, min_observations: int) -> Judgement:
    """ROLLBACK when any stream shows harm; PASS when the stage showed non-harm with enough data; else CONTINUE."""
    harms = [f for key, stream in state.streams.items() if (f := _harm(settings, state, key, stream))]
    if harms:
        harms.sort(key=lambda f: (-settings.metrics[f.metric].weight, f.intent != OVERALL, f.intent))
        return Judgement(verdict=Verdict.ROLLBACK, findings=tuple(harms), judged_until=state.judged_until)
    findings = []
    for metric, rule in settings.metrics.items():
        if rule.required_for_pass:
            key = stream_key(metric, OVERALL)
            findings.append(_non_harm(settings, key, state.streams[key], min_observations))
    for intent in settings.critical_intents:
        key = stream_key(Metric.ERRORS if Metric.ERRORS in settings.metrics else next(iter(settings.metrics)), intent)
        trials = state.streams[key].stage.canary_trials
        if trials < settings.min_intent_samples:
            findings.append(
                StreamFinding(
                    metric=parse_key(key)[0],
                    intent=intent,
                    verdict=Verdict.CONTINUE,
                    stage=state.streams[key].stage,
                    reason=f"critical intent: only {trials:g} canary requests in the stage, need "
                    f"{settings.min_intent_samples}",
                )
            )
    waiting = [f for f in findings if f.verdict is not Verdict.PASS]
    verdict = Verdict.CONTINUE if waiting else Verdict.PASS
    return Judgement(verdict=verdict, findings=tuple(waiting or findings), judged_until=state.judged_until)


def horizon_periods(settings: JudgeSettings, stage_seconds: Iterable[int]) -> int:
    """T for the detectors: every stage's minimum plus hold bound, in periods (rounded up), plus one."""
    return math.ceil(sum(stage_seconds) / settings.period_seconds) + 1
