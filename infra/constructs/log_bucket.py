"""A bucket that receives logs (S3 server access logs, ALB access logs)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, checkov_skip_all


def build_log_bucket(scope: Construct, construct_id: str, *, expiration: Duration, receives: str) -> s3.Bucket:
    """SSE-S3 (log delivery supports neither SSE-KMS for S3 access logs nor for ALB logs), private, TLS-only,
    expiring, retained; `receives` names what it is the log destination of (for the S1 suppression's reason)."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(expiration=expiration)],
        removal_policy=RemovalPolicy.RETAIN,
    )
    no_access_logs = (
        f"This bucket is itself the log destination of {receives}; logging its own access would need "
        "yet another log bucket (and recurse if it were itself)"
    )
    acknowledge(bucket, "AwsSolutions-S1", no_access_logs)
    checkov_skip_all(
        bucket,
        (
            ("CKV_AWS_18", no_access_logs),
            (
                "CKV_AWS_21",
                f"Log delivery writes each object once under a new key and the lifecycle rule expires them "
                f"after {expiration.to_days():.0f} days: there is no object to overwrite, and versioning would "
                "only keep expired logs as noncurrent versions",
            ),
        ),
    )
    return bucket
