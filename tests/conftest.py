"""Shared fixtures: no real AWS credentials or network, ever."""

from __future__ import annotations

import os

# Set before boto3 / jsii are imported anywhere.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
    "AWS_REGION": "ap-northeast-1",
    "POWERTOOLS_METRICS_NAMESPACE": "Kanaria",
    "POWERTOOLS_SERVICE_NAME": "kanaria-test",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The rollout simulation's schedule counts (tests record them as the user property "schedules")."""
    counts = [
        (report.nodeid, int(value))
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", [])
        if key == "schedules"
    ]
    if counts:
        terminalreporter.write_sep("-", "rollout simulation")
        for nodeid, count in sorted(counts):
            terminalreporter.write_line(f"{count:>8} schedules  {nodeid}")
        terminalreporter.write_line(f"{sum(c for _, c in counts):>8} schedules explored in total")
