"""Bounded retries of transient AWS errors (throttling, 5xx, timeouts) with capped exponential backoff and full
jitter, for reads whose caller would rather wait a few seconds than fail its task."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

T = TypeVar("T")
# What a boto3 call raises: the service's answer, or no answer (connection refused, timeout, connection reset).
AWS_ERRORS = (ClientError, BotocoreConnectionError, HTTPClientError)

# Throttling codes across services (CloudWatch answers "Throttling") and the server-side transient ones.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InternalServiceError",
        "LimitExceededException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """A throttle, a 5xx or a connection/read timeout: worth another attempt, not the caller's fault."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in TRANSIENT_CODES or int(status) >= 500
    return isinstance(exc, (BotocoreConnectionError, HTTPClientError))


def single_attempt_client(service: str) -> Any:
    """A boto3 client that tries once with short timeouts: the retries are `Backoff`'s (bounded and visible)."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=5)
    return boto3.client(service, config=config)


@dataclass
class Backoff:
    """Call again while the error is transient, at most `max_attempts` times; the last error is re-raised."""

    # 3 attempts of at most 8 s (3 s connect + 5 s read) and 1.5 s of backoff: a look of a few reads stays
    # inside the 60 s Lambda timeout unless CloudWatch is down outright.
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0  # transient errors retried so far (for logs and tests)

    def call(self, fn: Callable[[], T]) -> T:
        """fn(), retried on transient errors."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except AWS_ERRORS as exc:
                if not is_transient(exc) or attempt == self.max_attempts:
                    raise
                self.retries += 1
                self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1))))
        raise AssertionError("unreachable")
