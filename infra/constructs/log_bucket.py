"""A bucket that receives logs (S3 server access logs, ALB access logs)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge


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
    acknowledge(
        bucket, "AwsSolutions-S1",
        f"This bucket is itself the log destination of {receives}; logging its own access would need yet another "
        "log bucket (and recurse if it were itself)",
    )
    return bucket
