"""How the chatbot client reaches the Kanaria HTTP API: SigV4-signed HTTPS over urllib3 (botocore's own stack).

The transport is the client's only network seam: tests put the real handlers behind it (in process or on a
loopback server), and a chatbot that already holds an HTTP pool can bring its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

SERVICE = "execute-api"  # the signing name of API Gateway (HTTP APIs included)


class TransportError(Exception):
    """The request did not get an HTTP answer: connection refused or reset, DNS, TLS, timeout."""


@dataclass(frozen=True)
class HttpResponse:
    """Status and raw body of one HTTP answer."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


class Transport(Protocol):
    """Send one request to the Kanaria API within `timeout` seconds, or raise TransportError."""

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> HttpResponse: ...


class SigV4Transport:
    """Requests to the HTTP API (an `ApiUrl` stack output) signed with the caller's IAM credentials.

    Credentials come from botocore's chain (environment, profile, container or instance role) and are re-read
    before each request, so rotated role credentials are picked up. Never retries by itself: the recorder
    decides what is retried, with the same idempotency keys.
    """

    def __init__(
        self,
        api_url: str,
        region: str,
        *,
        credentials: Any | None = None,
        max_connections: int = 4,
    ):
        import urllib3
        from botocore.session import Session

        parts = urlsplit(api_url)
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            raise ValueError(f"api_url must be an http(s) URL, got {api_url!r}")
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._region = region
        self._credentials = credentials if credentials is not None else Session().get_credentials()
        if self._credentials is None:
            raise ValueError("no AWS credentials found for signing (environment, profile or role)")
        self._pool = urllib3.PoolManager(maxsize=max_connections, retries=False)

    def request(self, method: str, path: str, body: bytes | None, timeout: float) -> HttpResponse:
        """One signed request; TransportError when no HTTP answer came back in time."""
        import urllib3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        url = self._base + path
        headers = {"content-type": "application/json"} if body is not None else {}
        signed = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        try:
            frozen = self._credentials.get_frozen_credentials()
            SigV4Auth(frozen, SERVICE, self._region).add_auth(signed)
        except BotoCoreError as exc:  # credential refresh failed (metadata endpoint down, expired SSO)
            raise TransportError(f"cannot sign the request: {exc}") from exc
        try:
            response = self._pool.request(
                method,
                url,
                body=body,
                headers=dict(signed.headers.items()),
                timeout=urllib3.Timeout(total=timeout),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        return HttpResponse(response.status, response.data)

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()
