"""The real Kanaria API handlers behind the chatbot client's transport seam: in process, flaky on demand, or on a
loopback HTTP server that checks the SigV4 signature's shape (the client's real SigV4Transport talks to it)."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kanaria.client.transport import HttpResponse, TransportError
from kanaria_tools.lambda_api import http_event
from tests.support.aws import FakeLambdaContext

CHATBOT = "arn:aws:iam::123456789012:role/chatbot"
SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/\d{8}/(?P<region>[a-z0-9-]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=[0-9a-f]{64}$"
)


class HandlerTransport:
    """Routes each request to the handler module that owns its path, as API Gateway would."""

    def __init__(self, assign: Any, experiments: Any, observations: Any):
        self._handlers = {"/assign": assign, "/experiments": experiments, "/observations": observations}
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> HttpResponse:
        self.requests.append((method, path))
        handler = next(h for prefix, h in self._handlers.items() if path.startswith(prefix))
        event = http_event(method, path, None, CHATBOT)
        event["body"] = body.decode("utf-8") if body is not None else None
        response = handler(event, FakeLambdaContext())
        return HttpResponse(int(response["statusCode"]), (response.get("body") or "").encode("utf-8"))


@dataclass
class FlakyTransport:
    """Wraps a transport; `mode` says how it fails now: None (healthy), "down" (no answer), "503" (API Gateway
    answers 503), "lose_answer" (the request reaches the handler, the answer is lost on the way back)."""

    inner: Any
    mode: str | None = None
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> HttpResponse:
        self.calls.append((method, path, self.mode))
        if self.mode == "down":
            raise TransportError("connection refused")
        if self.mode == "503":
            return HttpResponse(503, b'{"message":"Service Unavailable"}')
        response = self.inner.request(method, path, body, timeout)
        if self.mode == "lose_answer":
            raise TransportError("connection reset by peer")
        return response


class BlockingTransport:
    """Holds every request until released (a hung API); `entered` is set when the first request arrives."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> HttpResponse:
        self.entered.set()
        if not self.release.wait(60):
            raise TransportError("test transport never released")
        return self.inner.request(method, path, body, timeout)


class LoopbackApi:
    """A ThreadingHTTPServer on 127.0.0.1 that refuses unsigned requests and forwards signed ones to a
    transport; `stall` holds answers (a slow API) until cleared."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.stall = threading.Event()
        self.signatures: list[re.Match[str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                signature = SIGV4.match(self.headers.get("authorization") or "")
                if signature is None or not self.headers.get("x-amz-date"):
                    status, payload = 403, b'{"message":"Missing Authentication Token"}'
                else:
                    api.signatures.append(signature)
                    if api.stall.is_set():
                        api.stall_released.wait(30)
                    response = api.inner.request(self.command, self.path, body, 30)
                    status, payload = response.status, response.body
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (its timeout): what a slow API sees too

            do_GET = do_POST = _answer

        self.stall_released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = False  # server_close() joins the request threads (inside the moto mock)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "LoopbackApi":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stall_released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
