"""A rollout's lifecycle as the rollouts table keeps it: the statuses, the rollback lock, the items the store
returns, and the errors a step or a rollback raises. Pure: the adapters (kanaria.dal) map items to these."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from kanaria.domain.rollout_state import Progress, RollbackTrigger, Rollout, RolloutState
from kanaria.errors import ConflictError, OperationalError


class RolloutStatus(StrEnum):
    """The status of a rollout (its META item)."""

    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    PROMOTING = "promoting"
    COMPLETED = "completed"
    ROLLING_BACK = "rolling_back"  # a rollback began: nothing but the rollback writes this rollout any more
    ROLLED_BACK = "rolled_back"


# Once a rollback began, no step may change the rollout (or raise the canary's weight) again.
ROLLBACK_BEGUN = frozenset({RolloutStatus.ROLLING_BACK, RolloutStatus.ROLLED_BACK})


def refused_before(status: RolloutStatus) -> tuple[RolloutStatus, ...]:
    """The statuses from which a write may not move a rollout to `status`: once a rollback began only the rollback
    writes it (to rolled_back), a completed rollout takes only a retried completion, and a rollback begins only
    on a rollout that did not complete (the one transition a completion races)."""
    if status is RolloutStatus.ROLLED_BACK:
        return (RolloutStatus.COMPLETED,)
    if status is RolloutStatus.COMPLETED:
        return (RolloutStatus.ROLLING_BACK, RolloutStatus.ROLLED_BACK)
    if status is RolloutStatus.ROLLING_BACK:
        return (RolloutStatus.COMPLETED, RolloutStatus.ROLLED_BACK)
    return (RolloutStatus.ROLLING_BACK, RolloutStatus.ROLLED_BACK, RolloutStatus.COMPLETED)


class LockState(StrEnum):
    """The state of a rollout's rollback lock: a trigger holds its lease, or a rollback finished."""

    IN_PROGRESS = "in_progress"
    DONE = "done"


class LockAttempt(StrEnum):
    """What taking the rollback lock found: taken now, held by another trigger, or a finished rollback."""

    ACQUIRED = "acquired"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class StoredRollout(BaseModel):
    """A rollout's META item: its status, the state the state machine carries, and a pending approval's token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    status: RolloutStatus
    execution_arn: str
    rollout: Rollout
    progress: Progress
    approval_token: str | None = None
    approval_requested_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    rollback_trigger: RollbackTrigger | None = None  # the first trigger whose rollback began (kept for good)
    rollback_begun_at: str | None = None

    def state(self) -> RolloutState:
        """The state the state machine carries (what a retried prepare returns)."""
        return RolloutState(rollout_id=self.rollout_id, rollout=self.rollout, progress=self.progress)


class ActiveRollout(BaseModel):
    """The rollout that holds a listener (one at a time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    execution_arn: str
    since: str | None = None


class LastRollback(BaseModel):
    """A listener's latest rolled-back rollout (a failed alarm event names no rollout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    at: str


class RollbackLock(BaseModel):
    """A rollout's rollback lock: who holds it until when, or that the rollback finished."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: LockState
    owner: str
    lease_until: int  # epoch seconds
    at: str | None = None
    finished_at: str | None = None


class WeightsMismatchError(OperationalError):
    """The listener does not report the weights that were just written."""

    code = "weights_mismatch"


class RolledBackError(ConflictError):
    """The rollout was rolled back (by an alarm or an operator) while its execution was still running."""

    code = "rolled_back"


class RollbackInProgressError(ConflictError):
    """Another trigger holds the rollback lock right now; retry shortly (it takes over after the lease)."""

    code = "rollback_in_progress"


class PromotionBlockedError(ConflictError):
    """The critical alarm is in ALARM when the approved promotion to 100% would start: roll back instead."""

    code = "promotion_blocked"
