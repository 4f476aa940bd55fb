"""The chatbot client against the real assign, experiments and observations handlers on moto: fail-open
assignment, exactly-once recording through an outage, bounded queue, SigV4 over a loopback server."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.credentials import Credentials
from moto import mock_aws

from kanaria.client import (
    FALLBACK_REFUSED,
    FALLBACK_UNAVAILABLE,
    ClientSettings,
    EmbeddedClient,
    KanariaClient,
    SigV4Transport,
)
from kanaria.domain.observation import Observation
from kanaria.domain.profiles import DEFAULT_PROFILES, bedrock_config, profile_for, resolve
from tests.support.chatbot_api import BlockingTransport, FlakyTransport, HandlerTransport, LoopbackApi, unused_port
from tests.unit.observations.support import (
    definition,
    fresh_handler,
    running_experiment,
    seeded_moto,
)

EXPERIMENT = "exp-obs"
CREDENTIALS = Credentials("AKIDCHATBOT", "secret-for-tests")


class ScenarioClock:
    """Monotonic time the test moves by hand: a minute of outage takes no minute."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kanaria(monkeypatch):
    """Tables, profiles, a running two-variant experiment and the three handlers behind an in-process transport."""
    with mock_aws():
        tables = seeded_moto(monkeypatch)
        running_experiment()
        boto3.setup_default_session()
        transport = HandlerTransport(
            fresh_handler("kanaria.handlers.assign").handler,
            fresh_handler("kanaria.handlers.experiments").handler,
            fresh_handler("kanaria.handlers.observations").handler,
        )
        yield tables, transport
        boto3.DEFAULT_SESSION = None


def default_config(intent: str) -> dict:
    return bedrock_config(resolve(profile_for(intent, DEFAULT_PROFILES), None))


def stored_ids(tables) -> Counter:
    return Counter(item["observation_id"] for item in tables["observations"].scan()["Items"])


def counted(tables) -> int:
    return sum(int(i["obs"]) for i in tables["aggregates"].scan()["Items"] if i["sk"].startswith("AGG#"))


def test_api_down_serves_the_default_profile_and_raises_nothing():
    transport = SigV4Transport(f"http://127.0.0.1:{unused_port()}", "ap-northeast-1", credentials=CREDENTIALS)
    flaky = FlakyTransport(transport)
    clock = ScenarioClock()
    client = KanariaClient(flaky, start=False, clock=clock)
    first = client.assign(EXPERIMENT, "session-1", "chitchat")
    assert (first.variant, first.in_experiment, first.reason) == (None, False, FALLBACK_UNAVAILABLE)
    assert first.config == default_config("chitchat")
    second = client.assign(EXPERIMENT, "session-2", "recommendation")
    assert second.config == default_config("recommendation")
    assert len(flaky.calls) == 1  # cooling down: the second request path never waited for the dead API
    clock.now += client.settings.assign_cooldown
    client.assign(EXPERIMENT, "session-3", "chitchat")
    assert len(flaky.calls) == 2
    assert client.observe(first, latency_ms=120.0) is False  # no variant: nothing to record
    observation = Observation(
        observation_id="obs-down-1",
        experiment_id=EXPERIMENT,
        variant_id="A",
        unit="session-1",
        intent="chitchat",
        timestamp=datetime.now(timezone.utc),
        quality_score=0.8,
    )
    assert client.record(observation) is True
    assert client.flush() is False
    stats = client.close(timeout=0)
    assert (stats.assigned_default, stats.assigned_remote, stats.failed_attempts) == (3, 0, 1)
    assert (stats.dropped_at_close, stats.recorded, stats.queued) == (1, 0, 0)


def test_slow_api_times_out_to_the_default_profile(kanaria):
    _, transport = kanaria
    with LoopbackApi(transport) as api:
        api.stall.set()
        settings = ClientSettings(assign_timeout=0.05)
        client = KanariaClient.connect(
            api.url, "ap-northeast-1", credentials=CREDENTIALS, settings=settings, start=False
        )
        slow = client.assign(EXPERIMENT, "session-1", "chitchat")
        api.stall.clear()
        api.stall_released.set()
        assert (slow.variant, slow.reason, slow.config) == (None, FALLBACK_UNAVAILABLE, default_config("chitchat"))
        assert client.stats().assigned_default == 1


def test_outage_of_a_minute_then_every_observation_recorded_exactly_once(kanaria):
    tables, transport = kanaria
    flaky = FlakyTransport(transport)
    clock = ScenarioClock()
    settings = ClientSettings(batch_size=10, flush_interval=1.0, backoff_base=0.5, backoff_max=8.0)
    client = KanariaClient(flaky, settings=settings, start=False, clock=clock)
    assignments = [client.assign(EXPERIMENT, f"session-{i}", "chitchat") for i in range(35)]
    assert client.stats().assigned_remote == 35 and all(a.variant for a in assignments)
    flaky.mode = "down"
    outage_end = clock.now + 60
    for i, assignment in enumerate(assignments[:10]):  # a burst: one full batch, sent at once, refused
        assert client.observe(assignment, observation_id=f"obs-{i:03d}", latency_ms=400.0 + i, quality_score=0.7)
    assert client.deliver() is True
    for i, assignment in enumerate(assignments[10:], start=10):  # then a steady trickle through the outage
        assert client.observe(assignment, observation_id=f"obs-{i:03d}", latency_ms=400.0 + i, quality_score=0.7)
        clock.now += 0.5
        client.deliver()
        if clock.now > outage_end - 30:
            flaky.mode = "503"  # API Gateway is back, the function behind it is not
    while clock.now < outage_end:
        clock.now += 0.5
        client.deliver()
    during = client.stats()
    assert during.recorded == 0 and during.failed_attempts > 0 and during.queued == 35
    flaky.mode = "lose_answer"  # the first attempt after the outage lands but its answer is lost
    clock.now += settings.backoff_max
    assert client.deliver() is True
    flaky.mode = None
    for _ in range(200):
        if client.stats().queued == 0:
            break
        clock.now += 0.5
        client.deliver()
    stats = client.stats()
    assert stats.queued == 0 and stats.recorded + stats.duplicates == 35
    assert stats.duplicates == 10  # the batch whose answer was lost: resent, acknowledged as duplicates
    assert stats.retried >= 10 and stats.dropped == 0
    assert stored_ids(tables) == Counter({f"obs-{i:03d}": 1 for i in range(35)})
    assert counted(tables) == 35


def test_failing_batch_is_given_up_after_its_window_and_counted(kanaria):
    _, transport = kanaria
    flaky = FlakyTransport(transport)
    clock = ScenarioClock()
    settings = ClientSettings(give_up_after=120.0, backoff_max=10.0)
    client = KanariaClient(flaky, settings=settings, start=False, clock=clock)
    assignment = client.assign(EXPERIMENT, "session-9", "chitchat")
    flaky.mode = "down"
    assert client.observe(assignment, latency_ms=300.0)
    for _ in range(300):
        clock.now += 1
        client.deliver()
    stats = client.stats()
    assert (stats.dropped_expired, stats.queued, stats.recorded) == (1, 0, 0)
    assert stats.failed_attempts > 5  # retried with backoff for its whole window, then given up


def test_full_queue_drops_are_counted_and_never_block_the_request_thread(kanaria):
    tables, transport = kanaria
    assignments = [KanariaClient(transport, start=False).assign(EXPERIMENT, f"s-{i}", "chitchat") for i in range(52)]
    blocking = BlockingTransport(transport)
    client = KanariaClient(blocking, settings=ClientSettings(queue_size=5, batch_size=2, flush_interval=60))
    for assignment in assignments[:2]:
        assert client.observe(assignment, latency_ms=100.0)
    assert blocking.entered.wait(30)  # the worker holds those two in a request that does not come back
    accepted: list[bool] = []

    def request_thread() -> None:
        accepted.extend(client.observe(a, latency_ms=100.0) for a in assignments[2:])

    thread = threading.Thread(target=request_thread)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert accepted == [True] * 5 + [False] * 45
    assert client.stats().dropped_queue_full == 45
    blocking.release.set()
    stats = client.close(timeout=30)
    assert (stats.enqueued, stats.recorded, stats.dropped_queue_full, stats.queued) == (7, 7, 45, 0)
    assert sum(stored_ids(tables).values()) == 7


def test_shutdown_flushes_without_waiting_for_the_interval(kanaria):
    tables, transport = kanaria
    client = KanariaClient(transport, settings=ClientSettings(flush_interval=3600))
    with client:
        for i in range(3):
            client.observe(client.assign(EXPERIMENT, f"u-{i}", "recommendation"), csat=4)
    assert client.stats().recorded == 3 and sum(stored_ids(tables).values()) == 3


def test_followed_experiment_is_assigned_embedded_like_the_lambda(kanaria):
    _, transport = kanaria
    flaky = FlakyTransport(transport)
    client = KanariaClient(flaky, follow=[EXPERIMENT], start=False)
    remote = client.assign(EXPERIMENT, "session-40", "chitchat")
    client.deliver()  # the worker's step reads the followed experiment
    flaky.mode = "down"
    units = [f"session-{i}" for i in range(40, 80)]
    embedded = [client.assign(EXPERIMENT, unit, "chitchat") for unit in units]
    reference = EmbeddedClient([definition()])
    assert [a.variant for a in embedded] == [reference.assign(EXPERIMENT, u, "chitchat").variant for u in units]
    assert embedded[0].variant == remote.variant and embedded[0].config_hash == remote.config_hash
    stats = client.stats()
    assert (stats.assigned_remote, stats.assigned_embedded, stats.assigned_default) == (1, 40, 0)


def test_refusals_serve_defaults_without_cooling_down(kanaria):
    _, transport = kanaria
    flaky = FlakyTransport(transport)
    client = KanariaClient(flaky, start=False)
    unknown = client.assign("no-such-exp", "session-1", "chitchat")
    tab = client.assign(EXPERIMENT, "session\t1", "chitchat")
    assert (unknown.reason, tab.reason) == (FALLBACK_REFUSED, FALLBACK_REFUSED)
    assert [path for _, path, _ in flaky.calls] == ["/assign"]  # the bad unit never left the process
    assert client.assign(EXPERIMENT, "session-1", "chitchat").in_experiment is True
    assert client.observe(unknown, latency_ms=1.0) is False
    assert client.observe(client.assign(EXPERIMENT, "session-2", "chitchat"), latency_ms=-5.0) is False
    assert client.stats().invalid == 1


def test_item_refusals_are_counted_and_never_retried(kanaria):
    tables, transport = kanaria
    flaky = FlakyTransport(transport)
    client = KanariaClient(flaky, start=False)
    now = datetime.now(timezone.utc)
    good = client.assign(EXPERIMENT, "session-5", "chitchat")
    client.observe(good, observation_id="ok-1", latency_ms=10.0)
    stale = Observation(
        observation_id="stale-1",
        experiment_id=EXPERIMENT,
        variant_id="A",
        unit="session-6",
        timestamp=now - timedelta(days=40),
        latency_ms=10.0,
    )
    client.record(stale)
    assert client.flush() is True
    assert [path for _, path, _ in flaky.calls].count("/observations/batch") == 1
    stats = client.stats()
    assert (stats.recorded, stats.rejected, stats.retried, stats.queued) == (1, 1, 0, 0)
    assert stored_ids(tables) == Counter({"ok-1": 1})


def test_sigv4_signed_calls_over_loopback(kanaria):
    tables, transport = kanaria
    with LoopbackApi(transport) as api:
        settings = ClientSettings(assign_timeout=30)  # the emulated first call is slower than a warm Lambda
        client = KanariaClient.connect(api.url, "ap-northeast-1", credentials=CREDENTIALS, settings=settings)
        assignment = client.assign(EXPERIMENT, "session-77", "chitchat")
        assert assignment.in_experiment and assignment.variant in {"A", "B"}
        assert client.observe(assignment, observation_id="signed-1", latency_ms=250.0, quality_score=0.9)
        stats = client.close(timeout=30)
    assert (stats.assigned_remote, stats.recorded) == (1, 1)
    assert stored_ids(tables) == Counter({"signed-1": 1})
    assert {(m["key"], m["region"]) for m in api.signatures} == {("AKIDCHATBOT", "ap-northeast-1")}
    assert all("x-amz-date" in m["headers"].split(";") for m in api.signatures)
