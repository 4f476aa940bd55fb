"""Canary rollouts, pure: stage progression, listener weights and anti-flapping. The request and plan live in
rollout_plan.py, the gates in rollout_gates.py, the state and its texts in rollout_state.py; kanaria.logic
(rollout_prepare, rollout_steps, rollback) wires them to the world."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Iterable, Literal, Mapping, Sequence

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from kanaria.domain.rollout_gates import Outcome
from kanaria.domain.rollout_plan import Stage
from kanaria.errors import ValidationError

# --- progression -------------------------------------------------------------------------------------------

Decision = Literal["wait", "hold", "advance", "await_approval", "rollback"]


class StepDecision(BaseModel):
    """What the state machine does after a gate evaluation, and after how many seconds it looks again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Decision
    reason: str
    wait_seconds: int = Field(ge=0)


def next_step(stage: Stage, outcome: Outcome, elapsed_seconds: float, last_stage: bool) -> StepDecision:
    """Fail -> rollback at once; before the minimum -> keep observing; pass -> next stage (or approval);
    inconclusive -> hold, never promote, until the hold bound, then rollback."""
    interval = stage.check_interval_seconds
    minimum = stage.min_duration_seconds
    if outcome is Outcome.FAIL:
        return StepDecision(decision="rollback", reason=f"stage {stage.name}: a gate failed", wait_seconds=0)
    if elapsed_seconds < minimum:
        remaining = math.ceil(minimum - elapsed_seconds)
        return StepDecision(
            decision="wait",
            wait_seconds=max(1, min(interval, remaining)),
            reason=f"stage {stage.name}: {remaining}s of the {minimum}s minimum left ({outcome.value})",
        )
    if outcome is Outcome.PASS:
        if last_stage:
            return StepDecision(
                decision="await_approval",
                wait_seconds=0,
                reason=f"stage {stage.name} passed; 100% needs a human approval",
            )
        return StepDecision(decision="advance", wait_seconds=0, reason=f"stage {stage.name} passed")
    bound = minimum + stage.hold_bound_seconds
    if elapsed_seconds >= bound:
        return StepDecision(
            decision="rollback",
            wait_seconds=0,
            reason=f"stage {stage.name}: gates still inconclusive after {int(elapsed_seconds)}s (hold bound {bound}s)",
        )
    remaining = math.ceil(bound - elapsed_seconds)
    return StepDecision(
        decision="hold",
        wait_seconds=max(1, min(interval, remaining)),
        reason=f"stage {stage.name}: inconclusive, holding (rollback in {remaining}s unless conclusive)",
    )


# --- listener weights --------------------------------------------------------------------------------------


class Forward(BaseModel):
    """A forward action: weight per target group and target-group stickiness."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, int]
    stickiness_enabled: bool = False
    stickiness_seconds: int | None = None

    def weight(self, target_group: str) -> int:
        """Weight of a target group (0 when absent)."""
        return self.weights.get(target_group, 0)

    def share(self, target_group: str) -> int:
        """Percent of new sessions a target group receives."""
        total = sum(self.weights.values())
        return 0 if total == 0 else round(100 * self.weight(target_group) / total)

    def reaches(self, target_group: str) -> bool:
        """Whether any request can reach the group: a weight, or membership while sticky (a stuck session
        keeps going to its group whatever its weight)."""
        return target_group in self.weights and (self.weights[target_group] > 0 or self.stickiness_enabled)

    def to_action_config(self) -> dict[str, Any]:
        """ForwardConfig of ModifyListener/ModifyRule."""
        stickiness: dict[str, Any] = {"Enabled": self.stickiness_enabled}
        if self.stickiness_enabled and self.stickiness_seconds:
            stickiness["DurationSeconds"] = self.stickiness_seconds
        return {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in self.weights.items()],
            "TargetGroupStickinessConfig": stickiness,
        }


def target_forward(primary: str, canary: str, percent: int, stickiness_seconds: int) -> Forward:
    """The forward action of a stage: 0 = primary only, 100 = canary only, else weighted and sticky."""
    if percent <= 0:
        return Forward(weights={primary: 100})
    if percent >= 100:
        return Forward(weights={canary: 100})
    return Forward(
        weights={primary: 100 - percent, canary: percent},
        stickiness_enabled=True,
        stickiness_seconds=stickiness_seconds,
    )


def primary_only(primary: str) -> Forward:
    """Rollback: the canary is out of the forward action, stickiness off; every session leaves it."""
    return Forward(weights={primary: 100})


def forward_of(actions: Sequence[Mapping[str, Any]]) -> Forward | None:
    """The forward action among a listener's or rule's actions (None when it has none)."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        config = action.get("ForwardConfig")
        if config and config.get("TargetGroups"):
            weights = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in config["TargetGroups"]}
            sticky = config.get("TargetGroupStickinessConfig") or {}
            enabled = bool(sticky.get("Enabled", False))
            return Forward(
                weights=weights,
                stickiness_enabled=enabled,
                stickiness_seconds=sticky.get("DurationSeconds") if enabled else None,
            )
        if action.get("TargetGroupArn"):
            return Forward(weights={action["TargetGroupArn"]: 1})
    return None


def with_forward(actions: Sequence[Mapping[str, Any]], forward: Forward) -> list[dict[str, Any]]:
    """The actions with their forward action replaced (authenticate actions and their order kept)."""
    result: list[dict[str, Any]] = []
    replaced = False
    for action in actions:
        if action.get("Type") == "forward" and not replaced:
            new = {"Type": "forward", "ForwardConfig": forward.to_action_config()}
            if "Order" in action:
                new["Order"] = action["Order"]
            result.append(new)
            replaced = True
            continue
        copy = dict(action)
        oidc = copy.get("AuthenticateOidcConfig")
        if oidc is not None and "ClientSecret" not in oidc:
            copy["AuthenticateOidcConfig"] = {**oidc, "UseExistingClientSecret": True}
        result.append(copy)
    if not replaced:
        raise ValidationError("the listener's default action has no forward action to weight", field="listener")
    return result


def without_target_group(forward: Forward, target_group: str, fallback: str) -> Forward:
    """A rule's forward without the target group (to the fallback when nothing else is left)."""
    weights = {arn: w for arn, w in forward.weights.items() if arn != target_group}
    if not weights or sum(weights.values()) == 0:
        weights = {fallback: 100}
    return Forward(
        weights=weights,
        stickiness_enabled=forward.stickiness_enabled and len(weights) > 1,
        stickiness_seconds=forward.stickiness_seconds if len(weights) > 1 else None,
    )


def _shares(forward: Forward) -> dict[str, Fraction]:
    total = sum(forward.weights.values())
    return {arn: Fraction(w, total) if total else Fraction(0) for arn, w in forward.weights.items()}


def forward_differences(expected: Forward, actual: Forward | None) -> list[str]:
    """Human-readable differences between the forward action written and the one the listener reports. Weights
    are relative, so the same target groups with the same traffic shares match ({canary: 100} = {canary: 1})."""
    if actual is None:
        return ["the listener has no forward action"]
    diffs = []
    want, have = _shares(expected), _shares(actual)
    for arn in sorted(set(want) | set(have)):
        if want.get(arn) != have.get(arn):
            diffs.append(
                f"{arn}: expected weight {expected.weights.get(arn)} ({_percent(want.get(arn))}), "
                f"found {actual.weights.get(arn)} ({_percent(have.get(arn))})"
            )
    if expected.stickiness_enabled != actual.stickiness_enabled:
        diffs.append(f"stickiness: expected {expected.stickiness_enabled}, found {actual.stickiness_enabled}")
    elif expected.stickiness_enabled and expected.stickiness_seconds != actual.stickiness_seconds:
        diffs.append(
            f"stickiness duration: expected {expected.stickiness_seconds}s, found {actual.stickiness_seconds}s"
        )
    return diffs


def _percent(share: Fraction | None) -> str:
    return "absent" if share is None else f"{float(share):.1%}"


# --- anti-flapping -----------------------------------------------------------------------------------------

COOLDOWN = timedelta(hours=24)
FLAP_WINDOW = timedelta(days=7)
FLAP_LIMIT = 3
FIRST_STAGE_MULTIPLIER = 2


class CandidateEvent(BaseModel):
    """One ended attempt of a candidate configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rollback", "completed"]
    at: datetime
    rollout_id: str
    trigger: str = ""


class Admission(BaseModel):
    """Whether a candidate may start a rollout now and with which first-stage multiplier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    reason: str
    rejected: bool = False
    cooldown_until: datetime | None = None
    rollbacks_in_window: int = 0
    first_stage_multiplier: int = 1


def flapping(rollbacks: Iterable[datetime]) -> bool:
    """FLAP_LIMIT rollbacks within any FLAP_WINDOW."""
    times = sorted(rollbacks)
    return any(times[i + FLAP_LIMIT - 1] - times[i] <= FLAP_WINDOW for i in range(len(times) - FLAP_LIMIT + 1))


def admission(events: Iterable[CandidateEvent], rejected: bool, now: datetime) -> Admission:
    """24 h cooldown after a rollback; 3 rollbacks in 7 days reject for good; after a rollback the next attempt's
    first stage lasts twice as long."""
    history = sorted(events, key=lambda e: e.at)
    rollbacks = [e.at for e in history if e.kind == "rollback"]
    recent = sum(1 for at in rollbacks if now - at <= FLAP_WINDOW)
    if rejected or flapping(rollbacks):
        return Admission(
            allowed=False,
            rejected=True,
            rollbacks_in_window=recent,
            reason=f"candidate rejected for good: {FLAP_LIMIT} rollbacks within "
            f"{FLAP_WINDOW.days} days; change the configuration (new config_hash)",
        )
    if rollbacks and now - rollbacks[-1] < COOLDOWN:
        until = rollbacks[-1] + COOLDOWN
        return Admission(
            allowed=False,
            cooldown_until=until,
            rollbacks_in_window=recent,
            reason=f"cooldown after the rollback at {rollbacks[-1].isoformat()}: "
            f"no new attempt before {until.isoformat()}",
        )
    after_rollback = bool(history) and history[-1].kind == "rollback"
    multiplier = FIRST_STAGE_MULTIPLIER if after_rollback else 1
    reason = (
        f"previous attempt rolled back: first stage minimum x{multiplier}"
        if after_rollback
        else "no rollback on record"
    )
    return Admission(allowed=True, reason=reason, rollbacks_in_window=recent, first_stage_multiplier=multiplier)
