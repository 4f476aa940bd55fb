"""The HTTP warm-up sender against a loopback server: counts, concurrency bound, deadline."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from kanaria.dal.warmup import HttpWarmupSender
from kanaria.domain.rollout_plan import Warmup


class Handler(BaseHTTPRequestHandler):
    seen: list[bytes] = []
    delay = 0.0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with Handler.lock:
            Handler.seen.append(body)
            fail = b'"fail": true' in body and len(Handler.seen) % 2 == 0  # every second request fails
        time.sleep(Handler.delay)
        self.send_response(500 if fail else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen, Handler.delay = [], 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/chat"
    finally:
        httpd.shutdown()


def test_sends_every_request_and_counts_successes(server: str) -> None:
    result = HttpWarmupSender().send(Warmup(url=server, requests=20, concurrency=4))
    assert (result["sent"], result["succeeded"], result["failed"], result["failure_rate"]) == (20, 20, 0, 0.0)
    assert len(Handler.seen) == 20 and b'"synthetic": true' in Handler.seen[0]


def test_http_errors_are_failures(server: str) -> None:
    result = HttpWarmupSender().send(Warmup(url=server, requests=10, concurrency=2, body={"fail": True}))
    assert result["failed"] == 5 and result["failure_rate"] == 0.5


def test_what_the_deadline_leaves_unsent_fails(server: str) -> None:
    Handler.delay = 0.2
    result = HttpWarmupSender().send(Warmup(url=server, requests=50, concurrency=2, deadline_seconds=0.5))
    assert result["sent"] < 50 and result["failed"] >= 50 - result["sent"]


def test_an_unreachable_canary_fails_every_request() -> None:
    result = HttpWarmupSender().send(Warmup(url="http://127.0.0.1:9/chat", requests=3, timeout_seconds=0.5))
    assert result["failed"] == 3
