"""Reaction times in the rehearsal's report come from the deployed functions' own calls, not from when the
rehearsal's status poll noticed them (a poll can come after the rollback the gate started)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.moto_adaptations import Invocation
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.runner import Rehearsal
from kanaria_tools.rehearsal.scenario import load_scenario


class StepClock:
    """A rehearsal clock that reads the scenario time the test sets."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def _steps_call(rehearsal: Rehearsal, clock: StepClock, at: float, rollout_id: str, decision: str,
                function: str = "rollout-steps") -> None:
    clock.t = at
    result: dict[str, Any] = {"rollout_id": rollout_id, "progress": {"decision": decision}}
    rehearsal._on_invoke(Invocation(names.function_name(rehearsal.prefix, function), {}, result=result))


def test_a_gate_decision_is_timed_by_the_steps_call_that_made_it(tmp_path: Path) -> None:
    # Given a rollout whose steps function decided 'hold' at 600 s, then 'rollback' at 900 s (another rollout's
    # rollback at 950 s, and a rollback function call at 960 s that is not a gate)
    rehearsal = Rehearsal(load_scenario("smoke"), progress=Progress(io.StringIO(), live=False), reports_dir=tmp_path)
    clock = StepClock()
    rehearsal.clock = clock  # type: ignore[assignment]
    _steps_call(rehearsal, clock, 300, "r-1", "observe")
    since = len(rehearsal._invocations)
    _steps_call(rehearsal, clock, 600, "r-1", "hold")
    _steps_call(rehearsal, clock, 900, "r-1", "rollback")
    _steps_call(rehearsal, clock, 950, "r-2", "rollback")
    _steps_call(rehearsal, clock, 960, "r-1", "rollback", function="rollback")
    # When the poll sees each decision later, Then its time is the steps call's
    assert rehearsal._decided_at(since, "r-1", "hold") == 600
    assert rehearsal._decided_at(since, "r-1", "rollback") == 900
    assert rehearsal._decided_at(since, "r-2", "rollback") == 950
    # and a decision made before the phase started, or never made, has no time of its own
    assert rehearsal._decided_at(since, "r-1", "observe") is None
    assert rehearsal._decided_at(since, "r-1", "promote") is None
