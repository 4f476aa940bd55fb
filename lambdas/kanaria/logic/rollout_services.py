"""What the rollout steps and the rollback are given: this deployment's listener and target groups, and the
ports they talk to (kanaria.domain.rollout_ports), with the clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from kanaria.domain.rollout_ports import (
    AnalysisResults,
    CanaryMinutesReader,
    Executions,
    ListenerGateway,
    MetricsReader,
    Notifier,
    RolloutStore,
    WarmupSender,
)
from kanaria.evaluation.report_models import EvaluationSummary
from kanaria.logic.experiments import ExperimentRepository


@dataclass(frozen=True)
class Deployment:
    """The listener and target groups of this deployment (function environment)."""

    listener_arn: str
    primary_target_group: str
    canary_target_group: str
    # Target groups a request may name as its canary besides canary_target_group (an allow-list: a request must
    # not be able to send the listener's traffic to any target group of the account).
    other_canary_target_groups: tuple[str, ...] = ()

    def allows_canary(self, target_group: str) -> bool:
        return target_group == self.canary_target_group or target_group in self.other_canary_target_groups


@dataclass
class RolloutServices:
    """Everything the steps and the rollback talk to."""

    store: RolloutStore
    listener: ListenerGateway
    metrics: MetricsReader
    notifier: Notifier
    executions: Executions
    clock: Callable[[], datetime]
    canary: CanaryMinutesReader | None = None  # required when the plan has a judge
    analysis: AnalysisResults | None = None
    experiments: ExperimentRepository | None = None
    warmup: WarmupSender | None = None
    # stored offline evaluations by config hash (kanaria.dal.evaluations.latest_for); authoritative when present
    evaluations: Callable[[str], EvaluationSummary | None] | None = None
    allow_offline_evaluation: bool = False  # the local rehearsal evaluates with the offline model adapter
    new_owner: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)


def iso_seconds(now: datetime) -> str:
    """A timestamp as the rollout records store it (ISO 8601, whole seconds)."""
    return now.isoformat(timespec="seconds")
