"""One Kanaria Lambda function: shared code asset, runtime layer, tracing, structured logs, scoped log group."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.bundling import function_code
from infra.nag import KMS_GRANT_ACTIONS, XRAY_RESOURCE, log_streams, acknowledge_all
from kanaria.names import METRIC_NAMESPACE, function_name

RUNTIME = lambda_.Runtime.PYTHON_3_14


class KanariaFunction(Construct):
    """A Lambda running `kanaria.handlers.<module>.handler` with Powertools configured by environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        kind: str,
        handler_module: str,
        layers: list[lambda_.ILayerVersion],
        environment: dict[str, str],
        key: kms.IKey,
        memory_size: int = 512,
        timeout: Duration = Duration.seconds(30),
        description: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name(prefix, kind)}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Own role instead of AWSLambdaBasicExecutionRole: logs only to this function's log group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Kanaria {kind} function",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name(prefix, kind),
            description=description or f"Kanaria {kind}",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"kanaria.handlers.{handler_module}.handler",
            code=function_code(),
            layers=layers,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            environment={
                "POWERTOOLS_SERVICE_NAME": f"kanaria-{kind}",
                "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        log_group_id = Stack.of(self).get_logical_id(self.log_group.node.default_child)  # type: ignore[arg-type]
        acknowledge_all(self.role, (XRAY_RESOURCE, *KMS_GRANT_ACTIONS, log_streams(log_group_id)))
