"""The rollout protocol explored: every schedule with one fault at any AWS call (or one preemption at any step) of
each scenario, exhaustively, then seeded random schedules with up to three faults; every invariant checked after
every step. The schedule counts go into the test report (printed at the end of `make test`); `make simulate`
runs the large version (tests/simulation/test_simulate.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.simulation.explore import SCENARIOS, Exploration, dfs, random_walks

SEED = 20260301
EXHAUSTIVE_LIMIT = 2000  # far above what one fault or one preemption needs: the DFS ends by itself
RANDOM_RUNS = 60
NOT_FIXED = pytest.mark.xfail(strict=True, reason="the rollout protocol fix is not in yet")


def _explored(record_property: Any, exploration: Exploration) -> None:
    record_property("schedules", exploration.schedules)
    assert exploration.failure is None, exploration.failure.report()


@pytest.mark.slow
@NOT_FIXED
@pytest.mark.parametrize("name", ["alarm_during_approval", "abort_at_promotion", "canary_fails_gate"])
def test_every_single_fault_keeps_the_invariants(name: str, record_property: Any) -> None:
    _explored(record_property, dfs(SCENARIOS[name], max_faults=1, max_preemptions=0, limit=EXHAUSTIVE_LIMIT))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alarm_mid_stage", "abort_at_promotion", "console_stop_before_traffic"])
def test_every_single_preemption_keeps_the_invariants(name: str, record_property: Any) -> None:
    _explored(record_property, dfs(SCENARIOS[name], max_faults=0, max_preemptions=1, limit=EXHAUSTIVE_LIMIT))


@pytest.mark.slow
@NOT_FIXED
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_random_schedules_keep_the_invariants(name: str, record_property: Any) -> None:
    _explored(record_property, random_walks(SCENARIOS[name], RANDOM_RUNS, SEED, fault_budget=3))
