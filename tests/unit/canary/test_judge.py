"""The canary judge's verdicts: harm per intent and overall, non-harm, missing data, budget and settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from kanaria.canary import evidence
from kanaria.canary.judge import (
    OVERALL,
    Counts,
    JudgeSettings,
    Metric,
    MinuteCounts,
    Verdict,
    judge,
    new_stage,
    observe,
    start,
    stream_key,
)

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
MIX = {
    "recommendation": 0.24,
    "product_search": 0.2,
    "manga_qa": 0.18,
    "order_status": 0.16,
    "shipping_info": 0.12,
    "chitchat": 0.1,
}
BASE = {
    Metric.ERRORS: 0.001,
    Metric.THROTTLES: 0.002,
    Metric.HALLUCINATIONS: 0.01,
    Metric.SAFETY_STOPS: 0.003,
    Metric.SLOW: 0.05,
    Metric.POOR_QUALITY: 0.10,
    Metric.DISSATISFIED: 0.15,
}


def minute_of(rng, t, percent, faults=None, missing_canary=False):
    """One minute of 600 requests split by `percent`; faults: {(metric, intent|None): canary rate}."""
    streams = {}
    for metric, rate in BASE.items():
        total = np.zeros(4)
        for intent, share in MIX.items():
            requests = rng.poisson(600 * share)
            n_c = 0 if missing_canary else rng.binomial(requests, percent / 100)
            n_p = requests - rng.binomial(requests, percent / 100)
            canary_rate = (faults or {}).get((metric, intent), (faults or {}).get((metric, None), rate))
            counts = np.array([rng.binomial(n_c, canary_rate), n_c, rng.binomial(n_p, rate), n_p], dtype=float)
            streams[stream_key(metric, intent)] = Counts(
                canary_events=counts[0], canary_trials=counts[1], primary_events=counts[2], primary_trials=counts[3]
            )
            total += counts
        streams[stream_key(metric, OVERALL)] = Counts(
            canary_events=total[0], canary_trials=total[1], primary_events=total[2], primary_trials=total[3]
        )
    return MinuteCounts(minute=T0 + timedelta(minutes=t), streams=streams)


def run(settings, rng, minutes, percent=5, faults_from=None, faults=None, missing_canary=False):
    """Feed minutes one look at a time; returns (minute of the first ROLLBACK or None, last judgement)."""
    state = start(settings, T0, horizon_periods=110)
    judgement = None
    for t in range(minutes):
        active = faults if faults_from is not None and t >= faults_from else None
        minute = minute_of(rng, t, percent, active, missing_canary)
        state = observe(settings, state, [minute], minute.minute + timedelta(minutes=1))
        judgement = judge(settings, state, min_observations=200)
        if judgement.verdict is Verdict.ROLLBACK:
            return t, judgement
    return None, judgement


def test_a_healthy_canary_passes_after_enough_data():
    # Given identical arms at 5%, when 25 minutes are judged, then the stage passes and nothing rolled back.
    rolled_back, judgement = run(JudgeSettings(), np.random.default_rng(1), 25)
    assert rolled_back is None
    assert judgement.verdict is Verdict.PASS
    assert {f.metric for f in judgement.findings} >= {Metric.ERRORS, Metric.SLOW, Metric.HALLUCINATIONS}


def test_too_little_data_continues():
    # Given 3 minutes at 5% (~90 canary requests < 200), the judge neither passes nor rolls back.
    rolled_back, judgement = run(JudgeSettings(), np.random.default_rng(2), 3)
    assert rolled_back is None and judgement.verdict is Verdict.CONTINUE
    assert any("need 200 canary" in line for line in judgement.reasons)


def test_missing_canary_metrics_are_never_a_pass():
    rolled_back, judgement = run(JudgeSettings(), np.random.default_rng(3), 30, missing_canary=True)
    assert rolled_back is None and judgement.verdict is Verdict.CONTINUE
    assert any("no canary data" in line for line in judgement.reasons)


def test_an_intent_local_regression_rolls_back_naming_the_intent():
    # Given a candidate broken on recommendation only from minute 5 at 5% traffic: 7% errors and mean quality 0.55
    # instead of 0.84 (sd 0.1), so ~95% of its answers fall below the primary's p10 (0.71),
    # then the judge rolls back within minutes and the evidence names the intent and the counts.
    faults = {(Metric.ERRORS, "recommendation"): 0.07, (Metric.POOR_QUALITY, "recommendation"): 0.95}
    rolled_back, judgement = run(JudgeSettings(), np.random.default_rng(4), 20, faults_from=5, faults=faults)
    assert rolled_back is not None and 5 <= rolled_back <= 10
    assert judgement.verdict is Verdict.ROLLBACK
    finding = judgement.findings[0]
    assert finding.intent == "recommendation" or any(f.intent == "recommendation" for f in judgement.findings)
    assert finding.log_evidence >= finding.log_threshold
    assert "canary" in finding.line() and "evidence log M" in finding.line()


def test_a_late_fault_is_not_diluted_by_healthy_minutes():
    # Given 40 healthy minutes at 25% and then 6% errors, detection takes about as long as from the start.
    settings = JudgeSettings()
    early, _ = run(
        settings, np.random.default_rng(5), 60, percent=25, faults_from=0, faults={(Metric.ERRORS, None): 0.06}
    )
    late, _ = run(
        settings, np.random.default_rng(5), 60, percent=25, faults_from=40, faults={(Metric.ERRORS, None): 0.06}
    )
    assert early is not None and late is not None
    assert late - 40 <= early + 2


def test_a_trivial_difference_is_not_harm():
    # Given the canary at 3x the primary's tiny error rate (0.3% vs 0.1%, within the 1-point tolerance),
    # then the ratio evidence alone does not roll back.
    rolled_back, _ = run(
        JudgeSettings(), np.random.default_rng(6), 60, percent=50, faults_from=0, faults={(Metric.ERRORS, None): 0.003}
    )
    assert rolled_back is None


def test_evidence_survives_a_new_stage():
    settings = JudgeSettings()
    state = start(settings, T0, 110)
    rng = np.random.default_rng(8)
    for t in range(5):
        minute = minute_of(rng, t, 5, {(Metric.ERRORS, None): 0.2})
        state = observe(settings, state, [minute], minute.minute + timedelta(minutes=1))
    key = stream_key(Metric.ERRORS, OVERALL)
    before = state.streams[key]
    after = new_stage(state).streams[key]
    assert after.log_r == before.log_r and after.total == before.total
    assert after.stage == Counts()


def test_stream_budgets_add_up_to_alpha_and_weigh_severity():
    settings = JudgeSettings(alpha=0.01)
    total = sum(settings.stream_alpha(*_parse(key)) for key in settings.stream_keys())
    assert total == pytest.approx(0.01)
    assert (
        settings.stream_alpha(Metric.ERRORS, "recommendation")
        > settings.stream_alpha(Metric.ERRORS, "chitchat")
        > settings.stream_alpha(Metric.DISSATISFIED, "chitchat")
    )


def _parse(key):
    metric, _, intent = key.partition("|")
    return Metric(metric), intent


def test_user_rules_replace_defaults_metric_by_metric():
    settings = JudgeSettings(metrics={"errors": {"points": 0.005}, "dissatisfied": None})
    assert settings.metrics[Metric.ERRORS].points == 0.005
    assert settings.metrics[Metric.ERRORS].ratio == 1.25
    assert Metric.DISSATISFIED not in settings.metrics
    assert Metric.SLOW in settings.metrics


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"alpha": 0}, "alpha"),
        ({"metrics": {"errors": {"ratio": 0.5}}}, "ratio"),
        ({"metrics": {"latency": {"ratio": 2}}}, "latency"),
        ({"critical_intents": ["checkout"]}, "critical_intents"),
        ({"intents": {"recommendation": 0}}, "intents"),
    ],
)
def test_bad_settings_name_the_field(document, field):
    with pytest.raises(ValidationError, match=field):
        JudgeSettings.model_validate(document)


def test_threshold_reflects_the_stream_budget():
    settings = JudgeSettings(alpha=0.01)
    state = start(settings, T0, 110)
    assert evidence.log_threshold(
        state.horizon_periods, settings.stream_alpha(Metric.ERRORS, OVERALL)
    ) < evidence.log_threshold(state.horizon_periods, settings.stream_alpha(Metric.ERRORS, "chitchat"))


@pytest.mark.parametrize("period", [7, 45, 90])
def test_periods_are_cloudwatch_periods(period):
    with pytest.raises(ValidationError, match="period_seconds"):
        JudgeSettings(period_seconds=period)


def test_periods_align_to_the_epoch_and_only_settled_ones_are_read():
    from kanaria.canary.judge import minutes_to_read, period_start

    settings = JudgeSettings(period_seconds=60, settle_seconds=30)
    assert period_start(settings, T0 + timedelta(seconds=75)) == T0 + timedelta(minutes=1)
    state = start(settings, T0 + timedelta(seconds=20), 10)
    assert state.judged_until == T0
    assert minutes_to_read(settings, state, T0 + timedelta(seconds=80)) is None  # minute 0 not settled yet
    assert minutes_to_read(settings, state, T0 + timedelta(seconds=95)) == (T0, T0 + timedelta(minutes=1))
    fast = JudgeSettings(period_seconds=1, settle_seconds=0.5)
    state = start(fast, T0, 10)
    assert minutes_to_read(fast, state, T0 + timedelta(seconds=3.6)) == (T0, T0 + timedelta(seconds=3))


def test_empty_periods_are_late_data_until_they_are_old():
    from kanaria.canary.judge import arrived

    settings = JudgeSettings(period_seconds=60, late_periods=3)
    rng = np.random.default_rng(12)
    full = [minute_of(rng, t, 5) for t in range(2)]
    empty = MinuteCounts(minute=T0 + timedelta(minutes=2), streams={})
    later = minute_of(rng, 3, 5)
    minutes = [*full, empty, later]
    # Given minute 2 came back empty, when it ended 1 minute ago, then only minutes 0-1 are judged (2 may arrive)
    assert [m.minute for m in arrived(settings, minutes, T0 + timedelta(minutes=4))] == [T0, T0 + timedelta(minutes=1)]
    # when it is 3 periods old, it is quiet, not late: everything is judged
    assert len(arrived(settings, minutes, T0 + timedelta(minutes=6))) == 4
