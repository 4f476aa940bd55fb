"""Deployment settings read from CDK context (cdk.json defaults, overridable with -c key=value)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from constructs import Node

from kanaria.names import DEFAULT_PREFIX

# Offline synth only (tests, `make synth` without credentials, the local rehearsal: moto's default account).
PLACEHOLDER_ACCOUNT = "123456789012"
OFFLINE_REGION = "ap-northeast-1"


class DeploymentTargetError(ValueError):
    """A real deployment (`kanaria:deploy`) without a real account or region to deploy to."""


def _bool(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Settings:
    """What differs between a sandbox account, a real account and the local rehearsal."""

    prefix: str
    account: str
    region: str
    bundle: bool  # False: ship source without pip bundling (tests and the local rehearsal, no network)
    alarm_email: str
    listener_arn: str  # existing ALB listener; empty: create a small demo ALB
    primary_target_group_arn: str
    canary_target_group_arn: str
    allow_offline_evaluation: bool  # stage 0 accepts offline-adapter evaluations (local rehearsal only)
    availability_zones: tuple[str, ...] = ()  # for the demo ALB's VPC; empty: CDK's AZ context or lookup
    reserved_concurrency: bool = True  # reserve concurrency for the rollout functions (see rollout_functions.py)
    demo_certificate_arn: str = ""  # ACM certificate: the demo ALB listens on HTTPS 443 (TLS 1.2+) instead of HTTP 80
    # IAM roles the canary deployment runs as (comma-separated): the only callers whose target canary counts.
    canary_observer_role_arns: str = ""

    @classmethod
    def from_node(cls, node: Node) -> "Settings":
        """Read every kanaria:* context key with its default."""

        def ctx(key: str, default: object = "") -> object:
            value = node.try_get_context(f"kanaria:{key}")
            return default if value is None else value

        account, region = deployment_target(
            str(ctx("account")), str(ctx("region")), _bool(ctx("deploy", False)), os.environ
        )
        return cls(
            prefix=str(ctx("prefix", DEFAULT_PREFIX)),
            account=account,
            region=region,
            bundle=_bool(ctx("bundle", True)),
            alarm_email=str(ctx("alarmEmail", "")),
            listener_arn=str(ctx("listenerArn", "")),
            primary_target_group_arn=str(ctx("primaryTargetGroupArn", "")),
            canary_target_group_arn=str(ctx("canaryTargetGroupArn", "")),
            allow_offline_evaluation=_bool(ctx("allowOfflineEvaluation", False)),
            availability_zones=tuple(
                zone.strip() for zone in str(ctx("availabilityZones", "")).split(",") if zone.strip()
            ),
            reserved_concurrency=_bool(ctx("reservedConcurrency", True)),
            demo_certificate_arn=str(ctx("demoCertificateArn", "")),
            canary_observer_role_arns=str(ctx("canaryObserverRoleArns", "")),
        )

    @property
    def availability_zones_context_key(self) -> str:
        """CDK's context key for the account/region's AZs (what `cdk synth` would otherwise look up)."""
        return f"availability-zones:account={self.account}:region={self.region}"


def deployment_target(account: str, region: str, deploy: bool, environ: Mapping[str, str]) -> tuple[str, str]:
    """Account and region: the context's, else the caller's as the CDK CLI resolved them from the credentials
    (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION), else the offline placeholders, which a real deployment
    (`kanaria:deploy`, set by `make deploy`) refuses."""
    account = account or environ.get("CDK_DEFAULT_ACCOUNT", "")
    region = region or environ.get("CDK_DEFAULT_REGION", "")
    if deploy:
        if not account or account == PLACEHOLDER_ACCOUNT:
            raise DeploymentTargetError(
                f"make deploy needs a real AWS account, got {account or 'none'!r}: run it with credentials "
                "(AWS_PROFILE=... or a role; the CDK CLI resolves the account from them) or pass "
                'CONTEXT="-c kanaria:account=<12 digits>"'
            )
        if not (account.isdigit() and len(account) == 12):
            raise DeploymentTargetError(f"kanaria:account must be 12 digits, got {account!r}")
        if not region:
            raise DeploymentTargetError(
                'make deploy needs a region: set AWS_REGION (or the profile\'s region) or CONTEXT="-c kanaria:region=..."'
            )
    return account or PLACEHOLDER_ACCOUNT, region or OFFLINE_REGION
