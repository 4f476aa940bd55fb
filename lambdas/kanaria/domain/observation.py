"""Observations (one chatbot response and its outcome metrics) and the sufficient statistics they add to.

Pure: no AWS, no numpy. Values are stored as exact decimals quantized per metric, so the aggregate counters
equal a recomputation from the raw observations to the last digit.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Iterable, Literal, Mapping

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from kanaria.domain import pricing
from kanaria.domain.experiment import BINARY_METRICS, ID_PATTERN, INTENT_PATTERN, MEAN_METRICS, UNIT_PATTERN
from kanaria.errors import ValidationError

OBSERVATION_TTL_SECONDS = 90 * 24 * 3600  # raw observations (and the duplicate window) kept 90 days from receipt
MAX_CLOCK_SKEW = timedelta(minutes=5)  # a timestamp further in the future than this is refused
MAX_OBSERVATION_AGE = timedelta(days=30)  # an older timestamp (year 0001, epoch 0, a stale replay) is refused
AGG_SHARDS = 16  # aggregate items per (variant, intent, day): keeps one item far below DynamoDB's per-item limits
MAX_LATENCY_MS = 3_600_000
MAX_TOKENS = 10_000_000
MAX_COST_USD = 1000
OBSERVATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
NO_INTENT = "-"  # intent placeholder, as in the exposure counters

# Counter item kinds (sort-key prefixes in the aggregates table).
KIND_COUNTED = "AGG"
KIND_MISMATCH = "MISMATCH"
KIND_EXCLUDED = "EXCLUDED"
KIND_EXPOSURE = "EXPOSURE"

# Why an observation is kept out of its variant's statistics.
Flag = Literal["variant_mismatch", "not_in_experiment", "excluded"]
FLAG_KINDS: dict[str, str] = {
    "variant_mismatch": KIND_MISMATCH,
    "not_in_experiment": KIND_MISMATCH,
    "excluded": KIND_EXCLUDED,
}

# Storage code and decimal places of each metric. Short attribute names keep an aggregate item near 1-2 KB.
MEAN_STORAGE: dict[str, tuple[str, int]] = {
    "quality_score": ("qs", 6),
    "relevance_score": ("rs", 6),
    "csat": ("cs", 0),
    "latency_ms": ("lt", 3),
    "input_tokens": ("it", 0),
    "output_tokens": ("ot", 0),
    "cost_usd": ("cu", pricing.COST_DECIMALS),
}
BINARY_STORAGE: dict[str, str] = {
    "task_completed": "tc",
    "cart_add": "ca",
    "error": "er",
    "hallucination": "ha",
    "safety_filtered": "sf",
    "escalated": "es",
}
assert set(MEAN_STORAGE) == set(MEAN_METRICS) and set(BINARY_STORAGE) == set(BINARY_METRICS)
COUNT_ATTRIBUTE = "obs"

# Latency histogram: bucket 0 holds [0, 1) ms, bucket i >= 1 holds [g^(i-1), g^i) ms. With g = 1.04 a quantile
# interpolated inside its bucket is within 4% of the exact sample quantile (typically < 1%).
LATENCY_GROWTH = 1.04
LATENCY_BUCKETS = 400  # g^399 ms is about 1.7 h, above MAX_LATENCY_MS
HISTOGRAM_PREFIX = "lh"
_LOG_GROWTH = math.log(LATENCY_GROWTH)
# DynamoDB numbers carry 38 significant digits; Python arithmetic on them uses the same precision.
DYNAMO_DECIMAL = Context(prec=38)


class Observation(BaseModel):
    """One recorded response: who saw which variant, and how it went (every metric optional, at least one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    observation_id: str = Field(pattern=OBSERVATION_ID_PATTERN, description="idempotency key chosen by the caller")
    experiment_id: str = Field(pattern=ID_PATTERN)
    variant_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    unit: str = Field(pattern=UNIT_PATTERN)
    intent: str | None = Field(default=None, pattern=INTENT_PATTERN)
    timestamp: AwareDatetime
    model_id: str | None = Field(default=None, min_length=1, max_length=256, description="model that answered")
    target: Literal["canary", "primary"] | None = Field(
        default=None, description="deployment behind the ALB that answered (set by the chatbot during a canary rollout)"
    )
    throttled: StrictBool | None = Field(
        default=None,
        description="the model call was throttled; CloudWatch only (canary throttling alarm), not analysed",
    )

    quality_score: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)
    relevance_score: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: StrictFloat | None = Field(default=None, ge=0.0, le=MAX_LATENCY_MS)
    input_tokens: StrictInt | None = Field(default=None, ge=0, le=MAX_TOKENS)
    output_tokens: StrictInt | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cost_usd: StrictFloat | None = Field(default=None, ge=0.0, le=MAX_COST_USD)
    csat: StrictInt | None = Field(default=None, ge=1, le=4)
    error: StrictBool | None = None
    hallucination: StrictBool | None = None
    safety_filtered: StrictBool | None = None
    task_completed: StrictBool | None = None
    escalated: StrictBool | None = None
    cart_add: StrictBool | None = None

    @model_validator(mode="after")
    def _some_metric(self) -> "Observation":
        if all(getattr(self, m) is None for m in (*MEAN_METRICS, *BINARY_METRICS)):
            raise ValueError(
                f"metrics: at least one metric is required ({', '.join(sorted((*MEAN_METRICS, *BINARY_METRICS)))})"
            )
        return self

    @property
    def intent_key(self) -> str:
        """Intent as used in counter keys (NO_INTENT when absent)."""
        return self.intent or NO_INTENT

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the observation as sent: tells a retry from a reused id."""
        canonical = json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def check_clock(observation: Observation, now: datetime) -> None:
    """Refuse a timestamp from the future (beyond MAX_CLOCK_SKEW) or older than MAX_OBSERVATION_AGE: it would be
    counted on a day the analysis has closed (or year 0001 / 1970 from an unset client clock)."""
    if observation.timestamp > now + MAX_CLOCK_SKEW:
        raise ValidationError(
            f"is {observation.timestamp.isoformat()}, more than {int(MAX_CLOCK_SKEW.total_seconds())} s after the "
            f"server time {now.isoformat(timespec='seconds')}",
            field="timestamp",
        )
    if observation.timestamp < now - MAX_OBSERVATION_AGE:
        raise ValidationError(
            f"is {observation.timestamp.isoformat()}, more than {MAX_OBSERVATION_AGE.days} days before the server "
            f"time {now.isoformat(timespec='seconds')}; observations are recorded as they happen",
            field="timestamp",
        )


@dataclass(frozen=True)
class Cost:
    """The cost recorded for an observation and where it came from."""

    usd: Decimal | None
    source: Literal["reported", "computed", "unpriced", "absent"]
    model_id: str | None = None
    price_table_version: str | None = None


def resolve_cost(observation: Observation, model_id: str | None) -> Cost:
    """Reported cost, else tokens priced with the versioned table, else unpriced (model unknown) or absent."""
    if observation.cost_usd is not None:
        return Cost(quantize("cost_usd", observation.cost_usd), "reported", model_id)
    if observation.input_tokens is None or observation.output_tokens is None:
        return Cost(None, "absent", model_id)
    price = pricing.price_for(model_id) if model_id else None
    if price is None:
        return Cost(None, "unpriced", model_id, pricing.PRICE_TABLE_VERSION)
    usd = pricing.call_cost(price, observation.input_tokens, observation.output_tokens)
    return Cost(usd, "computed", model_id, pricing.PRICE_TABLE_VERSION)


def quantize(metric: str, value: float | int) -> Decimal:
    """A mean metric's value as the exact decimal that is stored and summed."""
    _, places = MEAN_STORAGE[metric]
    quantized = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return quantized if quantized else Decimal(0)  # 1e-13 and -0.0 are 0, not 0E-12 / -0.000000


def metric_values(observation: Observation, cost: Cost) -> dict[str, Decimal | bool]:
    """Every metric the observation carries (cost included when known), as stored."""
    values: dict[str, Decimal | bool] = {}
    for metric in MEAN_STORAGE:
        raw = cost.usd if metric == "cost_usd" else getattr(observation, metric)
        if raw is not None:
            values[metric] = raw if isinstance(raw, Decimal) else quantize(metric, raw)
    for metric in BINARY_STORAGE:
        flag = getattr(observation, metric)
        if flag is not None:
            values[metric] = flag
    return values


def latency_bucket(latency_ms: float | Decimal) -> int:
    """Histogram bucket of a latency."""
    value = float(latency_ms)
    if value < 1.0:
        return 0
    index = 1 + int(math.floor(math.log(value) / _LOG_GROWTH + 1e-12))
    return min(index, LATENCY_BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """[low, high) of a histogram bucket in ms."""
    if index == 0:
        return 0.0, 1.0
    return LATENCY_GROWTH ** (index - 1), LATENCY_GROWTH**index


def histogram_attribute(index: int) -> str:
    """Counter attribute of a histogram bucket."""
    return f"{HISTOGRAM_PREFIX}{index:03d}"


def statistic_increments(values: Mapping[str, Decimal | bool]) -> dict[str, Decimal | int]:
    """What one counted observation ADDs to its aggregate item."""
    increments: dict[str, Decimal | int] = {COUNT_ATTRIBUTE: 1}
    for metric, value in values.items():
        if metric in MEAN_STORAGE:
            code, _ = MEAN_STORAGE[metric]
            assert isinstance(value, Decimal)
            increments[f"{code}_n"] = 1
            increments[f"{code}_s"] = value
            increments[f"{code}_q"] = DYNAMO_DECIMAL.multiply(value, value)
        else:
            code = BINARY_STORAGE[metric]
            increments[f"{code}_n"] = 1
            increments[f"{code}_k"] = 1 if value else 0
    if "latency_ms" in values:
        increments[histogram_attribute(latency_bucket(values["latency_ms"]))] = 1  # type: ignore[arg-type]
    return increments


def shard_of(observation_id: str) -> int:
    """Aggregate shard of an observation (stable: a retry hits the same item)."""
    return int.from_bytes(hashlib.sha256(observation_id.encode("utf-8")).digest()[:4], "big") % AGG_SHARDS


def counter_sk(kind: str, variant: str, intent: str, day: str, shard: int) -> str:
    """Sort key of a counter item in the aggregates table."""
    return f"{kind}#{variant}#{intent}#{day}#{shard:02d}"


@dataclass(frozen=True)
class ObservationWrite:
    """Everything one new observation writes: the raw item and one counter update, applied atomically."""

    raw: dict[str, Any]
    counter_key: dict[str, str]
    counter_attributes: dict[str, str]
    increments: dict[str, Decimal | int]

    @property
    def counted(self) -> bool:
        """Whether it adds to its variant's statistics (not flagged)."""
        return "flag" not in self.raw


def prepare_write(observation: Observation, cost: Cost, flag: Flag | None, now: datetime) -> ObservationWrite:
    """Raw item (with TTL, flag, cost provenance and digest) and the counter it ADDs to."""
    day = observation.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d")
    kind = FLAG_KINDS[flag] if flag else KIND_COUNTED
    sk = counter_sk(kind, observation.variant_id, observation.intent_key, day, shard_of(observation.observation_id))
    values = metric_values(observation, cost)
    raw: dict[str, Any] = {
        "observation_id": observation.observation_id,
        "experiment_id": observation.experiment_id,
        "variant_id": observation.variant_id,
        "unit": observation.unit,
        "intent": observation.intent_key,
        "timestamp": observation.timestamp.isoformat(),
        "day": day,
        "recorded_at": now.isoformat(timespec="milliseconds"),
        "expires_at": int(now.timestamp()) + OBSERVATION_TTL_SECONDS,
        "aggregate_sk": sk,
        "digest": observation.digest(),
        "cost_source": cost.source,
        **values,
    }
    if cost.model_id:
        raw["model_id"] = cost.model_id
    if cost.price_table_version:
        raw["price_table_version"] = cost.price_table_version
    if flag:
        raw["flag"] = flag
        increments: dict[str, Decimal | int] = {COUNT_ATTRIBUTE: 1, f"r_{flag}": 1}
    else:
        increments = statistic_increments(values)
    attributes = {"variant": observation.variant_id, "intent": observation.intent_key, "day": day}
    return ObservationWrite(raw, {"experiment_id": observation.experiment_id, "sk": sk}, attributes, increments)


@dataclass
class Statistics:
    """Sufficient statistics of a set of observations (merge of counter items)."""

    observations: int = 0
    means: dict[str, list[Decimal]] = field(default_factory=lambda: {m: [Decimal(0)] * 3 for m in MEAN_STORAGE})
    binaries: dict[str, list[int]] = field(default_factory=lambda: {m: [0, 0] for m in BINARY_STORAGE})
    histogram: dict[int, int] = field(default_factory=dict)

    def add_item(self, item: Mapping[str, Any]) -> None:
        """Merge one AGG counter item (attribute values may be Decimal, int or float)."""
        self.observations += int(item.get(COUNT_ATTRIBUTE, 0))
        for metric, (code, _) in MEAN_STORAGE.items():
            stats = self.means[metric]
            for i, suffix in enumerate(("n", "s", "q")):
                stats[i] = DYNAMO_DECIMAL.add(stats[i], Decimal(str(item.get(f"{code}_{suffix}", 0))))
        for metric, code in BINARY_STORAGE.items():
            stats2 = self.binaries[metric]
            stats2[0] += int(item.get(f"{code}_n", 0))
            stats2[1] += int(item.get(f"{code}_k", 0))
        for name, count in item.items():
            if name.startswith(HISTOGRAM_PREFIX) and name[len(HISTOGRAM_PREFIX) :].isdigit():
                index = int(name[len(HISTOGRAM_PREFIX) :])
                self.histogram[index] = self.histogram.get(index, 0) + int(count)

    def add_values(self, values: Mapping[str, Decimal | bool]) -> None:
        """Merge one observation's stored values (used to recompute from raw records)."""
        self.add_item(statistic_increments(values))

    def quantile(self, q: float) -> float | None:
        """Latency quantile interpolated geometrically inside its histogram bucket; None without data."""
        return histogram_quantile(self.histogram, q)

    def to_snapshot(self, units: int) -> dict[str, Any]:
        """The per-variant shape of the analysis snapshot."""
        entry: dict[str, Any] = {"units": units, "observations": self.observations}
        for metric, (n, total, squares) in self.means.items():
            # m2 = Σ(x − mean)² from the exact Decimal sums: floats of sum and sum_sq would lose a small variance
            # around a large mean
            m2 = (
                DYNAMO_DECIMAL.subtract(squares, DYNAMO_DECIMAL.divide(DYNAMO_DECIMAL.multiply(total, total), n))
                if n
                else 0
            )
            entry[metric] = {"n": int(n), "sum": float(total), "sum_sq": float(squares), "m2": max(float(m2), 0.0)}
        for metric, (count, successes) in self.binaries.items():
            entry[metric] = {"n": count, "successes": successes}
        entry["latency_ms"].update(
            {
                "p50": self.quantile(0.50),
                "p95": self.quantile(0.95),
                "p99": self.quantile(0.99),
                "histogram": {str(i): c for i, c in sorted(self.histogram.items()) if c},
            }
        )
        return entry


def histogram_quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """Quantile q of a latency histogram; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    below = 0
    for index in sorted(histogram):
        count = histogram[index]
        if count and below + count >= rank:
            low, high = bucket_bounds(index)
            position = max(0.0, min(1.0, (rank - below) / count))
            if index == 0:
                return low + (high - low) * position
            return low * (high / low) ** position
        below += count
    return bucket_bounds(max(histogram))[1]


def recompute(observations: Iterable[Mapping[str, Any]]) -> Statistics:
    """Statistics straight from raw observation items (the cross-check of the counters)."""
    stats = Statistics()
    for raw in observations:
        stats.add_values({m: raw[m] for m in (*MEAN_STORAGE, *BINARY_STORAGE) if m in raw})
    return stats
