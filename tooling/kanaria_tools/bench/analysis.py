"""`make bench` section: what one scheduled analysis reads and costs at 1,000, 100,000 and 10,000,000 recorded
observations, next to a naive analysis that reads every raw observation.

Kanaria's read path is run for real: the counter items are stored in moto's `aggregates` table and read by
`DynamoAnalysisStore.counters` (one paginated Query), merged by `logic.analysis_run.build_snapshot` and analysed by
`kanaria.analysis.analyze_snapshot` — the three steps `analyse_experiment` chains in the Lambda.

The counter items for N observations are built from N simulated observations with vectorised numpy (per-item
sums, sums of squares and histogram buckets of the very values an observation would ADD, chunks of 10⁶), because
pushing 10⁷ observations through moto's transactions would take days. The naive side gets the raw observation
items of the same simulated observations, built by Kanaria's own `prepare_write` (N ≤ 100,000 only).

Wall time is split into what is measured where:
(a) storage read — moto's own wall time (an emulator: its response serializer dominates, not DynamoDB's
    service time) and the client-side decode of the same items (botocore parsing + boto3 deserialisation,
    replayed from DynamoDB-JSON response pages built with DynamoDB's 1 MB page size, no network);
(b) compute — snapshot + analysis (Kanaria), or columnar statistics + the same analysis (naive).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from scripts.bench_recording import (
    DYNAMO_PAGE_BYTES,
    REGION,
    create_tables,
    dynamo_item_size,
    fake_aws,
    page_sizes,
    progress,
    read_units,
    start_experiment,
    table_environment,
)

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
            day, rest = rest % self.days, rest // self.days
            intent, variant = INTENTS[rest % len(INTENTS)], VARIANTS[rest // len(INTENTS)]
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

    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"FilterExpression": Attr("experiment_id").eq(experiment_id)}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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


# ---------------------------------------------------------------- measurement


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall seconds of `repeats` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


@contextlib.contextmanager
def fast_moto_puts() -> Iterator[None]:
    """moto re-sums the whole item's size on every attribute it stores (O(attributes²) per put); seeding skips that
    check (every item here is far below 400 KB, checked with DynamoDB's sizing). Reads are untouched."""
    import pytest
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LimitedSizeDict, "__setitem__", dict.__setitem__)
        yield


def put_all(table: Any, items: Sequence[Mapping[str, Any]]) -> None:
    """Seed items into a moto table."""
    assert max((dynamo_item_size(i) for i in items), default=0) < 400_000
    with fast_moto_puts(), table.batch_writer() as writer:
        for item in items:
            writer.put_item(Item=dict(item))


def delete_all(table: Any, items: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """Remove seeded items again."""
    with table.batch_writer() as writer:
        for item in items:
            writer.delete_item(Key={k: item[k] for k in keys})


@dataclass
class Measured:
    """One size's figures."""

    n: int
    counter_items: int = 0
    exposure_items: int = 0
    counter_bytes: int = 0
    counter_pages: list[int] = field(default_factory=list)
    counter_max_item: int = 0
    queries: int = 0
    moto_query_s: float = 0.0
    decode_s: float = 0.0
    compute_s: float = 0.0
    decision: str | None = None
    raw_items: int = 0
    raw_bytes: int = 0
    raw_pages: list[int] = field(default_factory=list)
    moto_scan_s: float | None = None
    scans: int | None = None
    raw_build_s: float = 0.0
    naive_decode_s: float | None = None
    naive_compute_s: float | None = None
    naive_decision: str | None = None
    agreement: str = ""
    extrapolated: bool = False
    counter_responses: list[bytes] | None = None  # for the replay (outside moto)
    raws: list[dict[str, Any]] | None = None
    python_bytes_per_raw: float | None = None  # memory of the deserialized raw items (tracemalloc)


def measure(
    n: int, days: int, raw_limit: int, moto_scan_limit: int, repeats: int, tables: Mapping[str, Any], record: Any
) -> Measured:
    """Build N observations' counters (and raw items when N ≤ raw_limit) and run both analyses on them."""
    from kanaria import names
    from kanaria.analysis import analyze_snapshot
    from kanaria.dal.observations import DynamoAnalysisStore
    from kanaria.domain.profiles import DEFAULT_PROFILES
    from kanaria.logic.analysis_run import build_snapshot, previous_looks

    rng = np.random.default_rng(SEED + n)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day_labels = [(today - timedelta(days=days - d)).strftime("%Y-%m-%d") for d in range(days)]
    counters = Counters(days)
    raws: list[dict[str, Any]] = []
    started = time.perf_counter()
    for offset in range(0, n, CHUNK):
        columns = simulate(rng, min(CHUNK, n - offset), days)
        counters.add(columns)
        if n <= raw_limit:
            raws += raw_items(columns, offset, day_labels, datetime.now(timezone.utc), EXPERIMENT_ID)
    m = Measured(n, raw_build_s=time.perf_counter() - started)
    items = counters.items(EXPERIMENT_ID, day_labels) + exposure_items(counters, rng, EXPERIMENT_ID, day_labels)
    progress(
        f"analysis: N = {n:,}: simulated, {len(items):,} counter items and {len(raws):,} raw items built in"
        f" {m.raw_build_s:.1f} s; seeding moto"
    )
    put_all(tables["aggregates"], items)

    # Kanaria (a1): the real Query against moto, requests counted
    import boto3

    requests: list[str] = []
    resource = boto3.resource("dynamodb")
    resource.meta.client.meta.events.register("before-call.dynamodb", lambda model, **_: requests.append(model.name))
    store = DynamoAnalysisStore(names.table_name("bench", "aggregates"), dynamodb_resource=resource)
    started = time.perf_counter()
    read = store.counters(EXPERIMENT_ID)
    m.moto_query_s = time.perf_counter() - started
    m.queries = requests.count("Query")
    m.counter_items = len(read)
    m.exposure_items = sum(1 for i in read if str(i["sk"]).startswith("EXPOSURE#"))
    assert m.counter_items == len(items)
    sizes = [dynamo_item_size(i) for i in read]
    m.counter_bytes, m.counter_max_item = sum(sizes), max(sizes)
    delete_all(tables["aggregates"], items, ("experiment_id", "sk"))

    # Kanaria (b): snapshot + analysis of the items as read
    def kanaria_compute() -> dict[str, Any]:
        snapshot = build_snapshot(record, read, DEFAULT_PROFILES)
        snapshot["experiment"]["looks"] = previous_looks(None)  # a first run: no earlier looks
        return analyze_snapshot(snapshot).to_json()

    kanaria_compute()  # boundaries and imports warm, as in a long-lived Lambda container
    m.compute_s, result = median_time(kanaria_compute, repeats)
    m.decision = result["decision"]

    exposures = [i for i in items if i["sk"].startswith("EXPOSURE#")]
    ordered = sorted(items, key=lambda i: i["sk"])
    pages, m.counter_pages = response_pages(ordered, ("experiment_id", "sk"))
    m.raw_items = n
    if n <= raw_limit:
        # naive (a1): the Scan against moto, for the smaller sizes
        if n <= moto_scan_limit:
            put_all(tables["observations"], raws)
            requests.clear()
            table = resource.Table(names.table_name("bench", "observations"))
            started = time.perf_counter()
            scanned = read_raw_observations(table, EXPERIMENT_ID)
            m.moto_scan_s = time.perf_counter() - started
            m.scans = requests.count("Scan")
            assert len(scanned) == n
            delete_all(tables["observations"], raws, ("observation_id",))
        raw_sizes = [dynamo_item_size(r) for r in raws]
        m.raw_bytes, m.raw_pages = sum(raw_sizes), page_sizes(raw_sizes)

        # naive (b): columnar statistics from every raw observation + the same analysis
        def naive_compute() -> dict[str, Any]:
            snapshot = naive_snapshot(record, raws, exposures, DEFAULT_PROFILES)
            snapshot["experiment"]["looks"] = previous_looks(None)
            return analyze_snapshot(snapshot).to_json()

        m.naive_compute_s, naive_result = median_time(naive_compute, max(1, repeats if n <= 10_000 else 1))
        m.naive_decision = naive_result["decision"]
        m.agreement = agreement(result, naive_result)
    m.counter_responses, m.raws = pages, (raws or None)
    return m


def agreement(counters_result: Mapping[str, Any], naive_result: Mapping[str, Any]) -> str:
    """How the two analyses' primary comparisons agree."""
    a = counters_result["metrics"]["quality_score"]["B"]
    b = naive_result["metrics"]["quality_score"]["B"]
    same = counters_result.get("decision") == naive_result.get("decision")
    return (
        f"decision {counters_result.get('decision')} vs {naive_result.get('decision')}"
        f" ({'same' if same else 'different'}); quality effect {a['effect']:.6f} vs {b['effect']:.6f},"
        f" p {a['p_value']:.3g} vs {b['p_value']:.3g}"
    )


def replay_times(m: Measured, repeats: int) -> None:
    """Client-side decode of both reads, replayed without moto (outside the mock)."""
    from kanaria.dal.observations import DynamoAnalysisStore

    pages = m.counter_responses or []
    store = DynamoAnalysisStore("bench-aggregates", dynamodb_resource=replay_resource(pages))
    m.decode_s, read = median_time(lambda: store.counters(EXPERIMENT_ID), repeats)
    assert len(read) == m.counter_items
    raws = m.raws
    if raws:
        raw_pages, _ = response_pages(raws, ("observation_id",))
        table = replay_resource(raw_pages).Table("bench-observations")
        m.naive_decode_s, scanned = median_time(
            lambda: read_raw_observations(table, EXPERIMENT_ID), repeats if len(raws) <= 10_000 else 1
        )
        assert len(scanned) == len(raws)
        del scanned
        if len(raws) <= 10_000:
            import tracemalloc

            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = read_raw_observations(table, EXPERIMENT_ID)
            m.python_bytes_per_raw = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
            tracemalloc.stop()
            del kept
    m.counter_responses, m.raws = None, None


def fmt_s(seconds: float | None) -> str:
    """Seconds or milliseconds, readable."""
    if seconds is None:
        return "–"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def run(args: argparse.Namespace) -> str:
    """The Analysis section of docs/benchmarks.md."""
    quick = bool(getattr(args, "bench_quick", False))
    sizes = (1_000, 5_000, 20_000) if quick else (1_000, 100_000, 10_000_000)
    days = 2 if quick else 8
    raw_limit, moto_scan_limit = sizes[1], sizes[0]
    repeats = 3 if quick else 5
    progress(f"analysis: {', '.join(f'{s:,}' for s in sizes)} observations, 2 variants × 6 intents × {days} days")
    section_started = time.perf_counter()
    results: list[Measured] = []
    with fake_aws(table_environment()):
        tables = create_tables()
        record = start_experiment(experiment_definition())
        for n in sizes:
            results.append(measure(n, days, raw_limit, moto_scan_limit, repeats, tables, record))
    for m in results:
        replay_times(m, repeats)

    # the naive read at the largest size: measured per item at the largest raw size, times N (extrapolated)
    basis = next(m for m in reversed(results) if m.naive_decode_s is not None)
    for m in results:
        if m.naive_decode_s is None:
            m.extrapolated = True
            scale = m.n / basis.n
            m.raw_bytes = int(basis.raw_bytes * scale)
            m.raw_pages = [1024 * 1024] * math.ceil(m.raw_bytes / (1024 * 1024))
            m.naive_decode_s = basis.naive_decode_s * scale
            m.naive_compute_s = (basis.naive_compute_s or 0.0) * scale
    elapsed = time.perf_counter() - section_started
    return render(results, days, basis, elapsed, repeats)


def render(results: list[Measured], days: int, basis: Measured, elapsed: float, repeats: int) -> str:
    """Markdown of the section."""
    first, last = results[0], results[-1]
    kanaria_rows = []
    for m in results:
        kanaria_rows.append(
            f"| {m.n:,} | {m.counter_items:,} ({m.counter_items - m.exposure_items:,} + {m.exposure_items:,}) | {m.queries} |"
            f" {m.counter_bytes / 1024:,.0f} KB (max item"
            f" {m.counter_max_item:,} B) | {len(m.counter_pages)} | {read_units(m.counter_pages):,.1f} |"
            f" {fmt_s(m.moto_query_s)} | {fmt_s(m.decode_s)} | {fmt_s(m.compute_s)} | {fmt_s(m.decode_s + m.compute_s)} |"
            f" {m.decision} |"
        )
    naive_rows = []
    for m in results:
        mark = " (extrapolated)" if m.extrapolated else ""
        naive_rows.append(
            f"| {m.n:,} | {m.raw_items:,} | {m.raw_bytes / 1024 / 1024:,.1f} MB | {len(m.raw_pages):,} |"
            f" {read_units(m.raw_pages):,.0f} | {fmt_s(m.moto_scan_s)} | {fmt_s(m.naive_decode_s)}{mark} |"
            f" {fmt_s(m.naive_compute_s)}{mark} | {fmt_s((m.naive_decode_s or 0) + (m.naive_compute_s or 0))}{mark} |"
        )
    ratio_rows = []
    for m in results:
        kanaria_total = m.decode_s + m.compute_s
        naive_total = (m.naive_decode_s or 0) + (m.naive_compute_s or 0)
        mark = " (extrapolated)" if m.extrapolated else ""
        ratio_rows.append(
            f"| {m.n:,} | {m.raw_items / m.counter_items:,.0f}× | {read_units(m.raw_pages) / read_units(m.counter_pages):,.0f}× |"
            f" {naive_total / kanaria_total:,.1f}×{mark} |"
        )
    agreements = [f"  - N = {m.n:,}: {m.agreement}" for m in results if m.agreement]
    first_ratio = ((first.naive_decode_s or 0) + (first.naive_compute_s or 0)) / (first.decode_s + first.compute_s)
    scans = next((m for m in results if m.moto_scan_s is not None), None)
    memory_basis = next((m for m in results if m.python_bytes_per_raw), None)
    memory_per_raw = memory_basis.python_bytes_per_raw if memory_basis else 0.0
    return "\n".join(
        [
            "## Analysis",
            "",
            f"One scheduled analysis of one experiment after N recorded observations (2 variants × 6 intents × {days} days,"
            f" 16 counter shards; section wall time {elapsed:.0f} s). Kanaria's read path runs for real on moto:"
            " `DynamoAnalysisStore.counters` (one paginated Query) → `build_snapshot` → `analyze_snapshot`, the steps"
            " `analyse_experiment` chains in the Lambda. The counter items for N observations are built from N simulated"
            " observations with vectorised numpy (per item: the sums, sums of squares, counts and latency-histogram buckets"
            " those observations would ADD, values quantized as stored; 10⁶ per chunk) and stored in moto's `aggregates`"
            " table with the exposure counters (units ≈ observations / 1.6, modelled). Pushing 10⁷ observations through"
            " moto's transactions is not feasible (tens of ms each, see Recording).",
            "",
            "What is measured where:",
            "",
            "- *items read, Query requests*: the real Query against moto, requests counted with a botocore hook;",
            "- *bytes, 1 MB pages, RCU*: the items read, sized by DynamoDB's rules (numbers: 1 byte per 2 significant digits"
            " + 1) and paged at 1 MB; RCU = Σ⌈page/4 KB⌉ / 2 (eventually consistent) — modelled, moto meters nothing;",
            "- *moto Query*: moto's wall time for that Query — an emulator's serializer, not DynamoDB's service time;",
            "- *client decode*: boto3 reading the same items from replayed DynamoDB-JSON responses (1 MB pages, no network,"
            " no moto): request signing, JSON parsing, deserialisation — the Lambda's own CPU for the read, which a real"
            " DynamoDB adds its service and network time to (not measured here);",
            f"- *snapshot + analysis*: `build_snapshot` + `analyze_snapshot` on the items as read (median of {repeats}, after"
            " one warm-up).",
            "- not counted on either side: the `GetItem` of `RESULT#LATEST` (previous decision and look history) and the"
            " result write (one `TransactWriteItems`, two Puts) that every scheduled analysis makes once per experiment.",
            "",
            "**Kanaria (counter items)**",
            "",
            "| recorded observations | items read (AGG + EXPOSURE) | Query requests | size | 1 MB pages | RCU | moto Query | client decode |"
            " snapshot + analysis | decode + compute | decision |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *kanaria_rows,
            "",
            f"Items read grow {last.counter_items / first.counter_items:.2f}× from {first.n:,} to {last.n:,} observations"
            f" ({last.n // first.n:,}× more): the grid has at most 2 × 6 × {days} × 16 = {2 * 6 * days * 16:,} counter"
            " items (plus exposure items) however many observations arrive; only the histogram buckets an item has seen"
            " make it bigger. moto pages by its own, larger size estimate (a number's characters), hence more Query"
            " requests than DynamoDB's 1 MB pages.",
            "",
            "**Naive: read every raw observation, compute the statistics from them**",
            "",
            "The raw observation items are the ones Kanaria itself stores (built with `prepare_write` from the same"
            " simulated observations), read with a paginated Scan filtered on the experiment (the table is keyed by"
            " `observation_id`, so a real Scan also pays for every other experiment's observations — not counted here);"
            " statistics per variant and per intent with numpy from columns extracted item by item (exact latency"
            " quantiles), then the same `analyze_snapshot`. Units come from the same exposure counters.",
            "",
            "| recorded observations | raw items read | size | 1 MB pages | RCU | moto Scan | client decode | statistics +"
            " analysis | decode + compute |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *naive_rows,
            "",
            f"- The {last.n:,} row is **extrapolated**, not measured: items read = N by construction; bytes, decode and"
            f" compute are the {basis.n:,}-observation measurements × {last.n // basis.n:,} (linear in N)."
            + (
                f" Held in memory, {last.n:,} deserialized raw items would take ≈ {memory_per_raw * last.n / 2**30:,.1f} GiB"
                f" ({memory_per_raw:,.0f} B per item, tracemalloc at {memory_basis.n:,} items × N)"
                + (
                    ", more than a Lambda's maximum 10,240 MB: the naive analysis would not fit one invocation at all."
                    if memory_per_raw * last.n > 10_240 * 2**20
                    else "."
                )
                if memory_basis
                else ""
            ),
            (
                f"- moto Scan measured at {scans.n:,} raw items only ({scans.scans} Scan request{'s' if scans.scans != 1 else ''});"
                " at larger N moto's serializer makes it impractical."
            )
            if scans
            else "- moto Scan not measured.",
            "- Both analyses agree where both were run:",
            *agreements,
            "",
            "**Ratio naive ÷ Kanaria, one analysis**",
            "",
            "| recorded observations | items read | RCU | decode + compute wall |",
            "| ---: | ---: | ---: | ---: |",
            *ratio_rows,
            "",
            f"At {first.n:,} observations Kanaria reads {first.counter_items:,} items (counters and exposures) against the"
            f" naive {first.n:,}, and one analysis costs {first_ratio:.1f}× as much the naive way: the counters pay off only"
            " as observations accumulate, their number being bounded while the naive read grows with N.",
            "",
        ]
    )
