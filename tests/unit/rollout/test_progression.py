"""Stage progression: fail rolls back at once, pass advances only after the minimum, inconclusive holds (never
promotes) until the hold bound, then rolls back."""

from __future__ import annotations

import pytest

from kanaria.domain.rollout import next_step
from kanaria.domain.rollout_gates import Outcome
from kanaria.domain.rollout_plan import Stage, StageGates

STAGE = Stage(
    name="canary-5",
    percent=5,
    min_duration_seconds=4 * 3600,
    check_interval_seconds=300,
    max_hold_seconds=3600,
    gates=StageGates(max_error_rate=0.005),
)


@pytest.mark.parametrize(
    ("outcome", "elapsed", "last", "decision", "wait"),
    [
        (Outcome.FAIL, 10, False, "rollback", 0),
        (Outcome.FAIL, 5 * 3600, True, "rollback", 0),
        (Outcome.PASS, 10, False, "wait", 300),
        (Outcome.PASS, 4 * 3600 - 100, False, "wait", 100),  # looks again exactly at the minimum
        (Outcome.INCONCLUSIVE, 100, False, "wait", 300),
        (Outcome.PASS, 4 * 3600, False, "advance", 0),
        (Outcome.PASS, 4 * 3600, True, "await_approval", 0),
        (Outcome.INCONCLUSIVE, 4 * 3600, False, "hold", 300),
        (Outcome.INCONCLUSIVE, 5 * 3600 - 60, True, "hold", 60),
        (Outcome.INCONCLUSIVE, 5 * 3600, False, "rollback", 0),
    ],
)
def test_next_step(outcome: Outcome, elapsed: float, last: bool, decision: str, wait: int) -> None:
    step = next_step(STAGE, outcome, elapsed, last)
    assert (step.decision, step.wait_seconds) == (decision, wait), step.reason


def test_inconclusive_never_promotes() -> None:
    for elapsed in range(0, 6 * 3600, 250):
        assert next_step(STAGE, Outcome.INCONCLUSIVE, elapsed, True).decision in {"wait", "hold", "rollback"}


def test_hold_bound_defaults_to_the_minimum() -> None:
    stage = STAGE.model_copy(update={"max_hold_seconds": None})
    assert next_step(stage, Outcome.INCONCLUSIVE, 8 * 3600 - 1, False).decision == "hold"
    rolled = next_step(stage, Outcome.INCONCLUSIVE, 8 * 3600, False)
    assert rolled.decision == "rollback" and "hold bound 28800s" in rolled.reason
