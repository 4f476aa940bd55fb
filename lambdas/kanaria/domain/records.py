"""Records and ports of the experiment registry and of sticky assignment.

The stored shapes (ExperimentRecord, AuditEntry, StickyRecord) and the storage interfaces the logic is written
against (ExperimentRepository, AssignmentStore). They live in the domain so that the DynamoDB adapters
(kanaria.dal.experiment_store) implement them without importing the logic that uses them.
"""

from __future__ import annotations

import builtins  # `list` is also a repository method: annotations after it name the builtin
from dataclasses import dataclass, field
from typing import Any, Protocol

from kanaria.domain.experiment import Experiment, Status


@dataclass(frozen=True)
class ExperimentRecord:
    """A stored experiment: the frozen definition plus its mutable state."""

    experiment: Experiment
    status: Status
    version: int
    created_at: str
    updated_at: str
    created_by: str
    stopped_variants: dict[str, str] = field(default_factory=dict)  # variant -> reason (e.g. canary_rollback)
    weights: dict[str, float] | None = None  # bandit allocation written back by the analysis

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the API and CLI."""
        return {
            "experiment": self.experiment.model_dump(mode="json"),
            "status": self.status.value,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "stopped_variants": self.stopped_variants,
            "weights": self.weights or self.experiment.weights,
        }


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when."""

    experiment_id: str
    version: int
    at: str
    actor: str
    action: str
    detail: dict[str, Any]


class ExperimentRepository(Protocol):
    """Storage of experiment records with optimistic locking on `version`."""

    def create(self, record: ExperimentRecord, audit: AuditEntry) -> None: ...
    def get(self, experiment_id: str) -> ExperimentRecord | None: ...
    def list(self) -> list[ExperimentRecord]: ...
    def replace(self, record: ExperimentRecord, expected_version: int, audit: AuditEntry) -> None: ...
    def audit_trail(self, experiment_id: str) -> builtins.list[AuditEntry]: ...


@dataclass(frozen=True)
class StickyRecord:
    """What was first given to a unit, kept for ASSIGNMENT_TTL_SECONDS."""

    experiment_id: str
    unit: str
    variant: str
    assigned_at: str
    expires_at: int
    excluded: bool = False
    reassigned_reason: str | None = None


class AssignmentStore(Protocol):
    """Persistence of sticky assignments and exposure counters."""

    def get(self, experiment_id: str, unit: str) -> StickyRecord | None: ...
    def put_if_absent(self, record: StickyRecord) -> StickyRecord:
        """Store unless present; returns the record that won (ours or a concurrent writer's)."""
        ...

    def move_to_control(self, record: StickyRecord, control: str, reason: str) -> None: ...
    def count_exposure(
        self, experiment_id: str, variant: str, intent: str | None, day: str, shard: int, new_unit: bool
    ) -> None: ...
