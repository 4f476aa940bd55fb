"""What must never travel in an execution input, a record, a page or a log line: credentials. A rollout request
names its warm-up's secret headers by SSM SecureString parameter, and literal secret-looking headers are refused;
events are summarised for pages by an allow-list, never copied."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

# Header names that carry credentials by definition, and words that make any other header name look like one.
SECRET_HEADER_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-amz-security-token", "x-api-key", "api-key"}
)
SECRET_NAME_WORDS = ("auth", "token", "secret", "password", "passwd", "credential", "session", "cookie", "apikey")
# Values that are credentials whatever the header is called: an HTTP auth scheme, a JWT, an AWS key id.
SECRET_VALUE = re.compile(
    r"^\s*(bearer|basic|digest|negotiate|aws4-hmac-sha256)\s|^eyJ[\w-]{8,}\.|AKIA[0-9A-Z]{16}", re.I
)
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$"
PARAMETER_NAME = r"^/[A-Za-z0-9_.\-/]{1,1000}$"


def secret_looking(name: str, value: str) -> bool:
    """Whether a literal header looks like a credential (by its name or its value)."""
    lowered = name.lower()
    compact = lowered.replace("-", "").replace("_", "")
    return (
        lowered in SECRET_HEADER_NAMES
        or any(word in compact for word in SECRET_NAME_WORDS)
        or bool(SECRET_VALUE.search(value))
    )


def refuse_secret_headers(headers: Mapping[str, str]) -> None:
    """ValueError naming the first literal header that looks like a credential (never its value)."""
    for name, value in headers.items():
        if secret_looking(name, value):
            raise ValueError(
                f"{name!r} looks like a credential and would travel in the execution input (and every page or "
                "log line that copies it): store it in an SSM SecureString parameter and name the parameter in "
                f'warmup.secret_headers, e.g. {{"{name}": "/<prefix>/warmup/<name>"}}'
            )


# What a page may quote of an event it is about: identity and status, never inputs, outputs or causes.
EVENT_KEYS = ("source", "detail-type", "id", "time", "region", "resources", "alarmArn", "accountId")
DETAIL_KEYS = (
    "executionArn",
    "stateMachineArn",
    "name",
    "status",
    "startDate",
    "stopDate",
    "error",
    "alarmName",
    "state",
    "rollout_id",
    "reason",
    "actor",
)


def event_summary(event: Any, limit: int = 2000) -> str:
    """The allow-listed identity of an event (top level and detail) as JSON: a page quotes this, not the event."""
    if not isinstance(event, Mapping):
        return json.dumps({"type": type(event).__name__})
    summary: dict[str, Any] = {k: event[k] for k in EVENT_KEYS if k in event}
    summary.update({k: event[k] for k in DETAIL_KEYS if k in event and k not in summary})
    for nested in ("detail", "alarmData"):  # EventBridge events; CloudWatch alarm actions
        detail = event.get(nested)
        if isinstance(detail, Mapping):
            kept = {k: detail[k] for k in DETAIL_KEYS if k in detail and not isinstance(detail[k], (dict, list))}
            state = detail.get("state")
            if isinstance(state, Mapping) and "value" in state:
                kept["state"] = state["value"]
            kept["omitted"] = sorted(k for k in detail if k not in kept)
            summary[nested] = kept
    summary["omitted"] = sorted(k for k in event if k not in summary)
    text = json.dumps(summary, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + " ...(truncated)"
