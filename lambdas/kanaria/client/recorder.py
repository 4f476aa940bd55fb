"""Observation recording off the chatbot's request path: a bounded queue, batches of up to the batch route's
limit, retries with backoff until the API answers, and counters of everything sent, resent and dropped.

A retry resends the same observations with the same `observation_id`s: the API records an id at most once
(conditional Put) and answers `duplicate` for one it already has, so an observation whose first attempt landed
but whose answer was lost is counted once, as a duplicate, never twice.

`deliver()` does one step and never sleeps; the client's worker thread calls it (tests call it with a clock of
their own, so a minute of outage takes no minute).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from kanaria.client.models import ClientSettings, ClientStats
from kanaria.client.transport import HttpResponse, Transport, TransportError
from kanaria.domain.observation import Observation

BATCH_PATH = "/observations/batch"
RETRYABLE_STATUSES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})  # 401/403: rotating credentials
RETRYABLE_ITEM_CODES = frozenset({"operational_error"})  # the item's write failed on the server side
DROP_LOG_EVERY = 1000  # queue-full drops are logged on the first and then every this many

logger = logging.getLogger("kanaria.client")


class Counters:
    """Thread-safe counters behind ClientStats (the request threads and the worker both count)."""

    # Where an enqueued observation ends: outstanding = enqueued - settled.
    SETTLED = frozenset({"recorded", "duplicates", "rejected", "dropped_expired", "dropped_at_close"})

    def __init__(self) -> None:
        self._settled = threading.Condition()
        self._values: dict[str, int] = dict.fromkeys(ClientStats.model_fields, 0)

    def add(self, name: str, amount: int = 1) -> int:
        """Add to one counter; its new value."""
        with self._settled:
            self._values[name] += amount
            if name in self.SETTLED:
                self._settled.notify_all()
            return self._values[name]

    def outstanding(self) -> int:
        """Enqueued observations not settled yet (queued, in flight or waiting for a retry)."""
        with self._settled:
            return self._outstanding()

    def wait_settled(self, timeout: float) -> bool:
        """Block until every enqueued observation is settled; False after `timeout` seconds."""
        with self._settled:
            return self._settled.wait_for(lambda: self._outstanding() == 0, timeout)

    def snapshot(self) -> ClientStats:
        """Typed copy of every counter."""
        with self._settled:
            return ClientStats(**{**self._values, "queued": self._outstanding()})

    def _outstanding(self) -> int:
        return self._values["enqueued"] - sum(self._values[name] for name in self.SETTLED)


@dataclass
class _Pending:
    """The batch being filled or retried, with its retry state."""

    observations: list[Observation]
    oldest: float  # when its first observation was enqueued
    failures: int = 0
    first_failure: float | None = None
    next_attempt: float = 0.0


class ObservationRecorder:
    """Queue observations without blocking and deliver them in batches (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        settings: ClientSettings,
        counters: Counters,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self._transport = transport
        self._settings = settings
        self._counters = counters
        self._clock = clock
        self._rng = rng or random.Random()
        self._queue: queue.Queue[tuple[float, Observation]] = queue.Queue(maxsize=settings.queue_size)
        self._pending: _Pending | None = None
        self.wake = threading.Event()  # set when a full batch is waiting: the worker sleeps on it

    def record(self, observation: Observation) -> bool:
        """Enqueue one observation; False (counted, logged) when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait((self._clock(), observation))
        except queue.Full:
            dropped = self._counters.add("dropped_queue_full")
            if dropped == 1 or dropped % DROP_LOG_EVERY == 0:
                logger.warning("kanaria observation queue full: %d observations dropped so far", dropped)
            return False
        self._counters.add("enqueued")
        if self._queue.qsize() >= self._settings.batch_size:
            self.wake.set()
        return True

    @property
    def queued(self) -> int:
        """Observations not yet settled (queue and the batch in flight)."""
        return self._queue.qsize() + (len(self._pending.observations) if self._pending else 0)

    def deliver(self, force: bool = False) -> bool:
        """Send the pending batch if it is due (full, or its oldest waited flush_interval, or `force`) and its
        retry delay has passed; True when a request was made."""
        self._fill()
        pending = self._pending
        if pending is None:
            return False
        now = self._clock()
        if now < pending.next_attempt:
            return False
        full = len(pending.observations) >= self._settings.batch_size
        if not (force or full or now - pending.oldest >= self._settings.flush_interval):
            return False
        self._send(pending, now)
        return True

    def wait_seconds(self) -> float:
        """How long the worker may sleep before the next deliver() can do anything."""
        settings = self._settings
        pending = self._pending
        if pending is None:
            return 0.0 if self._queue.qsize() else settings.flush_interval
        due = pending.next_attempt if pending.failures else pending.oldest + settings.flush_interval
        if not pending.failures and len(pending.observations) + self._queue.qsize() >= settings.batch_size:
            return 0.0
        return max(0.0, due - self._clock())

    def drop_all(self, counter: str) -> int:
        """Count every unsent observation under `counter` and forget it (close() ran out of time)."""
        lost = self.queued
        self._pending = None
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if lost:
            self._counters.add(counter, lost)
            logger.error("kanaria client closed with %d observations unsent", lost)
        return lost

    def _fill(self) -> None:
        size = self._settings.batch_size
        if self._pending is not None and (self._pending.failures or len(self._pending.observations) >= size):
            return  # a batch being retried is resent as it was: same items, same order
        while self._pending is None or len(self._pending.observations) < size:
            try:
                enqueued_at, observation = self._queue.get_nowait()
            except queue.Empty:
                break
            if self._pending is None:
                self._pending = _Pending([observation], enqueued_at)
            else:
                self._pending.observations.append(observation)

    def _send(self, pending: _Pending, now: float) -> None:
        if pending.failures:
            self._counters.add("retried", len(pending.observations))
        body = {"observations": [o.model_dump(mode="json", exclude_none=True) for o in pending.observations]}
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        try:
            response = self._transport.request("POST", BATCH_PATH, payload, self._settings.record_timeout)
        except TransportError as exc:
            self._failed(pending, now, str(exc))
            return
        if response.status == 200:
            self._settle(pending, now, response)
        elif response.status in RETRYABLE_STATUSES:
            self._failed(pending, now, f"HTTP {response.status}: {response.body[:200]!r}")
        else:
            self._counters.add("rejected", len(pending.observations))
            logger.error(
                "kanaria refused a batch of %d observations (HTTP %d): %r",
                len(pending.observations),
                response.status,
                response.body[:500],
            )
            self._pending = None

    def _settle(self, pending: _Pending, now: float, response: HttpResponse) -> None:
        try:
            results = _results(response, len(pending.observations))
        except ValueError as exc:
            self._failed(pending, now, f"unreadable answer: {exc}")
            return
        again: list[Observation] = []
        for observation, result in zip(pending.observations, results):
            if result.get("ok"):
                self._counters.add("duplicates" if result.get("duplicate") else "recorded")
                continue
            error = result.get("error") or {}
            if error.get("code") in RETRYABLE_ITEM_CODES:
                again.append(observation)
                continue
            self._counters.add("rejected")
            logger.warning(
                "kanaria rejected observation %s: %s (%s)",
                observation.observation_id,
                error.get("reason"),
                error.get("field"),
            )
        self._pending = None
        if again:
            retry = _Pending(again, pending.oldest, pending.failures, pending.first_failure)
            self._failed(retry, now, f"{len(again)} observations failed on the server")

    def _failed(self, pending: _Pending, now: float, why: str) -> None:
        self._counters.add("failed_attempts")
        pending.failures += 1
        if pending.first_failure is None:
            pending.first_failure = now
        if now - pending.first_failure >= self._settings.give_up_after:
            self._counters.add("dropped_expired", len(pending.observations))
            logger.error(
                "kanaria unreachable for %.0f s: dropping %d observations (%s)",
                now - pending.first_failure,
                len(pending.observations),
                why,
            )
            self._pending = None
            return
        ceiling = min(self._settings.backoff_max, self._settings.backoff_base * 2 ** (pending.failures - 1))
        delay = ceiling * (0.5 + self._rng.random() / 2)  # jitter: many chatbot tasks do not retry in step
        pending.next_attempt = now + delay
        self._pending = pending
        logger.warning(
            "kanaria batch of %d observations failed (attempt %d, retry in %.1f s): %s",
            len(pending.observations),
            pending.failures,
            delay,
            why,
        )


def _results(response: HttpResponse, expected: int) -> list[dict[str, Any]]:
    """The per-item results of a batch answer, one per observation sent, in order."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)[:200]) from None
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != expected or not all(isinstance(r, dict) for r in results):
        raise ValueError(f"expected {expected} results")
    return sorted(results, key=lambda r: r.get("index", 0))
