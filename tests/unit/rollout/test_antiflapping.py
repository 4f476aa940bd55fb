"""Anti-flapping per candidate config hash: 24 h cooldown, 3 rollbacks in 7 days reject for good, and the next
attempt after a rollback doubles the first stage's minimum."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kanaria.domain.rollout import CandidateEvent, admission, flapping

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def rollback(hours_ago: float, rollout_id: str = "r") -> CandidateEvent:
    return CandidateEvent(kind="rollback", at=NOW - timedelta(hours=hours_ago), rollout_id=rollout_id)


def completed(hours_ago: float) -> CandidateEvent:
    return CandidateEvent(kind="completed", at=NOW - timedelta(hours=hours_ago), rollout_id="c")


def test_a_fresh_candidate_starts_normally() -> None:
    verdict = admission([], False, NOW)
    assert verdict.allowed and verdict.first_stage_multiplier == 1 and not verdict.rejected


def test_cooldown_for_24_hours_after_a_rollback() -> None:
    verdict = admission([rollback(23.9)], False, NOW)
    assert not verdict.allowed and not verdict.rejected
    assert verdict.cooldown_until == NOW + timedelta(hours=0.1)
    assert "cooldown" in verdict.reason


def test_after_the_cooldown_the_first_stage_is_doubled() -> None:
    verdict = admission([rollback(24)], False, NOW)
    assert verdict.allowed and verdict.first_stage_multiplier == 2 and verdict.rollbacks_in_window == 1


def test_a_completed_attempt_after_the_rollback_resets_the_multiplier() -> None:
    assert admission([rollback(100), completed(50)], False, NOW).first_stage_multiplier == 1


def test_three_rollbacks_in_seven_days_reject_for_good() -> None:
    events = [rollback(24 * 6, "a"), rollback(24 * 3, "b"), rollback(25, "c")]
    verdict = admission(events, False, NOW)
    assert not verdict.allowed and verdict.rejected and verdict.rollbacks_in_window == 3
    # "for good": still rejected a month later, even though the window has passed
    assert admission(events, False, NOW + timedelta(days=30)).rejected


def test_three_rollbacks_spread_over_more_than_seven_days_do_not_reject() -> None:
    events = [rollback(24 * 8 + 2), rollback(24 * 4), rollback(25)]  # first to third: 7 days + 1 hour
    verdict = admission(events, False, NOW)
    assert verdict.allowed and not verdict.rejected and verdict.first_stage_multiplier == 2


def test_the_stored_rejection_marker_rejects() -> None:
    assert admission([], True, NOW).rejected


def test_flapping_is_a_sliding_window() -> None:
    day = timedelta(days=1)
    assert flapping([NOW, NOW + 3 * day, NOW + 7 * day])
    assert not flapping([NOW, NOW + 3 * day, NOW + 7 * day + timedelta(seconds=1)])
    assert flapping([NOW - 30 * day, NOW, NOW + day, NOW + 2 * day])
