"""In-memory rollout dependencies for unit tests of the rollout logic (no boto3, no moto): a RolloutStore with the
DynamoDB store's conditional semantics (lock, immutable record, rolled-back META), a listener, scripted alarm
state, executions, a notifier and a failed-invocations queue."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kanaria.domain.rollout import CandidateEvent, Forward, forward_of, target_forward, with_forward
from kanaria.domain.rollout_state import Progress, RollbackRecord, RollbackTrigger, RolloutState
from kanaria.domain.rollout_status import (
    ActiveRollout,
    LastRollback,
    LockAttempt,
    LockState,
    RollbackLock,
    RolledBackError,
    RolloutStatus,
    StoredRollout,
    refused_before,
)
from kanaria.logic.rollout_prepare import prepare
from kanaria.logic.rollout_services import Deployment, RolloutServices
from tests.support.rollout_world import ScriptedMetrics, request

LISTENER = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/demo/1/2"
PRIMARY = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/primary/1"
CANARY = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/canary/2"
EXECUTION = "arn:aws:states:ap-northeast-1:123456789012:execution:kanaria-canary-rollout:"
DEPLOYMENT = Deployment(LISTENER, PRIMARY, CANARY)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class MemoryStore:
    """RolloutStore in memory."""

    def __init__(self) -> None:
        self.meta: dict[str, dict[str, Any]] = {}
        self.active_by_listener: dict[str, ActiveRollout] = {}
        self.locks: dict[str, RollbackLock] = {}
        self.records: dict[str, RollbackRecord] = {}
        self.history: dict[str, list[CandidateEvent]] = {}
        self.rejected: set[str] = set()
        self.last: dict[str, LastRollback] = {}

    def get(self, rollout_id: str) -> StoredRollout | None:
        item = self.meta.get(rollout_id)
        return None if item is None else StoredRollout.model_validate(item)

    def put_new(self, state: RolloutState, status: RolloutStatus, now: datetime) -> None:
        dumped = state.model_dump(mode="json")
        self.meta[state.rollout_id] = {
            "rollout_id": state.rollout_id,
            "status": status,
            "execution_arn": state.rollout.execution_arn,
            "rollout": dumped["rollout"],
            "progress": dumped["progress"],
        }

    def update(
        self,
        rollout_id: str,
        status: RolloutStatus,
        progress: Progress,
        now: datetime,
        approval_token: str | None = None,
    ) -> None:
        item = self.meta.get(rollout_id)
        if item is None or item["status"] in refused_before(status):
            raise RolledBackError(
                f"rollout {rollout_id!r} is rolling back, rolled back or completed", field="rollout_id"
            )
        item.update(status=status, progress=progress.model_dump(mode="json"))
        if approval_token is not None:
            item["approval_token"] = approval_token
        elif status is not RolloutStatus.AWAITING_APPROVAL:
            item.pop("approval_token", None)

    def begin_rollback(self, rollout_id: str, trigger: RollbackTrigger, now: datetime) -> StoredRollout | None:
        item = self.meta.get(rollout_id)
        if item is not None and item["status"] not in refused_before(RolloutStatus.ROLLING_BACK):
            item["status"] = RolloutStatus.ROLLING_BACK
            item.setdefault("rollback_trigger", trigger)
            item.setdefault("rollback_begun_at", now.isoformat(timespec="seconds"))
            item.pop("approval_token", None)
        return self.get(rollout_id)

    def acquire_active(self, listener_arn: str, rollout_id: str, execution_arn: str, now: datetime) -> None:
        self.active_by_listener[listener_arn] = ActiveRollout(rollout_id=rollout_id, execution_arn=execution_arn)

    def active(self, listener_arn: str) -> ActiveRollout | None:
        return self.active_by_listener.get(listener_arn)

    def release_active(self, listener_arn: str, rollout_id: str) -> None:
        holder = self.active_by_listener.get(listener_arn)
        if holder is not None and holder.rollout_id == rollout_id:
            del self.active_by_listener[listener_arn]

    def note_last_rollback(self, listener_arn: str, rollout_id: str, now: datetime) -> None:
        self.last[listener_arn] = LastRollback(rollout_id=rollout_id, at=now.isoformat(timespec="seconds"))

    def last_rollback(self, listener_arn: str) -> LastRollback | None:
        return self.last.get(listener_arn)

    def acquire_rollback_lock(self, rollout_id: str, owner: str, now: datetime, lease_seconds: int) -> LockAttempt:
        lock = self.locks.get(rollout_id)
        epoch = int(now.timestamp())
        if lock is None or (lock.state is LockState.IN_PROGRESS and lock.lease_until < epoch):
            self.locks[rollout_id] = RollbackLock(
                state=LockState.IN_PROGRESS, owner=owner, lease_until=epoch + lease_seconds
            )
            return LockAttempt.ACQUIRED
        return LockAttempt.DONE if lock.state is LockState.DONE else LockAttempt.IN_PROGRESS

    def finish_rollback_lock(self, rollout_id: str, owner: str, now: datetime) -> None:
        assert self.locks[rollout_id].owner == owner
        self.locks[rollout_id] = self.locks[rollout_id].model_copy(update={"state": LockState.DONE})

    def release_rollback_lock(self, rollout_id: str, owner: str) -> None:
        lock = self.locks.get(rollout_id)
        if lock and lock.owner == owner and lock.state is LockState.IN_PROGRESS:
            del self.locks[rollout_id]

    def rollback_lock(self, rollout_id: str) -> RollbackLock | None:
        return self.locks.get(rollout_id)

    def put_rollback_record(self, record: RollbackRecord) -> bool:
        if record.rollout_id in self.records:
            return False
        self.records[record.rollout_id] = record
        return True

    def rollback_record(self, rollout_id: str) -> RollbackRecord | None:
        return self.records.get(rollout_id)

    def candidate_history(self, config_hash: str) -> tuple[list[CandidateEvent], bool]:
        return list(self.history.get(config_hash, [])), config_hash in self.rejected

    def add_candidate_event(self, config_hash: str, event: CandidateEvent) -> None:
        events = [
            e for e in self.history.get(config_hash, []) if (e.kind, e.rollout_id) != (event.kind, event.rollout_id)
        ]
        self.history[config_hash] = [*events, event]

    def mark_rejected(self, config_hash: str, reason: str, now: datetime) -> None:
        self.rejected.add(config_hash)


class MemoryListener:
    """ListenerGateway in memory: one listener, 100/0 with stickiness as the demo ALB ships it."""

    def __init__(self) -> None:
        shipped = Forward(weights={PRIMARY: 100, CANARY: 0}, stickiness_enabled=True, stickiness_seconds=3600)
        self.actions: list[dict[str, Any]] = [{"Type": "forward", "ForwardConfig": shipped.to_action_config()}]
        self.writes = 0
        self.order: list[str] | None = None  # when set, "listener" is appended on each write

    def default_actions(self, listener_arn: str) -> list[dict[str, Any]]:
        return [dict(a) for a in self.actions]

    def set_default_actions(self, listener_arn: str, actions: list[dict[str, Any]]) -> None:
        self.writes += 1
        self.actions = [dict(a) for a in actions]
        if self.order is not None:
            self.order.append("listener")

    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        return []

    def set_rule_actions(self, rule_arn: str, actions: list[dict[str, Any]]) -> None:
        raise AssertionError("no rules here")

    def forward(self) -> Forward | None:
        return forward_of(self.actions)

    def set_canary(self, percent: int) -> None:
        self.actions = with_forward(self.actions, target_forward(PRIMARY, CANARY, percent, 3600))


class MemoryExecutions:
    """Executions: a status per execution ARN (RUNNING unless told otherwise); stop() records the call."""

    def __init__(self) -> None:
        self.statuses: dict[str, str | None] = {}
        self.stopped: list[str] = []
        self.order: list[str] | None = None  # when set, "stop" is appended (to check call order with the listener)

    def status(self, execution_arn: str) -> str | None:
        return self.statuses.get(execution_arn, "RUNNING")

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        if self.status(execution_arn) != "RUNNING":
            return False
        self.statuses[execution_arn] = "ABORTED"
        self.stopped.append(execution_arn)
        if self.order is not None:
            self.order.append("stop")
        return True


class Notifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.messages.append((subject, message))

    def subjects(self, prefix: str = "") -> list[str]:
        return [s for s, _ in self.messages if s.startswith(prefix)]


class MemoryFailures:
    """FailedInvocations: records waiting in the on-failure destination queue."""

    def __init__(self, *records: Any) -> None:
        self.waiting: dict[str, Any] = {f"r{i}": record for i, record in enumerate(records)}
        self.deleted: list[str] = []

    def receive(self) -> list[tuple[str, Any]]:
        return list(self.waiting.items())

    def delete(self, receipt: str) -> None:
        del self.waiting[receipt]
        self.deleted.append(receipt)


def services() -> RolloutServices:
    """Fresh in-memory services on a fixed clock, healthy metrics, critical alarm OK."""
    counter = iter(range(1_000_000))
    return RolloutServices(
        store=MemoryStore(),
        listener=MemoryListener(),
        metrics=ScriptedMetrics(),
        notifier=Notifier(),
        executions=MemoryExecutions(),
        clock=lambda: T0,
        new_owner=lambda: f"owner-{next(counter)}",
    )


def started(
    svc: RolloutServices, rollout_id: str = "r-1", stage: int = 0, config_hash: str = "cfg-0001"
) -> RolloutState:
    """A prepared rollout with the listener at `stage`'s weights (set and verified through the real steps)."""
    from kanaria.logic.rollout_steps import set_weights, verify_weights

    state = prepare(svc, DEPLOYMENT, request(config_hash=config_hash), EXECUTION + rollout_id, rollout_id)
    for index in range(stage + 1):
        state = state.model_copy(update={"progress": state.progress.model_copy(update={"stage_index": index})})
        state = verify_weights(svc, set_weights(svc, state))
    return state
