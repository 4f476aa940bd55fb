"""The Client overhead section on a loopback server: the batches it flushes are answered and counted, the table
has every contender, and the memory figure is the queued observations' own (no wall-clock asserts)."""

import json
import urllib.request

import pytest

from kanaria_tools.bench.client_overhead import LoopbackApi, measure, queue_and_flush, render


def test_the_loopback_api_answers_a_batch_with_one_result_per_item():
    # Given the loopback API, when a batch of three is posted, then each item gets an ok result in order.
    with LoopbackApi() as api:
        request = urllib.request.Request(
            f"{api.url}/observations/batch", data=json.dumps({"observations": [{}, {}, {}]}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    assert answer == {"results": [{"index": 0, "ok": True}, {"index": 1, "ok": True}, {"index": 2, "ok": True}]}


def test_every_queued_observation_is_flushed_in_batches_of_the_route_limit():
    # Given 250 observations queued by the client, when flushed to the loopback API: 3 batches, all recorded.
    with LoopbackApi() as api:
        q = queue_and_flush(api.url, 250)
    assert (q.observations, q.recorded, q.batches) == (250, 250, 3)
    assert 200 < q.bytes_per_observation < 20_000  # a typed Observation and its queue entry, not the whole client


def test_the_section_shows_every_contender_side_by_side():
    pytest.importorskip("growthbook", reason="bench-only dependency (requirements-bench.txt, installed by make bench)")
    rows, q = measure(50, 120)
    text = render(rows, q, 50)
    assert text.startswith("## Client overhead\n")
    for name in (
        "embedded `assign`",
        "GrowthBook",
        "`observe`",
        "`record`",
        "SigV4 signing alone",
        "bare SigV4-signed",
    ):
        assert name in text
    assert all(r.p50_us > 0 and r.p99_us >= r.p50_us for r in rows)
    assert "120 recorded" in text
