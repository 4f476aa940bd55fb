"""cdk-nag acknowledgements: every suppression names one finding and says why it is acceptable."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

# Findings that CDK-generated grants always produce, with the reason they are acceptable here.
XRAY_RESOURCE = (
    "AwsSolutions-IAM5[Resource::*]",
    "X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions (Lambda active tracing)",
)


def log_streams(log_group_logical_id: str) -> tuple[str, str]:
    """Finding for streams inside one function's own log group."""
    return (
        f"AwsSolutions-IAM5[Resource::<{log_group_logical_id}.Arn>:log-stream:*]",
        "Lambda creates log streams with generated names inside the function's own log group only",
    )


KMS_GRANT_ACTIONS = tuple(
    (f"AwsSolutions-IAM5[Action::{action}]",
     f"{action} is the CDK grant's action family on the single Kanaria key ARN (resource-scoped, not account-wide)")
    for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*")
)


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress one AwsSolutions finding on `construct` (and its children) with a specific reason."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_all(construct: IConstruct, findings: tuple[tuple[str, str], ...]) -> None:
    """Suppress several (rule, reason) findings on one construct."""
    for rule, reason in findings:
        acknowledge(construct, rule, reason)
