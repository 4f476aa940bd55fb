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
    (
        f"AwsSolutions-IAM5[Action::{action}]",
        f"{action} is the CDK grant's action family on the single Kanaria key ARN (resource-scoped, not account-wide)",
    )
    for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*")
)


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress one AwsSolutions finding on `construct` (and its children) with a specific reason."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_all(construct: IConstruct, findings: tuple[tuple[str, str], ...]) -> None:
    """Suppress several (rule, reason) findings on one construct."""
    for rule, reason in findings:
        acknowledge(construct, rule, reason)


# --- checkov (the third gate: infra/checkov_gate.py over the synthesized templates) ----------------------------


def checkov_skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """Record why a checkov check does not apply to this resource, in its CloudFormation Metadata
    (`checkov: {skip: [{id, comment}]}`, what checkov reads), from the construct that decides it. An L2 construct
    is resolved to its CfnResource; a check already skipped keeps its first reason."""
    if len(reason.strip()) < 20:
        raise ValueError(f"checkov skip {check_id}: give a specific reason, not {reason!r}")
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"checkov skip {check_id}: {construct.node.path} has no CloudFormation resource")
    metadata = resource.get_metadata("checkov") or {}
    if any(s["id"] == check_id for s in metadata.get("skip", [])):
        return
    skips = [*metadata.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {"skip": skips})


def checkov_skip_all(construct: IConstruct, skips: tuple[tuple[str, str], ...]) -> None:
    """Several (check id, reason) skips on one resource."""
    for check_id, reason in skips:
        checkov_skip(construct, check_id, reason)


LAMBDA_NO_VPC = (
    "CKV_AWS_117",
    "Kanaria functions call only AWS APIs (DynamoDB, CloudWatch, SNS, ELB, Step Functions, S3, Bedrock) over TLS "
    "with IAM-signed requests and no private network resource; a VPC would add NAT gateways or a dozen interface "
    "endpoints and cold-start ENIs without narrowing what the function can reach (IAM does that)",
)
