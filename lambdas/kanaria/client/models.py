"""What the chatbot client is tuned with and what it reports (typed; the wire format stays the API's JSON)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

BATCH_LIMIT = 100  # the batch route's limit (ObservationBatchRequest.observations max_length)

# Why an assignment came from the intent's default profile instead of the experiment.
FALLBACK_UNAVAILABLE = "kanaria_unavailable"  # no answer in time, 5xx, throttled, or a recent failure (cooling down)
FALLBACK_REFUSED = "kanaria_refused"  # the API answered 4xx: unknown experiment, not running, bad unit


class ClientSettings(BaseModel):
    """Timeouts, batching and retry policy of the chatbot client; the defaults suit a chatbot request path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign_timeout: float = Field(default=0.25, gt=0, description="seconds a remote /assign may take")
    assign_cooldown: float = Field(
        default=30.0, ge=0, description="seconds remote assignment is skipped after a failure (defaults served)"
    )
    record_timeout: float = Field(default=5.0, gt=0, description="seconds one batch POST may take")
    batch_size: int = Field(default=BATCH_LIMIT, ge=1, le=BATCH_LIMIT)
    flush_interval: float = Field(default=1.0, gt=0, description="longest an observation waits for a fuller batch")
    queue_size: int = Field(default=10_000, ge=1, description="observations held before new ones are dropped")
    backoff_base: float = Field(default=0.5, gt=0, description="first retry delay, doubled per failed attempt")
    backoff_max: float = Field(default=30.0, gt=0)
    give_up_after: float = Field(
        default=900.0, gt=0, description="seconds a failing batch is retried before it is dropped (counted)"
    )
    refresh_interval: float = Field(default=30.0, gt=0, description="how often cached experiments are re-read")


class ClientStats(BaseModel):
    """Counters of one client since it started: what was served, recorded, retried and dropped."""

    model_config = ConfigDict(frozen=True)

    assigned_embedded: int = 0
    assigned_remote: int = 0
    assigned_default: int = Field(default=0, description="fail-open answers: the intent's default profile")
    enqueued: int = 0
    recorded: int = Field(default=0, description="observations the API recorded for the first time")
    duplicates: int = Field(default=0, description="resent observations the API had already recorded (once)")
    rejected: int = Field(default=0, description="observations the API refused (4xx): never retried")
    invalid: int = Field(default=0, description="observations refused locally (schema): never sent")
    retried: int = Field(default=0, description="observations sent again after a failed attempt")
    failed_attempts: int = Field(default=0, description="batch requests that got no usable answer")
    dropped_queue_full: int = 0
    dropped_expired: int = Field(default=0, description="observations given up after give_up_after seconds")
    dropped_at_close: int = Field(default=0, description="observations still unsent when close() timed out")
    queued: int = Field(default=0, description="observations waiting now (queue and batch in flight)")

    @property
    def dropped(self) -> int:
        """Every observation that will never be recorded, whatever the reason."""
        return self.dropped_queue_full + self.dropped_expired + self.dropped_at_close + self.rejected + self.invalid
