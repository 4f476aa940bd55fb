"""Bench section Recording: what recording an observation costs in DynamoDB requests and Lambda invocations.

The real observations handler (`kanaria.handlers.observations`) runs in-process against moto, as in
tests/integration/test_observations_recording.py; a botocore `before-call` hook counts every AWS request it makes.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from kanaria_tools.bench.common import Options, progress
from kanaria_tools.bench.dynamo_sizing import dynamo_item_size, write_units
from kanaria_tools.bench.moto_env import (
    CallLog,
    create_tables,
    fake_aws,
    fast_moto_transactions,
    fresh_handler,
    invoke,
    put_profiles,
    scan_all,
    start_experiment,
    table_environment,
)

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})

EXPERIMENT = {
    "id": "bench-recording",
    "description": "Haiku for chitchat and recommendations",
    "hypothesis": "Claude 3 Haiku keeps quality within 0.02 at a fraction of the cost",
    "intents": ["chitchat", "recommendation"],
    "control": "A",
    "variants": [
        {"id": "A", "weight": 0.5},
        {"id": "B", "weight": 0.5, "overrides": {"model_id": "anthropic.claude-3-haiku-20240307-v1:0"}},
    ],
    "primary_metric": "quality_score",
    "guardrails": [{"metric": "latency_p99_ms", "max_degradation": 0.1}],
    "decision": {"mde": 0.02},
}


def observation_body(i: int, record: Any, rng: random.Random, now: datetime) -> dict[str, Any]:
    """A realistic observation whose variant is the unit's deterministic assignment (so it is counted)."""
    from kanaria.domain.assignment import pick_variant

    unit = f"session-{i}"
    body: dict[str, Any] = {
        "observation_id": f"bench-{i:07d}",
        "experiment_id": EXPERIMENT["id"],
        "variant_id": pick_variant(record.experiment, unit, record.weights),
        "unit": unit,
        "intent": rng.choice(["chitchat", "recommendation"]),
        "timestamp": (now - timedelta(minutes=rng.randint(0, 3 * 24 * 60))).isoformat(),
        "quality_score": round(min(1.0, max(0.0, rng.gauss(0.8, 0.15))), 6),
        "relevance_score": round(rng.random(), 6),
        "latency_ms": round(rng.lognormvariate(6.9, 0.5), 3),
        "input_tokens": rng.randint(50, 3000),
        "output_tokens": rng.randint(10, 800),
        "error": rng.random() < 0.01,
        "hallucination": rng.random() < 0.03,
        "task_completed": rng.random() < 0.7,
    }
    if rng.random() < 0.3:
        body["csat"] = rng.randint(1, 4)
    return body


@dataclass
class RouteCounts:
    """The AWS requests and invocations of one route over the measured observations."""

    requests: Counter[str]
    transact_items: int
    invocations: int
    wall_s: float


@dataclass
class RecordingRun:
    """What the Recording section measured."""

    count: int
    batch_size: int
    cold: Counter[str]
    single: RouteCounts
    batch: RouteCounts
    retry: Counter[str]
    raw_sizes: list[int]
    counter_sizes: list[int]


def _single_route(module: Any, log: CallLog, bodies: list[dict[str, Any]]) -> RouteCounts:
    log.clear()
    started = time.perf_counter()
    for body in bodies:
        status, answer = invoke(module.handler, "/observations", body)
        assert status == 201, answer
    return RouteCounts(log.count(), log.transact_items(), len(bodies), time.perf_counter() - started)


def _batch_route(module: Any, log: CallLog, bodies: list[dict[str, Any]], batch_size: int) -> RouteCounts:
    log.clear()
    started = time.perf_counter()
    invocations = 0
    for k in range(0, len(bodies), batch_size):
        status, answer = invoke(module.handler, "/observations/batch", {"observations": bodies[k : k + batch_size]})
        assert status == 200 and answer["rejected"] == 0, answer
        invocations += 1
    return RouteCounts(log.count(), log.transact_items(), invocations, time.perf_counter() - started)


def measure(count: int, batch_size: int) -> RecordingRun:
    """Record 1 + 2 x count observations through the real handler on moto, every AWS request counted."""
    import pytest

    rng = random.Random(20261123)
    now = datetime.now(timezone.utc)
    with fake_aws(table_environment()), pytest.MonkeyPatch.context() as patch:
        fast_moto_transactions(patch)
        tables = create_tables()
        put_profiles()
        record = start_experiment(EXPERIMENT)
        log = CallLog(patch)
        module = fresh_handler("kanaria.handlers.observations")
        bodies = [observation_body(i, record, rng, now) for i in range(1 + 2 * count)]

        # a cold execution environment: the first request also reads the experiment and the profiles
        log.clear()
        status, _ = invoke(module.handler, "/observations", bodies[0])
        assert status == 201, status
        cold = log.count()
        single = _single_route(module, log, bodies[1 : 1 + count])
        batch_bodies = bodies[1 + count :]
        batch = _batch_route(module, log, batch_bodies, batch_size)

        # a retried batch: every item is a duplicate, nothing is written
        before = scan_all(tables["aggregates"])
        log.clear()
        status, answer = invoke(module.handler, "/observations/batch", {"observations": batch_bodies[:batch_size]})
        retry = log.count()
        after = scan_all(tables["aggregates"])
        assert status == 200 and answer["duplicates"] == batch_size and before == after
        raws = scan_all(tables["observations"])
    counters = [i for i in after if i["sk"].startswith("AGG#")]
    counted = sum(int(i["obs"]) for i in counters)
    assert counted == 1 + 2 * count == len(raws), (counted, len(raws))
    return RecordingRun(
        count,
        batch_size,
        cold,
        single,
        batch,
        retry,
        [dynamo_item_size(r) for r in raws],
        [dynamo_item_size(c) for c in counters],
    )


def _dynamo_calls(c: Counter[str], operations: frozenset[str]) -> int:
    return sum(v for k, v in c.items() if k.startswith("dynamodb.") and k.split(".")[1] in operations)


def _rows(m: RecordingRun) -> list[tuple[str, str, str]]:
    count, single, batch = m.count, m.single.requests, m.batch.requests

    def per(counter: Counter[str], operation: str) -> str:
        return f"{counter.get(operation, 0) / count:.3f}"

    def calls(operations: frozenset[str]) -> tuple[str, str]:
        return f"{_dynamo_calls(single, operations) / count:.3f}", f"{_dynamo_calls(batch, operations) / count:.3f}"

    return [
        ("DynamoDB write requests per observation", *calls(WRITE_OPERATIONS)),
        (
            "… of which `TransactWriteItems`",
            per(single, "dynamodb.TransactWriteItems"),
            per(batch, "dynamodb.TransactWriteItems"),
        ),
        (
            "item writes inside them per observation (conditional Put + counter ADD)",
            f"{m.single.transact_items / count:.3f}",
            f"{m.batch.transact_items / count:.3f}",
        ),
        ("DynamoDB read requests per observation", *calls(READ_OPERATIONS)),
        (
            "… `GetItem` (sticky assignment; experiment re-read when its 30 s cache expires)",
            per(single, "dynamodb.GetItem"),
            per(batch, "dynamodb.GetItem"),
        ),
        (
            "SSM requests per observation (profiles, Powertools 5-min cache)",
            per(single, "ssm.GetParameter"),
            per(batch, "ssm.GetParameter"),
        ),
        (
            "Lambda invocations per 1,000 observations",
            f"{m.single.invocations * 1000 / count:,.0f}",
            f"{m.batch.invocations * 1000 / count:,.0f}",
        ),
        (
            "wall time per observation in-process against moto (indicative only)",
            f"{m.single.wall_s / count * 1000:.1f} ms",
            f"{m.batch.wall_s / count * 1000:.1f} ms",
        ),
    ]


def render(m: RecordingRun) -> str:
    """The section's markdown."""
    count, batch_size = m.count, m.batch_size
    raw_mean, counter_max = sum(m.raw_sizes) / len(m.raw_sizes), max(m.counter_sizes)
    wcu = write_units(int(raw_mean)) + write_units(counter_max)
    table = [
        "| per observation | single `POST /observations` | batch `POST /observations/batch` (100 per call) |",
        "| --- | ---: | ---: |",
    ] + [f"| {a} | {b} | {c} |" for a, b, c in _rows(m)]
    cold_text = ", ".join(f"{k} × {v}" for k, v in sorted(m.cold.items()))
    retry_text = ", ".join(f"{k} × {v}" for k, v in sorted(m.retry.items()))
    return "\n".join(
        [
            "## Recording",
            "",
            f"The real observations handler (`kanaria.handlers.observations.handler`, API Gateway HTTP API events) on moto,"
            f" {count:,} new observations through each route after one warm-up request, every AWS request counted with a"
            " botocore `before-call` hook on every client created during the run (the handler's DynamoDB clients and"
            " Powertools' SSM client). Observations: 2 variants ×"
            " 2 intents, random metrics (quality, relevance, latency, tokens with the cost computed from the price table,"
            " error, hallucination, task completed, CSAT on 30%), variant = the unit's deterministic assignment (no sticky"
            " record, so each observation also reads one) — all counted. Checked afterwards: the counter items add up to"
            f" exactly the {1 + 2 * count:,} observations sent ({m.single.invocations:,} single and"
            f" {m.batch.invocations:,} batch invocations after the warm-up) and the observations table holds one raw item"
            " per observation.",
            "",
            *table,
            "",
            f"- Cold first request (experiment and profiles not cached yet): {cold_text}.",
            f"- Retrying a whole batch of {batch_size} already recorded observations: {retry_text}; all {batch_size} answered"
            " `duplicate`, the counter items unchanged (each cancelled transaction writes nothing).",
            f"- Write capacity per new observation (modelled from the stored items' sizes by DynamoDB's sizing rules, not"
            f" measured — moto does not meter capacity): raw item {raw_mean:,.0f} B on average, counter items up to"
            f" {counter_max:,} B here → 2 × {math.ceil(raw_mean / 1024)} + 2 × {math.ceil(counter_max / 1024)} ="
            f" **{wcu} WCU** in the transaction (transactional writes bill double; the counter item grows with the histogram"
            " buckets it has seen; the Analysis section sizes the counter items of a busy experiment).",
            "- The batch route does not batch the writes: each item is still its own `TransactWriteItems` (the exactly-once"
            " unit is one observation). What the batch saves is invocations, request parsing and the per-invocation"
            " overhead (and, per observation, API Gateway requests).",
            "- Wall times are those of the handler in-process against moto (an emulator, with the observation tests'"
            " item-level transaction rollback); they say nothing about DynamoDB or Lambda latency.",
            "",
        ]
    )


def run(options: Options) -> str:
    """The Recording section of docs/benchmarks.md."""
    count = 200 if options.quick else 1000
    progress(f"recording: {count:,} observations through the single API and {count:,} through the batch API (moto)")
    return render(measure(count, batch_size=100))
