"""`make bench` section: what recording an observation costs in DynamoDB requests and Lambda invocations.

The real observations handler (`kanaria.handlers.observations`) runs in-process against moto, as in
tests/integration/test_observations_recording.py; a botocore `before-call` hook counts every AWS request it makes.
Also home of the helpers the analysis section shares (fake AWS environment, DynamoDB item sizing); the tables,
environment and handler loading are the observation tests' own (tests/unit/observations/support.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import sys
import time
import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator, Mapping

PREFIX = "bench"
CALLER = "arn:aws:iam::123456789012:user/bench"
REGION = "ap-northeast-1"
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
DYNAMO_PAGE_BYTES = 1024 * 1024  # Query/Scan read at most 1 MB of items per page


def progress(message: str) -> None:
    """Progress on stderr (same format as scripts/bench.py)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- DynamoDB sizing (pure, unit-tested)


def dynamo_value_size(value: Any) -> int:
    """Bytes DynamoDB bills for one attribute value (AWS "item sizes" rules; names are counted by the caller).

    Numbers: 1 byte per two significant digits + 1; strings and binary: their bytes; booleans and null: 1;
    lists and maps: 3 bytes + 1 per element (+ the element names of a map); sets: the sum of their members.
    """
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        return math.ceil(significant_digits(value) / 2) + 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode("utf-8")) + dynamo_value_size(v) + 1 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 3 + sum(dynamo_value_size(v) + 1 for v in value)
    if isinstance(value, (set, frozenset)):
        return sum(dynamo_value_size(v) for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def significant_digits(value: int | float | Decimal) -> int:
    """Significant decimal digits of a number (leading and trailing zeros trimmed; 0 has one)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    digits = number.normalize().as_tuple().digits
    return max(1, len(digits)) if any(digits) else 1


def dynamo_item_size(item: Mapping[str, Any]) -> int:
    """Bytes of one item as DynamoDB counts them: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + dynamo_value_size(value) for name, value in item.items())


def page_sizes(sizes: list[int], page_bytes: int = DYNAMO_PAGE_BYTES) -> list[int]:
    """Split item sizes (in read order) into DynamoDB pages of at most `page_bytes`: bytes per page."""
    pages: list[int] = []
    current = 0
    for size in sizes:
        if current and current + size > page_bytes:
            pages.append(current)
            current = 0
        current += size
    if current or not pages:
        pages.append(current)
    return pages


def read_units(pages: list[int], consistent: bool = False) -> float:
    """Read capacity of a Query/Scan: each page's bytes rounded up to 4 KB, halved when eventually consistent."""
    units = sum(math.ceil(p / 4096) for p in pages)
    return float(units) if consistent else units / 2.0


def write_units(item_bytes: int, transactional: bool = True) -> int:
    """Write capacity of one item write: 1 per KB (rounded up), doubled inside a transaction."""
    return max(1, math.ceil(item_bytes / 1024)) * (2 if transactional else 1)


# ---------------------------------------------------------------- a fake AWS account (moto), shared with bench_analysis

FAKE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "Kanaria",
    "POWERTOOLS_SERVICE_NAME": "kanaria-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_DEV": "false",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


@contextlib.contextmanager
def fake_aws(extra_env: Mapping[str, str] | None = None) -> Iterator[None]:
    """moto for every AWS service, fake credentials, quiet Powertools; the environment is restored afterwards."""
    import boto3
    from moto import mock_aws

    changes = {**FAKE_ENVIRONMENT, **(extra_env or {})}
    saved = {k: os.environ.get(k) for k in (*changes, "AWS_PROFILE", "AWS_ENDPOINT_URL")}
    os.environ.update(changes)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            boto3.setup_default_session()
            yield
    finally:
        boto3.DEFAULT_SESSION = None
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def table_environment(prefix: str = PREFIX) -> dict[str, str]:
    """Table and parameter names of the observations and analysis functions (as in the observation tests)."""
    from tests.unit.observations.support import environment

    return environment(prefix)


def create_tables(prefix: str = PREFIX) -> dict[str, Any]:
    """Every Kanaria table with the CDK construct's key schema (infra.constructs.tables.TABLE_SPECS), in moto."""
    from tests.unit.observations.support import create_tables as create

    return create(prefix)


def put_profiles(prefix: str = PREFIX) -> None:
    """The default intent profiles in SSM, as the stack stores them."""
    from tests.unit.observations.support import put_profiles as put

    put(prefix)


def start_experiment(definition: Mapping[str, Any], prefix: str = PREFIX) -> Any:
    """Create and start an experiment through the real repository and lifecycle; returns the running record."""
    from kanaria import names
    from kanaria.dal.experiment_store import DynamoExperimentRepository
    from kanaria.logic.experiments import create_experiment, transition

    repo = DynamoExperimentRepository(names.table_name(prefix, "experiments"))
    started = datetime.now(timezone.utc) - timedelta(days=10)
    create_experiment(repo, dict(definition), CALLER, started)
    return transition(repo, definition["id"], "start", CALLER, started)


class CallLog:
    """Every AWS request of every botocore client created from now on (the handler's DynamoDB clients, Powertools'
    own SSM client), as (service, operation, serialized request)."""

    def __init__(self, patch: Any) -> None:
        import botocore.session

        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        original = botocore.session.Session.create_client
        record = self._record

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", record)
            return client

        patch.setattr(botocore.session.Session, "create_client", create_client)

    def _record(self, event_name: str = "", params: Any = None, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls.append((service, operation, params or {}))

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.calls.clear()

    def count(self) -> Counter[str]:
        """Requests per "service.Operation"."""
        return Counter(f"{service}.{operation}" for service, operation, _ in self.calls)

    def transact_items(self) -> int:
        """Item actions inside the TransactWriteItems requests."""
        total = 0
        for _, operation, params in self.calls:
            if operation == "TransactWriteItems":
                body = params.get("body") or b"{}"  # the serialized request (JSON protocol)
                total += len(json.loads(body).get("TransactItems", []))
        return total


def fast_moto_transactions(patch: Any) -> None:
    """moto deep-copies every table a TransactWriteItems names (O(table) per request); the observation tests'
    `atomic_fast_moto` snapshots only the named items instead (same semantics, see its docstring)."""
    from tests.unit.observations.support import atomic_fast_moto

    atomic_fast_moto(patch)


def scan_all(table: Any) -> list[dict[str, Any]]:
    """Every item of a table (paginated Scan)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def invoke(handler: Any, path: str, body: Any) -> tuple[int, Any]:
    """POST an IAM-authorized HTTP API event to a handler (EMF output swallowed); (status, JSON body)."""
    from kanaria_tools.lambda_api import http_event
    from tests.unit.observations.support import FakeLambdaContext

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No application metrics to publish" when a batch holds only duplicates
        response = handler(
            http_event("POST", path, body, CALLER), FakeLambdaContext(function_name=f"{PREFIX}-observations")
        )
    return response["statusCode"], json.loads(response["body"])


# ---------------------------------------------------------------- the recording measurement

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


def run(args: argparse.Namespace) -> str:
    """The Recording section of docs/benchmarks.md."""
    quick = bool(getattr(args, "bench_quick", False))
    count = 200 if quick else 1000
    batch_size = 100
    rng = random.Random(20261123)
    now = datetime.now(timezone.utc)
    progress(f"recording: {count:,} observations through the single API and {count:,} through the batch API (moto)")
    import pytest

    from tests.unit.observations.support import fresh_handler

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

        log.clear()
        started = time.perf_counter()
        single_invocations = 0
        for body in bodies[1 : 1 + count]:
            status, answer = invoke(module.handler, "/observations", body)
            assert status == 201, answer
            single_invocations += 1
        single_wall = time.perf_counter() - started
        single = log.count()
        single_actions = log.transact_items()

        log.clear()
        started = time.perf_counter()
        batch_invocations, recorded = 0, 0
        batch_bodies = bodies[1 + count :]
        for k in range(0, len(batch_bodies), batch_size):
            status, answer = invoke(
                module.handler, "/observations/batch", {"observations": batch_bodies[k : k + batch_size]}
            )
            assert status == 200 and answer["rejected"] == 0, answer
            recorded += answer["recorded"]
            batch_invocations += 1
        batch_wall = time.perf_counter() - started
        batch = log.count()
        batch_actions = log.transact_items()

        # a retried batch: every item is a duplicate, nothing is written
        before = scan_all(tables["aggregates"])
        log.clear()
        status, answer = invoke(module.handler, "/observations/batch", {"observations": batch_bodies[:batch_size]})
        retry = log.count()
        after = scan_all(tables["aggregates"])
        assert status == 200 and answer["duplicates"] == batch_size and before == after

        counted = sum(int(i["obs"]) for i in after if i["sk"].startswith("AGG#"))
        raws = scan_all(tables["observations"])
        counters = [i for i in after if i["sk"].startswith("AGG#")]
    assert counted == 1 + 2 * count == len(raws), (counted, len(raws))

    raw_sizes = [dynamo_item_size(r) for r in raws]
    counter_sizes = [dynamo_item_size(c) for c in counters]
    raw_mean, counter_max = sum(raw_sizes) / len(raw_sizes), max(counter_sizes)
    wcu = write_units(int(raw_mean)) + write_units(counter_max)

    def per(counter: Counter[str], operation: str, n: int) -> str:
        return f"{counter.get(operation, 0) / n:.3f}"

    def dynamo_calls(c: Counter[str], operations: frozenset[str] | set[str]) -> int:
        return sum(v for k, v in c.items() if k.startswith("dynamodb.") and k.split(".")[1] in operations)

    def dynamo_writes(c: Counter[str]) -> int:
        return dynamo_calls(c, WRITE_OPERATIONS)

    def dynamo_reads(c: Counter[str]) -> int:
        return dynamo_calls(c, READ_OPERATIONS)

    rows = [
        (
            "DynamoDB write requests per observation",
            f"{dynamo_writes(single) / count:.3f}",
            f"{dynamo_writes(batch) / count:.3f}",
        ),
        (
            "… of which `TransactWriteItems`",
            per(single, "dynamodb.TransactWriteItems", count),
            per(batch, "dynamodb.TransactWriteItems", count),
        ),
        (
            "item writes inside them per observation (conditional Put + counter ADD)",
            f"{single_actions / count:.3f}",
            f"{batch_actions / count:.3f}",
        ),
        (
            "DynamoDB read requests per observation",
            f"{dynamo_reads(single) / count:.3f}",
            f"{dynamo_reads(batch) / count:.3f}",
        ),
        (
            "… `GetItem` (sticky assignment; experiment re-read when its 30 s cache expires)",
            per(single, "dynamodb.GetItem", count),
            per(batch, "dynamodb.GetItem", count),
        ),
        (
            "SSM requests per observation (profiles, Powertools 5-min cache)",
            per(single, "ssm.GetParameter", count),
            per(batch, "ssm.GetParameter", count),
        ),
        (
            "Lambda invocations per 1,000 observations",
            f"{single_invocations * 1000 / count:,.0f}",
            f"{batch_invocations * 1000 / count:,.0f}",
        ),
        (
            "wall time per observation in-process against moto (indicative only)",
            f"{single_wall / count * 1000:.1f} ms",
            f"{batch_wall / count * 1000:.1f} ms",
        ),
    ]
    table = [
        "| per observation | single `POST /observations` | batch `POST /observations/batch` (100 per call) |",
        "| --- | ---: | ---: |",
    ] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    cold_text = ", ".join(f"{k} × {v}" for k, v in sorted(cold.items()))
    retry_text = ", ".join(f"{k} × {v}" for k, v in sorted(retry.items()))
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
            f" exactly the {1 + 2 * count:,} observations sent ({single_invocations:,} single and {batch_invocations:,} batch"
            " invocations after the warm-up) and the observations table holds one raw item per observation.",
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
