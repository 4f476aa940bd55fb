"""CloudFormation resource models moto lacks (cfn-dynamodb-global-table, cfn-lambda-event-invoke-config,
cfn-apigatewayv2), created through moto's own backends. Duck-typed, not CloudFormationModel subclasses: moto
caches its subclasses, and a reverted adaptation must leave nothing behind."""

from __future__ import annotations

from typing import Any, Callable


class _Model:
    """What moto's CloudFormation parsing asks of a resource model."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        return original_resource


class _Resource:
    """A CloudFormation-created resource backed by a moto backend object."""

    def __init__(self, physical_id: str, attributes: dict[str, Any], delete: Callable[[], None] | None = None):
        self.physical_resource_id = physical_id
        self._attributes = attributes
        self._delete = delete

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self._attributes:
            raise UnformattedGetAttTemplateException()
        return self._attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        if self._delete is not None:
            self._delete()


def _table_json(properties: dict[str, Any], region_name: str) -> dict[str, Any]:
    """The AWS::DynamoDB::Table properties of the global table's replica in this region."""
    replica: dict[str, Any] = next((r for r in properties.get("Replicas", []) if r.get("Region") == region_name), {})
    encrypted = (properties.get("SSESpecification") or {}).get("SSEEnabled")
    return {
        "Properties": {
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties.get("AttributeDefinitions", []),
            "GlobalSecondaryIndexes": properties.get("GlobalSecondaryIndexes", []),
            "LocalSecondaryIndexes": properties.get("LocalSecondaryIndexes", []),
            "StreamSpecification": properties.get("StreamSpecification"),
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            "Tags": replica.get("Tags"),
            "DeletionProtectionEnabled": replica.get("DeletionProtectionEnabled", False),
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": (replica.get("SSESpecification") or {}).get("KMSMasterKeyId"),
            }
            if encrypted
            else None,
        }
    }


class GlobalTable(_Model):
    """AWS::DynamoDB::GlobalTable created as moto's single-region table (the replica in this region)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "TableName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::DynamoDB::GlobalTable"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in {"Arn", "StreamArn", "TableId"}

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.table import Table

        properties = dict(cloudformation_json["Properties"])
        table_json = _table_json(properties, region_name)
        table = Table.create_from_cloudformation_json(resource_name, table_json, account_id, region_name, **kwargs)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb_backends[account_id][region_name].update_time_to_live(
                resource_name, {"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        return table

    # update_from_cloudformation_json keeps the table: key schema changes need a replacement in AWS too

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        from moto.dynamodb.models import dynamodb_backends

        dynamodb_backends[account_id][region_name].delete_table(name=resource_name)


class EventInvokeConfig(_Model):
    """AWS::Lambda::EventInvokeConfig through the Lambda backend."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        from moto.awslambda.models import lambda_backends

        p = cloudformation_json["Properties"]
        config = {
            key: p[key] for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig") if key in p
        }
        backend = lambda_backends[account_id][region_name]
        name = str(p["FunctionName"]).split(":function:", 1)[-1].split(":", 1)[0]
        backend.put_function_event_invoke_config(name, config)
        return _Resource(
            f"{name}:{p.get('Qualifier', '$LATEST')}", {}, lambda: backend.delete_function_event_invoke_config(name)
        )


def _apigw(account_id: str, region_name: str) -> Any:
    from moto.apigatewayv2.models import apigatewayv2_backends

    return apigatewayv2_backends[account_id][region_name]


class HttpApi(_Model):
    """AWS::ApiGatewayV2::Api."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        p = cloudformation_json["Properties"]
        api = _apigw(account_id, region_name).create_api(
            api_key_selection_expression=p.get("ApiKeySelectionExpression"),
            cors_configuration=p.get("CorsConfiguration"),
            description=p.get("Description"),
            disable_schema_validation=p.get("DisableSchemaValidation"),
            disable_execute_api_endpoint=p.get("DisableExecuteApiEndpoint"),
            name=p.get("Name", resource_name),
            protocol_type=p.get("ProtocolType", "HTTP"),
            route_selection_expression=p.get("RouteSelectionExpression"),
            tags=p.get("Tags") or {},
            version=p.get("Version"),
        )
        return _Resource(
            api.api_id,
            {"ApiId": api.api_id, "ApiEndpoint": api.api_endpoint},
            lambda: _apigw(account_id, region_name).delete_api(api.api_id),
        )


class HttpApiStage(_Model):
    """AWS::ApiGatewayV2::Stage."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        p = cloudformation_json["Properties"]
        config = {
            "stageName": p.get("StageName", "$default"),
            "autoDeploy": p.get("AutoDeploy"),
            "accessLogSettings": p.get("AccessLogSettings"),
            "description": p.get("Description"),
            "defaultRouteSettings": p.get("DefaultRouteSettings"),
            "stageVariables": p.get("StageVariables"),
        }
        stage = _apigw(account_id, region_name).create_stage(
            p["ApiId"], {k: v for k, v in config.items() if v is not None}
        )
        return _Resource(stage.name, {})


class HttpApiIntegration(_Model):
    """AWS::ApiGatewayV2::Integration."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        p = cloudformation_json["Properties"]
        integration = _apigw(account_id, region_name).create_integration(
            api_id=p["ApiId"],
            connection_id=p.get("ConnectionId"),
            connection_type=p.get("ConnectionType"),
            content_handling_strategy=p.get("ContentHandlingStrategy"),
            credentials_arn=p.get("CredentialsArn"),
            description=p.get("Description"),
            integration_method=p.get("IntegrationMethod"),
            integration_subtype=p.get("IntegrationSubtype"),
            integration_type=p.get("IntegrationType"),
            integration_uri=p.get("IntegrationUri"),
            passthrough_behavior=p.get("PassthroughBehavior"),
            payload_format_version=p.get("PayloadFormatVersion"),
            request_parameters=p.get("RequestParameters"),
            request_templates=p.get("RequestTemplates"),
            response_parameters=p.get("ResponseParameters"),
            template_selection_expression=p.get("TemplateSelectionExpression"),
            timeout_in_millis=p.get("TimeoutInMillis"),
            tls_config=p.get("TlsConfig"),
        )
        return _Resource(integration.id, {})


class HttpApiRoute(_Model):
    """AWS::ApiGatewayV2::Route."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        p = cloudformation_json["Properties"]
        route = _apigw(account_id, region_name).create_route(
            api_id=p["ApiId"],
            api_key_required=p.get("ApiKeyRequired", False),
            authorization_scopes=p.get("AuthorizationScopes") or [],
            authorization_type=p.get("AuthorizationType"),
            authorizer_id=p.get("AuthorizerId"),
            model_selection_expression=p.get("ModelSelectionExpression"),
            operation_name=p.get("OperationName"),
            request_models=p.get("RequestModels"),
            request_parameters=p.get("RequestParameters"),
            route_key=p["RouteKey"],
            route_response_selection_expression=p.get("RouteResponseSelectionExpression"),
            target=p.get("Target"),
        )
        return _Resource(route.route_id, {})


EXTRA_MODELS: dict[str, type[_Model]] = {
    "AWS::DynamoDB::GlobalTable": GlobalTable,
    "AWS::ApiGatewayV2::Api": HttpApi,
    "AWS::ApiGatewayV2::Stage": HttpApiStage,
    "AWS::ApiGatewayV2::Integration": HttpApiIntegration,
    "AWS::ApiGatewayV2::Route": HttpApiRoute,
    "AWS::Lambda::EventInvokeConfig": EventInvokeConfig,
}
