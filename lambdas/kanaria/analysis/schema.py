"""Snapshot input schema (pydantic) and its parser: bad input becomes a ValidationError naming the field."""

from __future__ import annotations

import math
from decimal import Context, Decimal
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import (
    ValidationError as PydanticValidationError,
)
from pydantic_core import PydanticCustomError

from kanaria.analysis import catalogue
from kanaria.errors import ValidationError

WEIGHT_TOLERANCE = 1e-6
_MEANS, _BINARIES = "__means__", "__binaries__"  # internal keys, dropped from error locations
_NON_METRIC_KEYS = frozenset({"units", "observations"})


_EXACT = Context(prec=80)  # Decimal arithmetic for the second moment: sum² of a finite float cannot overflow here


def _not_a_bool(value: Any) -> Any:
    # pydantic's lax float accepts true/false as 1.0/0.0; a count or a sum given as a boolean is a client bug
    if isinstance(value, bool):
        raise PydanticCustomError("bool", "must be a number, not a boolean")
    return value


Count = Annotated[StrictInt, Field(ge=0)]  # strict: `true` or 3.0 is not a count
Finite = Annotated[float, BeforeValidator(_not_a_bool), Field(allow_inf_nan=False)]
NonNegative = Annotated[float, BeforeValidator(_not_a_bool), Field(ge=0.0, allow_inf_nan=False)]


# NamedTuples rather than models: pydantic validates them ~4x faster, which matters at ~150 metrics a snapshot
class MeanAggregate(NamedTuple):
    """Sufficient statistics of a continuous metric (latency may also carry quantiles and its histogram).

    m2 = Σ(x − mean)² = sum_sq − sum²/n, computed exactly (Decimal) from the numbers as given unless the input
    carries it: the variance is m2/(n − 1) and keeps its digits when the mean is large against the SD (mean 1e8,
    SD 1 has sum_sq ≈ 1e19 + 999: the 999 survives in the JSON text or a DynamoDB Decimal, not in sum_sq − sum·mean
    evaluated in floats). A negative m2 is a negative variance (rejected in _check_statistics).
    """

    n: Count
    sum: Finite
    sum_sq: NonNegative
    p50: NonNegative | None = None
    p95: NonNegative | None = None
    p99: NonNegative | None = None
    m2: float = 0.0
    histogram: dict[int, Count] | None = None  # latency: bucket index -> count (kanaria.domain.observation)


class BinaryAggregate(NamedTuple):
    """Trials and successes of a binary metric."""

    n: Count
    successes: Count


_MEAN_KEYS = frozenset(MeanAggregate._fields)
_BINARY_KEYS = frozenset(BinaryAggregate._fields)


def _known_keys(value: Any, keys: frozenset[str]) -> Any:
    # extra keys are ignored, as for every other object in the snapshot (copy only when there are some)
    if isinstance(value, dict) and not value.keys() <= keys:
        return {k: v for k, v in value.items() if k in keys}
    return value


def _exact(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = Decimal(value) if not isinstance(value, Decimal) else value
    return number if number.is_finite() else None


def second_moment(n: Any, total: Any, squares: Any) -> float | None:
    """Σ(x − mean)² = sum_sq − sum²/n in exact Decimal arithmetic (floats converted exactly), as a float (−inf
    when hugely negative); None when an input is not a finite number (the field validation then names it)."""
    count, s, q = _exact(n), _exact(total), _exact(squares)
    if count is None or s is None or q is None or count < 0:
        return None
    if count == 0:
        return 0.0
    return float(_EXACT.subtract(q, _EXACT.divide(_EXACT.multiply(s, s), count)))


def _mean_with_m2(value: Any) -> Any:
    value = _known_keys(value, _MEAN_KEYS)
    if isinstance(value, dict) and "m2" not in value:
        m2 = second_moment(value.get("n"), value.get("sum"), value.get("sum_sq"))
        if m2 is not None:
            value = {**value, "m2": m2}
    return value


class VariantAggregate(BaseModel):
    """One variant's units and metric statistics: {"units": N, "<metric>": {...}, ...}."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False)

    units: StrictInt = Field(ge=0)
    means: dict[str, MeanAggregate] = Field(default_factory=dict, alias=_MEANS)
    binaries: dict[str, BinaryAggregate] = Field(default_factory=dict, alias=_BINARIES)

    @model_validator(mode="before")
    @classmethod
    def _split_metrics(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        means: dict[str, Any] = {}
        binaries: dict[str, Any] = {}
        for name, value in raw.items():
            if name in _NON_METRIC_KEYS or name in (_MEANS, _BINARIES):
                continue
            if name in catalogue.KNOWN_BINARY_METRICS:
                binaries[name] = _known_keys(value, _BINARY_KEYS)
            elif name in catalogue.KNOWN_MEAN_METRICS:
                means[name] = _mean_with_m2(value)
            elif isinstance(value, dict):  # an unknown metric: its shape tells its kind
                if "successes" in value:
                    binaries[name] = _known_keys(value, _BINARY_KEYS)
                else:
                    means[name] = _mean_with_m2(value)
        split: dict[str, Any] = {_MEANS: means, _BINARIES: binaries}
        if "units" in raw:
            split["units"] = raw["units"]
        return split


class Guardrail(BaseModel):
    """A bound a treatment must respect: worsening vs control (max_degradation) and/or absolute max/min.

    relative: whether max_degradation is a fraction of the control's value; by default False for rates (points)
    and True for means and the p99 (see `is_relative`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    metric: str
    max_degradation: float | None = Field(default=None, ge=0.0)
    relative: bool | None = None
    max: float | None = None
    min: float | None = None

    @property
    def is_relative(self) -> bool:
        """`relative` as written, else points for rate metrics and a fraction for means and the p99."""
        if self.relative is not None:
            return self.relative
        return self.metric not in catalogue.KNOWN_BINARY_METRICS

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in catalogue.GUARDRAIL_METRICS:
            raise PydanticCustomError("unknown_metric", "unknown guardrail metric {metric}", {"metric": repr(value)})
        return value

    @model_validator(mode="after")
    def _has_bound(self) -> Guardrail:
        if self.max_degradation is None and self.max is None and self.min is None:
            raise PydanticCustomError("no_bound", "needs max_degradation, max or min")
        return self


class ExperimentSpec(BaseModel):
    """The experiment part of a snapshot (fields beyond the contract are optional with documented defaults)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: str = Field(min_length=1)
    weights: dict[str, float]
    control: str
    primary_metric: str = Field(min_length=1)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    method: Literal["fixed", "obf", "always_valid"]
    mde: float | None = Field(default=None, gt=0.0)
    planned_n_per_variant: int | None = Field(default=None, ge=2)
    guardrails: list[Guardrail] | None = None  # a {metric: bounds} mapping is accepted too
    looks: list[float] | None = None
    # treatments whose primary metric showed a win at a look (variant -> information fraction), carried by the
    # scheduled analysis from read to read: their claim holds while the guardrails are being proven
    efficacy_shown: dict[str, float] = Field(default_factory=dict)
    planned_looks: int = Field(default=catalogue.PLANNED_LOOKS, ge=1, le=1000)
    tier: Literal["standard", "revenue_critical"] = "standard"
    config_hashes: dict[str, Any] | None = None
    stopped_variants: dict[str, str] = Field(default_factory=dict)  # a list of variants is accepted too
    bandit: bool = False
    revenue_critical_intents: list[str] | None = None
    max_intent_regression: float = Field(default=catalogue.MAX_INTENT_REGRESSION, ge=0.0)
    intent_weights: dict[str, float] | None = None
    quality_targets: dict[str, float] | None = None
    review_cost_increase: float = Field(default=catalogue.REVIEW_COST_INCREASE, ge=0.0)
    min_n_per_variant: int = Field(default=catalogue.MIN_N_PER_VARIANT, ge=2)
    quality_floor: float = Field(default=catalogue.QUALITY_FLOOR)
    bandit_min_share: float = Field(default=catalogue.BANDIT_MIN_SHARE, ge=0.0, le=0.5)
    seed: int | None = None
    lower_is_better: list[str] = Field(default_factory=list)

    @field_validator("weights")
    @classmethod
    def _weights_sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) < 2:
            raise PydanticCustomError("weights", "needs at least two variants")
        if any(not (0.0 <= w <= 1.0) or not math.isfinite(w) for w in value.values()):
            raise PydanticCustomError("weights", "each weight must be between 0 and 1")
        if abs(math.fsum(value.values()) - 1.0) > WEIGHT_TOLERANCE:
            raise PydanticCustomError("weights", "must sum to 1")
        return value

    @field_validator("control")
    @classmethod
    def _control_is_a_variant(cls, value: str, info: ValidationInfo) -> str:
        weights = info.data.get("weights")
        if weights is not None and value not in weights:
            raise PydanticCustomError("control", "must be one of the variants in experiment.weights")
        return value

    @field_validator("guardrails", mode="before")
    @classmethod
    def _guardrail_mapping_to_list(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {"metric": {bounds}} shorthand
            return [
                {"metric": metric, **(bounds if isinstance(bounds, dict) else {})} for metric, bounds in value.items()
            ]
        return value

    @field_validator("looks")
    @classmethod
    def _looks_increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if any(not 0.0 < t <= 1.0 for t in value):
            raise PydanticCustomError("looks", "information fractions must be in (0, 1]")
        if any(b <= a for a, b in zip(value, value[1:])):
            raise PydanticCustomError("looks", "must be strictly increasing")
        return value

    @field_validator("stopped_variants", mode="before")
    @classmethod
    def _stopped_as_mapping(cls, value: Any) -> Any:
        return {v: "stopped" for v in value} if isinstance(value, list) else value

    @field_validator("intent_weights", "quality_targets")
    @classmethod
    def _non_negative(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and any(not (x >= 0.0) for x in value.values()):
            raise PydanticCustomError("negative", "values must be >= 0")
        return value


class Snapshot(BaseModel):
    """An experiment snapshot: definition plus per-variant (and optionally per-intent) sufficient statistics."""

    model_config = ConfigDict(extra="ignore")

    experiment: ExperimentSpec
    aggregates: dict[str, VariantAggregate]
    intents: dict[str, dict[str, VariantAggregate]] | None = None

    @property
    def guardrails(self) -> list[Guardrail]:
        """Default guardrails and the experiment's own, in that order (`kanaria.analysis.guardrails.resolve`
        combines those on the same metric by the stricter bound)."""
        return list(_DEFAULT_GUARDRAILS) + list(self.experiment.guardrails or [])


_DEFAULT_GUARDRAILS = tuple(Guardrail.model_validate(g) for g in catalogue.DEFAULT_GUARDRAILS)


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in (_MEANS, _BINARIES))


M2_SLACK = 1e-9  # relative to sum_sq: float rounding of sums that were exact elsewhere (DynamoDB Decimals)


def _check_statistics(where: str, agg: VariantAggregate) -> VariantAggregate:
    """Consistency of sufficient statistics (plain loop: a pydantic validator per metric costs 10x more);
    returns the aggregate with tiny negative second moments (float rounding) set to 0."""
    fixed: dict[str, MeanAggregate] = {}
    for metric, m in agg.means.items():
        if m.n == 0 and (m.sum != 0.0 or m.sum_sq != 0.0):
            raise ValidationError("n is 0 but sum or sum_sq is not", field=f"{where}.{metric}")
        if metric in catalogue.NON_NEGATIVE_METRICS and m.sum < 0.0:
            raise ValidationError(f"must be >= 0 ({metric} is never negative)", field=f"{where}.{metric}.sum")
        slack = M2_SLACK * m.sum_sq + 1e-300
        # m2 = sum_sq − sum²/n computed exactly: Cauchy–Schwarz (sum² ≤ n·sum_sq) without overflow
        if not m.m2 >= -slack:
            raise ValidationError("sum_sq is smaller than sum²/n (negative variance)", field=f"{where}.{metric}.sum_sq")
        if m.m2 > m.sum_sq + slack:
            raise ValidationError("must not exceed sum_sq", field=f"{where}.{metric}.m2")
        exact = second_moment(m.n, m.sum, m.sum_sq)
        if exact is not None and m.n > 0 and abs(exact - m.m2) > slack + M2_SLACK * abs(m.m2):
            raise ValidationError("disagrees with sum and sum_sq", field=f"{where}.{metric}.m2")
        if m.m2 < 0.0:
            fixed[metric] = m._replace(m2=0.0)
        if m.histogram is not None and m.n > 0 and sum(m.histogram.values()) != m.n:
            raise ValidationError("histogram counts must add up to n", field=f"{where}.{metric}.histogram")
    for metric, b in agg.binaries.items():
        if b.successes > b.n:
            raise ValidationError("must not exceed n", field=f"{where}.{metric}.successes")
    return agg.model_copy(update={"means": {**agg.means, **fixed}}) if fixed else agg


def _domain_checks(snapshot: Snapshot) -> None:
    experiment = snapshot.experiment
    for name, agg in snapshot.aggregates.items():
        snapshot.aggregates[name] = _check_statistics(f"aggregates.{name}", agg)
    for intent, per_variant in (snapshot.intents or {}).items():
        for name, agg in per_variant.items():
            per_variant[name] = _check_statistics(f"intents.{intent}.{name}", agg)
    variants = experiment.weights
    if experiment.control not in snapshot.aggregates:
        raise ValidationError(
            "the control's aggregate is required (a snapshot compares with it)",
            field=f"aggregates.{experiment.control}",
        )
    for name in snapshot.aggregates:
        if name not in variants:
            raise ValidationError("variant not in experiment.weights", field=f"aggregates.{name}")
    for intent, per_variant in (snapshot.intents or {}).items():
        for name in per_variant:
            if name not in variants:
                raise ValidationError("variant not in experiment.weights", field=f"intents.{intent}.{name}")
    for name in experiment.stopped_variants:
        if name not in variants or name == experiment.control:
            raise ValidationError(f"{name!r} is not a stoppable treatment", field="experiment.stopped_variants")
    primary = experiment.primary_metric
    reported = {m for a in snapshot.aggregates.values() for m in (*a.means, *a.binaries)}
    if primary not in catalogue.HIGHER_IS_BETTER and primary not in reported:
        raise ValidationError(f"unknown metric {primary!r}", field="experiment.primary_metric")
    if experiment.bandit and not (
        primary in catalogue.KNOWN_BINARY_METRICS or any(primary in a.binaries for a in snapshot.aggregates.values())
    ):
        raise ValidationError(
            "a bandit needs a binary primary metric (Beta–Bernoulli)", field="experiment.primary_metric"
        )
    if experiment.method == "always_valid" and experiment.mde is None:
        raise ValidationError(
            "required for method always_valid (scale of the mixing distribution)", field="experiment.mde"
        )
    if experiment.planned_n_per_variant is None and experiment.mde is None:
        raise ValidationError("planned_n_per_variant or mde is required", field="experiment.planned_n_per_variant")


def parse_snapshot(document: Any) -> Snapshot:
    """Validate a snapshot dict; kanaria ValidationError naming the first bad field (all in details)."""
    if not isinstance(document, dict):
        raise ValidationError("snapshot must be a JSON object", field="snapshot")
    try:
        snapshot = Snapshot.model_validate(document)
    except PydanticValidationError as exc:
        details = [{"field": _field_name(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise ValidationError(details[0]["reason"], field=details[0]["field"], details=details) from None
    _domain_checks(snapshot)
    return snapshot
