"""The rollout's progress table: both sides of the listener, the gates' last look and the canary alarms."""

from __future__ import annotations

from typing import Any

from kanaria import names
from kanaria_tools.rehearsal.alarm_tick import AlarmTick
from kanaria_tools.rehearsal.alert_text import fmt_quality
from kanaria_tools.rehearsal.fleet import ChatbotFleet
from kanaria_tools.rehearsal.progress import Progress
from kanaria_tools.rehearsal.scenario import RolloutPhase

HEADERS = ["side", "config", "weight", "requests", "errors", "p99 ms", "quality"]


def _side_rows(fleet: ChatbotFleet) -> list[list[Any]]:
    weights = fleet.weights
    total = weights["primary"] + weights["canary"] or 1
    rows: list[list[Any]] = []
    for side in ("primary", "canary"):
        stats = fleet.stage_totals[side]
        rows.append(
            [
                side,
                fleet.groups[side].configuration,
                f"{round(100 * weights[side] / total)}%",
                stats.requests,
                f"{100 * stats.errors / stats.requests:.2f}%" if stats.requests else "-",
                f"{stats.p99():.0f}" if stats.p99() else "-",
                fmt_quality(stats.quality()),
            ]
        )
    return rows


def render_rollout(
    progress: Progress, fleet: ChatbotFleet, tick: AlarmTick, phase: RolloutPhase, status: dict[str, Any], now: float
) -> None:
    """The table of the rollout's current look (`status`: `kanaria rollout status`'s answer)."""
    gate = status.get("gate") or {}
    checks = gate.get("checks") or []
    gate_text = ", ".join(f"{c.get('gate')}={c.get('outcome')}" for c in checks) or "-"
    critical = tick.alarm_state(names.ALARM_CANARY_CRITICAL)
    warning = tick.alarm_state(names.ALARM_CANARY_WARNING)
    rows = _side_rows(fleet)
    gates_row = [status.get("stage") or "-", status.get("decision") or "-", gate.get("outcome") or "-", gate_text[:60]]
    rows.append(["gates", *gates_row, "", ""])
    rows.append(["alarms", f"critical {critical or '-'}", f"warning {warning or '-'}", "", "", "", ""])
    # Not on a terminal: a new table when something structural changes or every 10 scenario minutes.
    key = (
        status.get("status"),
        status.get("stage"),
        status.get("decision"),
        gate.get("outcome"),
        gate_text,
        critical,
        warning,
        tuple(fleet.weights.values()),
        int(now // 600),
    )
    progress.table(
        f"rollout {phase.name}: {status.get('status', 'starting')} (execution {status.get('execution_status', '-')})",
        HEADERS,
        rows,
        at=now,
        key=key,
    )
