"""Deployment settings read from CDK context (cdk.json defaults, overridable with -c key=value)."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Node

from kanaria.names import DEFAULT_PREFIX


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

    @classmethod
    def from_node(cls, node: Node) -> "Settings":
        """Read every kanaria:* context key with its default."""

        def ctx(key: str, default: object = "") -> object:
            value = node.try_get_context(f"kanaria:{key}")
            return default if value is None else value

        return cls(
            prefix=str(ctx("prefix", DEFAULT_PREFIX)),
            account=str(ctx("account", "123456789012")),
            region=str(ctx("region", "ap-northeast-1")),
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
        )

    @property
    def availability_zones_context_key(self) -> str:
        """CDK's context key for the account/region's AZs (what `cdk synth` would otherwise look up)."""
        return f"availability-zones:account={self.account}:region={self.region}"
