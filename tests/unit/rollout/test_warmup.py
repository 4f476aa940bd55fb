"""The HTTP warm-up sender against a loopback server: counts, concurrency bound, deadline."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import boto3
import pytest
from moto import mock_aws

from kanaria.dal.warmup import HttpWarmupSender
from kanaria.domain.rollout_plan import Warmup
from kanaria.errors import ValidationError, validate


class Handler(BaseHTTPRequestHandler):
    seen: list[bytes] = []
    authorization: list[str | None] = []
    delay = 0.0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with Handler.lock:
            Handler.seen.append(body)
            Handler.authorization.append(self.headers.get("Authorization"))
            fail = b'"fail": true' in body and len(Handler.seen) % 2 == 0  # every second request fails
        time.sleep(Handler.delay)
        self.send_response(500 if fail else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen, Handler.authorization, Handler.delay = [], [], 0.0
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


SECRET = "Bearer warm-up-s3cr3t-0123"
PARAMETER = "/kanaria/warmup/chatbot-token"


def test_a_secret_header_is_read_from_its_ssm_securestring_and_sent(server: str, monkeypatch) -> None:
    # Given the header's value in an SSM SecureString under the deployment's warm-up path
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    with mock_aws():
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=SECRET, Type="SecureString")
        warmup = Warmup(url=server, requests=4, concurrency=2, secret_headers={"Authorization": PARAMETER})
        # When the warm-up is sent
        result = HttpWarmupSender("/kanaria/warmup/").send(warmup)
    # Then every request carried it, and neither the request nor the result holds the value
    assert result["succeeded"] == 4 and Handler.authorization == [SECRET] * 4
    assert SECRET not in warmup.model_dump_json() and SECRET not in json.dumps(result)


def test_a_parameter_outside_the_warm_up_path_is_refused_naming_the_header() -> None:
    warmup = Warmup(url="http://127.0.0.1:9/x", requests=1, secret_headers={"Authorization": "/other/db-password"})
    asked: list[str] = []
    with pytest.raises(ValidationError, match="not under /kanaria/warmup/") as caught:
        HttpWarmupSender("/kanaria/warmup/", resolve=lambda name: asked.append(name) or "x").send(warmup)
    assert caught.value.field == "warmup.secret_headers.Authorization" and asked == []
    with pytest.raises(ValidationError, match="no warm-up parameter prefix"):
        HttpWarmupSender(None).send(warmup)


def test_a_missing_parameter_is_refused_naming_the_header(monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    warmup = Warmup(url="http://127.0.0.1:9/x", requests=1, secret_headers={"X-Chatbot-Auth": PARAMETER + "-gone"})
    with mock_aws(), pytest.raises(ValidationError, match="ParameterNotFound") as caught:
        HttpWarmupSender("/kanaria/warmup/").send(warmup)
    assert caught.value.field == "warmup.secret_headers.X-Chatbot-Auth"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "opaque-4711"},
        {"cookie": "sid=4711"},
        {"X-Api-Key": "k-4711"},
        {"X-Auth-Token": "t-4711"},
        {"X-Client-Secret": "s-4711"},
        {"X-Trace": "Bearer abc"},
        {"X-Trace": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},
        {"X-Trace": "AKIAABCDEFGHIJKLMNOP"},
    ],
)
def test_literal_secret_looking_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="looks like a credential") as caught:
        validate(Warmup, {"url": "http://canary/x", "requests": 1, "headers": headers}, "warmup")
    assert caught.value.field == "warmup.headers" and list(headers.values())[0] not in str(caught.value)


def test_plain_headers_pass_and_a_header_is_given_once() -> None:
    ok = validate(Warmup, {"url": "http://canary/x", "requests": 1, "headers": {"X-Trace": "warm-up"}}, "warmup")
    assert ok.headers == {"X-Trace": "warm-up"}
    twice = {"headers": {"X-Trace": "1"}, "secret_headers": {"x-trace": PARAMETER}}
    with pytest.raises(ValidationError, match="also given in warmup.headers"):
        validate(Warmup, {"url": "http://canary/x", "requests": 1, **twice}, "warmup")
