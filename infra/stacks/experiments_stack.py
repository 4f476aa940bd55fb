"""Experiments and assignment: parameter profiles, the runtime layer, the API functions and the HTTP API."""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.constructs.bundling import layer_code
from infra.constructs.http_api import KanariaHttpApi
from infra.constructs.python_function import RUNTIME, KanariaFunction
from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from kanaria import names
from kanaria.domain.profiles import DEFAULT_PROFILES, profiles_to_json


class ExperimentsStack(Stack):
    """Everything on the chatbot's request path: assignment plus experiment management."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, data: DataStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.runtime_layer = lambda_.LayerVersion(
            self,
            "RuntimeLayer",
            code=layer_code("runtime", settings.bundle),
            compatible_runtimes=[RUNTIME],
            description="Powertools + pydantic for every Kanaria function",
        )
        self.profiles = self._build_profiles(settings)
        self.http_api = KanariaHttpApi(self, "HttpApi", name=f"{settings.prefix}-api", key=data.key)
        environment = {
            names.ENV_EXPERIMENTS_TABLE: data.tables["experiments"].table_name,
            names.ENV_ASSIGNMENTS_TABLE: data.tables["assignments"].table_name,
            names.ENV_AGGREGATES_TABLE: data.tables["aggregates"].table_name,
            names.ENV_PROFILES_PARAMETER: self.profiles.parameter_name,
        }
        self.experiments_function = self._build_experiments_function(settings, data, environment)
        self.assign_function = self._build_assign_function(settings, data, environment)
        # What a chatbot needs to connect (KanariaClient.connect(ApiUrl, Region)); `make deploy` prints them.
        CfnOutput(self, "ApiUrl", value=self.http_api.stage.url, description="Kanaria HTTP API (SigV4, execute-api)")
        CfnOutput(self, "Region", value=self.region, description="Region to sign Kanaria API requests for")

    def _build_profiles(self, settings: Settings) -> ssm.StringParameter:
        return ssm.StringParameter(
            self,
            "Profiles",
            parameter_name=names.profiles_parameter(settings.prefix),
            description="Kanaria per-intent model parameter profiles (JSON)",
            string_value=json.dumps(profiles_to_json(DEFAULT_PROFILES), separators=(",", ":")),
            tier=ssm.ParameterTier.STANDARD,
        )

    def _build_experiments_function(
        self, settings: Settings, data: DataStack, environment: dict[str, str]
    ) -> lambda_.Function:
        fn = KanariaFunction(
            self,
            "ExperimentsFunction",
            prefix=settings.prefix,
            kind="experiments",
            handler_module="experiments",
            layers=[self.runtime_layer],
            environment=environment,
            key=data.key,
            description="Kanaria experiments API: create, get, list, transitions, variant stops",
        ).function
        data.tables["experiments"].grant_read_write_data(fn)
        self.http_api.add_routes(
            "Experiments",
            fn,
            [
                ("POST", "/experiments"),
                ("GET", "/experiments"),
                ("GET", "/experiments/{experiment_id}"),
                ("POST", "/experiments/{experiment_id}/transitions"),
                ("POST", "/experiments/{experiment_id}/variants/{variant_id}/stop"),
            ],
        )
        return fn

    def _build_assign_function(
        self, settings: Settings, data: DataStack, environment: dict[str, str]
    ) -> lambda_.Function:
        fn = KanariaFunction(
            self,
            "AssignFunction",
            prefix=settings.prefix,
            kind="assign",
            handler_module="assign",
            layers=[self.runtime_layer],
            environment=environment,
            key=data.key,
            memory_size=1024,
            description="Kanaria assignment API: sticky variant and resolved configuration",
        ).function
        data.tables["experiments"].grant_read_data(fn)
        data.tables["assignments"].grant_read_write_data(fn)
        data.tables["aggregates"].grant_write_data(fn)
        self.profiles.grant_read(fn)
        self.http_api.add_routes("Assign", fn, [("POST", "/assign"), ("POST", "/assign/batch")])
        return fn
