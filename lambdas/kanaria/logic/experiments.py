"""Experiment registry: create, read, lifecycle transitions, variant stops; every change audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from kanaria.domain.experiment import Status, next_status, parse_experiment, segments_overlap
from kanaria.domain.records import AuditEntry, ExperimentRecord, ExperimentRepository
from kanaria.errors import ConflictError, NotFoundError, ValidationError


def _iso(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds")


def create_experiment(repo: ExperimentRepository, document: Any, actor: str, now: datetime) -> ExperimentRecord:
    """Validate and store a draft; refuses a duplicate id or a layer segment overlapping a live experiment."""
    experiment = parse_experiment(document)
    if repo.get(experiment.id) is not None:
        raise ConflictError(f"experiment {experiment.id!r} already exists", field="id")
    for other in repo.list():
        if other.status is not Status.COMPLETED and segments_overlap(experiment, other.experiment):
            raise ConflictError(
                f"overlaps experiment {other.experiment.id!r} in namespace {experiment.layer!r}; "
                "give each experiment a disjoint namespace_segment",
                field="namespace_segment",
            )
    stamp = _iso(now)
    record = ExperimentRecord(experiment, Status.DRAFT, 1, stamp, stamp, actor)
    repo.create(
        record, AuditEntry(experiment.id, 1, stamp, actor, "create", {"definition": experiment.model_dump(mode="json")})
    )
    return record


def get_experiment(repo: ExperimentRepository, experiment_id: str) -> ExperimentRecord:
    """The record, or NotFoundError."""
    record = repo.get(experiment_id)
    if record is None:
        raise NotFoundError(f"unknown experiment {experiment_id!r}", field="experiment_id")
    return record


def transition(
    repo: ExperimentRepository,
    experiment_id: str,
    action: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
) -> ExperimentRecord:
    """Apply a lifecycle action (start, pause, resume, complete) under optimistic locking."""
    record = get_experiment(repo, experiment_id)
    _check_version(record, expected_version)
    target = next_status(record.status, action)
    updated = replace(record, status=target, version=record.version + 1, updated_at=_iso(now))
    detail = {"from": record.status.value, "to": target.value}
    repo.replace(
        updated, record.version, AuditEntry(experiment_id, updated.version, updated.updated_at, actor, action, detail)
    )
    return updated


def stop_variant(
    repo: ExperimentRepository,
    experiment_id: str,
    variant_id: str,
    reason: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
) -> ExperimentRecord:
    """Stop a treatment (e.g. after a canary rollback): its units move to control and are excluded."""
    record = get_experiment(repo, experiment_id)
    _check_version(record, expected_version)
    experiment = record.experiment
    if variant_id not in experiment.weights:
        raise ValidationError(f"unknown variant {variant_id!r}", field="variant")
    if variant_id == experiment.control:
        raise ValidationError("the control variant cannot be stopped", field="variant")
    if variant_id in record.stopped_variants:
        return record  # idempotent: a second rollback trigger changes nothing
    stopped = {**record.stopped_variants, variant_id: reason}
    updated = replace(record, stopped_variants=stopped, version=record.version + 1, updated_at=_iso(now))
    detail = {"variant": variant_id, "reason": reason}
    repo.replace(
        updated,
        record.version,
        AuditEntry(experiment_id, updated.version, updated.updated_at, actor, "stop_variant", detail),
    )
    return updated


def _check_version(record: ExperimentRecord, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(
            f"experiment changed since you read it (version {record.version}, you sent {expected_version}); reload and retry",
            field="expected_version",
        )
