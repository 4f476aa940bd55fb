"""Deterministic, weighted, monotone assignment of units to variants (pure; no AWS, no numpy)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kanaria.domain.experiment import Experiment
from kanaria.domain.profiles import IntentProfile, bedrock_config, config_hash, profile_for, resolve
from kanaria.names import BUCKETS

# Why a unit is or is not in the experiment.
ASSIGNED = "assigned"
STICKY = "sticky"
INTENT_NOT_TARGETED = "intent_not_targeted"
OUTSIDE_SEGMENT = "outside_namespace_segment"
OUTSIDE_TRAFFIC = "outside_traffic"
VARIANT_STOPPED = "variant_stopped"


def bucket(salt: str, unit: str) -> int:
    """Bucket in [0, 10000) from SHA-256 of 'salt:unit'; identical in every process, machine and language."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class Assignment:
    """The variant a unit gets and the configuration to call the model with."""

    experiment_id: str
    unit: str
    intent: str | None
    variant: str | None
    in_experiment: bool
    reason: str
    config: dict[str, Any]
    config_hash: str
    excluded: bool = False  # moved to control after a rollback: served control, not analysed
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form returned by the API, the CLI and the embedded client."""
        body = {
            "experiment_id": self.experiment_id,
            "unit": self.unit,
            "intent": self.intent,
            "variant": self.variant,
            "in_experiment": self.in_experiment,
            "reason": self.reason,
            "excluded": self.excluded,
            "config": self.config,
            "config_hash": self.config_hash,
        }
        body.update(self.extra)
        return body


def eligible(experiment: Experiment, unit: str, intent: str | None) -> str | None:
    """None when the unit is in the experiment's traffic for this intent, else the reason it is not."""
    if not experiment.targets(intent):
        return INTENT_NOT_TARGETED
    start, end = experiment.namespace_segment
    layer_bucket = bucket(f"layer:{experiment.layer}", unit)
    if not start <= layer_bucket < end:
        return OUTSIDE_SEGMENT
    # Position inside the segment: a unit admitted at 5% is still admitted at 25% (monotone ramp).
    position = (layer_bucket - start) / (end - start)
    if position >= experiment.traffic.rate(intent):
        return OUTSIDE_TRAFFIC
    return None


def pick_variant(experiment: Experiment, unit: str, weights: Mapping[str, float] | None = None) -> str:
    """Weighted variant for a unit. Treatments fill buckets from 0 upward and control takes the rest,
    so growing a single treatment's weight only moves control units into it (monotone ramp)."""
    weights = weights or experiment.weights
    ordered = [v.id for v in experiment.variants if v.id != experiment.control] + [experiment.control]
    point = bucket(f"variant:{experiment.assignment_salt}", unit)
    edge = 0.0
    for variant_id in ordered[:-1]:
        edge += weights.get(variant_id, 0.0) * BUCKETS
        if point < edge:
            return variant_id
    return experiment.control


def configuration(experiment: Experiment, variant_id: str | None, profile: IntentProfile) -> tuple[dict[str, Any], str]:
    """Resolved configuration (intent profile + variant overrides) and its hash; control when variant is None."""
    variant = experiment.variant(variant_id or experiment.control)
    config = bedrock_config(resolve(profile, variant.overrides))
    return config, config_hash(config)


class ConfigResolver:
    """Memoises resolved configurations per (variant, intent profile) for one experiment's bulk assignment."""

    def __init__(self, experiment: Experiment):
        self._experiment = experiment
        self._resolved: dict[tuple[str | None, str], tuple[dict[str, Any], str]] = {}

    def __call__(
        self, experiment: Experiment, variant_id: str | None, profile: IntentProfile
    ) -> tuple[dict[str, Any], str]:
        if experiment is not self._experiment:
            return configuration(experiment, variant_id, profile)
        key = (variant_id, profile.intent)
        if key not in self._resolved:
            self._resolved[key] = configuration(experiment, variant_id, profile)
        return self._resolved[key]


def assign(
    experiment: Experiment,
    unit: str,
    intent: str | None,
    profiles: Mapping[str, IntentProfile],
    *,
    weights: Mapping[str, float] | None = None,
    stopped: Mapping[str, str] | None = None,
    configure: Callable[[Experiment, str | None, IntentProfile], tuple[dict[str, Any], str]] = configuration,
) -> Assignment:
    """Stateless assignment: what a unit gets when it has no sticky record yet."""
    profile = profile_for(intent, profiles)
    reason = eligible(experiment, unit, intent)
    if reason is not None:
        config, digest = configure(experiment, None, profile)
        return Assignment(experiment.id, unit, intent, None, False, reason, config, digest)
    variant_id = pick_variant(experiment, unit, weights)
    if stopped and variant_id in stopped:
        return moved_to_control(experiment, unit, intent, profile, stopped[variant_id])
    config, digest = configure(experiment, variant_id, profile)
    return Assignment(experiment.id, unit, intent, variant_id, True, ASSIGNED, config, digest)


def moved_to_control(
    experiment: Experiment, unit: str, intent: str | None, profile: IntentProfile, why: str
) -> Assignment:
    """A unit whose variant was stopped or rolled back: served control and excluded from analysis."""
    config, digest = configuration(experiment, None, profile)
    return Assignment(
        experiment.id,
        unit,
        intent,
        experiment.control,
        True,
        VARIANT_STOPPED,
        config,
        digest,
        excluded=True,
        extra={"reassigned_reason": why},
    )
