"""Sticky assignment: first assignment persisted, stopped variants moved to control, exposures counted."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from kanaria.domain.assignment import STICKY, Assignment, assign, configuration, moved_to_control
from kanaria.domain.experiment import Status
from kanaria.domain.profiles import IntentProfile, profile_for
from kanaria.domain.records import AssignmentStore, ExperimentRecord, StickyRecord
from kanaria.errors import ConflictError
from kanaria.names import ASSIGNMENT_TTL_SECONDS

EXPOSURE_SHARDS = 10  # spreads one busy experiment's exposure counters over items (per-item write limits)


def assign_unit(
    record: ExperimentRecord,
    unit: str,
    intent: str | None,
    profiles: Mapping[str, IntentProfile],
    store: AssignmentStore,
    now: datetime,
) -> Assignment:
    """Assign one unit of a running experiment, honouring its sticky record."""
    experiment = record.experiment
    if record.status is not Status.RUNNING:
        raise ConflictError(
            f"experiment {experiment.id!r} is {record.status.value}, not running", field="experiment_id"
        )
    fresh = assign(experiment, unit, intent, profiles, weights=record.weights)
    if not fresh.in_experiment:
        return fresh  # not eligible for this intent: served control, nothing stored or counted
    profile = profile_for(intent, profiles)
    shard = hash_shard(unit)
    day = now.strftime("%Y-%m-%d")
    sticky = store.get(experiment.id, unit)
    new_unit = sticky is None
    if sticky is None:
        sticky = store.put_if_absent(
            StickyRecord(
                experiment.id,
                unit,
                fresh.variant or experiment.control,
                now.isoformat(timespec="seconds"),
                int(now.timestamp()) + ASSIGNMENT_TTL_SECONDS,
            )
        )
    if sticky.excluded:
        result = moved_to_control(experiment, unit, intent, profile, sticky.reassigned_reason or "variant_stopped")
    elif sticky.variant in record.stopped_variants:
        reason = record.stopped_variants[sticky.variant]
        store.move_to_control(sticky, experiment.control, reason)
        result = moved_to_control(experiment, unit, intent, profile, reason)
    else:
        config, digest = configuration(experiment, sticky.variant, profile)
        result = Assignment(
            experiment.id, unit, intent, sticky.variant, True, fresh.reason if new_unit else STICKY, config, digest
        )
    if not result.excluded:
        store.count_exposure(experiment.id, result.variant or experiment.control, intent, day, shard, new_unit)
    return result


def hash_shard(unit: str) -> int:
    """Counter shard of a unit (stable, from the unit's bytes)."""
    return sum(unit.encode("utf-8")) % EXPOSURE_SHARDS
