"""Fail-open assignment: embedded for cached experiments, remote /assign otherwise, the intent's default
profile whenever Kanaria cannot answer in time (never an exception into the chatbot's request path)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote

from pydantic import ValidationError as PydanticValidationError

from kanaria.client.models import FALLBACK_REFUSED, FALLBACK_UNAVAILABLE, ClientSettings
from kanaria.client.recorder import RETRYABLE_STATUSES, Counters
from kanaria.client.transport import HttpResponse, Transport, TransportError
from kanaria.domain.assignment import Assignment, ConfigResolver, assign
from kanaria.domain.experiment import INTENT_PATTERN, UNIT_PATTERN, Experiment, Status, parse_experiment
from kanaria.domain.profiles import IntentProfile, bedrock_config, config_hash, profile_for, resolve
from kanaria.errors import KanariaError

logger = logging.getLogger("kanaria.client")
_UNIT = re.compile(UNIT_PATTERN)
_INTENT = re.compile(INTENT_PATTERN)


@dataclass(frozen=True)
class CachedExperiment:
    """What embedded assignment needs of a stored experiment: its definition and its mutable state."""

    experiment: Experiment
    running: bool = True
    weights: Mapping[str, float] | None = None
    stopped: Mapping[str, str] | None = None

    @classmethod
    def from_record(cls, document: Mapping[str, Any]) -> "CachedExperiment":
        """From the GET /experiments/{id} answer (ExperimentRecord.to_dict())."""
        return cls(
            parse_experiment(dict(document["experiment"])),
            running=document.get("status") == Status.RUNNING.value,
            weights=dict(document.get("weights") or {}) or None,
            stopped=dict(document.get("stopped_variants") or {}),
        )


class Assigner:
    """Answers assign() in the chatbot's thread; refreshes its cached experiments from the worker thread."""

    def __init__(
        self,
        transport: Transport,
        settings: ClientSettings,
        counters: Counters,
        profiles: Mapping[str, IntentProfile],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._transport = transport
        self._settings = settings
        self._counters = counters
        self._profiles = dict(profiles)
        self._clock = clock
        self._cache: dict[str, tuple[CachedExperiment, ConfigResolver]] = {}
        self._followed: dict[str, float] = {}  # experiment id -> when it is next re-read
        self._cooldown_until = float("-inf")
        self._defaults: dict[str | None, tuple[dict[str, Any], str]] = {}
        self._lock = threading.Lock()

    def cache(self, cached: CachedExperiment) -> None:
        """Assign this experiment locally from now on."""
        with self._lock:
            self._cache = {**self._cache, cached.experiment.id: (cached, ConfigResolver(cached.experiment))}

    def follow(self, experiment_id: str) -> None:
        """Read this experiment from the API (worker thread) and assign it locally once read."""
        self._followed.setdefault(experiment_id, float("-inf"))

    def assign(self, experiment_id: str, unit: str, intent: str | None) -> Assignment:
        """Variant and configuration; the intent's default profile when Kanaria cannot say."""
        if not _UNIT.match(unit) or (intent is not None and not _INTENT.match(intent)):
            logger.warning("kanaria assign: unit or intent refused (%r, %r)", unit[:64], (intent or "")[:64])
            return self.default(experiment_id, unit, intent, FALLBACK_REFUSED)
        hit = self._cache.get(experiment_id)
        if hit is not None:
            return self._embedded(hit, unit, intent)
        return self._remote(experiment_id, unit, intent)

    def default(self, experiment_id: str, unit: str, intent: str | None, reason: str) -> Assignment:
        """The intent's default profile, outside any experiment (counted)."""
        self._counters.add("assigned_default")
        resolved = self._defaults.get(intent)
        if resolved is None:
            config = bedrock_config(resolve(profile_for(intent, self._profiles), None))
            resolved = self._defaults.setdefault(intent, (config, config_hash(config)))
        return Assignment(experiment_id, unit, intent, None, False, reason, resolved[0], resolved[1])

    def refresh_due(self) -> None:
        """Re-read every followed experiment whose refresh time has come (worker thread only)."""
        now = self._clock()
        for experiment_id, due in list(self._followed.items()):
            if now >= due:
                self._followed[experiment_id] = now + self._settings.refresh_interval
                self._refresh(experiment_id)

    def refresh_wait(self) -> float:
        """Seconds until the next followed experiment is due (inf when none is followed)."""
        if not self._followed:
            return float("inf")
        return max(0.0, min(self._followed.values()) - self._clock())

    def _embedded(self, hit: tuple[CachedExperiment, ConfigResolver], unit: str, intent: str | None) -> Assignment:
        cached, resolver = hit
        if not cached.running:
            return self.default(cached.experiment.id, unit, intent, FALLBACK_REFUSED)
        self._counters.add("assigned_embedded")
        return assign(
            cached.experiment,
            unit,
            intent,
            self._profiles,
            weights=cached.weights,
            stopped=cached.stopped,
            configure=resolver,
        )

    def _remote(self, experiment_id: str, unit: str, intent: str | None) -> Assignment:
        if self._clock() < self._cooldown_until:
            return self.default(experiment_id, unit, intent, FALLBACK_UNAVAILABLE)
        body: dict[str, Any] = {"experiment_id": experiment_id, "unit": unit}
        if intent is not None:
            body["intent"] = intent
        try:
            response = self._transport.request(
                "POST", "/assign", json.dumps(body).encode("utf-8"), self._settings.assign_timeout
            )
        except TransportError as exc:
            return self._unavailable(experiment_id, unit, intent, str(exc))
        if response.status in RETRYABLE_STATUSES:
            return self._unavailable(experiment_id, unit, intent, f"HTTP {response.status}")
        if response.status != 200:
            logger.warning("kanaria assign refused (HTTP %d): %r", response.status, response.body[:300])
            return self.default(experiment_id, unit, intent, FALLBACK_REFUSED)
        try:
            assignment = _assignment(response)
        except (ValueError, KeyError, TypeError) as exc:
            return self._unavailable(experiment_id, unit, intent, f"unreadable answer: {exc}")
        self._counters.add("assigned_remote")
        return assignment

    def _unavailable(self, experiment_id: str, unit: str, intent: str | None, why: str) -> Assignment:
        self._cooldown_until = self._clock() + self._settings.assign_cooldown
        logger.warning(
            "kanaria assign unavailable (%s): default profiles for %.0f s", why, self._settings.assign_cooldown
        )
        return self.default(experiment_id, unit, intent, FALLBACK_UNAVAILABLE)

    def _refresh(self, experiment_id: str) -> None:
        try:
            response = self._transport.request(
                "GET", f"/experiments/{quote(experiment_id, safe='')}", None, self._settings.record_timeout
            )
        except TransportError as exc:
            logger.warning("kanaria: cannot re-read experiment %s (%s); keeping what is cached", experiment_id, exc)
            return
        if response.status != 200:
            logger.warning(
                "kanaria: experiment %s answered HTTP %d; keeping what is cached", experiment_id, response.status
            )
            return
        try:
            cached = CachedExperiment.from_record(response.json())
        except (ValueError, KeyError, TypeError, KanariaError, PydanticValidationError) as exc:
            logger.warning("kanaria: experiment %s unreadable (%s); keeping what is cached", experiment_id, exc)
            return
        self.cache(cached)


def _assignment(response: HttpResponse) -> Assignment:
    """The /assign answer as the domain's Assignment."""
    body = response.json()
    known = {
        "experiment_id",
        "unit",
        "intent",
        "variant",
        "in_experiment",
        "reason",
        "excluded",
        "config",
        "config_hash",
    }
    if not isinstance(body, dict) or not isinstance(body.get("config"), dict):
        raise ValueError("not an assignment")
    return Assignment(
        experiment_id=str(body["experiment_id"]),
        unit=str(body["unit"]),
        intent=body.get("intent"),
        variant=body.get("variant"),
        in_experiment=bool(body["in_experiment"]),
        reason=str(body["reason"]),
        config=body["config"],
        config_hash=str(body["config_hash"]),
        excluded=bool(body.get("excluded", False)),
        extra={k: v for k, v in body.items() if k not in known},
    )
