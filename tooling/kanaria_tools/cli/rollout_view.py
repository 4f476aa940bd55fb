"""Readable views of `kanaria rollout status` and `list`, and the `status --watch` loop (like Argo Rollouts'
`get rollout --watch`: redraw every interval until the rollout ends)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

# META statuses that end a rollout, and execution statuses that end it without a rollback record
COMPLETED, ROLLED_BACK = "completed", "rolled_back"
EXECUTION_ENDED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_MARKS = {"done": "✔", "current": "►", "next": "·", "rolled_back": "✖"}


def _arn_name(arn: str) -> str:
    """The readable part of a target group ARN (targetgroup/<name>/<id>)."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn


def _steps(status: dict[str, Any]) -> list[str]:
    current = status.get("stage")
    seen_current = False
    lines = []
    for stage in status.get("plan") or []:
        if status["status"] == COMPLETED:
            mark = "done"
        elif stage["name"] == current:
            mark, seen_current = ("rolled_back" if status["status"] == ROLLED_BACK else "current"), True
        else:
            mark = "next" if seen_current or current is None else "done"
        minutes = stage["min_duration_seconds"] / 60
        lines.append(f"  {_MARKS[mark]} {stage['name']:<16} {stage['percent']:>3}%  min {minutes:g} min")
    return lines


def _gate(gate: dict[str, Any] | None) -> list[str]:
    if not gate:
        return ["Last gate:        -"]
    lines = [f"Last gate:        {gate.get('outcome')}"]
    for check in gate.get("checks") or []:
        seen = " ".join(f"{k} {check[k]:.4g}" for k in ("canary", "primary", "threshold") if check.get(k) is not None)
        lines.append(
            f"  {check.get('outcome', '-'):<13} {check.get('gate', '-'):<24} {seen}  {check.get('reason', '')}"
        )
    return lines


def render_status(status: dict[str, Any]) -> str:
    """The text view of one rollout (pure: the status document `rollout_control.status` returns)."""
    candidate = status.get("candidate") or {}
    weights = status.get("weights") or {}
    lines = [
        f"Name:             {status['rollout_id']}",
        f"Status:           {status['status']}  (execution {status.get('execution_status', '-')})",
        f"Stage:            {status.get('stage') or '-'}  {status.get('percent', 0)}% to the canary",
        f"Candidate:        {candidate.get('model_id', '-')}  config {candidate.get('config_hash', '-')}",
        "Weights:          " + (", ".join(f"{_arn_name(k)} {v}" for k, v in weights.items()) or "-"),
        f"Decision:         {status.get('decision') or '-'}  {status.get('reason') or ''}".rstrip(),
        f"Awaiting approval: {'yes: kanaria rollout approve ' + status['rollout_id'] if status.get('awaiting_approval') else 'no'}",
        *_gate(status.get("gate")),
        "Steps:",
        *_steps(status),
    ]
    rollback = status.get("rollback")
    if rollback:
        trigger = rollback.get("trigger") or {}
        lines.append(
            f"Rollback:         {rollback.get('at')}  {trigger.get('kind', '-')}: {trigger.get('summary', '')}"
        )
    lines.append(f"Updated:          {status.get('updated_at') or '-'}")
    return "\n".join(lines) + "\n"


def render_list(rows: list[dict[str, Any]]) -> str:
    """The text table of `kanaria rollout list`."""
    header = f"{'ROLLOUT':56} {'STATUS':18} {'STAGE':14} {'%':>4}  {'MODEL':40} UPDATED"
    body = [
        f"{r['rollout_id']:56} {r.get('status') or '-':18} {r.get('stage') or '-':14} {r.get('percent') or 0:>4}  "
        f"{r.get('model_id') or '-':40} {r.get('updated_at') or '-'}"
        for r in rows
    ]
    return "\n".join([header, *body]) + "\n"


@dataclass(frozen=True)
class WatchEnd:
    """How a watch ended: the exit status, a code and a sentence."""

    exit_code: int
    code: str
    reason: str


def ended(status: dict[str, Any]) -> WatchEnd | None:
    """The end of the rollout this status shows, or None while it is still going."""
    if status["status"] == COMPLETED:
        return WatchEnd(0, COMPLETED, f"rollout {status['rollout_id']} completed")
    if status["status"] == ROLLED_BACK:
        trigger = (status.get("rollback") or {}).get("trigger") or {}
        return WatchEnd(1, ROLLED_BACK, f"rollout {status['rollout_id']} rolled back: {trigger.get('summary', '-')}")
    if status.get("execution_status") in EXECUTION_ENDED:
        return WatchEnd(
            1,
            "execution_ended",
            f"execution ended {status['execution_status']} while the rollout is {status['status']}",
        )
    return None


def watch(
    fetch: Callable[[], dict[str, Any]],
    show: Callable[[dict[str, Any]], None],
    interval: float,
    timeout: float | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WatchEnd:
    """Fetch and show every `interval` seconds until the rollout ends or `timeout` seconds pass (stuck)."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        status = fetch()
        show(status)
        end = ended(status)
        if end is not None:
            return end
        if deadline is not None and clock() >= deadline:
            return WatchEnd(
                1,
                "timeout",
                f"rollout {status['rollout_id']} still {status['status']} at stage {status.get('stage') or '-'} "
                f"after {timeout:g} s",
            )
        sleep(interval)
