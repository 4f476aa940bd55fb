"""Warm-up: synthetic HTTP requests to the canary target before it gets live traffic. Secret headers are SSM
SecureString parameters named in the request (under the deployment's warm-up prefix, the only parameters its role
may read), resolved here with Powertools Parameters: their values exist only in this sender's requests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable

from kanaria.domain.rollout_plan import Warmup
from kanaria.errors import OperationalError, ValidationError

SECRET_MAX_AGE_SECONDS = 300


def ssm_secure_string(name: str) -> str:
    """The decrypted value of an SSM SecureString (Powertools Parameters, cached for 5 minutes)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(value, str):
        raise OperationalError(f"SSM parameter {name} is not a string", field="warmup.secret_headers")
    return value


class HttpWarmupSender:
    """WarmupSender posting the warm-up body to the URL (2xx = success); what the deadline leaves unsent fails."""

    def __init__(self, parameter_prefix: str | None = None, resolve: Callable[[str], str] = ssm_secure_string):
        self._prefix = parameter_prefix
        self._resolve = resolve

    def secret_headers(self, warmup: Warmup) -> dict[str, str]:
        """The secret headers' values, each from its parameter (which must be under the deployment's prefix)."""
        resolved = {}
        for header, name in warmup.secret_headers.items():
            field = f"warmup.secret_headers.{header}"
            if self._prefix is None or not name.startswith(self._prefix):
                where = f"under {self._prefix}" if self._prefix else "configured (no warm-up parameter prefix)"
                raise ValidationError(f"{name} is not a warm-up parameter of this deployment: not {where}", field=field)
            from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

            try:
                resolved[header] = self._resolve(name)
            except GetParameterError as exc:
                # The message names the parameter and the AWS error, never a value.
                raise ValidationError(f"SSM parameter {name} could not be read: {exc}", field=field) from None
        return resolved

    def send(self, warmup: Warmup) -> dict[str, Any]:
        """Send `warmup.requests` requests with bounded concurrency."""
        secret = self.secret_headers(warmup)
        started = time.monotonic()
        deadline = started + warmup.deadline_seconds
        body = json.dumps(warmup.body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "kanaria-warmup", **warmup.headers, **secret}
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
