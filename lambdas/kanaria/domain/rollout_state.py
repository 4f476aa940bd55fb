"""Canary rollout state and records: what the state machine carries between steps, the immutable rollback
record, and the texts a human acts on (approval request, rollback alert). Pure, like domain/rollout.py."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from kanaria.canary.judge import JudgeState
from kanaria.domain.rollout import FIRST_STAGE_MULTIPLIER, FLAP_LIMIT, FLAP_WINDOW, Admission
from kanaria.domain.rollout_gates import GateResult, MetricSnapshot
from kanaria.domain.rollout_plan import ROLLOUT_ID_PATTERN, Candidate, OfflineEvaluation, RolloutPlan, Warmup

# --- texts a human acts on ---------------------------------------------------------------------------------


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "missing"
    if kind == "rate":
        return f"{value:.3%}"
    if kind == "ms":
        return f"{value:.0f} ms"
    return f"{value:.3f}"


def snapshot_lines(snapshot: MetricSnapshot | Mapping[str, Any] | None) -> list[str]:
    """Canary vs primary, one metric per line (a MetricSnapshot, or a record's: one dumped to JSON or an error)."""
    if not snapshot:
        return ["  (no metrics snapshot)"]
    if isinstance(snapshot, Mapping) and "error" in snapshot:
        return [f"  {snapshot['error']}"]
    s = snapshot if isinstance(snapshot, MetricSnapshot) else MetricSnapshot.model_validate(snapshot)
    c, p = s.canary, s.primary
    rows = [
        ("observations", c.observations, p.observations, "n"),
        ("error rate", c.rate(c.errors), p.rate(p.errors), "rate"),
        ("p99 latency", c.latency_p99_ms, p.latency_p99_ms, "ms"),
        ("hallucination rate", c.rate(c.hallucinations), p.rate(p.hallucinations), "rate"),
        ("throttle rate", c.rate(c.throttles), p.rate(p.throttles), "rate"),
        ("CSAT", c.mean(c.csat_sum, c.csat_count), p.mean(p.csat_sum, p.csat_count), "mean"),
        ("quality", c.mean(c.quality_sum, c.quality_count), p.mean(p.quality_sum, p.quality_count), "mean"),
    ]
    lines = [f"  window {s.window_start} .. {s.window_end}", f"  {'metric':<20}{'canary':>14}{'primary':>14}"]
    for name, canary, primary, kind in rows:
        if kind == "n":
            lines.append(
                f"  {name:<20}{'missing' if canary is None else f'{canary:g}':>14}"
                f"{'missing' if primary is None else f'{primary:g}':>14}"
            )
        else:
            lines.append(f"  {name:<20}{_fmt(canary, kind):>14}{_fmt(primary, kind):>14}")
    for alarm, state in sorted(s.alarms.items()):
        lines.append(f"  alarm {alarm}: {state}")
    return lines


def gate_lines(gate: GateResult | None) -> list[str]:
    """One line per gate check."""
    if gate is None:
        return ["  (no gate evaluated yet)"]
    return [f"  [{c.outcome.value}] {c.gate}: {c.reason}" for c in gate.checks] or ["  (no gates)"]


# --- the state the state machine carries -------------------------------------------------------------------


class Rollout(BaseModel):
    """Immutable part of the execution state: the validated request resolved against this deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str = Field(pattern=ROLLOUT_ID_PATTERN)
    execution_arn: str
    listener_arn: str
    primary_target_group: str
    canary_target_group: str
    candidate: Candidate
    plan: RolloutPlan  # effective plan (first stage stretched after a rollback)
    offline_evaluation: OfflineEvaluation
    warmup: Warmup | None = None
    warmup_result: dict[str, Any] | None = None
    admission: Admission
    requested_by: str | None = None
    created_at: str


class Progress(BaseModel):
    """Mutable part of the execution state. Every field the ASL reads has a value (no missing JSONPath)."""

    model_config = ConfigDict(extra="forbid")

    stage_index: int = Field(default=0, ge=0)
    stage_name: str = ""
    percent: int = Field(default=0, ge=0, le=100)
    stage_started_at: str | None = None
    decision: Literal[
        "start", "observe", "wait", "hold", "advance", "await_approval", "rollback", "promote", "completed"
    ] = "start"
    reason: str = ""
    wait_seconds: int = Field(default=0, ge=0)
    checks: int = Field(default=0, ge=0, description="gate evaluations in the current stage")
    weights: dict[str, int] = Field(default_factory=dict, description="target group ARN -> weight, as verified")
    gate: GateResult | None = None  # the last evaluation
    judge: JudgeState | None = None  # the canary judge's evidence, carried look to look
    approval: Any = None  # SendTaskSuccess output (whatever JSON the approver sent)


class RolloutState(BaseModel):
    """What every rollout-steps action receives (plus "action") and returns."""

    model_config = ConfigDict(extra="forbid")

    rollout_id: str
    rollout: Rollout
    progress: Progress

    def to_state(self) -> dict[str, Any]:
        """JSON for the state machine."""
        return self.model_dump(mode="json")


# --- rollback ----------------------------------------------------------------------------------------------

TriggerKind = Literal[
    "gate_failed",
    "hold_exceeded",
    "task_failed",
    "approval_rejected",
    "approval_timeout",
    "alarm",
    "manual_abort",
    "execution_ended",
    "rollback_unfinished",
]
# state_machine: its failure path; alarm: the critical composite's Lambda action; cli: `kanaria rollout abort`;
# execution_status: the EventBridge rule on the execution ending ABORTED/FAILED/TIMED_OUT; reconciler: the
# periodic sweep that finds a canary left with traffic (its alarm in ALARM), an execution over without a completed
# promotion, or a rollback that began and did not finish (rollback_unfinished).
TriggerSource = Literal["state_machine", "alarm", "cli", "execution_status", "reconciler"]


class RollbackTrigger(BaseModel):
    """Why a rollback happened, from which source, with the details a human needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TriggerKind
    source: TriggerSource
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    actor: str = "kanaria-rollback"


class RollbackRecord(BaseModel):
    """Immutable record of one rollback (rollouts table, record ROLLBACK)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str
    at: str
    trigger: RollbackTrigger
    stage_name: str
    stage_index: int
    percent_before: int
    config_hash: str
    model_id: str
    canary_target_group: str
    primary_target_group: str
    weights_before: dict[str, int]
    weights_after: dict[str, int]
    stickiness_before: bool
    metrics_snapshot: dict[str, Any] | None = None  # a MetricSnapshot as JSON, or {"error": ...} when unreadable
    gate: GateResult | None = None
    experiment_id: str | None = None
    variant: str | None = None
    variant_stopped: bool = False
    variant_stop_error: str | None = None
    execution_arn: str | None = None
    execution_stopped: bool = False
    rules_fixed: list[str] = Field(default_factory=list)
    admission_after: Admission


def rollback_alert(record: RollbackRecord) -> tuple[str, str]:
    """Subject (<= 100 ASCII chars) and body of the one on-call alert of a rollback."""
    trigger, after = record.trigger, record.admission_after
    subject = f"[Kanaria] ROLLBACK {record.rollout_id} at {record.stage_name or 'start'} ({trigger.kind})"
    subject = subject.encode("ascii", "replace").decode()[:100]
    done = _done_lines(record)
    if after.rejected:
        next_steps = [
            f"- Candidate {record.config_hash} is now REJECTED for good ({after.rollbacks_in_window} "
            f"rollbacks in {FLAP_WINDOW.days} days). A new attempt needs a changed configuration."
        ]
    else:
        next_steps = [
            f"- Cooldown: this configuration cannot start again before {after.cooldown_until.isoformat() if after.cooldown_until else 'the cooldown ends'}.",
            f"- Rollbacks of this configuration in the last {FLAP_WINDOW.days} days: "
            f"{after.rollbacks_in_window}/{FLAP_LIMIT} (at {FLAP_LIMIT} it is rejected for good).",
            f"- The next attempt's first stage lasts {FIRST_STAGE_MULTIPLIER}x its minimum.",
        ]
    next_steps += [
        "- Confirm the rollback was justified from the metrics above and the dashboard; file the root cause "
        "before re-deploying.",
        f"- Details: kanaria rollout status {record.rollout_id}",
    ]
    body = [
        f"WHAT: canary rollout {record.rollout_id} was ROLLED BACK at stage {record.stage_name or '(before any stage)'} "
        f"({record.percent_before}% canary) at {record.at}.",
        f"  candidate: model {record.model_id}, config {record.config_hash}",
        "",
        f"WHY ({trigger.kind}, via {trigger.source}): {trigger.summary}",
        "",
        "METRICS (canary vs primary, this stage):",
        *snapshot_lines(record.metrics_snapshot),
        "",
        "GATES (last evaluation):",
        *gate_lines(record.gate),
        "",
        "WHAT WAS DONE:",
        *done,
        "",
        "WHAT NEXT:",
        *next_steps,
    ]
    return subject, "\n".join(body)


def _done_lines(record: RollbackRecord) -> list[str]:
    """What the rollback did, one line per action, for its alert."""
    done = [
        f"- Listener: canary target group removed from the forward action (stickiness off); "
        f"weights {_weights_text(record.weights_before, record)} -> {_weights_text(record.weights_after, record)}, "
        "verified by reading the listener back.",
    ]
    if record.rules_fixed:
        done.append(f"- Listener rules that still forwarded to the canary were fixed: {', '.join(record.rules_fixed)}")
    if record.execution_stopped:
        done.append(f"- Stopped the rollout execution {record.execution_arn}.")
    if record.experiment_id:
        if record.variant_stopped:
            done.append(
                f"- Experiment {record.experiment_id}: variant {record.variant!r} stopped (reason "
                "canary_rollback); its sticky units move to control and are excluded from the analysis."
            )
        else:
            done.append(
                f"- Experiment {record.experiment_id}: stopping variant {record.variant!r} FAILED "
                f"({record.variant_stop_error}). Stop it by hand: POST /experiments/{record.experiment_id}"
                f'/variants/{record.variant}/stop {{"reason": "canary_rollback"}}.'
            )
    return done


def _weights_text(weights: Mapping[str, int], record: RollbackRecord) -> str:
    label = {record.primary_target_group: "primary", record.canary_target_group: "canary"}
    return "{" + ", ".join(f"{label.get(arn, arn)}: {w}" for arn, w in weights.items()) + "}" if weights else "{}"


def approval_message(state: RolloutState, task_token: str) -> tuple[str, str]:
    """Subject and body asking a human to approve 100%: the A/B summary and how to answer."""
    rollout, progress = state.rollout, state.progress
    subject = f"[Kanaria] APPROVAL needed: {rollout.rollout_id} to 100%".encode("ascii", "replace").decode()[:100]
    gate = progress.gate
    significance = gate.significance if gate is not None else None
    body = [
        f"Canary rollout {rollout.rollout_id} passed every stage and waits for a human decision before 100%.",
        f"  candidate: model {rollout.candidate.model_id}, config {rollout.candidate.config_hash}",
        f"  current: stage {progress.stage_name} ({progress.percent}% canary); traffic holds here until you answer",
        f"  offline evaluation: {rollout.offline_evaluation.report_uri}",
        "",
        "A/B SUMMARY (canary vs primary, last stage):",
        *snapshot_lines(gate.snapshot if gate is not None else None),
        "",
        "GATES:",
        *gate_lines(gate),
    ]
    if significance is not None:
        body += ["", f"SIGNIFICANCE: {significance.outcome.value}: {significance.reason}"]
    body += [
        "",
        f"ANSWER within {rollout.plan.approval.timeout_seconds}s (then the rollout rolls back):",
        f"  kanaria rollout approve {rollout.rollout_id} --comment '...'",
        f"  kanaria rollout reject {rollout.rollout_id} --reason '...'",
        "",
        f"Task token (for SendTaskSuccess/SendTaskFailure): {task_token}",
    ]
    return subject, "\n".join(body)


def failed_invocation_page(
    failure: Mapping[str, Any], rollout_id: str | None, situation: list[str], function_name: str
) -> tuple[str, str]:
    """Subject and body paging on-call about a rollback invocation that failed after Lambda's retries (an on-failure
    destination record: requestContext, requestPayload, responsePayload), with what the reconciler found."""
    from kanaria.domain.secrets import event_summary

    context = failure.get("requestContext") or {}
    response = failure.get("responsePayload") or {}
    request = failure.get("requestPayload")
    error = (
        f"{response.get('errorType', 'error')}: {response.get('errorMessage', '')}"
        if isinstance(response, dict)
        else str(response)
    )[:1000]
    subject = f"[Kanaria] ROLLBACK INVOCATION FAILED {rollout_id or '(no active rollout)'}"
    subject = subject.encode("ascii", "replace").decode()[:100]
    # Its identity only: an execution-status event carries the execution input, which is never paged.
    event_text = event_summary(request)
    body = [
        f"WHAT: an asynchronous invocation of the rollback function {function_name} FAILED after "
        f"{context.get('approximateInvokeCount', '?')} attempts ({context.get('condition', 'unknown condition')}); "
        "Lambda gave the event up and sent it to the rollback-failures queue.",
        f"  rollout: {rollout_id or 'none identified (no active rollout on the listener)'}",
        f"  error: {error}",
        f"  at: {failure.get('timestamp', '?')}",
        "",
        "NOW (the reconciler, which runs every minute and rolls back through the same rollback logic):",
        *[f"  {line}" for line in situation],
        "",
        "WHAT NEXT:",
        f"- The rollback function is failing: read its logs (/aws/lambda/{function_name}) and fix it; the "
        "reconciler keeps restoring stranded canaries meanwhile.",
        "- Check the listener: kanaria rollout status <rollout_id>; `kanaria rollout abort <rollout_id>` repairs it.",
        "",
        "FAILED EVENT (its identity; inputs and outputs are never paged):",
        event_text,
    ]
    return subject, "\n".join(body)
