"""Model calls through the bedrock-runtime Converse API with exponential backoff on throttling.

`ModelInvoker` picks the runtime by model id: "offline:<model id>" goes to the offline adapter it was given (the local
tooling's kanaria_tools.offline_model; the deployed runner has none), "sagemaker:<endpoint name>" to the SageMaker
endpoint adapter (kanaria.evaluation.sagemaker, botocore's own retries), anything else to a boto3 bedrock-runtime
client. Offline and Bedrock calls share one code path (request, retries, usage, latency).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from botocore.exceptions import ClientError

from kanaria.errors import OperationalError
from kanaria.evaluation.calls import ModelResponse, ThrottledError
from kanaria.evaluation.configs import OFFLINE_PREFIX, is_offline, is_sagemaker
from kanaria.evaluation.sagemaker import EndpointRuntime, SageMakerAdapter, new_sagemaker_client

__all__ = ["ModelInvoker", "ModelResponse", "RetryPolicy", "ThrottledError", "priced_model_id"]

# Bedrock runtime errors worth retrying with backoff (429/503 family).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
    }
)


class ConverseRuntime(Protocol):
    """What the invoker needs of a bedrock-runtime client (boto3 or the offline adapter)."""

    def converse(self, **request: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n waits up to min(cap, base * 2**(n-1)) seconds (full jitter when `jitter`)."""

    max_attempts: int = 6
    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling) if self.jitter else ceiling


def priced_model_id(model_id: str) -> str:
    """The model id the price table knows: an offline adapter model is priced as the model it imitates."""
    return model_id.removeprefix(OFFLINE_PREFIX)


def _text(response: dict[str, Any]) -> str:
    content = response.get("output", {}).get("message", {}).get("content", [])
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


def new_bedrock_client(region: str | None = None) -> Any:
    """boto3 bedrock-runtime client with botocore's own retries off (the invoker retries, and counts)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        region_name=region,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


class ModelInvoker:
    """Calls Converse on the runtime for the model id, retrying throttling with exponential backoff."""

    def __init__(
        self,
        *,
        bedrock: ConverseRuntime | None = None,
        bedrock_factory: Callable[[], ConverseRuntime] = new_bedrock_client,
        offline: ConverseRuntime | None = None,
        sagemaker: EndpointRuntime | None = None,
        sagemaker_factory: Callable[[int], EndpointRuntime] = new_sagemaker_client,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
        seed: int | None = None,
    ):
        self._bedrock_client = bedrock
        self._bedrock_factory = bedrock_factory
        self._offline = offline
        self._sagemaker = SageMakerAdapter(sagemaker, clock) if sagemaker is not None else None
        self._sagemaker_factory = sagemaker_factory
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def runtime_for(self, model_id: str) -> ConverseRuntime:
        """The offline adapter for "offline:" model ids, else the bedrock-runtime client (created once)."""
        if is_offline(model_id):
            if self._offline is None:
                raise OperationalError(
                    f"{model_id!r} needs the offline adapter, which only the local tooling has (kanaria evaluate, "
                    "the rehearsal)",
                    field="model_id",
                )
            return self._offline
        with self._lock:
            if self._bedrock_client is None:
                self._bedrock_client = self._bedrock_factory()
            return self._bedrock_client

    def endpoint_adapter(self) -> SageMakerAdapter:
        """The SageMaker adapter (its client created once, retrying as many attempts as the policy)."""
        with self._lock:
            if self._sagemaker is None:
                self._sagemaker = SageMakerAdapter(self._sagemaker_factory(self._retry.max_attempts), self._clock)
            return self._sagemaker

    def converse(self, request: dict[str, Any]) -> ModelResponse:
        """One Converse call; throttling retried per the policy (ThrottledError when exhausted), other client
        errors raised as OperationalError naming the model. "sagemaker:" model ids go to the endpoint adapter."""
        if is_sagemaker(request["modelId"]):
            return self.endpoint_adapter().converse(request)
        runtime = self.runtime_for(request["modelId"])
        throttles = 0
        for attempt in range(1, self._retry.max_attempts + 1):
            started = self._clock()
            try:
                response = runtime.converse(**request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE_CODES:
                    raise OperationalError(
                        f"{code or 'error'} from {request['modelId']}: "
                        f"{exc.response.get('Error', {}).get('Message', exc)}",
                        field="model_id",
                    ) from exc
                throttles += 1
                if attempt == self._retry.max_attempts:
                    raise ThrottledError(
                        f"{code} from {request['modelId']} on all {attempt} attempts", attempts=attempt
                    ) from exc
                with self._lock:
                    delay = self._retry.delay(attempt, self._rng)
                self._sleep(delay)
                continue
            elapsed_ms = (self._clock() - started) * 1000.0
            usage = response.get("usage", {})
            # Bedrock's own measurement when present (the offline adapter reports its simulated latency there).
            latency = response.get("metrics", {}).get("latencyMs", elapsed_ms)
            return ModelResponse(
                text=_text(response),
                input_tokens=int(usage.get("inputTokens", 0)),
                output_tokens=int(usage.get("outputTokens", 0)),
                latency_ms=float(latency),
                stop_reason=str(response.get("stopReason", "")),
                attempts=attempt,
                throttles=throttles,
            )
        raise AssertionError("unreachable")  # pragma: no cover
