"""Reaction times in the rehearsal's report come from the deployed functions' own calls, not from when the
rehearsal's status poll noticed them (a poll can come after the rollback the gate started)."""

from __future__ import annotations

from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.invocation_log import InvocationLog
from kanaria_tools.rehearsal.moto_adaptations import Invocation

PREFIX = names.DEFAULT_PREFIX


def _steps_call(log: InvocationLog, at: float, rollout_id: str, decision: str, function: str = "rollout-steps") -> None:
    result: dict[str, Any] = {"rollout_id": rollout_id, "progress": {"decision": decision}}
    log.record(at, Invocation(names.function_name(PREFIX, function), {}, result=result))


def test_a_gate_decision_is_timed_by_the_steps_call_that_made_it() -> None:
    # Given a rollout whose steps function decided 'hold' at 600 s, then 'rollback' at 900 s (another rollout's
    # rollback at 950 s, and a rollback function call at 960 s that is not a gate)
    log = InvocationLog(PREFIX)
    _steps_call(log, 300, "r-1", "observe")
    since = len(log)
    _steps_call(log, 600, "r-1", "hold")
    _steps_call(log, 900, "r-1", "rollback")
    _steps_call(log, 950, "r-2", "rollback")
    _steps_call(log, 960, "r-1", "rollback", function="rollback")
    # When the poll sees each decision later, Then its time is the steps call's
    assert log.decided_at(since, "r-1", "hold") == 600
    assert log.decided_at(since, "r-1", "rollback") == 900
    assert log.decided_at(since, "r-2", "rollback") == 950
    # and a decision made before the phase started, or never made, has no time of its own
    assert log.decided_at(since, "r-1", "observe") is None
    assert log.decided_at(since, "r-1", "promote") is None
