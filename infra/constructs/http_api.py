"""IAM-authorized HTTP API with encrypted access logs; routes are added by the stacks that own the handlers."""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "caller": "$context.identity.caller",
        "userArn": "$context.identity.userArn",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "latency": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup):
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)


class KanariaHttpApi(Construct):
    """An HTTP API whose every route requires SigV4 (IAM) authorization."""

    def __init__(self, scope: Construct, construct_id: str, *, name: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=name,
            create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(access_logs),
            throttle=apigwv2.ThrottleSettings(rate_limit=2000, burst_limit=1000),
        )

    def add_routes(self, name: str, function: lambda_.IFunction, routes: list[tuple[str, str]]) -> None:
        """Route (method, path) pairs to one Lambda function."""
        integration = integrations.HttpLambdaIntegration(f"{name}Integration", function)
        for method, path in routes:
            self.api.add_routes(path=path, methods=[apigwv2.HttpMethod(method)], integration=integration)
