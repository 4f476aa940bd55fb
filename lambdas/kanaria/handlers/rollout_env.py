"""Environment of the rollout functions (rollout-steps, rollback, reconciler), validated once at cold start."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache, partial

from kanaria.handlers.env import RolloutEnvironment, load_environment


@cache
def rollout_environment() -> RolloutEnvironment:
    """Parsed once per execution environment; a missing variable is named in the error."""
    return load_environment(RolloutEnvironment)


def utc_now() -> datetime:
    """The rollout clock."""
    return datetime.now(timezone.utc)


@cache
def rollout_services():  # -> RolloutServices (imports kept lazy: boto3 clients are created on first use)
    """Every dependency of the rollout steps and the rollback, built from the environment."""
    from kanaria.dal.canary_metrics import CloudWatchCanaryReader
    from kanaria.dal.elb import ElbListenerGateway
    from kanaria.dal.evaluations import latest_for
    from kanaria.dal.experiment_store import DynamoExperimentRepository
    from kanaria.dal.messaging import SfnExecutions, SnsNotifier
    from kanaria.dal.metrics import CloudWatchMetricsReader
    from kanaria.dal.observations import DynamoAnalysisResults
    from kanaria.dal.rollouts import DynamoRolloutStore
    from kanaria.dal.warmup import HttpWarmupSender
    from kanaria.logic.rollout_services import RolloutServices

    env = rollout_environment()
    return RolloutServices(
        store=DynamoRolloutStore(env.rollouts_table),
        listener=ElbListenerGateway(),
        metrics=CloudWatchMetricsReader(
            env.metric_namespace,
            env.critical_alarm_name,
            env.warning_alarm_name,
            child_alarms=[n for n in env.canary_alarm_names.split(",") if n],
        ),
        canary=CloudWatchCanaryReader(env.metric_namespace),
        notifier=SnsNotifier(env.alerts_topic_arn),
        executions=SfnExecutions(),
        clock=utc_now,
        analysis=DynamoAnalysisResults(env.aggregates_table) if env.aggregates_table else None,
        experiments=DynamoExperimentRepository(env.experiments_table),
        warmup=HttpWarmupSender(env.warmup_parameter_prefix),
        evaluations=partial(latest_for, table=env.evaluations_table) if env.evaluations_table else None,
        allow_offline_evaluation=env.allow_offline_evaluation,
    )


@cache
def deployment():  # -> Deployment
    """The listener and target groups this deployment shifts traffic between."""
    from kanaria.logic.rollout_services import Deployment

    env = rollout_environment()
    others = tuple(arn.strip() for arn in env.other_canary_target_groups.split(",") if arn.strip())
    return Deployment(env.listener_arn, env.primary_target_group_arn, env.canary_target_group_arn, others)


@cache
def failed_invocations():  # -> SqsFailedInvocations | None
    """The rollback function's on-failure destination queue (the reconciler drains it), when configured."""
    from kanaria.dal.messaging import SqsFailedInvocations

    url = rollout_environment().rollback_failures_queue_url
    return SqsFailedInvocations(url) if url else None
