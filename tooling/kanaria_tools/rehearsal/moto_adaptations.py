"""Every adaptation of the local AWS emulator (moto, pinned) that the rehearsal needs, and nothing else.

The rehearsal deploys the real CDK app into moto's server running in this process. moto 5.2.5 differs from
AWS in ways that would make that deployment silently wrong; each difference is handled here, named in
ADAPTATIONS (shown by `kanaria demo --list-adaptations` and in docs/rehearsal.md) and covered by
tests/unit/rehearsal/test_moto_adaptations.py, which first asserts the unadapted moto still behaves as
measured, so an upgrade that changes the behaviour fails loudly instead of quietly double-fixing it.

Adaptations are reversible (`apply()` returns a handle whose `revert()` restores moto), so tests can use them
without leaking into other tests in the same worker.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib
import io
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from kanaria.quantiles import percentile as nearest_rank

MOTO_VERSION = "5.2.5"


class AdaptationError(RuntimeError):
    """The installed moto is not the version these adaptations were measured against, or one failed."""


def check_moto_version() -> None:
    """Fail loudly on any moto other than MOTO_VERSION: every adaptation below was measured on it."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise AdaptationError(
            f"the local rehearsal is pinned to moto {MOTO_VERSION} but moto {moto.__version__} is installed; "
            "re-measure every adaptation in kanaria_tools/rehearsal/moto_adaptations.py (run "
            "tests/unit/rehearsal/test_moto_adaptations.py) before changing MOTO_VERSION"
        )


@dataclass(frozen=True)
class Adaptation:
    """One way moto 5.2.5 differs from AWS, and what the rehearsal does about it."""

    name: str
    moto_behaviour: str
    adaptation: str


ADAPTATIONS: tuple[Adaptation, ...] = (
    Adaptation(
        "server-startup-errors",
        "ThreadedMotoServer.start() waits forever when its thread cannot bind the port",
        "the server thread reports bind/startup errors and start() gives up after a timeout",
    ),
    Adaptation(
        "cfn-change-set-failures",
        "an exception while executing a change set returns HTTP 500; the SDK retries, the retry finds nothing "
        "to add and the stack reports CREATE_COMPLETE with the remaining resources never created",
        "a failing resource marks the stack ROLLBACK_COMPLETE (UPDATE_ROLLBACK_COMPLETE on update) with a "
        "CREATE_FAILED event naming the resource and the error, so `cdk deploy` fails and prints it",
    ),
    Adaptation(
        "cfn-change-set-outputs",
        "a stack created or updated by a change set (how `cdk deploy` works) has no Outputs and registers no "
        "Exports, and its Fn::ImportValue sees no other stack's exports: every cross-stack reference fails",
        "imports resolve against the account's exports; after execution the stack's Outputs and Exports are "
        "built from the executed template",
    ),
    Adaptation(
        "cfn-resource-tags",
        "CloudFormation-created AWS::KMS::Key tags ({Key, Value}) crash KMS (expects TagKey/TagValue) and "
        "AWS::SSM::Parameter tags (a JSON map in CloudFormation) crash SSM (expects a list)",
        "tags are converted to the shape each moto backend expects before the resource is created",
    ),
    Adaptation(
        "cfn-dynamodb-global-table",
        "AWS::DynamoDB::GlobalTable (what CDK's TableV2 synthesizes) is not supported by CloudFormation: the "
        "tables are silently skipped",
        "a GlobalTable is created as the single-region DynamoDB table of its replica in the stack's region "
        "(key schema, attributes, indexes, billing mode, TTL, stream)",
    ),
    Adaptation(
        "cfn-apigatewayv2",
        "AWS::ApiGatewayV2::Api, ::Stage, ::Route and ::Integration are not supported by CloudFormation: "
        "skipped, so a stack exporting the API id (for another stack's routes) fails on the import",
        "they are created through moto's API Gateway v2 backend (moto does not serve HTTP APIs: the rehearsal "
        "invokes the functions with API-Gateway-HTTP-shaped events)",
    ),
    Adaptation(
        "cfn-lambda-event-invoke-config",
        "AWS::Lambda::EventInvokeConfig is not supported by CloudFormation: a function's asynchronous retry count and "
        "on-failure destination are silently dropped",
        "created through the Lambda backend (PutFunctionEventInvokeConfig), so GetFunctionEventInvokeConfig answers "
        "what the template says; the rehearsal's asynchronous invocations follow it (kanaria_tools.rehearsal.invoke)",
    ),
    Adaptation(
        "cfn-alb-forward-config",
        "an AWS::ElasticLoadBalancingV2::Listener/ListenerRule whose forward action uses ForwardConfig "
        "(weighted target groups) crashes CloudFormation with KeyError 'TargetGroupArn'",
        "the action is created through the ELBv2 backend with its ForwardConfig intact (weights kept)",
    ),
    Adaptation(
        "cfn-elbv2-attributes",
        "Fn::GetAtt of LoadBalancerFullName, SecurityGroups (load balancer) and of any target group attribute "
        "(TargetGroupFullName, ...) is not implemented: the reference resolves to a placeholder string or the "
        "deployment fails",
        "the attributes are derived from the ARNs as AWS defines them (app/<name>/<id>, targetgroup/<name>/<id>)",
    ),
    Adaptation(
        "cfn-sfn-definition",
        "an AWS::StepFunctions::StateMachine's DefinitionSubstitutions (and an object Definition) are ignored: "
        "the state machine keeps '${RolloutStepsFunctionArn}' placeholders and its tasks call no function",
        "the definition is built and substituted as CloudFormation does",
    ),
    Adaptation(
        "cfn-step-functions-store",
        "with state machine execution enabled, the Step Functions API serves a separate backend from the one "
        "CloudFormation writes state machines to, so deployed state machines are invisible to StartExecution",
        "CloudFormation creates, updates and deletes state machines in the executing backend",
    ),
    Adaptation(
        "dynamodb-transaction-backup",
        "TransactWriteItems deep-copies every table it touches before each transaction (its rollback backup): "
        "each observation recorded costs time proportional to the tables' size",
        "the transaction backs up only the items it touches (same checks, same rollback, same errors)",
    ),
    Adaptation(
        "dynamodb-atomic-writes",
        "a conditional write checks its condition and then writes with no lock, and the server serves each "
        "request in its own thread: two concurrent writes can both pass attribute_not_exists (two rollback "
        "triggers both take the rollback lock, and the on-call is paged twice)",
        "the backend's writes (PutItem, UpdateItem, DeleteItem, each item of BatchWriteItem, TransactWriteItems) "
        "run one at a time, so a condition holds when its write lands, as DynamoDB guarantees",
    ),
    Adaptation(
        "sfn-execute-state-machines",
        "Step Functions does not execute ASL unless configured; its service integrations call moto on "
        "localhost:$MOTO_PORT (default 5000)",
        "execution is switched on (Wait, Choice, Catch, lambda:invoke, sns:publish run) and MOTO_PORT points at "
        "the rehearsal's server",
    ),
    Adaptation(
        "sfn-unnamed-executions",
        "StartExecution without a name names the execution 'None': the second unnamed start collides with the "
        "first (returns it, or fails)",
        "an unnamed execution gets a fresh UUID name, as in AWS",
    ),
    Adaptation(
        "sfn-aws-sdk-elbv2",
        "aws-sdk:elasticloadbalancingv2 tasks fail: boto3 names that service 'elbv2'",
        "the service name is mapped to boto3's",
    ),
    Adaptation(
        "lambda-in-process",
        "Lambda runs function code only in docker (no docker engine here): Invoke returns an error",
        "a function whose handler is in the kanaria package runs in this process: its module is imported from "
        "lambdas/, its environment variables are set for the call (invocations are serialized; keys are never "
        "removed while other threads may read the environment), it gets a "
        "LambdaContext, its stdout becomes its CloudWatch Logs stream; a run longer than the function's timeout "
        "is reported (the emulator is slower than AWS), not failed",
    ),
    Adaptation(
        "lambda-emf-metrics",
        "CloudWatch Logs does not extract Embedded Metric Format records into metrics",
        "EMF records printed by an in-process function are put into CloudWatch as metrics (each dimension "
        "set, Values arrays, units), stamped by the rehearsal clock",
    ),
    Adaptation(
        "cloudwatch-percentiles",
        "GetMetricData and GetMetricStatistics return no value for percentile statistics (p99, p99.9, ...) "
        "and percentile ranks (PR(:x), PR(x:y)): the response serializer fails",
        "percentiles are computed from the period's raw values (nearest rank), the same function the alarm "
        "evaluator uses; a percentile rank is the % of raw values in (x, y], as CloudWatch defines it",
    ),
    Adaptation(
        "cloudwatch-metric-index",
        "GetMetricData compares every MetricStat query's dimensions with every datapoint of the window (sorting "
        "both each time): the judge's 168 queries over 40 periods of data cost ~1.7 M sorts, 1-3 wall seconds, "
        "i.e. 1-3 scenario minutes at 60x",
        "the window's datapoints are grouped once per call by (namespace, name, dimension set); each MetricStat "
        "query reads its group with moto's own statistics (calls with metric math go to moto unchanged)",
    ),
    Adaptation(
        "cloudwatch-alarms",
        "CloudFormation silently skips AWS::CloudWatch::Alarm and ::CompositeAlarm; PutCompositeAlarm is not "
        "implemented; SetAlarmState and PutMetricData trigger no evaluation and no actions",
        "the rehearsal's alarm evaluator (kanaria_tools.rehearsal.alarms) reads the alarms from the synthesized "
        "templates; they are registered here so DescribeAlarms shows them, and their state changes are "
        "written here; PutCompositeAlarm stores the composite alarm",
    ),
)


# --------------------------------------------------------------------------------------------------------
# Reversible patching


class _Patcher:
    """setattr/dict changes that can be undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        had = name in vars(target) if isinstance(target, type) else hasattr(target, name)
        old = vars(target).get(name) if isinstance(target, type) else getattr(target, name, None)
        setattr(target, name, value)

        def undo() -> None:
            if had:
                setattr(target, name, old)
            else:
                delattr(target, name)

        self._undo.append(undo)

    def setitem(self, target: dict, key: Any, value: Any) -> None:
        had, old = key in target, target.get(key)
        target[key] = value
        self._undo.append(lambda: target.__setitem__(key, old) if had else target.pop(key, None))

    def call_on_revert(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def revert(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class Hooks:
    """What the rehearsal plugs into the adapted emulator."""

    # Called after every in-process Lambda invocation (function name, event, result or error, seconds).
    on_invoke: Callable[["Invocation"], None] | None = None
    # Maps the moment a function printed an EMF record to the metric timestamp (the rehearsal clock).
    metric_time: Callable[[], datetime] | None = None
    # Called before an in-process function runs (function name, event); whatever it raises is the function's error
    # (the rehearsal's injected faults of a function).
    before_invoke: Callable[[str, Any], None] | None = None
    # Seconds an in-process invocation may wait for another one to finish before failing loudly.
    invoke_lock_timeout: float = 120.0


@dataclass
class Invocation:
    """One in-process Lambda invocation."""

    function_name: str
    event: Any
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    logs: str = ""
    warning: str | None = None


class Applied:
    """Handle returned by apply(): `revert()` restores moto exactly."""

    def __init__(self, patcher: _Patcher, hooks: Hooks):
        self._patcher = patcher
        self.hooks = hooks

    def revert(self) -> None:
        global _ACTIVE
        self._patcher.revert()
        _ACTIVE = None


_ACTIVE: Applied | None = None


def apply(hooks: Hooks | None = None) -> Applied:
    """Apply every adaptation (idempotent within a process: returns the active handle)."""
    global _ACTIVE
    check_moto_version()
    if _ACTIVE is not None:
        if hooks is not None:
            _ACTIVE.hooks.on_invoke = hooks.on_invoke
            _ACTIVE.hooks.metric_time = hooks.metric_time
            _ACTIVE.hooks.before_invoke = hooks.before_invoke
        return _ACTIVE
    patcher = _Patcher()
    hooks = hooks or Hooks()
    _adapt_cloudformation(patcher)
    _adapt_dynamodb(patcher)
    _serialize_dynamodb_writes(patcher)
    _adapt_step_functions(patcher)
    _adapt_lambda(patcher, hooks)
    patcher.call_on_revert(_restore_environment)
    _adapt_cloudwatch(patcher)
    _ACTIVE = Applied(patcher, hooks)
    return _ACTIVE


def active() -> Applied | None:
    """The applied adaptations, if any."""
    return _ACTIVE


# --------------------------------------------------------------------------------------------------------
# Server startup


def start_server(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> Any:
    """Start moto's ThreadedMotoServer in this process on host:port; clear errors instead of a hang."""
    check_moto_version()
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        startup_error: BaseException | None = None

        def _server_entry(self) -> None:  # same as moto's, but a bind error is reported, not swallowed
            try:
                super()._server_entry()
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                self.startup_error = exc
                self._server_ready_event.set()

        def start(self) -> None:
            self._thread = threading.Thread(target=self._server_entry, daemon=True, name=f"moto-{port}")
            self._thread.start()
            if not self._server_ready_event.wait(timeout):
                raise AdaptationError(f"the local AWS emulator did not start on {host}:{port} within {timeout:.0f}s")
            if self.startup_error is not None:
                error = self.startup_error
                # werkzeug prints "Address already in use" and exits (SystemExit) instead of raising OSError.
                if (isinstance(error, OSError) and error.errno in {98, 48, 10048}) or (
                        isinstance(error, SystemExit) and not port_is_free(port, host)):
                    raise AdaptationError(f"port {port} in use") from None
                raise AdaptationError(f"the local AWS emulator failed to start on {host}:{port}: {error}") from error

    server = _Server(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (and we may bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) != 0


# --------------------------------------------------------------------------------------------------------
# CloudFormation


def _normalized_properties(resource_type: str, properties: dict[str, Any]) -> None:
    if resource_type == "AWS::StepFunctions::StateMachine":
        _state_machine_definition(properties)
    tags = properties.get("Tags")
    if tags is None:
        return
    if resource_type == "AWS::KMS::Key" and isinstance(tags, list):
        properties["Tags"] = [{"TagKey": t.get("Key", t.get("TagKey")), "TagValue": t.get("Value", t.get("TagValue"))} for t in tags]
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
            r"\$\{([^}]+)\}", lambda m: str(substitutions.get(m.group(1), m.group(0))), text)


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
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            properties = dict(cloudformation_json["Properties"])
            replica = next((r for r in properties.get("Replicas", []) if r.get("Region") == region_name), {})
            table_json = {"Properties": {
                "KeySchema": properties["KeySchema"],
                "AttributeDefinitions": properties.get("AttributeDefinitions", []),
                "GlobalSecondaryIndexes": properties.get("GlobalSecondaryIndexes", []),
                "LocalSecondaryIndexes": properties.get("LocalSecondaryIndexes", []),
                "StreamSpecification": properties.get("StreamSpecification"),
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
                "Tags": replica.get("Tags"),
                "DeletionProtectionEnabled": replica.get("DeletionProtectionEnabled", False),
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS",
                                     "KMSMasterKeyId": (replica.get("SSESpecification") or {}).get("KMSMasterKeyId")}
                if (properties.get("SSESpecification") or {}).get("SSEEnabled") else None,
            }}
            table = Table.create_from_cloudformation_json(resource_name, table_json, account_id, region_name, **kwargs)
            ttl = properties.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                dynamodb_backends[account_id][region_name].update_time_to_live(
                    resource_name, {"Enabled": True, "AttributeName": ttl["AttributeName"]}
                )
            return table

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
            return original_resource  # key schema changes need a replacement in AWS too; nothing else matters here

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str) -> None:
            dynamodb_backends[account_id][region_name].delete_table(name=resource_name)

    return GlobalTable


def _event_invoke_config_model() -> type:
    """cfn-lambda-event-invoke-config: AWS::Lambda::EventInvokeConfig through the Lambda backend."""
    from moto.awslambda.models import lambda_backends

    class EventInvokeConfig(_Model):
        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            p = cloudformation_json["Properties"]
            config = {key: p[key] for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
                      if key in p}
            backend = lambda_backends[account_id][region_name]
            name = str(p["FunctionName"]).split(":function:", 1)[-1].split(":", 1)[0]
            backend.put_function_event_invoke_config(name, config)
            return _Resource(f"{name}:{p.get('Qualifier', '$LATEST')}", {},
                             lambda: backend.delete_function_event_invoke_config(name))

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
            return original_resource

    return EventInvokeConfig


def _adapt_cloudformation(patcher: _Patcher) -> None:
    from moto.cloudformation import models as cfn_models
    from moto.cloudformation import parsing

    # cfn-resource-tags, cfn-dynamodb-global-table, cfn-alb-forward-config
    extra_models: dict[str, type] = {"AWS::DynamoDB::GlobalTable": _global_table_model(), **_http_api_models(),
                                     "AWS::Lambda::EventInvokeConfig": _event_invoke_config_model()}
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
            stack._add_stack_event("CREATE_FAILED" if self.change_set_type == "CREATE" else "UPDATE_FAILED",
                                   resource_status_reason=f"{failed}: {reason}")
            event = stack.events[-1]
            logical, rtype = failed.split(" ", 1) if " " in failed else (failed, "")
            event.logical_resource_id = logical
            event.resource_type = rtype.strip("()") or "AWS::CloudFormation::Stack"
            final = "ROLLBACK_COMPLETE" if self.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(final, resource_status_reason=f"The following resource(s) failed: [{logical}]. {reason}")
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
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            p = cloudformation_json["Properties"]
            api = backend(account_id, region_name).create_api(
                api_key_selection_expression=p.get("ApiKeySelectionExpression"),
                cors_configuration=p.get("CorsConfiguration"), description=p.get("Description"),
                disable_schema_validation=p.get("DisableSchemaValidation"),
                disable_execute_api_endpoint=p.get("DisableExecuteApiEndpoint"), name=p.get("Name", resource_name),
                protocol_type=p.get("ProtocolType", "HTTP"),
                route_selection_expression=p.get("RouteSelectionExpression"), tags=p.get("Tags") or {},
                version=p.get("Version"),
            )
            return _Resource(api.api_id, {"ApiId": api.api_id, "ApiEndpoint": api.api_endpoint},
                             lambda: backend(account_id, region_name).delete_api(api.api_id))

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
            return original_resource

    class Stage(_Model):
        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            p = cloudformation_json["Properties"]
            config = {"stageName": p.get("StageName", "$default"), "autoDeploy": p.get("AutoDeploy"),
                      "accessLogSettings": p.get("AccessLogSettings"), "description": p.get("Description"),
                      "defaultRouteSettings": p.get("DefaultRouteSettings"), "stageVariables": p.get("StageVariables")}
            stage = backend(account_id, region_name).create_stage(p["ApiId"], {k: v for k, v in config.items() if v is not None})
            return _Resource(stage.name, {})

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    class Integration(_Model):
        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            p = cloudformation_json["Properties"]
            integration = backend(account_id, region_name).create_integration(
                api_id=p["ApiId"], connection_id=p.get("ConnectionId"), connection_type=p.get("ConnectionType"),
                content_handling_strategy=p.get("ContentHandlingStrategy"), credentials_arn=p.get("CredentialsArn"),
                description=p.get("Description"), integration_method=p.get("IntegrationMethod"),
                integration_subtype=p.get("IntegrationSubtype"), integration_type=p.get("IntegrationType"),
                integration_uri=p.get("IntegrationUri"), passthrough_behavior=p.get("PassthroughBehavior"),
                payload_format_version=p.get("PayloadFormatVersion"), request_parameters=p.get("RequestParameters"),
                request_templates=p.get("RequestTemplates"), response_parameters=p.get("ResponseParameters"),
                template_selection_expression=p.get("TemplateSelectionExpression"),
                timeout_in_millis=p.get("TimeoutInMillis"), tls_config=p.get("TlsConfig"),
            )
            return _Resource(integration.id, {})

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    class Route(_Model):
        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            p = cloudformation_json["Properties"]
            route = backend(account_id, region_name).create_route(
                api_id=p["ApiId"], api_key_required=p.get("ApiKeyRequired", False),
                authorization_scopes=p.get("AuthorizationScopes") or [],
                authorization_type=p.get("AuthorizationType"), authorizer_id=p.get("AuthorizerId"),
                model_selection_expression=p.get("ModelSelectionExpression"), operation_name=p.get("OperationName"),
                request_models=p.get("RequestModels"), request_parameters=p.get("RequestParameters"),
                route_key=p["RouteKey"], route_response_selection_expression=p.get("RouteResponseSelectionExpression"),
                target=p.get("Target"),
            )
            return _Resource(route.route_id, {})

        update_from_cloudformation_json = Api.update_from_cloudformation_json

    return {"AWS::ApiGatewayV2::Api": Api, "AWS::ApiGatewayV2::Stage": Stage,
            "AWS::ApiGatewayV2::Integration": Integration, "AWS::ApiGatewayV2::Route": Route}


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


def _adapt_elbv2(patcher: _Patcher) -> None:
    from moto.elbv2 import models as elbv2_models

    original = elbv2_models.ELBv2Backend.convert_and_validate_properties

    def convert_and_validate_properties(self: Any, properties: dict[str, Any]) -> list[dict[str, Any]]:
        # moto rebuilds every forward action as {Type, TargetGroupArn}; a weighted one has ForwardConfig instead
        # (same shape in CloudFormation as in the API, which moto's actions understand).
        weighted = {i: a for i, a in enumerate(properties.get("DefaultActions", []))
                    if a.get("Type") == "forward" and "TargetGroupArn" not in a and a.get("ForwardConfig")}
        if not weighted:
            return original(self, properties)
        plain = [a for i, a in enumerate(properties["DefaultActions"]) if i not in weighted]
        converted = iter(original(self, {**properties, "DefaultActions": plain}))
        return [copy.deepcopy(weighted[i]) if i in weighted else next(converted)
                for i in range(len(properties["DefaultActions"]))]

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
    patcher.setattr(elbv2_models.FakeTargetGroup, "has_cfn_attr", classmethod(
        lambda cls, attr: attr in {"TargetGroupFullName", "TargetGroupName", "TargetGroupArn", "LoadBalancerArns"}))


# --------------------------------------------------------------------------------------------------------
# DynamoDB


def _adapt_dynamodb(patcher: _Patcher) -> None:  # noqa: C901 - mirrors moto's own DynamoDB backend methods it replaces
    """dynamodb-transaction-backup: TransactWriteItems backs up the items it touches, not whole tables.

    Same logic as moto 5.2.5's DynamoDBBackend.transact_write_items; only the backup differs (moto deep-copies
    every table involved on every transaction, so recording observations slows down as the tables grow)."""
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed, MockValidationException, MultipleTransactionsException, TooManyTransactionsException,
        TransactionCanceledException, TransactWriteSingleOpException,
    )

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: C901 - moto's transact_write_items, line for line, plus the atomicity lock
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

        def restore() -> None:
            for table_name, key, attributes in reversed(backups):
                if attributes is None:
                    table = self.get_table(table_name)
                    hash_value, range_value = self.get_keys_value(table, key)
                    if table.get_item(hash_value, range_value) is not None:
                        table.delete_item(hash_value, range_value)
                else:
                    self.get_table(table_name).put_item(attributes)

        target_items: set[tuple[str, str]] = set()
        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                unique = (str(table_name), str(dict(sorted(key.items()))))
                if unique in target_items:
                    raise MultipleTransactionsException()
                target_items.add(unique)
                current = self.get_item(table_name, key)
                if op_type != "ConditionCheck":
                    backups.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
                if condition_expression is not None:
                    condition = get_filter_expression(condition_expression, names, values)
                    if not condition.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type == "Put":
                    self.put_item(table_name, op["Item"], condition_expression=condition_expression,
                                  expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Delete":
                    self.delete_item(table_name, key, condition_expression=condition_expression,
                                     expression_attribute_names=names, expression_attribute_values=values)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     condition_expression=condition_expression, expression_attribute_names=names,
                                     expression_attribute_values=values)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                restore()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - as moto: reported per item
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            restore()
            raise TransactionCanceledException(errors)

    patcher.setattr(ddb_models.DynamoDBBackend, "transact_write_items", transact_write_items)


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")  # BatchWriteItem: puts/deletes
_DYNAMODB_WRITE_LOCK = threading.RLock()  # re-entrant: a transaction calls put_item/update_item/delete_item


def _serialize_dynamodb_writes(patcher: _Patcher) -> None:
    """dynamodb-atomic-writes: one write at a time, so a write's condition is checked against what it replaces."""
    from moto.dynamodb import models as ddb_models

    backend = ddb_models.DynamoDBBackend
    for name in _DYNAMODB_WRITES:

        def serialized(self: Any, *args: Any, _write: Callable[..., Any] = vars(backend)[name], **kwargs: Any) -> Any:
            with _DYNAMODB_WRITE_LOCK:
                return _write(self, *args, **kwargs)

        patcher.setattr(backend, name, serialized)


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """Only the dynamodb-atomic-writes adaptation, for tests that race triggers against moto in one process."""
    check_moto_version()
    patcher = _Patcher()
    _serialize_dynamodb_writes(patcher)
    try:
        yield
    finally:
        patcher.revert()


# --------------------------------------------------------------------------------------------------------
# Step Functions


def _adapt_step_functions(patcher: _Patcher) -> None:
    from moto.core.config import default_user_config
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service

    # sfn-execute-state-machines
    patcher.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    # sfn-aws-sdk-elbv2
    patcher.setitem(state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES,
                    "elasticloadbalancingv2", "elbv2")

    # sfn-unnamed-executions
    original_start = parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None,
                        trace_header: Any = None) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    patcher.setattr(parser_models.StepFunctionsParserBackend, "start_execution", start_execution)

    # cfn-step-functions-store: the CloudFormation model looks the backend up by this module-level name.
    patcher.setattr(sfn_models, "stepfunctions_backends", parser_models.stepfunctions_parser_backends)


# --------------------------------------------------------------------------------------------------------
# Lambda: the kanaria handlers run in this process


class _ThreadRoutedStdout(io.TextIOBase):
    """sys.stdout replacement: writes from a thread running an in-process Lambda go to that invocation's log."""

    def __init__(self, real: Any):
        self._real = real
        self._local = threading.local()

    @contextlib.contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        buffer = io.StringIO()
        previous = getattr(self._local, "buffer", None)
        self._local.buffer = buffer
        try:
            yield buffer
        finally:
            self._local.buffer = previous

    def retarget(self, real: Any) -> None:
        """Where writes outside an invocation go."""
        if real is not self:
            self._real = real

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self._real).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self._real.flush()

    def isatty(self) -> bool:
        return self._real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._real.fileno()


class FakeLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(self, fn: Any, request_id: str, deadline: float):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.function_arn
        self.memory_limit_in_mb = int(fn.memory_size)
        self.aws_request_id = request_id
        self.log_group_name = fn.logs_group_name
        self.log_stream_name = f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{request_id.replace('-', '')}"
        self.tenant_id = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_INVOKE_LOCK = threading.RLock()
_ADDED_ENVIRONMENT: dict[str, str | None] = {}  # key -> value before the adaptations (None: absent)


def _lambda_environment(fn: Any) -> dict[str, str]:
    return {
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "_HANDLER": str(fn.handler),
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon in the rehearsal
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
    }


def _add_environment_keys(environment: dict[str, str]) -> None:
    for key, value in environment.items():
        if key not in _ADDED_ENVIRONMENT:
            _ADDED_ENVIRONMENT[key] = os.environ.get(key)
        if key not in os.environ:
            os.environ[key] = value


def _restore_environment() -> None:
    for key, value in _ADDED_ENVIRONMENT.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _ADDED_ENVIRONMENT.clear()


def prepare_environment(account_id: str, region: str) -> int:
    """Add every in-process function's environment keys now (before concurrent traffic); returns how many."""
    from moto.awslambda.models import lambda_backends

    with _INVOKE_LOCK:
        count = 0
        for fn in lambda_backends[account_id][region].list_functions():
            if str(fn.handler or "").startswith("kanaria."):
                _add_environment_keys(_lambda_environment(fn))
                count += 1
        return count


def _adapt_lambda(patcher: _Patcher, hooks: Hooks) -> None:
    from moto.awslambda import models as lambda_models

    stdout = _ThreadRoutedStdout(sys.stdout)
    original_invoke = lambda_models.LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if not str(self.handler or "").startswith("kanaria."):
            return original_invoke(self, event)
        return _invoke_in_process(self, event, stdout, hooks)

    patcher.setattr(lambda_models.LambdaFunction, "_invoke_lambda", _invoke_lambda)


def _invoke_in_process(fn: Any, event: Any, stdout: _ThreadRoutedStdout, hooks: Hooks) -> tuple[str, bool, str]:
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    request_id = str(uuid.uuid4())
    module_name, _, attribute = str(fn.handler).rpartition(".")
    environment = _lambda_environment(fn)
    if not _INVOKE_LOCK.acquire(timeout=hooks.invoke_lock_timeout):
        raise AdaptationError(
            f"in-process Lambda {fn.function_name} waited {hooks.invoke_lock_timeout:.0f}s for another invocation "
            "(a function synchronously invoking another through the emulator deadlocks in-process execution)"
        )
    started = time.monotonic()
    record = Invocation(fn.function_name, event)
    try:
        # Other threads (the rehearsal, the SDK building clients) iterate os.environ concurrently: a key removed or
        # added under them fails their iteration. So keys are only ever added once (prepare_environment() adds
        # every function's keys up front) and never removed while the adaptations are applied; between
        # invocations a key keeps the last function's value. revert() removes what was added.
        _add_environment_keys(environment)
        os.environ.update(environment)
        # sys.stdout is the routing proxy while a function runs (test runners swap sys.stdout between phases, so it
        # is installed per invocation); loggers the function creates keep the proxy and stay routed afterwards.
        real_stdout = sys.stdout
        if real_stdout is not stdout:
            stdout.retarget(real_stdout)
            sys.stdout = stdout
        try:
            with stdout.capture() as buffer:
                try:
                    module = importlib.import_module(module_name)
                    handler = getattr(module, attribute)
                    context = FakeLambdaContext(fn, request_id, started + float(fn.timeout))
                    print(f"START RequestId: {request_id} Version: $LATEST")
                    if hooks.before_invoke is not None:
                        hooks.before_invoke(fn.function_name, event)
                    result = handler(event, context)
                    payload = json.dumps(result, default=str)
                except Exception as exc:  # noqa: BLE001 - the function's error, returned like Lambda does
                    record.error = f"{type(exc).__name__}: {exc}"
                    payload = json.dumps({
                        "errorMessage": str(exc),
                        "errorType": type(exc).__name__,
                        "requestId": request_id,
                        "stackTrace": traceback.format_exception(exc)[-6:],
                    })
                    traceback.print_exc(file=buffer)
                seconds = time.monotonic() - started
                if seconds > float(fn.timeout):
                    # The emulator is slower than AWS (every SDK call is an HTTP round trip into moto), so an
                    # over-long run is reported, not failed.
                    record.warning = (f"ran {seconds:.1f}s, over its {float(fn.timeout):.0f}s timeout (in the "
                                      "emulator; AWS would have stopped it)")
                    print(f"WARNING {record.warning}")
                print(f"END RequestId: {request_id}")
                print(f"REPORT RequestId: {request_id}\tDuration: {seconds * 1000:.2f} ms")
        finally:
            sys.stdout = real_stdout
    finally:
        _INVOKE_LOCK.release()
    logs = buffer.getvalue()
    record.seconds = time.monotonic() - started
    record.logs = logs
    if record.error is None:
        record.result = json.loads(payload)
    _extract_emf(logs, fn.account_id, fn.region, hooks)
    fn.logs_backend.ensure_log_group(fn.logs_group_name)  # as moto's docker path does
    fn.save_logs(logs)
    if hooks.on_invoke is not None:
        hooks.on_invoke(record)
    return payload, record.error is not None, logs


def _extract_emf(logs: str, account_id: str, region: str, hooks: Hooks) -> None:
    """lambda-emf-metrics: what CloudWatch Logs does with Embedded Metric Format lines."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    for line in logs.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for namespace, data in emf_metric_data(record, hooks.metric_time() if hooks.metric_time else None):
            for datum in data:
                # moto stores naive UTC timestamps (what its API path produces); an aware one breaks comparisons.
                datum["Timestamp"] = datum["Timestamp"].astimezone(timezone.utc).replace(tzinfo=None)
            backend.put_metric_data(namespace, data)


def emf_metric_data(record: dict[str, Any], timestamp: datetime | None = None) -> list[tuple[str, list[dict[str, Any]]]]:
    """PutMetricData batches equivalent to one EMF record (public for tests)."""
    meta = record.get("_aws") or {}
    when = timestamp or datetime.fromtimestamp(int(meta.get("Timestamp", time.time() * 1000)) / 1000, tz=timezone.utc)
    batches = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace")
        data = []
        for dimension_set in directive.get("Dimensions", [[]]) or [[]]:
            dimensions = [{"Name": d, "Value": str(record[d])} for d in dimension_set if d in record]
            for metric in directive.get("Metrics", []):
                name = metric.get("Name")
                if name not in record:
                    continue
                values = record[name] if isinstance(record[name], list) else [record[name]]
                datum: dict[str, Any] = {"MetricName": name, "Dimensions": dimensions, "Timestamp": when,
                                         "Values": [float(v) for v in values]}
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                data.append(datum)
        if namespace and data:
            batches.append((namespace, data))
    return batches


# --------------------------------------------------------------------------------------------------------
# CloudWatch alarms


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of raw values as a float; None without values.

    CloudWatch computes percentiles from the raw values of a period (approximately, for large sets); the nearest
    rank (kanaria.quantiles) is exact for the sizes the rehearsal produces. Shared by the GetMetricData adaptation
    and the alarm evaluator, so a gate and an alarm reading the same p99 agree.
    """
    value = nearest_rank(values, p)
    return None if value is None else float(value)


_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
_PERCENT_RANK = re.compile(r"^PR\((-?\d*\.?\d*):(-?\d*\.?\d*)\)$")


def percent_rank(values: list[float], low: float | None, high: float | None) -> float | None:
    """CloudWatch's PR(low:high): % of raw values v with low < v <= high (an open side is unbounded)."""
    if not values:
        return None
    inside = sum(1 for v in values if (low is None or v > low) and (high is None or v <= high))
    return 100.0 * inside / len(values)


def _dimension_key(dimensions: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d.name, d.value) for d in dimensions))


def _indexed_metric_data(original: Callable[..., Any]) -> Callable[..., Any]:
    """cloudwatch-metric-index: GetMetricData with the window's datapoints grouped once per call."""
    from collections import defaultdict
    from datetime import timedelta

    from moto.cloudwatch.models import Statistics

    def get_metric_data(self: Any, queries: list[dict[str, Any]], start_time: datetime, end_time: datetime,
                        scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        if not queries or any("MetricStat" not in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        original(self, [], start_time, end_time, scan_by)  # moto's parameter validation
        start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
        groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        by_name: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for datum in self.get_all_metrics():
            if start <= datum.timestamp < end:
                groups[(datum.namespace, datum.name, _dimension_key(datum.dimensions))].append(datum)
                by_name[(datum.namespace, datum.name)].append(datum)
        results = []
        for query in queries:
            stat_spec = query["MetricStat"]
            metric = stat_spec["Metric"]
            namespace, name = metric["Namespace"], metric["MetricName"]
            dims = [_Dim(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
            data = groups.get((namespace, name, _dimension_key(dims)), []) if dims else by_name.get((namespace, name), [])
            if stat_spec.get("Unit"):
                data = [d for d in data if d.unit == stat_spec["Unit"]]
            delta = timedelta(seconds=int(stat_spec["Period"]))
            values, stamps = [], []
            period_start = start
            while period_start <= end:
                in_period = [d for d in data if period_start <= d.timestamp < period_start + delta]
                if in_period:
                    stats = Statistics([stat_spec["Stat"]], period_start)
                    stats.metric_data = in_period
                    values.append(stats.get_statistics_for_type(stat_spec["Stat"]))
                    stamps.append(stats.timestamp)
                period_start += delta
            if scan_by == "TimestampDescending":
                values.reverse()
                stamps.reverse()
            if query.get("ReturnData", True):
                results.append({"id": query["Id"], "label": query.get("Label") or f"{name} {stat_spec['Stat']}",
                                "values": values, "timestamps": stamps, "status_code": "Complete"})
        return results

    return get_metric_data


@dataclass(frozen=True)
class _Dim:
    name: str
    value: str


def _adapt_cloudwatch(patcher: _Patcher) -> None:
    from moto.cloudwatch import models as cw_models
    from moto.cloudwatch import responses

    # cloudwatch-metric-index
    patcher.setattr(cw_models.CloudWatchBackend, "get_metric_data",
                    _indexed_metric_data(cw_models.CloudWatchBackend.get_metric_data))

    # cloudwatch-percentiles
    original_statistic = cw_models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = _PERCENTILE.match(stat or "")
        if match:
            return percentile(self.metric_single_values_list, float(match.group(1)))
        rank = _PERCENT_RANK.match(stat or "")
        if rank:
            low, high = (float(bound) if bound else None for bound in rank.groups())
            return percent_rank(self.metric_single_values_list, low, high)
        return original_statistic(self, stat)

    patcher.setattr(cw_models.Statistics, "get_statistics_for_type", get_statistics_for_type)

    def put_composite_alarm(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.cloudwatch_backend.put_metric_alarm(
            name=self._get_param("AlarmName"), namespace=None, metric_name=None, comparison_operator=None,
            evaluation_periods=None, period=None, threshold=None, statistic=None,
            description=self._get_param("AlarmDescription"), dimensions=[],
            alarm_actions=self._get_param("AlarmActions", []), ok_actions=self._get_param("OKActions", []),
            insufficient_data_actions=self._get_param("InsufficientDataActions", []),
            actions_enabled=self._get_bool_param("ActionsEnabled"), rule=self._get_param("AlarmRule"),
            tags=self._get_param("Tags", []),
        )
        return EmptyResult()

    patcher.setattr(responses.CloudWatchResponse, "put_composite_alarm", put_composite_alarm)


def register_alarm(account_id: str, region: str, alarm: dict[str, Any]) -> None:
    """Make an alarm that CloudFormation skipped visible to DescribeAlarms (CloudFormation property names)."""
    from moto.cloudwatch.models import MetricDataQuery, Metric, MetricStat, cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    queries = []
    for query in alarm.get("Metrics") or []:
        stat = query.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(metric_name=metric.get("MetricName"), namespace=metric.get("Namespace"),
                              dimensions=metric.get("Dimensions", [])),
                period=stat.get("Period"), stat=stat.get("Stat"), unit=stat.get("Unit"),
            )
        queries.append(MetricDataQuery(query_id=query.get("Id"), label=query.get("Label"), period=query.get("Period"),
                                       return_data=query.get("ReturnData"), expression=query.get("Expression"),
                                       metric_stat=metric_stat))
    backend.put_metric_alarm(
        name=alarm["AlarmName"], namespace=alarm.get("Namespace"), metric_name=alarm.get("MetricName"),
        metric_data_queries=queries or None, comparison_operator=alarm.get("ComparisonOperator"),
        evaluation_periods=alarm.get("EvaluationPeriods"), datapoints_to_alarm=alarm.get("DatapointsToAlarm"),
        period=alarm.get("Period"), threshold=alarm.get("Threshold"), statistic=alarm.get("Statistic"),
        extended_statistic=alarm.get("ExtendedStatistic"), description=alarm.get("AlarmDescription"),
        dimensions=alarm.get("Dimensions", []), alarm_actions=alarm.get("AlarmActions", []),
        ok_actions=alarm.get("OKActions", []), insufficient_data_actions=alarm.get("InsufficientDataActions", []),
        unit=alarm.get("Unit"), actions_enabled=alarm.get("ActionsEnabled", True),
        treat_missing_data=alarm.get("TreatMissingData"), rule=alarm.get("AlarmRule"),
    )
    stored = backend.alarms[alarm["AlarmName"]]
    stored.state_value = "INSUFFICIENT_DATA"
    stored.state_reason = "Unchecked: Initial alarm creation"


def record_alarm_state(account_id: str, region: str, name: str, state: str, reason: str, reason_data: dict[str, Any],
                       when: datetime) -> dict[str, Any] | None:
    """Write an evaluated state into moto's alarm (history included); returns the alarm's description."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account_id][region].alarms.get(name)
    if alarm is None:
        return None
    alarm.update_state(reason, json.dumps(reason_data, default=str), state)
    alarm.state_updated_timestamp = when
    return {"actions_enabled": bool(alarm.actions_enabled), "arn": alarm.alarm_arn}


def alarm_actions_enabled(account_id: str, region: str, name: str) -> bool:
    """Whether the alarm's actions are enabled (DisableAlarmActions is honoured)."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[account_id][region].alarms.get(name)
    return bool(alarm is None or alarm.actions_enabled)


def metric_datums(account_id: str, region: str, start: int = 0) -> tuple[list[Any], int]:
    """moto's stored metric data from index `start` on (the evaluator reads it incrementally) and the new end."""
    from moto.cloudwatch.models import cloudwatch_backends

    data = cloudwatch_backends[account_id][region].metric_data
    end = len(data)
    return data[start:end], end


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


def encode_log_result(logs: str) -> str:
    """Base64 tail of a log as Lambda returns it with LogType=Tail (public for the runner)."""
    return base64.b64encode(logs[-4096:].encode("utf-8")).decode("ascii")


__all__ = [
    "ADAPTATIONS", "Adaptation", "AdaptationError", "Applied", "FakeLambdaContext", "Hooks", "Invocation",
    "MOTO_VERSION", "active", "alarm_actions_enabled", "apply", "check_moto_version", "emf_metric_data",
    "metric_datums", "port_is_free", "record_alarm_state", "register_alarm", "start_server",
]
