"""Elastic Load Balancing v2: CloudFormation listeners with weighted forward actions, and the load balancer and
target group attributes the CDK app reads with Fn::GetAtt."""

from __future__ import annotations

import copy
from typing import Any

from kanaria_tools.rehearsal.moto_adaptations.patching import Patcher


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
