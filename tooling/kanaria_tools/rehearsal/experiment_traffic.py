"""Experiment traffic: sessions of the experiment's intents through the deployed assignment and observation
functions (API Gateway HTTP events, batch routes), each response drawn from the true effects of the variant it
was given."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kanaria_tools.rehearsal.scenario import Configuration, ExperimentPhase, Scenario
from kanaria_tools.rehearsal.traffic import Response, ResponseModel, fault_state, pick_intent


@dataclass
class ExperimentProgress:
    """What the experiment traffic has done so far."""

    sessions: int = 0
    assigned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    observed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    quality: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    skipped_assignments: int = 0
    rejected: int = 0


class ExperimentTraffic:
    """Sessions of the experiment's intents: assigned by the deployed assignment function, observed by the
    deployed observation function (batches of up to 100)."""

    def __init__(
        self,
        scenario: Scenario,
        rng: random.Random,
        caller: Any,
        *,
        assign_function: str,
        observe_function: str | None,
        definition: dict[str, Any],
    ):
        from kanaria.domain.experiment import parse_experiment

        if scenario.experiment is None:
            raise ValueError("the scenario has no experiment phase")
        self.scenario = scenario
        self.phase: ExperimentPhase = scenario.experiment
        self._rng = rng
        self._model = ResponseModel(rng)
        self._caller = caller
        self._assign = assign_function
        self._observe = observe_function
        self._experiment = parse_experiment(definition)
        self.variant_config = {"control": self.phase.control, "treatment": self.phase.treatment}
        self.progress = ExperimentProgress()
        intents = [i for i in self.phase.intents if i != "*"] or list(scenario.traffic.intent_mix)
        total = sum(scenario.traffic.intent_mix[i] for i in intents)
        self._mix = {i: scenario.traffic.intent_mix[i] / total for i in intents}

    def run(self, sessions: int, minute: float, stamp: datetime) -> None:
        """`sessions` new sessions (one response each) at phase minute `minute`."""
        pending, served = self._new_sessions(sessions, minute)
        served += self._assign_batches(pending)
        observations = [self._serve(unit, intent, variant, minute, stamp) for unit, intent, variant in served]
        if self._observe is not None:
            self._observe_batches(self._observe, observations)

    def _new_sessions(self, sessions: int, minute: float) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
        """The sessions' (unit, intent) to assign, and the (unit, intent, variant) the client bug served unassigned."""
        from kanaria.domain.assignment import assign as embedded_assign
        from kanaria.domain.profiles import DEFAULT_PROFILES

        pending: list[tuple[str, str]] = []
        served: list[tuple[str, str, str]] = []
        for _ in range(sessions):
            unit = f"rh-{uuid.UUID(int=self._rng.getrandbits(128)).hex[:16]}"
            intent = pick_intent(self._rng, self._mix)
            faults = fault_state(self.phase.faults, "treatment", minute, self.progress.sessions)
            if faults.srm_skip_rate:
                local = embedded_assign(self._experiment, unit, intent, DEFAULT_PROFILES)
                if local.variant != self._experiment.control and self._rng.random() < faults.srm_skip_rate:
                    # The client bug: served the treatment from its cache, never called the assignment API.
                    self.progress.skipped_assignments += 1
                    served.append((unit, intent, local.variant or self._experiment.control))
                    continue
            pending.append((unit, intent))
        return pending, served

    def _assign_batches(self, pending: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(unit, intent, variant) of the sessions the deployed assignment function put in the experiment."""
        served: list[tuple[str, str, str]] = []
        for i in range(0, len(pending), 100):
            chunk = pending[i : i + 100]
            body = {"requests": [{"experiment_id": self._experiment.id, "unit": u, "intent": it} for u, it in chunk]}
            result = self._caller.http(self._assign, "POST", "/assign/batch", body, route_key="POST /assign/batch")
            for (unit, intent), item in zip(chunk, result["results"]):
                if not item.get("ok"):
                    self.progress.rejected += 1
                    continue
                assignment = item["assignment"]
                if assignment.get("in_experiment") and not assignment.get("excluded"):
                    served.append((unit, intent, assignment["variant"]))
        return served

    def _serve(self, unit: str, intent: str, variant: str, minute: float, stamp: datetime) -> dict[str, Any]:
        """One session's response, drawn from its variant's configuration; the observation to record."""
        self.progress.sessions += 1
        self.progress.assigned[variant] += 1
        role = "control" if variant == self._experiment.control else "treatment"
        config = self.scenario.configurations[self.variant_config[role]]
        response = self._model.draw(config, intent, fault_state(self.phase.faults, role, minute, 0, intent))
        if response.quality is not None:
            self.progress.quality[variant].append(response.quality)
        return self._observation(unit, intent, variant, config, response, stamp)

    def _observe_batches(self, function: str, observations: list[dict[str, Any]]) -> None:
        for i in range(0, len(observations), 100):
            chunk = observations[i : i + 100]
            result = self._caller.http(
                function,
                "POST",
                "/observations/batch",
                {"observations": chunk},
                route_key="POST /observations/batch",
            )
            for item, sent in zip(result.get("items", result.get("results", [])), chunk):
                if item.get("ok", True):
                    self.progress.observed[sent["variant_id"]] += 1
                else:
                    self.progress.rejected += 1

    def _observation(
        self, unit: str, intent: str, variant: str, config: Configuration, r: Response, stamp: datetime
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "observation_id": f"obs-{unit}",
            "experiment_id": self._experiment.id,
            "variant_id": variant,
            "unit": unit,
            "intent": intent,
            "timestamp": stamp.astimezone(timezone.utc).isoformat(),
            "model_id": config.model_id,
            "latency_ms": float(r.latency_ms),
            "error": r.error,
            "hallucination": r.hallucination,
            "task_completed": r.task_completed,
            "cart_add": r.cart_add,
            "safety_filtered": r.safety_filtered,
            "cost_usd": float(r.cost_usd),
        }
        if r.quality is not None:
            body["quality_score"] = float(r.quality)
        if r.csat is not None:
            body["csat"] = r.csat
        return body
