"""Warm-up: synthetic HTTP requests to the canary target before it gets live traffic."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from kanaria.domain.rollout_plan import Warmup


class HttpWarmupSender:
    """WarmupSender posting the warm-up body to the URL (2xx = success); what the deadline leaves unsent fails."""

    def send(self, warmup: Warmup) -> dict[str, Any]:
        """Send `warmup.requests` requests with bounded concurrency."""
        started = time.monotonic()
        deadline = started + warmup.deadline_seconds
        body = json.dumps(warmup.body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "kanaria-warmup", **warmup.headers}
        succeeded = sent = 0
        with ThreadPoolExecutor(max_workers=warmup.concurrency) as pool:
            pending: set[Any] = set()
            while sent < warmup.requests or pending:
                while sent < warmup.requests and len(pending) < warmup.concurrency and time.monotonic() < deadline:
                    pending.add(pool.submit(self._one, warmup.url, body, headers, warmup.timeout_seconds))
                    sent += 1
                if not pending:
                    break
                done, pending = wait(
                    pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED
                )
                succeeded += sum(1 for f in done if f.result())
                if time.monotonic() >= deadline and not done:
                    break
        failed = warmup.requests - succeeded
        return {
            "sent": sent,
            "succeeded": succeeded,
            "failed": failed,
            "failure_rate": failed / warmup.requests,
            "seconds": round(time.monotonic() - started, 3),
        }

    @staticmethod
    def _one(url: str, body: bytes, headers: dict[str, str], timeout: float) -> bool:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https/http only: validated)
                return 200 <= response.status < 300
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return False
