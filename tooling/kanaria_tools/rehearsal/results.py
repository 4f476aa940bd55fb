"""What a rehearsal found: per phase its outcome against the expectation and every reaction with its time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kanaria_tools.rehearsal.alarms import Transition
from kanaria_tools.rehearsal.fleet import MinuteSample
from kanaria_tools.rehearsal.scenario import Scenario


@dataclass
class Reaction:
    """Something the system did in response to the scenario (scenario seconds)."""

    at: float
    what: str
    # alarm | composite | gate | rollback | rollback failure | reconciler | weights | alert | decision | srm | fault |
    # stage | stage 0
    kind: str


@dataclass
class PhaseResult:
    """Outcome of one experiment or rollout phase against its expectation."""

    name: str
    kind: str
    expected: str | None
    outcome: str
    ok: bool
    started_at: float
    ended_at: float
    detail: dict[str, Any] = field(default_factory=dict)
    reactions: list[Reaction] = field(default_factory=list)
    fault_at: float | None = None
    rollback_completed_at: float | None = None

    @property
    def fault_to_rollback(self) -> float | None:
        if self.fault_at is None or self.rollback_completed_at is None:
            return None
        return self.rollback_completed_at - self.fault_at


@dataclass
class RehearsalResult:
    """Everything the report needs."""

    scenario: Scenario
    phases: list[PhaseResult] = field(default_factory=list)
    alarm_transitions: list[Transition] = field(default_factory=list)
    alarm_series: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    alarm_thresholds: dict[str, float] = field(default_factory=dict)
    samples: list[MinuteSample] = field(default_factory=list)
    weights: list[tuple[float, int]] = field(default_factory=list)
    alerts: list[tuple[float, str, str]] = field(default_factory=list)
    invocations: list[tuple[float, str, str | None, float]] = field(default_factory=list)
    not_created: dict[str, list[str]] = field(default_factory=dict)
    deploy_seconds: float = 0.0
    wall_seconds: float = 0.0
    speed: float = 60.0
    error: str | None = None
    run_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.phases) and all(p.ok for p in self.phases)
