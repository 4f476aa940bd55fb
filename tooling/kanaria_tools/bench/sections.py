"""The registry of the bench's sections, in the order docs/benchmarks.md shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kanaria_tools.bench import analysis, assignment, canary, client_overhead, recording, rollout, statistics
from kanaria_tools.bench.common import Options


@dataclass(frozen=True)
class Section:
    """One `## ` section of docs/benchmarks.md: its short name (for `--only`) and what measures and writes it."""

    name: str
    run: Callable[[Options], str]


SECTIONS: tuple[Section, ...] = (
    Section("assignment", assignment.run),
    Section("recording", recording.run),
    Section("analysis", analysis.run),
    Section("statistics", statistics.run),
    Section("canary", canary.run),
    Section("rollout", rollout.run),
    Section("client", client_overhead.run),
)


def section_names() -> list[str]:
    """Every section's short name, in document order."""
    return [s.name for s in SECTIONS]
