"""Embedded assignment client for chatbot services that cannot afford a network hop.

Gives the same answer as the assignment Lambda for a unit without a sticky record (same code path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from kanaria.domain.assignment import Assignment, ConfigResolver, assign
from kanaria.domain.experiment import Experiment, parse_experiment
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile
from kanaria.errors import NotFoundError


class EmbeddedClient:
    """Assign units locally from experiment definitions held in memory."""

    def __init__(
        self, experiments: Iterable[Experiment | Mapping[str, Any]], profiles: Mapping[str, IntentProfile] | None = None
    ):
        self._experiments = {
            e.id: e for e in (x if isinstance(x, Experiment) else parse_experiment(dict(x)) for x in experiments)
        }
        self._profiles = dict(profiles or DEFAULT_PROFILES)
        self._resolvers = {experiment_id: ConfigResolver(e) for experiment_id, e in self._experiments.items()}

    @classmethod
    def from_files(cls, *paths: str | Path) -> "EmbeddedClient":
        """Client over experiment definition files (JSON)."""
        return cls(json.loads(Path(p).read_text(encoding="utf-8")) for p in paths)

    def assign(self, experiment_id: str, unit: str, intent: str | None = None) -> Assignment:
        """Variant and resolved configuration for one unit (the config dict is shared: copy it before mutating)."""
        experiment = self._experiments.get(experiment_id)
        if experiment is None:
            raise NotFoundError(f"unknown experiment {experiment_id!r}", field="experiment_id")
        return assign(experiment, unit, intent, self._profiles, configure=self._resolvers[experiment_id])
