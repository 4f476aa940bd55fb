"""Bench section Client overhead: what the chatbot client (`kanaria.client.KanariaClient`) adds to the chatbot's
request path, next to GrowthBook's local evaluation and a bare SigV4-signed HTTP call, in one run.

- embedded assign: `KanariaClient.assign` of a cached experiment (the chatbot's thread, no network);
- record-enqueue: `KanariaClient.observe` (builds the typed Observation, enqueues it; the worker is not running,
  so nothing else competes for the GIL), and `record` of an observation built beforehand;
- a bare signed call: one `SigV4Transport.request` (botocore SigV4 + urllib3, a pooled keep-alive connection) to
  a loopback HTTP server that answers at once: the floor of any synchronous call to Kanaria's API;
- flush throughput: the queued observations delivered by the client's own batches (100 per POST, signed) to the
  same loopback server, which parses each batch and answers one result per item as the batch route does;
- memory per queued observation: tracemalloc over enqueueing them.

The loopback server is not API Gateway or the observations Lambda: the flush figure is the client's own cost
(serialising, signing, sending, reading the answers), an upper bound on what one client thread can send.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, TypedDict

from kanaria.client import ClientSettings, KanariaClient, SigV4Transport
from kanaria.domain.assignment import Assignment
from kanaria.domain.observation import Observation
from kanaria.percentiles import percentile
from kanaria_tools.bench.assignment import contenders, example_experiment
from kanaria_tools.bench.common import Options, per_call_ns, progress

REGION = "ap-northeast-1"
UNIT_INTENT = "recommendation"


class _BatchHandler(BaseHTTPRequestHandler):
    """Answers POST /observations/batch as the route does (one ok result per item), anything else with {}."""

    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway: the pooled connection is reused
    disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stall on loopback)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        answer: dict[str, object] = {}
        if self.path == "/observations/batch":
            items = json.loads(body)["observations"]
            answer = {"results": [{"index": i, "ok": True} for i in range(len(items))]}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Quiet: the bench measures, it does not log requests."""


class LoopbackApi:
    """A loopback HTTP server standing in for the Kanaria API, in a thread of its own."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _BatchHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="loopback-api", daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "LoopbackApi":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed_transport(url: str) -> SigV4Transport:
    """The client's own transport, signing with static credentials (the signature is computed, not checked)."""
    from botocore.credentials import Credentials

    return SigV4Transport(url, REGION, credentials=Credentials("AKIDBENCH", "bench-secret"))


def signer(url: str) -> Callable[[int], object]:
    """SigV4-sign one POST (botocore, as the transport does) without sending it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    frozen = Credentials("AKIDBENCH", "bench-secret").get_frozen_credentials()

    def sign(i: int) -> object:
        request = AWSRequest(
            method="POST", url=f"{url}/assign", data=b"{}", headers={"content-type": "application/json"}
        )
        SigV4Auth(frozen, "execute-api", REGION).add_auth(request)
        return request

    return sign


class Metrics(TypedDict):
    """The metrics a chatbot reports for one answer."""

    latency_ms: float
    input_tokens: int
    output_tokens: int
    quality_score: float
    error: bool


def observation_metrics(i: int) -> Metrics:
    """The metrics of the i-th answer."""
    return Metrics(latency_ms=800.0 + i % 400, input_tokens=1200, output_tokens=230, quality_score=0.83, error=False)


@dataclass(frozen=True)
class Latency:
    """Median and p99 of one operation, in µs."""

    name: str
    p50_us: float
    p99_us: float


def latency(name: str, fn: Callable[[int], object], n: int) -> Latency:
    """Per-call µs of n calls after one warm-up."""
    fn(0)
    times = per_call_ns(fn, n)
    return Latency(name, statistics.median(times) / 1000, (percentile(times, 99) or 0.0) / 1000)


def _client(url: str, queue_size: int) -> KanariaClient:
    """A client with the example experiment cached and no worker thread (deliver() is called by the bench)."""
    experiment = json.loads(example_experiment().read_text())
    settings = ClientSettings(queue_size=queue_size)
    return KanariaClient(signed_transport(url), settings=settings, experiments=[experiment], start=False)


def _in_experiment(client: KanariaClient, experiment_id: str) -> Iterator[Assignment]:
    """Assignments of units that are in the experiment (observe() queues nothing for the others)."""
    i = 0
    while True:
        assignment = client.assign(experiment_id, f"sess-{i}", UNIT_INTENT)
        i += 1
        if assignment.variant is not None:
            yield assignment


def request_path(url: str, n: int) -> list[Latency]:
    """Per-call latencies on the chatbot's thread: assign, enqueue, GrowthBook, a bare signed call."""
    experiment_id = json.loads(example_experiment().read_text())["id"]
    client = _client(url, queue_size=3 * n + 10)
    assignments = _in_experiment(client, experiment_id)
    sample = [next(assignments) for _ in range(64)]
    built = [Observation(**_fields(sample[i % 64], i)) for i in range(n + 1)]
    transport = signed_transport(url)
    body = json.dumps({"experiment_id": experiment_id, "unit": "sess-1", "intent": UNIT_INTENT}).encode()
    growthbook = dict(contenders(example_experiment()))["GrowthBook SDK 4.0 local evaluation (`gb.run(Experiment)`)"]
    rows = [
        latency(
            "Kanaria client: embedded `assign` (cached experiment)",
            lambda i: client.assign(experiment_id, f"sess-{i}", UNIT_INTENT),
            n,
        ),
        latency("GrowthBook SDK 4.0: local `gb.run(Experiment)`", growthbook, n),
        latency(
            "Kanaria client: `observe` (Observation built + enqueued)",
            lambda i: client.observe(sample[i % 64], **observation_metrics(i)),
            n,
        ),
        latency("Kanaria client: `record` of a built Observation (enqueue only)", lambda i: client.record(built[i]), n),
        latency("SigV4 signing alone (botocore `SigV4Auth`, nothing sent)", signer(url), n),
        latency(
            "bare SigV4-signed HTTP POST to a loopback server (botocore + urllib3)",
            lambda i: transport.request("POST", "/assign", body, 5.0),
            min(n, 2_000),
        ),
    ]
    transport.close()
    client.close(timeout=0.0)
    return rows


def _fields(assignment: Assignment, i: int) -> dict[str, object]:
    return {
        "observation_id": f"bench-{i:08d}",
        "experiment_id": assignment.experiment_id,
        "variant_id": assignment.variant,
        "unit": assignment.unit,
        "intent": assignment.intent,
        "timestamp": datetime.now(timezone.utc),
        **observation_metrics(i),
    }


@dataclass(frozen=True)
class Queueing:
    """Memory of the queued observations and the flush that sent them."""

    observations: int
    bytes_per_observation: float
    flush_s: float
    recorded: int
    batches: int


def queue_and_flush(url: str, n: int) -> Queueing:
    """Enqueue n observations (memory traced), then flush them through the client's own batches."""
    experiment_id = json.loads(example_experiment().read_text())["id"]
    client = _client(url, queue_size=n + 10)
    assignments = _in_experiment(client, experiment_id)
    sample = [next(assignments) for _ in range(64)]
    metrics = [observation_metrics(i) for i in range(n)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        client.observe(sample[i % 64], **metrics[i])
    per_observation = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    started = time.perf_counter()
    batches = 0
    while client.deliver(force=True):
        batches += 1
    flush_s = time.perf_counter() - started
    stats = client.close(timeout=0.0)
    return Queueing(n, per_observation, flush_s, stats.recorded, batches)


def measure(n: int, queued: int) -> tuple[list[Latency], Queueing]:
    """Both parts against one loopback server."""
    with LoopbackApi() as api:
        return request_path(api.url, n), queue_and_flush(api.url, queued)


def render(rows: list[Latency], q: Queueing, n: int) -> str:
    """The section's markdown."""
    assign, enqueue, call = rows[0], rows[2], rows[5]
    table = ["| on the request path | p50 µs | p99 µs |", "| --- | ---: | ---: |"]
    table += [f"| {r.name} | {r.p50_us:.2f} | {r.p99_us:.2f} |" for r in rows]
    return "\n".join(
        [
            "## Client overhead",
            "",
            "What `kanaria.client.KanariaClient` (docs/client.md) adds to the chatbot's request path, beside GrowthBook's"
            " local evaluation and a bare SigV4-signed HTTP call to a loopback server (`kanaria_tools.bench.client_overhead`;"
            f" {n:,} calls each, the signed call {min(n, 2_000):,}; same process, same run; the client's worker thread"
            " not running, so the figures are the calling thread's own).",
            "",
            *table,
            "",
            f"- Recording on the request path costs the enqueue: `observe` p50 **{enqueue.p50_us:.1f} µs** against"
            f" **{call.p50_us:.0f} µs** for the bare signed call a synchronous recording would make at the very least"
            f" ({call.p50_us / enqueue.p50_us:,.0f}×, before any network or Lambda time); embedded `assign` p50"
            f" {assign.p50_us:.1f} µs.",
            f"- Flush throughput: {q.observations:,} queued observations sent in {q.batches} signed batches of up to 100"
            f" in {q.flush_s:.2f} s = **{q.observations / q.flush_s:,.0f} observations/s** from one client thread"
            f" (serialising, signing, sending, reading the answers; the loopback server answers at once, so API Gateway"
            f" and the observations Lambda are not in it); {q.recorded:,} recorded.",
            f"- Memory per queued observation: **{q.bytes_per_observation:,.0f} B** (tracemalloc over enqueueing"
            f" {q.observations:,}: the typed Observation and its queue entry), so the default queue of 10,000 holds"
            f" about {q.bytes_per_observation * 10_000 / 2**20:.1f} MiB.",
            "- GrowthBook's SDK has no observation queue to compare with: it hands exposures to the application's"
            " tracking callback, and metrics reach GrowthBook through the application's own data warehouse.",
            "",
        ]
    )


def run(options: Options) -> str:
    """The Client overhead section of docs/benchmarks.md."""
    n = 2_000 if options.quick else 20_000
    queued = 2_000 if options.quick else 10_000
    progress(f"client: {n:,} calls per operation, {queued:,} observations queued and flushed (loopback server)")
    rows, q = measure(n, queued)
    return render(rows, q, n)
