"""The ports of the canary rollout: what the steps and the rollback read and write (ALB listener, metrics, the
rollouts table, the alert topic, the state machine's executions, the warm-up sender). Implemented by kanaria.dal
and, in the tests, by in-memory doubles."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from kanaria.canary.judge import JudgeSettings, MinuteCounts
from kanaria.domain.analysis_result import StoredResult
from kanaria.domain.rollout import CandidateEvent
from kanaria.domain.rollout_gates import MetricSnapshot
from kanaria.domain.rollout_plan import Warmup
from kanaria.domain.rollout_state import Progress, RollbackRecord, RollbackTrigger, RolloutState
from kanaria.domain.rollout_status import (
    ActiveRollout,
    LastRollback,
    LockAttempt,
    RollbackLock,
    RolloutStatus,
    StoredRollout,
)


class ListenerGateway(Protocol):
    """ALB listener access (ELBv2)."""

    def default_actions(self, listener_arn: str) -> list[dict[str, Any]]: ...
    def set_default_actions(self, listener_arn: str, actions: list[dict[str, Any]]) -> None: ...
    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        """Non-default rules with their actions."""
        ...

    def set_rule_actions(self, rule_arn: str, actions: list[dict[str, Any]]) -> None: ...


class CanaryMinutesReader(Protocol):
    """Per-minute canary and primary counts of every judged stream."""

    def read_minutes(self, start: datetime, end: datetime, settings: JudgeSettings) -> list[MinuteCounts]: ...


class MetricsReader(Protocol):
    """Canary vs primary aggregates over a window (missing datapoints stay None)."""

    def read(self, start: datetime, end: datetime) -> MetricSnapshot: ...
    def critical_alarm_state(self) -> tuple[str, str] | None:
        """(name, state) of the critical composite alarm, or None when none is configured."""
        ...


class AnalysisResults(Protocol):
    """The latest analysis result of an experiment (aggregates item RESULT#LATEST), decoded, or None."""

    def latest(self, experiment_id: str) -> StoredResult | None: ...


class Notifier(Protocol):
    """The on-call alert topic."""

    def publish(self, subject: str, message: str) -> None: ...


class Executions(Protocol):
    """The rollout state machine's executions."""

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """Stop a running execution; False when it was not running any more."""
        ...

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or PENDING_REDRIVE); None when it does not exist."""
        ...


class WarmupSender(Protocol):
    """Sends synthetic requests to the canary target before it gets live traffic."""

    def send(self, warmup: Warmup) -> dict[str, Any]:
        """{"sent", "succeeded", "failed", "failure_rate", "seconds"}."""
        ...


class RolloutStore(Protocol):
    """Rollouts table: META per rollout, the active pointer per listener, the rollback lock and record, and the
    anti-flapping history per candidate config hash."""

    def get(self, rollout_id: str) -> StoredRollout | None: ...
    def put_new(self, state: RolloutState, status: RolloutStatus, now: datetime) -> None: ...
    def update(
        self,
        rollout_id: str,
        status: RolloutStatus,
        progress: Progress,
        now: datetime,
        approval_token: str | None = None,
    ) -> None: ...
    def begin_rollback(self, rollout_id: str, trigger: RollbackTrigger, now: datetime) -> StoredRollout | None:
        """Status rolling_back with the first trigger kept, unless completed or rolled back; the rollout now."""
        ...

    def acquire_active(self, listener_arn: str, rollout_id: str, execution_arn: str, now: datetime) -> None: ...
    def active(self, listener_arn: str) -> ActiveRollout | None: ...
    def release_active(self, listener_arn: str, rollout_id: str) -> None: ...
    def note_last_rollback(self, listener_arn: str, rollout_id: str, now: datetime) -> None:
        """Remember the listener's latest rolled-back rollout (a failed alarm event names no rollout)."""
        ...

    def last_rollback(self, listener_arn: str) -> LastRollback | None:
        """The listener's latest rollback, or None."""
        ...

    def acquire_rollback_lock(self, rollout_id: str, owner: str, now: datetime, lease_seconds: int) -> LockAttempt:
        """ACQUIRED, DONE (a rollback finished) or IN_PROGRESS (another trigger holds the lease)."""
        ...

    def finish_rollback_lock(self, rollout_id: str, owner: str, now: datetime) -> None: ...
    def release_rollback_lock(self, rollout_id: str, owner: str) -> None: ...
    def rollback_lock(self, rollout_id: str) -> RollbackLock | None: ...
    def put_rollback_record(self, record: RollbackRecord) -> bool:
        """Conditional put; False when a record exists already (kept as is: records are immutable)."""
        ...

    def rollback_record(self, rollout_id: str) -> RollbackRecord | None: ...
    def candidate_history(self, config_hash: str) -> tuple[list[CandidateEvent], bool]:
        """(ended attempts, rejected for good)."""
        ...

    def add_candidate_event(self, config_hash: str, event: CandidateEvent) -> None: ...
    def mark_rejected(self, config_hash: str, reason: str, now: datetime) -> None: ...
