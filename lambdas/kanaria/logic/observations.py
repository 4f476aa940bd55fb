"""Recording observations exactly once: check them against the experiment and the unit's assignment, then
write the raw record and its counter update in one atomic step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Mapping, Protocol

from kanaria.domain.assignment import eligible, pick_variant
from kanaria.domain.experiment import Status
from kanaria.domain.observation import (
    BINARY_STORAGE,
    MEAN_STORAGE,
    Cost,
    Flag,
    Observation,
    ObservationWrite,
    check_clock,
    prepare_write,
    resolve_cost,
)
from kanaria.domain.records import ExperimentRecord, StickyRecord
from kanaria.errors import ConflictError, ValidationError


class StickyLookup(Protocol):
    """Read access to sticky assignments (DynamoAssignmentStore)."""

    def get(self, experiment_id: str, unit: str) -> StickyRecord | None: ...


class ObservationStore(Protocol):
    """Atomic write of a raw observation and its counter update."""

    def record(self, write: ObservationWrite) -> Mapping[str, Any] | None:
        """Write both or neither; None when new, else the raw item already stored under that observation_id."""
        ...


# (experiment record, variant served, intent) -> model id that answered, when the caller did not say.
ModelResolver = Callable[[ExperimentRecord, str, str | None], str | None]


@dataclass(frozen=True)
class RecordResult:
    """Outcome of recording one observation."""

    observation: Observation
    duplicate: bool
    flag: str | None
    cost: Cost
    values: Mapping[str, Decimal | bool]

    @property
    def counted(self) -> bool:
        """Newly added to its variant's statistics."""
        return not self.duplicate and self.flag is None

    def to_dict(self) -> dict[str, Any]:
        """API acknowledgement."""
        body: dict[str, Any] = {
            "observation_id": self.observation.observation_id,
            "experiment_id": self.observation.experiment_id,
            "variant_id": self.observation.variant_id,
            "duplicate": self.duplicate,
            "counted": self.counted,
            "flag": self.flag,
            "cost_source": self.cost.source,
        }
        if self.cost.usd is not None:
            body["cost_usd"] = float(self.cost.usd)
        if self.cost.price_table_version:
            body["price_table_version"] = self.cost.price_table_version
        return body


def classify(record: ExperimentRecord, observation: Observation, sticky: StickyRecord | None) -> Flag | None:
    """None when the observation belongs to its variant's statistics, else why it is flagged.

    The sticky record is authoritative; units without one (embedded client, expired record) are checked against
    the deterministic assignment with the current weights.
    """
    experiment = record.experiment
    if not experiment.targets(observation.intent):
        return "not_in_experiment"
    if sticky is not None:
        if sticky.excluded or sticky.variant in record.stopped_variants:
            return "excluded"
        return None if sticky.variant == observation.variant_id else "variant_mismatch"
    if eligible(experiment, observation.unit, observation.intent) is not None:
        return "not_in_experiment"
    expected = pick_variant(experiment, observation.unit, record.weights)
    if expected in record.stopped_variants:
        return "excluded"
    return None if expected == observation.variant_id else "variant_mismatch"


def record_observation(
    record: ExperimentRecord,
    observation: Observation,
    stickies: StickyLookup,
    store: ObservationStore,
    now: datetime,
    model_for: ModelResolver,
) -> RecordResult:
    """Validate against the experiment, flag mismatches, price the call and record it exactly once."""
    experiment = record.experiment
    if observation.variant_id not in experiment.weights:
        raise ValidationError(
            f"unknown variant {observation.variant_id!r}; expected one of {sorted(experiment.weights)}",
            field="variant_id",
        )
    if record.status is Status.DRAFT:
        raise ConflictError(
            f"experiment {experiment.id!r} is a draft: no unit has been assigned yet", field="experiment_id"
        )
    check_clock(observation, now)
    flag = classify(record, observation, stickies.get(experiment.id, observation.unit))
    model_id = observation.model_id
    if model_id is None and observation.cost_usd is None and observation.input_tokens is not None:
        served = experiment.control if flag == "excluded" else observation.variant_id
        model_id = model_for(record, served, observation.intent)
    cost = resolve_cost(observation, model_id)
    write = prepare_write(observation, cost, flag, now)
    stored = store.record(write)
    if stored is None:
        return RecordResult(observation, False, flag, cost, _values(write))
    if stored.get("digest") != write.raw["digest"]:
        raise ConflictError(
            f"observation_id {observation.observation_id!r} was already recorded with different content; "
            "use a new id for a new observation",
            field="observation_id",
        )
    stored_cost = Cost(
        stored.get("cost_usd"),
        stored.get("cost_source", cost.source),
        stored.get("model_id"),
        stored.get("price_table_version"),
    )
    return RecordResult(observation, True, stored.get("flag"), stored_cost, _values(write))


def _values(write: ObservationWrite) -> dict[str, Decimal | bool]:
    return {m: write.raw[m] for m in (*MEAN_STORAGE, *BINARY_STORAGE) if m in write.raw}
