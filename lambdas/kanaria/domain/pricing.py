"""Versioned Bedrock on-demand price table (USD per 1K tokens) and the cost of one model call.

Prices are the us-east-1 on-demand list prices for text generation, without prompt caching or batch discounts.
Regions, extended-access pricing of older models and later price changes differ: change a price only by adding
a new table version, so every recorded observation keeps the version its cost was computed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

PRICE_TABLE_VERSION = "bedrock-us-east-1-2025-01"
COST_DECIMALS = 9  # nano-dollars: the cheapest input token listed here costs 250 of them
_COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMALS)
_THOUSAND = Decimal(1000)

# Cross-region inference profiles ("us.anthropic...") are billed at the foundation model's price.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "jp.", "au.", "us-gov.", "global.")


@dataclass(frozen=True)
class ModelPrice:
    """Price of one model: USD per 1K input and per 1K output tokens."""

    input_per_1k: Decimal
    output_per_1k: Decimal


def _price(input_per_1k: str, output_per_1k: str) -> ModelPrice:
    return ModelPrice(Decimal(input_per_1k), Decimal(output_per_1k))


PRICES: dict[str, ModelPrice] = {
    "anthropic.claude-3-haiku-20240307-v1:0": _price("0.00025", "0.00125"),
    "anthropic.claude-3-sonnet-20240229-v1:0": _price("0.003", "0.015"),
    "anthropic.claude-3-opus-20240229-v1:0": _price("0.015", "0.075"),
    "anthropic.claude-3-5-haiku-20241022-v1:0": _price("0.0008", "0.004"),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": _price("0.003", "0.015"),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": _price("0.003", "0.015"),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": _price("0.003", "0.015"),
}


def base_model_id(model_id: str) -> str:
    """Foundation model id of a model id, inference profile id or ARN (the part the price table is keyed by)."""
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    for prefix in _PROFILE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def price_for(model_id: str) -> ModelPrice | None:
    """The model's price in the current table, or None when the table has no price for it."""
    return PRICES.get(base_model_id(model_id))


def call_cost(price: ModelPrice, input_tokens: int, output_tokens: int) -> Decimal:
    """USD cost of one call, rounded half-even to COST_DECIMALS places."""
    raw = (Decimal(input_tokens) * price.input_per_1k + Decimal(output_tokens) * price.output_per_1k) / _THOUSAND
    cost = raw.quantize(_COST_QUANTUM)
    return cost if cost else Decimal(0)  # 0, not 0E-12


# SageMaker endpoints (model ids "sagemaker:<endpoint name>") are priced by endpoint name: each entry declares how
# the endpoint is billed. Per token: a serverless or inference-component endpoint charged back per token. Per
# instance-hour (real-time endpoints on instances): a call costs the instance time it occupied, its latency over the
# number of requests one instance serves at once; idle capacity (the instances' hours no call used) is not in it.
ENDPOINT_PRICE_TABLE_VERSION = "sagemaker-us-east-1-2025-01"
_SECONDS_PER_HOUR = Decimal(3600)


class EndpointBilling(str, Enum):
    """How a SageMaker endpoint is billed."""

    PER_TOKEN = "per_token"
    PER_INSTANCE_HOUR = "per_instance_hour"


@dataclass(frozen=True)
class EndpointPrice:
    """One endpoint's declared price: `per_token` (USD per 1K input/output tokens) or `per_instance_hour` (USD per
    instance-hour of `instance_type`, shared by the `concurrent_requests` calls one instance serves at once)."""

    billing: EndpointBilling
    token_price: ModelPrice | None = None
    instance_type: str = ""
    usd_per_instance_hour: Decimal = Decimal(0)
    concurrent_requests: int = 1

    def __post_init__(self) -> None:
        if self.billing is EndpointBilling.PER_TOKEN and self.token_price is None:
            raise ValueError("token_price: required for per_token billing")
        if self.billing is EndpointBilling.PER_INSTANCE_HOUR and self.usd_per_instance_hour <= 0:
            raise ValueError("usd_per_instance_hour: must be positive for per_instance_hour billing")
        if self.concurrent_requests < 1:
            raise ValueError("concurrent_requests: must be at least 1")


ENDPOINT_PRICES: dict[str, EndpointPrice] = {
    # "Model D", the fine-tuned model of the evaluation design: one ml.g5.2xlarge real-time instance
    # (us-east-1 on-demand list price), serving one request at a time.
    "kanaria-manga-ft": EndpointPrice(
        EndpointBilling.PER_INSTANCE_HOUR, instance_type="ml.g5.2xlarge", usd_per_instance_hour=Decimal("1.515")
    ),
}


def endpoint_price_for(endpoint: str) -> EndpointPrice | None:
    """The endpoint's declared price, or None when the table has none for it."""
    return ENDPOINT_PRICES.get(endpoint)


def endpoint_call_cost(price: EndpointPrice, input_tokens: int, output_tokens: int, latency_ms: float) -> Decimal:
    """USD cost of one endpoint call by its billing, rounded half-even to COST_DECIMALS places."""
    if price.billing is EndpointBilling.PER_TOKEN:
        assert price.token_price is not None  # checked at construction
        return call_cost(price.token_price, input_tokens, output_tokens)
    seconds = Decimal(str(latency_ms)) / _THOUSAND
    raw = price.usd_per_instance_hour * seconds / _SECONDS_PER_HOUR / price.concurrent_requests
    cost = raw.quantize(_COST_QUANTUM)
    return cost if cost else Decimal(0)
