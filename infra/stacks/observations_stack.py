"""Observations and statistics: the recording API (routes on the shared HTTP API) and the scheduled analysis."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.bundling import layer_code
from infra.constructs.python_function import RUNTIME, KanariaFunction
from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from infra.stacks.experiments_stack import ExperimentsStack
from kanaria import names

DEFAULT_ANALYSIS_RATE_MINUTES = 5
OBSERVATION_ROUTES = (("POST", "/observations"), ("POST", "/observations/batch"))


class ObservationsStack(Stack):
    """Observations function + its IAM routes, analysis layer + scheduled analysis function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        experiments: ExperimentsStack,
        analysis_rate_minutes: int = DEFAULT_ANALYSIS_RATE_MINUTES,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.observations_function = self._build_observations_function(settings, data, experiments)
        self.analysis_layer = lambda_.LayerVersion(
            self,
            "AnalysisLayer",
            code=layer_code("analysis", settings.bundle),
            compatible_runtimes=[RUNTIME],
            description="numpy + scipy for the scheduled analysis only (never on the assignment path)",
        )
        self.analysis_function = self._build_analysis_function(settings, data, experiments)
        self.schedule = events.Rule(
            self,
            "AnalysisSchedule",
            description=f"Kanaria analysis of every running experiment every {analysis_rate_minutes} min",
            schedule=events.Schedule.rate(Duration.minutes(analysis_rate_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.analysis_function, retry_attempts=0, max_event_age=Duration.minutes(analysis_rate_minutes)
                )
            ],
        )

    def _build_observations_function(
        self, settings: Settings, data: DataStack, experiments: ExperimentsStack
    ) -> lambda_.Function:
        tables = data.tables
        fn = KanariaFunction(
            self,
            "ObservationsFunction",
            prefix=settings.prefix,
            kind="observations",
            handler_module="observations",
            layers=[experiments.runtime_layer],
            key=data.key,
            memory_size=1024,
            environment={
                names.ENV_EXPERIMENTS_TABLE: tables["experiments"].table_name,
                names.ENV_ASSIGNMENTS_TABLE: tables["assignments"].table_name,
                names.ENV_OBSERVATIONS_TABLE: tables["observations"].table_name,
                names.ENV_AGGREGATES_TABLE: tables["aggregates"].table_name,
                names.ENV_PROFILES_PARAMETER: experiments.profiles.parameter_name,
                names.ENV_CANARY_OBSERVER_ROLE_ARNS: settings.canary_observer_role_arns,
            },
            description="Kanaria observations API: exactly-once recording into sharded sufficient statistics",
        ).function
        # Exactly what the recording path calls: GetItem (experiment, sticky assignment), and one
        # TransactWriteItems made of a conditional PutItem (raw) and an UpdateItem (counter).
        tables["experiments"].grant(fn, "dynamodb:GetItem")
        tables["assignments"].grant(fn, "dynamodb:GetItem")
        tables["observations"].grant(fn, "dynamodb:PutItem", "dynamodb:GetItem")
        tables["aggregates"].grant(fn, "dynamodb:UpdateItem")
        data.key.grant(fn, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
        experiments.profiles.grant_read(fn)
        # Routes live in this stack (against the imported API id) so the experiments stack never depends on it.
        integration = integrations.HttpLambdaIntegration("ObservationsIntegration", fn)
        api = experiments.http_api.api
        for method, path in OBSERVATION_ROUTES:
            apigwv2.HttpRoute(
                self,
                f"Route{method.title()}{path.replace('/', '-').title().replace('-', '')}",
                http_api=api,
                route_key=apigwv2.HttpRouteKey.with_(path, apigwv2.HttpMethod(method)),
                integration=integration,
                authorizer=authorizers.HttpIamAuthorizer(),
            )
        return fn

    def _build_analysis_function(
        self, settings: Settings, data: DataStack, experiments: ExperimentsStack
    ) -> lambda_.Function:
        tables = data.tables
        fn = KanariaFunction(
            self,
            "AnalysisFunction",
            prefix=settings.prefix,
            kind="analysis",
            handler_module="analysis",
            layers=[experiments.runtime_layer, self.analysis_layer],
            key=data.key,
            memory_size=1024,
            timeout=Duration.minutes(4),
            environment={
                names.ENV_EXPERIMENTS_TABLE: tables["experiments"].table_name,
                names.ENV_AGGREGATES_TABLE: tables["aggregates"].table_name,
                names.ENV_ALERTS_TOPIC_ARN: data.alerts_topic.topic_arn,
                names.ENV_PROFILES_PARAMETER: experiments.profiles.parameter_name,
            },
            description="Kanaria scheduled analysis: snapshot, tests, decision, SRM pause, alerts",
        ).function
        # list (Scan of META items), get, and pause / bandit weights (a transaction of two PutItems: META + AUDIT)
        tables["experiments"].grant(fn, "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem")
        # one Query of the counters, GetItem of RESULT#LATEST, PutItem of RESULT#<ts> + RESULT#LATEST
        tables["aggregates"].grant(fn, "dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem")
        data.key.grant(fn, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
        data.alerts_topic.grant_publish(fn)
        experiments.profiles.grant_read(fn)
        return fn


def add_observations_stacks(
    app: cdk.App, *, settings: Settings, env: cdk.Environment, stacks: dict[str, Stack]
) -> dict[str, Stack]:
    """The observations stack (added by infra.app_builder.build_app); rate from context kanaria:analysisRateMinutes."""
    rate = int(app.node.try_get_context("kanaria:analysisRateMinutes") or DEFAULT_ANALYSIS_RATE_MINUTES)
    stack = ObservationsStack(
        app,
        "KanariaObservations",
        settings=settings,
        data=stacks["data"],  # type: ignore[arg-type]
        experiments=stacks["experiments"],  # type: ignore[arg-type]
        analysis_rate_minutes=rate,
        env=env,
    )
    return {"observations": stack}
