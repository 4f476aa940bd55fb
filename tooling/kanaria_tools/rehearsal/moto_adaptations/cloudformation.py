"""CloudFormation: the resource types, properties and failure behaviour the CDK app needs from moto's
CloudFormation, the weighted ELBv2 listeners it creates, and Fn::GetAtt of deployed resources."""

from __future__ import annotations

import json
import re
from typing import Any

from kanaria_tools.rehearsal.moto_adaptations.catalogue import AdaptationError
from kanaria_tools.rehearsal.moto_adaptations.cfn_models import EXTRA_MODELS
from kanaria_tools.rehearsal.moto_adaptations.elbv2 import _adapt_elbv2
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


def _adapt_cloudformation(patcher: Patcher) -> None:
    # cfn-resource-tags, cfn-dynamodb-global-table, cfn-alb-forward-config
    _adapt_parsing(patcher)
    _adapt_elbv2(patcher)
    _adapt_change_sets(patcher)


def _adapt_parsing(patcher: Patcher) -> None:
    """The extra resource models, and the properties normalized as CloudFormation reads them."""
    from moto.cloudformation import parsing

    original_class_from_type = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type in EXTRA_MODELS:
            return EXTRA_MODELS[resource_type]
        return original_class_from_type(resource_type)

    patcher.setattr(parsing, "resource_class_from_type", resource_class_from_type)
    original_name_property = parsing.resource_name_property_from_type

    def resource_name_property_from_type(resource_type: str) -> str | None:
        if resource_type in EXTRA_MODELS:
            return EXTRA_MODELS[resource_type].cloudformation_name_type() or None
        return original_name_property(resource_type)

    patcher.setattr(parsing, "resource_name_property_from_type", resource_name_property_from_type)

    original_parse_resource = parsing.parse_resource

    def parse_resource(resource_json: dict[str, Any], resources_map: Any) -> Any:
        parsed = original_parse_resource(resource_json, resources_map)
        if parsed:
            _normalized_properties(parsed[2], parsed[1].get("Properties") or {})
        return parsed

    patcher.setattr(parsing, "parse_resource", parse_resource)


def _fail_change_set(change_set: Any, exc: Exception, template_resources: dict[str, Any]) -> _ChangeSetFailed:
    """The failing resource reported in the stack's events and the stack rolled back, as CloudFormation does."""
    failed = _failed_resource(exc, template_resources)
    reason = f"{type(exc).__name__}: {exc}"
    stack = change_set.stack
    stack._add_stack_event(
        "CREATE_FAILED" if change_set.change_set_type == "CREATE" else "UPDATE_FAILED",
        resource_status_reason=f"{failed}: {reason}",
    )
    event = stack.events[-1]
    logical, rtype = failed.split(" ", 1) if " " in failed else (failed, "")
    event.logical_resource_id = logical
    event.resource_type = rtype.strip("()") or "AWS::CloudFormation::Stack"
    final = "ROLLBACK_COMPLETE" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event(final, resource_status_reason=f"The following resource(s) failed: [{logical}]. {reason}")
    change_set.failure = (final, f"{failed}: {reason}")
    return _ChangeSetFailed(final, f"{failed}: {reason}")


def _executed_outputs(backend: Any, change_set: Any) -> None:
    """cfn-change-set-outputs: the stack's Outputs and Exports from the executed template (moto keeps the empty
    one); an output that cannot be resolved fails the stack, as in AWS."""
    stack = change_set.stack
    try:
        stack.template_dict = change_set.template_dict
        stack.output_map = stack._create_output_map()
        for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
            del backend.exports[name]
        backend._validate_export_uniqueness(stack)
        for export in stack.exports:
            backend.exports[export.name] = export
    except Exception as exc:  # noqa: BLE001 - an output that cannot be resolved fails the stack, as in AWS
        reason = f"Outputs: {type(exc).__name__}: {exc}"
        final = "ROLLBACK_COMPLETE" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
        stack._add_stack_event(final, resource_status_reason=reason)
        change_set.execution_status = "EXECUTE_FAILED"
        stack.status = final
        stack.stack_status_reason = reason


def _adapt_change_sets(patcher: Patcher) -> None:
    from moto.cloudformation import models as cfn_models

    # cfn-change-set-failures: the failing resource is reported and the stack rolled back (as AWS does).
    original_apply = cfn_models.ChangeSet.apply

    def apply_change_set(self: Any) -> None:
        template_resources = (self.template_dict or {}).get("Resources", {})
        try:
            original_apply(self)
        except Exception as exc:  # noqa: BLE001 - becomes the stack's failure, like CloudFormation
            raise _fail_change_set(self, exc, template_resources) from exc

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
        # ... and the stack's Outputs and Exports come from the executed template.
        _executed_outputs(self, change_set)

    patcher.setattr(cfn_models.CloudFormationBackend, "execute_change_set", execute_change_set)


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
