"""Canary rollouts: weighted ALB listener (existing or demo), rollout functions, state machine, canary alarms,
the pipeline that starts a rollout from a request object, and the rollout dashboard.

Two stacks: KanariaCanaryAlb (only when no kanaria:listenerArn is given) and KanariaRollout. Keeping the demo ALB
apart lets an environment that cannot host it (a real ALB elsewhere, the local rehearsal) deploy the rollout
machinery alone against listener/target-group ARNs passed as context.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Stack
from constructs import Construct

from infra.constructs.canary_alarms import CanaryAlarms
from infra.constructs.demo_alb import CanaryListener, DemoAlb
from infra.constructs.rollback_safety_net import RollbackSafetyNet, build_failures_queue
from infra.constructs.rollout_dashboard import RolloutDashboard
from infra.constructs.rollout_functions import RolloutFunctions
from infra.constructs.rollout_pipeline import RolloutPipeline
from infra.constructs.rollout_state_machine import DEFINITION_FILE, RolloutStateMachine
from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from infra.stacks.experiments_stack import ExperimentsStack
from kanaria import names


class CanaryAlbStack(Stack):
    """A small demo ALB whose listener the rollout shifts weights on."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, data: DataStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alb = DemoAlb(
            self, "DemoAlb", prefix=settings.prefix, key=data.key, certificate_arn=settings.demo_certificate_arn
        )
        self.listener = self.alb.refs
        scheme = "https" if settings.demo_certificate_arn else "http"
        cdk.CfnOutput(self, "DemoUrl", value=f"{scheme}://{self.alb.load_balancer.load_balancer_dns_name}/")


class RolloutStack(Stack):
    """Everything a rollout runs on, for one listener and its primary/canary target groups."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        experiments: ExperimentsStack,
        listener: CanaryListener,
        definition_file: Path = DEFINITION_FILE,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix = settings.prefix
        state_machine_name = names.rollout_state_machine_name(prefix)
        self.rollback_failures = build_failures_queue(self, "RollbackFailures", prefix=prefix, key=data.key)
        self.functions = RolloutFunctions(
            self,
            "Functions",
            prefix=prefix,
            data=data,
            runtime_layer=experiments.runtime_layer,
            listener=listener,
            state_machine_name=state_machine_name,
            alarm_names=_alarm_names(prefix),
            allow_offline_evaluation=settings.allow_offline_evaluation,
            reserve_concurrency=settings.reserved_concurrency,
            rollback_failures_queue_url=self.rollback_failures.queue_url,
        )
        self.state_machine = RolloutStateMachine(
            self,
            "Rollout",
            name=state_machine_name,
            definition_file=definition_file,
            rollout_steps=self.functions.rollout_steps,
            rollback=self.functions.rollback,
            alerts_topic=data.alerts_topic,
            key=data.key,
        ).state_machine
        self.alarms = CanaryAlarms(
            self,
            "CanaryAlarms",
            prefix=prefix,
            listener=listener,
            rollback_function=self.functions.rollback,
            alerts_topic=data.alerts_topic,
        )
        self.safety_net = self._build_safety_net(prefix, data)
        self.pipeline = RolloutPipeline(self, "Pipeline", prefix=prefix, key=data.key, state_machine=self.state_machine)
        self.dashboard = RolloutDashboard(self, "Dashboard", prefix=prefix, alarms=self.alarms)
        cdk.CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "RolloutRequestBucket", value=self.pipeline.request_bucket.bucket_name)

    def _build_safety_net(self, prefix: str, data: DataStack) -> RollbackSafetyNet:
        return RollbackSafetyNet(
            self,
            "RollbackSafetyNet",
            prefix=prefix,
            rollback=self.functions.rollback,
            reconciler=self.functions.reconciler,
            failures_queue=self.rollback_failures,
            state_machine_arn=self.functions.state_machine_arn,
            alerts_topic=data.alerts_topic,
        )


def _alarm_names(prefix: str) -> dict[str, str]:
    """The name of every canary alarm the rollout functions read, by kind."""
    return {
        kind: names.alarm_name(prefix, kind)
        for kind in (
            *names.CRITICAL_ALARM_KINDS,
            *names.WARNING_ALARM_KINDS,
            names.ALARM_CANARY_CRITICAL,
            names.ALARM_CANARY_WARNING,
        )
    }


def add_rollout_stacks(
    app: cdk.App, *, settings: Settings, env: cdk.Environment, stacks: dict[str, Stack]
) -> dict[str, Stack]:
    """KanariaRollout, plus KanariaCanaryAlb when no existing listener is given by context.

    A missing rollout definition (ASL) fails the synth: it is part of the app, never skipped.
    """
    definition_file = _definition_file(app)
    if not definition_file.is_file():
        raise FileNotFoundError(
            f"rollout state machine definition {definition_file} not found (context kanaria:rolloutDefinition "
            f"overrides the default {DEFINITION_FILE})"
        )
    data = stacks["data"]
    experiments = stacks["experiments"]
    assert isinstance(data, DataStack) and isinstance(experiments, ExperimentsStack)
    added: dict[str, Stack] = {}
    existing = (settings.listener_arn, settings.primary_target_group_arn, settings.canary_target_group_arn)
    if any(existing):
        if not all(existing):
            raise ValueError(
                "kanaria:listenerArn, kanaria:primaryTargetGroupArn and kanaria:canaryTargetGroupArn go together"
            )
        listener = CanaryListener.from_arns(*existing)
    else:
        alb_stack = CanaryAlbStack(app, "KanariaCanaryAlb", settings=settings, data=data, env=env)
        listener = alb_stack.listener
        added["canary_alb"] = alb_stack
    added["rollout"] = RolloutStack(
        app,
        "KanariaRollout",
        settings=settings,
        data=data,
        experiments=experiments,
        listener=listener,
        definition_file=definition_file,
        env=env,
    )
    return added


def _definition_file(app: cdk.App) -> Path:
    """The rollout ASL; `kanaria:rolloutDefinition` (a path) overrides it for experiments with another definition."""
    override = app.node.try_get_context("kanaria:rolloutDefinition")
    return Path(str(override)) if override else DEFINITION_FILE
