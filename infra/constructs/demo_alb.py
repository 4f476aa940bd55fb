"""The listener a canary rollout shifts weights on: an existing one (by ARN) or a small demo ALB.

The demo ALB makes `cdk deploy` work out of the box: a 2-AZ VPC with public subnets only (no NAT gateway),
an internet-facing ALB whose listener forwards 100/0 (weighted, with target-group stickiness) to a "primary" and
a "canary" target group, each served by a tiny inline Lambda that answers with its own name. With a certificate
(`-c kanaria:demoCertificateArn=arn:aws:acm:...`) the listener is HTTPS on 443 with a TLS 1.2+ policy and port 80
stays closed; without one it is plain HTTP on 80 (a demo with no data behind it; the checkov skips say so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_targets as elb_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.log_bucket import build_log_bucket
from infra.constructs.python_function import RUNTIME
from infra.nag import LAMBDA_NO_VPC, XRAY_RESOURCE, acknowledge, acknowledge_all, checkov_skip_all, log_streams
from kanaria.names import TARGET_CANARY, TARGET_PRIMARY, function_name

# arn:<partition>:elasticloadbalancing:<region>:<account>:listener/app/<lb-name>/<lb-id>/<listener-id>
_LISTENER_ARN = re.compile(r"^arn:[\w-]+:elasticloadbalancing:[\w-]+:\d{12}:listener/(app/[\w-]+/\w+)/\w+$")
# arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<tg-name>/<tg-id>
_TARGET_GROUP_ARN = re.compile(r"^arn:[\w-]+:elasticloadbalancing:[\w-]+:\d{12}:(targetgroup/[\w-]+/\w+)$")

STICKINESS = Duration.hours(1)  # a conversation stays on one side while the weights move under it
TLS_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS  # ELBSecurityPolicy-TLS13-1-2-2021-06: TLS 1.2 and 1.3 only
_DEMO_ONLY = (
    "Demo ALB only, created when no kanaria:listenerArn is given: its targets are stub Lambdas answering "
    "with their own name (no data, no session); "
)

_TARGET_CODE = """
import json, os

def handler(event, context):
    return {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"target": os.environ["KANARIA_TARGET"], "path": event.get("path", "/")}),
    }
"""


@dataclass(frozen=True)
class CanaryListener:
    """What the rollout needs to know about the listener: ARNs for IAM/env, full names for ALB metric dimensions."""

    listener_arn: str
    load_balancer_full_name: str  # "app/<name>/<id>": the LoadBalancer dimension
    primary_target_group_arn: str
    primary_target_group_full_name: str  # "targetgroup/<name>/<id>": the TargetGroup dimension
    canary_target_group_arn: str
    canary_target_group_full_name: str

    @classmethod
    def from_arns(
        cls, listener_arn: str, primary_target_group_arn: str, canary_target_group_arn: str
    ) -> "CanaryListener":
        """An existing listener and target groups given by context (plain strings: parsed at synth time)."""
        listener = _LISTENER_ARN.match(listener_arn)
        if not listener:
            raise ValueError(f"kanaria:listenerArn is not an ALB listener ARN: {listener_arn!r}")
        return cls(
            listener_arn=listener_arn,
            load_balancer_full_name=listener.group(1),
            primary_target_group_arn=primary_target_group_arn,
            primary_target_group_full_name=_target_group_full_name("primaryTargetGroupArn", primary_target_group_arn),
            canary_target_group_arn=canary_target_group_arn,
            canary_target_group_full_name=_target_group_full_name("canaryTargetGroupArn", canary_target_group_arn),
        )


def _target_group_full_name(key: str, arn: str) -> str:
    match = _TARGET_GROUP_ARN.match(arn)
    if not match:
        raise ValueError(f"kanaria:{key} is not a target group ARN: {arn!r}")
    return match.group(1)


class DemoAlb(Construct):
    """VPC (2 AZs, public subnets, flow logs), ALB with access logs, two Lambda target groups, weighted listener."""

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey, certificate_arn: str = ""
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self.certificate_arn = certificate_arn
        self.vpc = self._build_vpc(key)
        self.access_logs = self._build_access_logs_bucket()
        self.load_balancer = self._build_load_balancer()
        self.primary = self._build_target_group(TARGET_PRIMARY, key)
        self.canary = self._build_target_group(TARGET_CANARY, key)
        self.listener = self._build_listener()
        self.refs = CanaryListener(
            listener_arn=self.listener.listener_arn,
            load_balancer_full_name=self.load_balancer.load_balancer_full_name,
            primary_target_group_arn=self.primary.target_group_arn,
            primary_target_group_full_name=self.primary.target_group_full_name,
            canary_target_group_arn=self.canary.target_group_arn,
            canary_target_group_full_name=self.canary.target_group_full_name,
        )

    def _build_vpc(self, key: kms.IKey) -> ec2.Vpc:
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        return ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.80.0.0/16"),
            availability_zones=_two_availability_zones(Stack.of(self)),
            nat_gateways=0,  # the ALB is public and its targets are Lambdas: nothing needs egress
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            flow_logs={"all": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))},
            restrict_default_security_group=False,  # would add a custom-resource Lambda; the default SG is unused
        )

    def _build_access_logs_bucket(self) -> s3.Bucket:
        return build_log_bucket(self, "AccessLogs", expiration=Duration.days(30), receives="the ALB access logs")

    def _build_load_balancer(self) -> elbv2.ApplicationLoadBalancer:
        port = 443 if self.certificate_arn else 80
        security_group = ec2.SecurityGroup(
            self,
            "AlbSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description=f"Kanaria demo ALB: {'HTTPS' if self.certificate_arn else 'HTTP'} in",
        )
        security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"demo {'HTTPS' if self.certificate_arn else 'HTTP'} listener"
        )
        acknowledge(
            security_group,
            "AwsSolutions-EC23",
            "Demo ALB only: the public listener answers with the name of a stub Lambda target (no data); real "
            "deployments pass kanaria:listenerArn and no demo ALB is created",
        )
        if not self.certificate_arn:
            checkov_skip_all(
                security_group,
                (
                    (
                        "CKV_AWS_260",
                        _DEMO_ONLY + "port 80 is open because no certificate "
                        "was given (kanaria:demoCertificateArn switches to HTTPS on 443 and "
                        "closes 80)",
                    ),
                ),
            )
        alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=self.vpc,
            internet_facing=True,
            security_group=security_group,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            drop_invalid_header_fields=True,
        )
        alb.log_access_logs(self.access_logs, prefix="alb")
        return alb

    def _build_target_group(self, target: str, key: kms.IKey) -> elbv2.ApplicationTargetGroup:
        kind = f"demo-{target}"
        log_group = logs.LogGroup(
            self,
            f"{target.capitalize()}Logs",
            log_group_name=f"/aws/lambda/{function_name(self._prefix, kind)}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{target.capitalize()}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Kanaria demo {target} target",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
            )
        )
        acknowledge_all(role, (XRAY_RESOURCE, log_streams(Stack.of(self).get_logical_id(log_group.node.default_child))))  # type: ignore[arg-type]
        function = lambda_.Function(
            self,
            f"{target.capitalize()}Function",
            function_name=function_name(self._prefix, kind),
            description=f"Kanaria demo ALB {target} target: answers with its name",
            runtime=RUNTIME,
            handler="index.handler",
            code=lambda_.Code.from_inline(_TARGET_CODE),
            memory_size=128,
            timeout=Duration.seconds(5),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            environment={"KANARIA_TARGET": target},
            environment_encryption=key,
        )
        checkov_skip_all(
            function,
            (
                LAMBDA_NO_VPC,
                ("CKV_AWS_116", _DEMO_ONLY + "invoked synchronously by the ALB, so no event is queued for a DLQ"),
                ("CKV_AWS_115", _DEMO_ONLY + "reserving concurrency for a stub would only take from the account pool"),
            ),
        )
        name = f"{self._prefix}-demo-{target}"
        target_group = elbv2.ApplicationTargetGroup(
            self,
            f"{target.capitalize()}TargetGroup",
            target_group_name=name if len(name) <= 32 else None,
            target_type=elbv2.TargetType.LAMBDA,
            targets=[elb_targets.LambdaTarget(function)],
        )
        self._scope_invoke_permission(function, name if len(name) <= 32 else "*")
        return target_group

    def _scope_invoke_permission(self, function: lambda_.Function, target_group_name: str) -> None:
        """The permission LambdaTarget adds (principal elasticloadbalancing.amazonaws.com) only for this account's
        target group of that name: the ARN is built from the fixed name, since a reference to the target group
        would be a cycle (the target group registers the function only once the permission exists)."""
        stack = Stack.of(self)
        (permission,) = [c for c in function.node.children if isinstance(c, lambda_.CfnPermission)]
        permission.add_property_override("SourceAccount", stack.account)
        permission.add_property_override(
            "SourceArn",
            stack.format_arn(
                service="elasticloadbalancing",
                resource="targetgroup",
                resource_name=f"{target_group_name}/*",
                arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            ),
        )

    def _build_listener(self) -> elbv2.ApplicationListener:
        forward = elbv2.ListenerAction.weighted_forward(
            [
                elbv2.WeightedTargetGroup(target_group=self.primary, weight=100),
                elbv2.WeightedTargetGroup(target_group=self.canary, weight=0),
            ],
            stickiness_duration=STICKINESS,
        )
        if self.certificate_arn:
            return self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                ssl_policy=TLS_POLICY,
                certificates=[elbv2.ListenerCertificate.from_arn(self.certificate_arn)],
                open=False,  # ingress is the security group's rule above
                default_action=forward,
            )
        listener = self.load_balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,  # no certificate given: nothing to terminate TLS with
            open=False,  # ingress is the security group's rule above
            default_action=forward,
        )
        no_tls = _DEMO_ONLY + "plain HTTP because no certificate was given; -c kanaria:demoCertificateArn=... makes "
        checkov_skip_all(
            listener,
            (
                ("CKV_AWS_2", no_tls + "this an HTTPS listener"),
                ("CKV_AWS_103", no_tls + f"this an HTTPS listener with {TLS_POLICY.value} (TLS 1.2+)"),
            ),
        )
        return listener


def _two_availability_zones(stack: Stack) -> list[str]:
    """Two AZs from the cdk.json context (no lookup); deploy-time Fn::GetAZs when the context is absent."""
    from_context = stack.node.try_get_context(f"availability-zones:account={stack.account}:region={stack.region}")
    if isinstance(from_context, list) and len(from_context) >= 2:
        return [str(zone) for zone in from_context[:2]]
    return [Fn.select(0, Fn.get_azs()), Fn.select(1, Fn.get_azs())]
