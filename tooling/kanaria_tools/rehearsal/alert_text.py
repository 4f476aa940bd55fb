"""Texts the rehearsal prints and reports: an alert's gist, a fault's description, a scheduled event."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any


def fault_text(fault: Any) -> str:
    if fault.kind == "rollback_function_failure":
        return f"rollback_function_failure: the rollback function raises on its next {fault.failures} invocation(s)"
    return f"{fault.kind} on the {fault.target}"


def scheduled_event(account: str, region: str, function: str) -> dict[str, Any]:
    """What an EventBridge schedule rule delivers to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{function}"],
        "detail": {},
    }


def fmt_quality(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def alert_summary(body: str) -> list[str]:
    try:
        message = json.loads(body)
    except ValueError:
        # a rollback alert: what, why and the metrics, up to the gates block (the report keeps the whole text)
        lines = []
        for line in body.splitlines():
            if line.startswith("GATES"):
                break
            if line.strip():
                lines.append(line)
        return lines[:10]
    if isinstance(message, dict) and "AlarmName" in message:
        return [
            f"{message['AlarmName']}: {message.get('OldStateValue')} -> {message.get('NewStateValue')}",
            f"{str(message.get('NewStateReason', ''))[:160]}",
        ]
    if isinstance(message, dict):
        keys = [k for k in ("kind", "experiment_id", "decision", "rollout_id", "status", "summary") if k in message]
        return [", ".join(f"{k}={message[k]}" for k in keys)[:200]] if keys else [body[:200]]
    return [str(message)[:200]]
