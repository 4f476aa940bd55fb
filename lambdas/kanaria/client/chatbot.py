"""The chatbot's Kanaria client: assign and record on the request path without ever hurting it.

    client = KanariaClient.connect(api_url, region)          # ApiUrl / Region stack outputs
    assignment = client.assign("exp-haiku", session_id, "chitchat")
    ... call Bedrock with assignment.config ...
    client.observe(assignment, latency_ms=812.0, quality_score=0.83)
    client.close()                                           # at shutdown: flushes what is queued

assign() answers from cached experiment definitions when it has them, from POST /assign otherwise, and from
the intent's default profile when Kanaria is slow, down or refuses (reason says which). record()/observe()
only enqueue; one worker thread sends batches, retries and refreshes the cache. Nothing raises into the
request path; what could not be done is counted in stats() and logged on the `kanaria.client` logger.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Literal, Mapping

from pydantic import ValidationError as PydanticValidationError

from kanaria.client.assigner import Assigner, CachedExperiment
from kanaria.client.models import ClientSettings, ClientStats
from kanaria.client.recorder import Counters, ObservationRecorder
from kanaria.client.transport import SigV4Transport, Transport
from kanaria.domain.assignment import Assignment
from kanaria.domain.experiment import Experiment, parse_experiment
from kanaria.domain.observation import Observation
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile

logger = logging.getLogger("kanaria.client")


class KanariaClient:
    """Fail-open assignment and background observation recording against one Kanaria deployment."""

    def __init__(
        self,
        transport: Transport,
        *,
        settings: ClientSettings | None = None,
        profiles: Mapping[str, IntentProfile] | None = None,
        experiments: Iterable[Experiment | Mapping[str, Any]] = (),
        follow: Iterable[str] = (),
        start: bool = True,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        """`experiments`: definitions assigned locally as running; `follow`: ids read from the API by the
        worker and assigned locally once read; `start=False`: no worker thread (call deliver() yourself)."""
        self.settings = settings or ClientSettings()
        self._transport = transport
        self._clock = clock
        self._counters = Counters()
        self._recorder = ObservationRecorder(transport, self.settings, self._counters, clock, rng)
        self._assigner = Assigner(transport, self.settings, self._counters, profiles or DEFAULT_PROFILES, clock)
        for definition in experiments:
            experiment = definition if isinstance(definition, Experiment) else parse_experiment(dict(definition))
            self._assigner.cache(CachedExperiment(experiment))
        for experiment_id in follow:
            self._assigner.follow(experiment_id)
        self._flush_requested = threading.Event()
        self._closing = threading.Event()
        self._close_deadline = float("inf")
        self._worker: threading.Thread | None = None
        if start:
            self._worker = threading.Thread(target=self._run, name="kanaria-client", daemon=True)
            self._worker.start()
            atexit.register(self.close)

    @classmethod
    def connect(cls, api_url: str, region: str, *, credentials: Any | None = None, **options: Any) -> "KanariaClient":
        """Client of a deployed Kanaria: SigV4-signed calls to its HTTP API (`ApiUrl` and `Region` outputs)."""
        return cls(SigV4Transport(api_url, region, credentials=credentials), **options)

    def assign(self, experiment_id: str, unit: str, intent: str | None = None) -> Assignment:
        """Variant and model configuration for a unit; never raises (the intent's default profile instead)."""
        return self._assigner.assign(experiment_id, unit, intent)

    def record(self, observation: Observation) -> bool:
        """Queue one observation for the batch route; False when it was dropped (queue full, counted)."""
        return self._recorder.record(observation)

    def observe(
        self,
        assignment: Assignment,
        *,
        observation_id: str | None = None,
        timestamp: datetime | None = None,
        target: Literal["canary", "primary"] | None = None,
        **metrics: Any,
    ) -> bool:
        """Queue the outcome of a response served with `assignment` (metrics: the Observation fields, e.g.
        latency_ms, quality_score, error); False when nothing was queued: the unit is in no experiment, the
        metrics are invalid (counted as invalid) or the queue is full (counted)."""
        if assignment.variant is None:
            return False
        try:
            observation = Observation(
                observation_id=observation_id or uuid.uuid4().hex,
                experiment_id=assignment.experiment_id,
                variant_id=assignment.variant,
                unit=assignment.unit,
                intent=assignment.intent,
                timestamp=timestamp or datetime.now(timezone.utc),
                target=target,
                **metrics,
            )
        except PydanticValidationError as exc:
            self._counters.add("invalid")
            logger.warning("kanaria observation refused locally: %s", exc.errors()[0].get("msg"))
            return False
        return self._recorder.record(observation)

    def stats(self) -> ClientStats:
        """Counters since start: assignments by source, observations recorded, retried and dropped."""
        return self._counters.snapshot()

    def deliver(self, force: bool = False) -> bool:
        """One delivery step (what the worker does); for a client built with start=False."""
        self._assigner.refresh_due()
        return self._recorder.deliver(force)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued now; True when nothing is left unsent within `timeout` seconds."""
        if self._worker is None:
            while self._recorder.queued and self._recorder.deliver(force=True):
                pass
            return self._recorder.queued == 0
        self._flush_requested.set()
        self._recorder.wake.set()
        done = self._counters.wait_settled(timeout)
        self._flush_requested.clear()
        return done

    def close(self, timeout: float = 5.0) -> ClientStats:
        """Flush for at most `timeout` seconds, count what is still unsent as dropped_at_close, stop the worker."""
        if self._worker is None:
            self.flush(timeout)
            self._recorder.drop_all("dropped_at_close")
        elif not self._closing.is_set():
            self._close_deadline = self._clock() + timeout
            self._closing.set()
            self._recorder.wake.set()
            self._worker.join(timeout + self.settings.record_timeout)
            atexit.unregister(self.close)
        return self.stats()

    def __enter__(self) -> "KanariaClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self) -> None:
        recorder = self._recorder
        while True:
            recorder.wake.clear()
            closing = self._closing.is_set()
            if not closing:
                self._assigner.refresh_due()
            sent = recorder.deliver(force=closing or self._flush_requested.is_set())
            if closing and recorder.queued == 0:
                return
            if closing and self._clock() >= self._close_deadline:
                recorder.drop_all("dropped_at_close")
                return
            if not sent:
                wait = min(recorder.wait_seconds(), self._assigner.refresh_wait(), self.settings.flush_interval)
                if closing:
                    wait = min(wait, max(0.0, self._close_deadline - self._clock()))
                recorder.wake.wait(wait)
