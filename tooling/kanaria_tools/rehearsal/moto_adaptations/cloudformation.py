"""CloudFormation: the resource types, properties and failure behaviour the CDK app needs from moto's
CloudFormation, the weighted ELBv2 listeners it creates, and Fn::GetAtt of deployed resources."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Callable

from kanaria_tools.rehearsal.moto_adaptations.catalogue import AdaptationError
from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher


def _normalized_properties(resource_type: str, properties: dict[str, Any]) -> None:
    if resource_type == "AWS::StepFunctions::StateMachine":
        _state_machine_definition(properties)
    tags = properties.get("Tags")
    if tags is None:
        return
    if resource_type == "AWS::KMS::Key" and isinstance(tags, list):
        properties["Tags"] = [
            {"TagKey": t.get("Key", t.get("TagKey")), "TagValue": t.get("Value", t.get("TagValue"))} for t in tags
        ]
    elif resource_type == "AWS::SSM::Parameter" and isinstance(tags, dict):
        properties["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]


class _Model:
    """Duck-typed CloudFormation model (not a CloudFormationModel subclass: moto caches its subclasses, and a
    reverted adaptation must leave nothing behind)."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True


def _state_machine_definition(properties: dict[str, Any]) -> None:
    """cfn-sfn-definition: Definition (an object) and DefinitionSubstitutions, as CloudFormation applies them."""
    if "Definition" in properties and "DefinitionString" not in properties:
        properties["DefinitionString"] = json.dumps(properties.pop("Definition"))
    substitutions = properties.pop("DefinitionSubstitutions", None) or {}
    text = properties.get("DefinitionString")
    if substitutions and isinstance(text, str):
        properties["DefinitionString"] = re.sub(
            r"\$\{([^}]+)\}", lambda m: str(substitutions.get(m.group(1), m.group(0))), text
        )


def _global_table_model() -> type:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table

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
            properties = dict(cloudformation_json["Properties"])
            replica = next((r for r in properties.get("Replicas", []) if r.get("Region") == region_name), {})
            table_json = {
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
                    if (properties.get("SSESpecification") or {}).get("SSEEnabled")
                    else None,
                }
            }
            table = Table.create_from_cloudformation_json(resource_name, table_json, account_id, region_name, **kwargs)
            ttl = properties.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb_backends[account_id][region_name].update_time_to_live(
                    resource_name, {"Enabled": True, "AttributeName": ttl["AttributeName"]}
                )
            return table

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> Any:
            return original_resource  # key schema changes need a replacement in AWS too; nothing else matters here

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
        ) -> None:
            dynamodb_backends[account_id][region_name].delete_table(name=resource_name)

    return GlobalTable


def _event_invoke_config_model() -> type:
    """cfn-lambda-event-invoke-config: AWS::Lambda::EventInvokeConfig through the Lambda backend."""
    from moto.awslambda.models import lambda_backends

    class EventInvokeConfig(_Model):
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
                key: p[key]
                for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
                if key in p
            }
            backend = lambda_backends[account_id][region_name]
            name = str(p["FunctionName"]).split(":function:", 1)[-1].split(":", 1)[0]
            backend.put_function_event_invoke_config(name, config)
            return _Resource(
                f"{name}:{p.get('Qualifier', '$LATEST')}", {}, lambda: backend.delete_function_event_invoke_config(name)
            )

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

    return EventInvokeConfig


def _adapt_cloudformation(patcher: Patcher) -> None:
    from moto.cloudformation import models as cfn_models
    from moto.cloudformation import parsing

    # cfn-resource-tags, cfn-dynamodb-global-table, cfn-alb-forward-config
    extra_models: dict[str, type] = {
        "AWS::DynamoDB::GlobalTable": _global_table_model(),
        **_http_api_models(),
        "AWS::Lambda::EventInvokeConfig": _event_invoke_config_model(),
    }
    _adapt_elbv2(patcher)
    original_class_from_type = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type in extra_models:
            return extra_models[resource_type]
        return original_class_from_type(resource_type)

    patcher.setattr(parsing, "resource_class_from_type", resource_class_from_type)
    original_name_property = parsing.resource_name_property_from_type

    def resource_name_property_from_type(resource_type: str) -> str | None:
        if resource_type in extra_models:
            return extra_models[resource_type].cloudformation_name_type() or None
        return original_name_property(resource_type)

    patcher.setattr(parsing, "resource_name_property_from_type", resource_name_property_from_type)

    original_parse_resource = parsing.parse_resource

    def parse_resource(resource_json: dict[str, Any], resources_map: Any) -> Any:
        parsed = original_parse_resource(resource_json, resources_map)
        if parsed:
            _normalized_properties(parsed[2], parsed[1].get("Properties") or {})
        return parsed

    patcher.setattr(parsing, "parse_resource", parse_resource)

    # cfn-change-set-failures: the failing resource is reported and the stack rolled back (as AWS does).
    original_apply = cfn_models.ChangeSet.apply

    def apply_change_set(self: Any) -> None:
        template_resources = (self.template_dict or {}).get("Resources", {})
        try:
            original_apply(self)
        except Exception as exc:  # noqa: BLE001 - becomes the stack's failure, like CloudFormation
            failed = _failed_resource(exc, template_resources)
            reason = f"{type(exc).__name__}: {exc}"
            stack = self.stack
            stack._add_stack_event(
                "CREATE_FAILED" if self.change_set_type == "CREATE" else "UPDATE_FAILED",
                resource_status_reason=f"{failed}: {reason}",
            )
            event = stack.events[-1]
            logical, rtype = failed.split(" ", 1) if " " in failed else (failed, "")
            event.logical_resource_id = logical
            event.resource_type = rtype.strip("()") or "AWS::CloudFormation::Stack"
            final = "ROLLBACK_COMPLETE" if self.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(
                final, resource_status_reason=f"The following resource(s) failed: [{logical}]. {reason}"
            )
            self.failure = (final, f"{failed}: {reason}")
            raise _ChangeSetFailed(final, f"{failed}: {reason}") from exc

    patcher.setattr(cfn_models.ChangeSet, "apply", apply_change_set)

    original_execute = cfn_models.CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = change_set.stack
        # cfn-change-set-outputs: imports resolve against this account's exports (moto passes none to a stack
        # created by a change set) ...
        stack.cross_stack_resources = self.exports
        stack.resource_map.cross_stack_resources = self.exports
        try:
            original_execute(self, change_set_name, stack_name)
        except _ChangeSetFailed as failed:
            change_set.execution_status = "EXECUTE_FAILED"
            stack.status = failed.status
            stack.stack_status_reason = failed.reason
            stack.template = change_set.template
            return
        # ... and the stack's Outputs and Exports come from the executed template (moto keeps the empty one).
        try:
            stack.template_dict = change_set.template_dict
            stack.output_map = stack._create_output_map()
            for name in [n for n, e in self.exports.items() if e.exporting_stack_id == stack.stack_id]:
                del self.exports[name]
            self._validate_export_uniqueness(stack)
            for export in stack.exports:
                self.exports[export.name] = export
        except Exception as exc:  # noqa: BLE001 - an output that cannot be resolved fails the stack, as in AWS
            reason = f"Outputs: {type(exc).__name__}: {exc}"
            final = "ROLLBACK_COMPLETE" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(final, resource_status_reason=reason)
            change_set.execution_status = "EXECUTE_FAILED"
            stack.status = final
            stack.stack_status_reason = reason

    patcher.setattr(cfn_models.CloudFormationBackend, "execute_change_set", execute_change_set)


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


def _http_api_models() -> dict[str, type]:
    """cfn-apigatewayv2: HTTP APIs, stages, routes and integrations through moto's API Gateway v2 backend."""
    from moto.apigatewayv2.models import apigatewayv2_backends

    def backend(account_id: str, region_name: str) -> Any:
        return apigatewayv2_backends[account_id][region_name]

    class Api(_Model):
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
            api = backend(account_id, region_name).create_api(
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
                lambda: backend(account_id, region_name).delete_api(api.api_id),
            )

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

    class Stage(_Model):
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
            stage = backend(account_id, region_name).create_stage(
                p["ApiId"], {k: v for k, v in config.items() if v is not None}
            )
            return _Resource(stage.name, {})

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    class Integration(_Model):
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
            integration = backend(account_id, region_name).create_integration(
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

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    class Route(_Model):
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
            route = backend(account_id, region_name).create_route(
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

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    return {
        "AWS::ApiGatewayV2::Api": Api,
        "AWS::ApiGatewayV2::Stage": Stage,
        "AWS::ApiGatewayV2::Integration": Integration,
        "AWS::ApiGatewayV2::Route": Route,
    }


class _ChangeSetFailed(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _failed_resource(exc: BaseException, template_resources: dict[str, Any]) -> str:
    """'<LogicalId> (<Type>)' of the resource whose creation raised, from the traceback's locals."""
    tb = exc.__traceback__
    logical_id = None
    while tb is not None:
        frame_locals = tb.tb_frame.f_locals
        if tb.tb_frame.f_code.co_name in {"parse_and_create_resource", "parse_and_update_resource"}:
            logical_id = frame_locals.get("logical_id") or logical_id
        tb = tb.tb_next
    if logical_id is None:
        return "(unknown resource)"
    return f"{logical_id} ({template_resources.get(logical_id, {}).get('Type', '?')})"


# --------------------------------------------------------------------------------------------------------
# Elastic Load Balancing v2 (CloudFormation listeners with weighted forward actions)


def _adapt_elbv2(patcher: Patcher) -> None:
    from moto.elbv2 import models as elbv2_models

    original = elbv2_models.ELBv2Backend.convert_and_validate_properties

    def convert_and_validate_properties(self: Any, properties: dict[str, Any]) -> list[dict[str, Any]]:
        # moto rebuilds every forward action as {Type, TargetGroupArn}; a weighted one has ForwardConfig instead
        # (same shape in CloudFormation as in the API, which moto's actions understand).
        weighted = {
            i: a
            for i, a in enumerate(properties.get("DefaultActions", []))
            if a.get("Type") == "forward" and "TargetGroupArn" not in a and a.get("ForwardConfig")
        }
        if not weighted:
            return original(self, properties)
        plain = [a for i, a in enumerate(properties["DefaultActions"]) if i not in weighted]
        converted = iter(original(self, {**properties, "DefaultActions": plain}))
        return [
            copy.deepcopy(weighted[i]) if i in weighted else next(converted)
            for i in range(len(properties["DefaultActions"]))
        ]

    patcher.setattr(elbv2_models.ELBv2Backend, "convert_and_validate_properties", convert_and_validate_properties)

    # cfn-elbv2-attributes
    original_lb_attribute = elbv2_models.FakeLoadBalancer.get_cfn_attribute

    def load_balancer_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == "LoadBalancerFullName":
            return self.arn.split(":loadbalancer/", 1)[1]
        if attribute_name == "SecurityGroups":
            return list(self.security_groups or [])
        if attribute_name == "CanonicalHostedZoneID":
            return "Z14GRHDCWA56QT"
        return original_lb_attribute(self, attribute_name)

    patcher.setattr(elbv2_models.FakeLoadBalancer, "get_cfn_attribute", load_balancer_attribute)

    def target_group_attribute(self: Any, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        values = {
            "TargetGroupFullName": self.arn.split(":", 5)[5],
            "TargetGroupName": self.name,
            "TargetGroupArn": self.arn,
            "LoadBalancerArns": list(self.load_balancer_arns),
        }
        if attribute_name not in values:
            raise UnformattedGetAttTemplateException()
        return values[attribute_name]

    patcher.setattr(elbv2_models.FakeTargetGroup, "get_cfn_attribute", target_group_attribute)
    patcher.setattr(
        elbv2_models.FakeTargetGroup,
        "has_cfn_attr",
        classmethod(
            lambda cls, attr: attr in {"TargetGroupFullName", "TargetGroupName", "TargetGroupArn", "LoadBalancerArns"}
        ),
    )


def cfn_attribute(account_id: str, region: str, stack_name: str, logical_id: str, attribute: str) -> Any:
    """Fn::GetAtt of a deployed resource as moto resolved it during the deployment (the alarm evaluator resolves
    the skipped alarms' references with it)."""
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account_id][region]
    for stack in backend.stacks.values():
        if stack.name == stack_name and not stack.status.startswith("DELETE"):
            resource = stack.resource_map[logical_id]
            if resource is None:
                raise AdaptationError(f"{stack_name}/{logical_id} was not created by the emulator")
            return resource.get_cfn_attribute(attribute)
    raise AdaptationError(f"no stack {stack_name} in the emulator")
