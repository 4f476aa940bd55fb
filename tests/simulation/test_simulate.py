"""`make simulate`: the large run of the rollout simulation (marker simulate, not part of make test).

KANARIA_SIMULATE_SCHEDULES seeded random schedules (default 100,000) over every scenario, in CHUNKS test items so
that pytest-xdist spreads them over its workers, plus the exhaustive schedules with two faults of the
alarm-during-approval scenario and with two preemptions of the abort-at-promotion one. The counts are printed at
the end of the report."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.simulation.explore import SCENARIOS, Exploration, dfs, random_walks

pytestmark = pytest.mark.simulate

SCHEDULES = int(os.environ.get("KANARIA_SIMULATE_SCHEDULES", "100000"))
CHUNKS = 40
SEED = 1_000_003


def _explored(record_property: Any, exploration: Exploration) -> None:
    record_property("schedules", exploration.schedules)
    assert exploration.failure is None, exploration.failure.report()


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_schedules(chunk: int, record_property: Any) -> None:
    names = sorted(SCENARIOS)
    per_chunk = SCHEDULES // CHUNKS
    total = Exploration()
    for offset in range(0, per_chunk, 50):
        name = names[(chunk * per_chunk + offset) // 50 % len(names)]
        part = random_walks(SCENARIOS[name], min(50, per_chunk - offset), SEED + chunk * per_chunk + offset, 3)
        total.schedules += part.schedules
        if part.failure is not None:
            total.failure = part.failure
            break
    _explored(record_property, total)


@pytest.mark.parametrize(
    ("name", "faults", "preemptions"), [("alarm_during_approval", 2, 0), ("abort_at_promotion", 0, 2)]
)
def test_exhaustive_two(name: str, faults: int, preemptions: int, record_property: Any) -> None:
    _explored(record_property, dfs(SCENARIOS[name], faults, preemptions, limit=200_000))
