"""ALB listener access for rollouts: default actions and rules, with backoff when ELB throttles."""

from __future__ import annotations

import random
import time
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kanaria.errors import OperationalError

# ELB answers "Throttling" (HTTP 400) when the account's API rate is exceeded; 5xx-ish codes are transient too.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)
MAX_ATTEMPTS = 8
BASE_DELAY = 0.25
MAX_DELAY = 4.0


def elbv2_client() -> Any:
    """ELBv2 client whose retries are ours (so throttling backoff is bounded and visible)."""
    return boto3.client("elbv2", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


class ElbListenerGateway:
    """ListenerGateway on ELBv2, retrying throttled calls with capped exponential backoff and full jitter."""

    def __init__(
        self,
        client: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
    ):
        self._client = client or elbv2_client()
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self.retries = 0  # throttled calls retried by this gateway (for logs and tests)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return getattr(self._client, operation)(**kwargs)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code not in RETRYABLE_CODES:
                    raise
                if attempt == self._max_attempts:
                    raise OperationalError(
                        f"ELB {operation} still failing with {code} after {attempt} attempts", field="listener"
                    ) from exc
                self.retries += 1
                self._sleep(random.uniform(0, min(self._max_delay, self._base_delay * 2 ** (attempt - 1))))
        raise AssertionError("unreachable")

    def default_actions(self, listener_arn: str) -> list[dict[str, Any]]:
        """The listener's default actions as ELB reports them."""
        listeners = self._call("describe_listeners", ListenerArns=[listener_arn])["Listeners"]
        if not listeners:
            raise OperationalError(f"listener {listener_arn} not found", field="listener")
        return listeners[0]["DefaultActions"]

    def set_default_actions(self, listener_arn: str, actions: list[dict[str, Any]]) -> None:
        """ModifyListener with new default actions (one call: weights and stickiness change together)."""
        self._call("modify_listener", ListenerArn=listener_arn, DefaultActions=actions)

    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        """The listener's non-default rules."""
        rules: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ListenerArn": listener_arn}
        while True:
            page = self._call("describe_rules", **kwargs)
            rules.extend(r for r in page.get("Rules", []) if not r.get("IsDefault"))
            if not page.get("NextMarker"):
                return rules
            kwargs["Marker"] = page["NextMarker"]

    def set_rule_actions(self, rule_arn: str, actions: list[dict[str, Any]]) -> None:
        """ModifyRule with new actions."""
        self._call("modify_rule", RuleArn=rule_arn, Actions=actions)
