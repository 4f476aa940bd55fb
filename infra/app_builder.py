"""Composes the Kanaria stacks and the synth-time gates (cdk-nag AwsSolutions as a validation plugin)."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from infra.stacks.evaluation_stack import add_evaluation_stacks
from infra.stacks.experiments_stack import ExperimentsStack
from infra.stacks.observations_stack import add_observations_stacks
from infra.stacks.rollout_stack import add_rollout_stacks


def build_app(app: cdk.App) -> dict[str, cdk.Stack]:
    """Add every stack to `app` (explicit account/region from context: no lookups) and the nag plugin."""
    settings = Settings.from_node(app.node)
    if settings.availability_zones:
        # given AZs stand in for CDK's lookup (the VPC checks its zones against the stack's), so synth stays offline
        app.node.set_context(settings.availability_zones_context_key, list(settings.availability_zones))
    env = cdk.Environment(account=settings.account, region=settings.region)
    data = DataStack(app, "KanariaData", settings=settings, env=env)
    experiments = ExperimentsStack(app, "KanariaExperiments", settings=settings, data=data, env=env)
    stacks: dict[str, cdk.Stack] = {"data": data, "experiments": experiments}
    for add_stacks in (add_observations_stacks, add_rollout_stacks, add_evaluation_stacks):
        stacks.update(add_stacks(app, settings=settings, env=env, stacks=stacks))
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "kanaria")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
