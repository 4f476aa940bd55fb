"""The data of the Analysis section: N simulated observations as Kanaria's counter items and as raw observation
items, DynamoDB response pages replayed without moto, and the naive snapshot computed from raw observations.

The counter items for N observations are built with vectorised numpy (per-item sums, sums of squares and
histogram buckets of the very values an observation would ADD, chunks of 10⁶), because pushing 10⁷ observations
through moto's transactions would take days. The raw items are built by Kanaria's own `prepare_write`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from kanaria_tools.bench.dynamo_sizing import DYNAMO_PAGE_BYTES, dynamo_item_size, page_sizes
from kanaria_tools.bench.moto_env import REGION

VARIANTS = ("A", "B")
MODELS = {"A": "anthropic.claude-3-sonnet-20240229-v1:0", "B": "anthropic.claude-3-haiku-20240307-v1:0"}
INTENTS = ("order_status", "shipping_info", "product_search", "manga_qa", "recommendation", "chitchat")
INTENT_SHARES = (0.25, 0.15, 0.2, 0.1, 0.15, 0.15)
OBSERVATIONS_PER_UNIT = 1.6  # exposure counters: units ≈ observations / 1.6 (modelled)
SIMULATED_BINARIES = ("error", "hallucination", "safety_filtered", "task_completed")
CHUNK = 1_000_000
SEED = 20261123
EXPERIMENT_ID = "bench-analysis"


def experiment_definition() -> dict[str, Any]:
    """Two variants (Sonnet vs Haiku) over the six default intents, O'Brien–Fleming, plan from the mde."""
    return {
        "id": EXPERIMENT_ID,
        "description": "Haiku instead of Sonnet on every intent",
        "hypothesis": "Haiku keeps quality within 0.02 at a fraction of the cost",
        "intents": list(INTENTS),
        "control": "A",
        "variants": [{"id": v, "weight": 0.5, "overrides": {"model_id": MODELS[v]}} for v in VARIANTS],
        "primary_metric": "quality_score",
        "guardrails": [{"metric": "latency_p99_ms", "max_degradation": 0.1}],
        "decision": {"mde": 0.02, "method": "obf"},
    }


# ---------------------------------------------------------------- simulated observations (vectorised)


def simulate(rng: np.random.Generator, size: int, days: int) -> dict[str, np.ndarray]:
    """`size` observations as columns, values already quantized as Kanaria stores them."""
    from kanaria.domain.pricing import price_for

    variant = rng.integers(0, len(VARIANTS), size)
    intent = rng.choice(len(INTENTS), size, p=INTENT_SHARES)
    prices = [price_for(MODELS[v]) for v in VARIANTS]
    price_in = np.array([float(p.input_per_1k) for p in prices])[variant]  # type: ignore[union-attr]
    price_out = np.array([float(p.output_per_1k) for p in prices])[variant]  # type: ignore[union-attr]
    input_tokens = np.clip(np.rint(rng.lognormal(6.5, 0.6, size)), 1, 20_000).astype(np.int64)
    output_tokens = np.clip(np.rint(rng.lognormal(5.3, 0.5, size)), 1, 4_000).astype(np.int64)
    return {
        "variant": variant,
        "intent": intent,
        "day": rng.integers(0, days, size),
        "shard": rng.integers(0, 16, size),
        "quality_score": np.round(np.clip(rng.normal(0.80 + 0.004 * variant, 0.15), 0.0, 1.0), 6),
        "relevance_score": np.round(np.clip(rng.normal(0.75, 0.20, size), 0.0, 1.0), 6),
        "latency_ms": np.round(np.clip(rng.lognormal(6.9 - 0.15 * variant, 0.5), 0.0, 3_600_000.0), 3),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": np.round((input_tokens * price_in + output_tokens * price_out) / 1000.0, 9),
        "csat": np.where(rng.random(size) < 0.3, rng.integers(1, 5, size), 0),  # 0 = not reported
        "error": rng.random(size) < 0.002,
        "hallucination": rng.random(size) < 0.03,
        "safety_filtered": rng.random(size) < 0.002,
        "task_completed": rng.random(size) < 0.7,
    }


def latency_buckets(latency_ms: np.ndarray) -> np.ndarray:
    """`kanaria.domain.observation.latency_bucket`, vectorised (unit-tested against it)."""
    from kanaria.domain.observation import LATENCY_BUCKETS, LATENCY_GROWTH

    with np.errstate(divide="ignore"):
        index = 1 + np.floor(np.log(np.maximum(latency_ms, 1e-300)) / math.log(LATENCY_GROWTH) + 1e-12)
    return np.where(latency_ms < 1.0, 0, np.minimum(index, LATENCY_BUCKETS - 1)).astype(np.int64)


@dataclass
class Counters:
    """The AGG counter items of a (variant, intent, day, shard) grid, accumulated from simulated observations."""

    days: int
    obs: np.ndarray = field(init=False)
    means: dict[str, list[np.ndarray]] = field(init=False)  # metric -> [n, sum, sum_sq]
    binaries: dict[str, list[np.ndarray]] = field(init=False)  # metric -> [n, successes]
    histogram: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        from kanaria.domain.observation import BINARY_STORAGE, LATENCY_BUCKETS, MEAN_STORAGE

        cells = self.cells
        self.obs = np.zeros(cells, np.int64)
        self.means = {m: [np.zeros(cells, np.int64), np.zeros(cells), np.zeros(cells)] for m in MEAN_STORAGE}
        self.binaries = {
            m: [np.zeros(cells, np.int64), np.zeros(cells, np.int64)] for m in BINARY_STORAGE if m in SIMULATED_BINARIES
        }
        self.histogram = np.zeros(cells * LATENCY_BUCKETS, np.int64)

    @property
    def cells(self) -> int:
        """Counter items in the grid: variants × intents × days × 16 shards."""
        return len(VARIANTS) * len(INTENTS) * self.days * 16

    def cell(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Grid index of each observation."""
        return ((columns["variant"] * len(INTENTS) + columns["intent"]) * self.days + columns["day"]) * 16 + columns[
            "shard"
        ]

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        """ADD a chunk of observations, as their transactions would."""
        from kanaria.domain.observation import LATENCY_BUCKETS

        cell = self.cell(columns)
        cells = self.cells
        self.obs += np.bincount(cell, minlength=cells)
        for metric, (n, total, squares) in self.means.items():
            x = columns[metric].astype(float)
            where = cell if metric != "csat" else cell[columns["csat"] > 0]
            if metric == "csat":
                x = x[columns["csat"] > 0]
            n += np.bincount(where, minlength=cells)
            total += np.bincount(where, weights=x, minlength=cells)
            squares += np.bincount(where, weights=x * x, minlength=cells)
        for metric, (n, successes) in self.binaries.items():
            n += np.bincount(cell, minlength=cells)
            successes += np.bincount(cell, weights=columns[metric], minlength=cells).astype(np.int64)
        self.histogram += np.bincount(
            cell * LATENCY_BUCKETS + latency_buckets(columns["latency_ms"]), minlength=cells * LATENCY_BUCKETS
        )

    def items(self, experiment_id: str, day_labels: Sequence[str]) -> list[dict[str, Any]]:
        """The counter items as the recording transactions leave them (only attributes that were ADDed)."""
        from kanaria.domain.observation import (
            BINARY_STORAGE,
            COUNT_ATTRIBUTE,
            KIND_COUNTED,
            LATENCY_BUCKETS,
            MEAN_STORAGE,
            counter_sk,
            histogram_attribute,
        )

        histogram = self.histogram.reshape(self.cells, LATENCY_BUCKETS)
        out = []
        for c in np.flatnonzero(self.obs):
            shard, rest = c % 16, c // 16
            day, rest = int(rest % self.days), rest // self.days
            intent, variant = INTENTS[int(rest % len(INTENTS))], VARIANTS[int(rest // len(INTENTS))]
            item: dict[str, Any] = {
                "experiment_id": experiment_id,
                "sk": counter_sk(KIND_COUNTED, variant, intent, day_labels[day], int(shard)),
                "variant": variant,
                "intent": intent,
                "day": day_labels[day],
                COUNT_ATTRIBUTE: int(self.obs[c]),
            }
            for metric, (n, total, squares) in self.means.items():
                if n[c]:
                    code, places = MEAN_STORAGE[metric]
                    item[f"{code}_n"] = int(n[c])
                    item[f"{code}_s"] = decimal_places(total[c], places)
                    item[f"{code}_q"] = decimal_places(squares[c], 2 * places)
            for metric, (n, successes) in self.binaries.items():
                code = BINARY_STORAGE[metric]
                item[f"{code}_n"], item[f"{code}_k"] = int(n[c]), int(successes[c])
            for bucket in np.flatnonzero(histogram[c]):
                item[histogram_attribute(int(bucket))] = int(histogram[c, bucket])
            out.append(item)
        return out


def decimal_places(value: float, places: int) -> Decimal:
    """A float sum as the decimal a counter would hold (quantized like the stored values; ≤ 38 digits)."""
    digits = len(str(int(abs(value))))
    places = max(0, min(places, 38 - digits))
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places))


def exposure_items(
    counters: Counters, rng: np.random.Generator, experiment_id: str, day_labels: Sequence[str]
) -> list[dict[str, Any]]:
    """EXPOSURE counter items (10 shards per variant, intent, day): units ≈ observations / 1.6 (modelled)."""
    from kanaria.logic.assignments import EXPOSURE_SHARDS

    per_day = counters.obs.reshape(len(VARIANTS), len(INTENTS), counters.days, 16).sum(axis=3)
    out = []
    for (v, i, d), observations in np.ndenumerate(per_day):
        units = int(math.ceil(observations / OBSERVATIONS_PER_UNIT))
        for shard, count in enumerate(rng.multinomial(units, [1 / EXPOSURE_SHARDS] * EXPOSURE_SHARDS)):
            if count:
                out.append(
                    {
                        "experiment_id": experiment_id,
                        "sk": f"EXPOSURE#{VARIANTS[v]}#{INTENTS[i]}#{day_labels[d]}#{shard:02d}",
                        "exposures": int(count) + int(rng.binomial(int(count), 0.2)),
                        "units": int(count),
                        "variant": VARIANTS[v],
                        "intent": INTENTS[i],
                        "day": day_labels[d],
                    }
                )
    return out


def raw_items(
    columns: Mapping[str, np.ndarray], offset: int, day_labels: Sequence[str], now: datetime, experiment_id: str
) -> list[dict[str, Any]]:
    """The raw observation items Kanaria stores for these observations (Observation + prepare_write)."""
    from kanaria.domain.observation import Observation, prepare_write, resolve_cost

    out = []
    cols = {k: v.tolist() for k, v in columns.items()}
    for j in range(len(cols["variant"])):
        variant = VARIANTS[cols["variant"][j]]
        day = datetime.fromisoformat(day_labels[cols["day"][j]]).replace(tzinfo=timezone.utc)
        body: dict[str, Any] = {
            "observation_id": f"o-{offset + j:08d}",
            "experiment_id": experiment_id,
            "variant_id": variant,
            "unit": f"session-{(offset + j) // 2}",
            "intent": INTENTS[cols["intent"][j]],
            "timestamp": day + timedelta(seconds=(offset + j) % 86_400),
            "model_id": MODELS[variant],
            "quality_score": cols["quality_score"][j],
            "relevance_score": cols["relevance_score"][j],
            "latency_ms": cols["latency_ms"][j],
            "input_tokens": cols["input_tokens"][j],
            "output_tokens": cols["output_tokens"][j],
            "error": cols["error"][j],
            "hallucination": cols["hallucination"][j],
            "safety_filtered": cols["safety_filtered"][j],
            "task_completed": cols["task_completed"][j],
        }
        if cols["csat"][j]:
            body["csat"] = cols["csat"][j]
        observation = Observation(**body)
        out.append(prepare_write(observation, resolve_cost(observation, observation.model_id), None, now).raw)
    return out


# ---------------------------------------------------------------- DynamoDB responses replayed without moto


def response_pages(
    items: Sequence[Mapping[str, Any]], key_names: Sequence[str], page_bytes: int = DYNAMO_PAGE_BYTES
) -> tuple[list[bytes], list[int]]:
    """The Query/Scan responses DynamoDB would send for these items: 1 MB pages (DynamoDB item sizes), JSON bytes."""
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    sizes = [dynamo_item_size(i) for i in items]
    pages, start = [], 0
    bytes_per_page = page_sizes(sizes, page_bytes)
    for p, in_page in enumerate(bytes_per_page):
        total, end = 0, start
        while end < len(items) and total < in_page:
            total += sizes[end]
            end += 1
        chunk = items[start:end]
        body: dict[str, Any] = {
            "Items": [{k: serialize(v) for k, v in i.items()} for i in chunk],
            "Count": len(chunk),
            "ScannedCount": len(chunk),
        }
        if p < len(bytes_per_page) - 1:
            body["LastEvaluatedKey"] = {k: serialize(chunk[-1][k]) for k in key_names}
        pages.append(json.dumps(body, separators=(",", ":")).encode())
        start = end
    return pages, bytes_per_page


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def replay_resource(pages: Sequence[bytes]) -> Any:
    """A boto3 DynamoDB resource whose requests are answered, in turn, by these response bodies (no network, no
    moto): what remains is the client's own work — request building and signing, JSON parsing, deserialisation."""
    import boto3
    from botocore.awsrequest import AWSResponse

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="replay", aws_secret_access_key="replay")
    resource = session.resource("dynamodb")
    state = {"next": 0}

    def send(request: Any, **_: Any) -> AWSResponse:
        body = pages[state["next"] % len(pages)]
        state["next"] += 1
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body))

    resource.meta.client.meta.events.register("before-send.dynamodb", send)
    return resource


# ---------------------------------------------------------------- the two analyses


def read_raw_observations(table: Any, experiment_id: str) -> list[dict[str, Any]]:
    """The naive read: Scan every raw observation of the experiment (the table is keyed by observation_id)."""
    from boto3.dynamodb.conditions import Attr

    from kanaria.dal.pages import scan_items

    return scan_items(table, FilterExpression=Attr("experiment_id").eq(experiment_id))


def naive_snapshot(
    record: Any, raws: Sequence[Mapping[str, Any]], exposures: Sequence[Mapping[str, Any]], profiles: Mapping[str, Any]
) -> dict[str, Any]:
    """The same snapshot computed from raw observations: columnar numpy statistics, exact latency quantiles.

    Units come from the (small) exposure counters in both analyses; only the observation statistics differ.
    """
    from kanaria.domain.observation import BINARY_STORAGE, MEAN_STORAGE, latency_bucket
    from kanaria.logic.analysis_run import build_snapshot

    snapshot = build_snapshot(record, exposures, profiles)  # definition + units, zero statistics
    means, binaries = list(MEAN_STORAGE), list(BINARY_STORAGE)
    nan = math.nan
    values = np.array([[float(r[m]) if m in r else nan for m in means] for r in raws], dtype=float).reshape(
        -1, len(means)
    )
    flags = np.array(
        [[(1.0 if r[b] else 0.0) if b in r else nan for b in binaries] for r in raws], dtype=float
    ).reshape(-1, len(binaries))
    variant = np.array([VARIANTS.index(r["variant_id"]) for r in raws], dtype=np.int64)
    intent_names = sorted({str(r["intent"]) for r in raws})
    intent = np.array([intent_names.index(str(r["intent"])) for r in raws], dtype=np.int64)
    latency = values[:, means.index("latency_ms")]

    def fill(entry: dict[str, Any], mask: np.ndarray) -> None:
        entry["observations"] = int(mask.sum())
        for k, metric in enumerate(means):
            x = values[mask, k]
            x = x[~np.isnan(x)]
            entry[metric] = {"n": int(x.size), "sum": float(x.sum()), "sum_sq": float(x @ x)}
        for k, metric in enumerate(binaries):
            x = flags[mask, k]
            x = x[~np.isnan(x)]
            entry[metric] = {"n": int(x.size), "successes": int(x.sum())}
        lat = latency[mask]
        lat = lat[~np.isnan(lat)]
        quantiles = np.quantile(lat, [0.5, 0.95, 0.99]).tolist() if lat.size else [None] * 3
        entry["latency_ms"].update(dict(zip(("p50", "p95", "p99"), quantiles)))
        buckets = np.bincount([latency_bucket(x) for x in lat.tolist()]) if lat.size else np.zeros(0, np.int64)
        entry["latency_ms"]["histogram"] = {str(i): int(c) for i, c in enumerate(buckets) if c}  # the p99 guardrail's

    for v, name in enumerate(VARIANTS):
        fill(snapshot["aggregates"][name], variant == v)
        for i, intent_name in enumerate(intent_names):
            scope = snapshot["intents"].setdefault(intent_name, {})
            entry = scope.setdefault(name, {"units": 0})
            fill(entry, (variant == v) & (intent == i))
    return snapshot
