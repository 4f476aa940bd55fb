"""What makes the alarm-triggered rollback impossible to lose (docs/rollouts.md, "Rollback guarantees").

* The rollback function's asynchronous invocations (the critical alarm's action, the execution-status rule) are
  retried twice by Lambda; one that still fails goes to an encrypted SQS queue (on-failure destination) instead of
  being dropped.
* The reconciler runs every minute (EventBridge schedule): it pages on-call with each failed invocation in that
  queue (rollout id, error, the event) and rolls back a rollout whose canary still has traffic while the critical
  alarm is in ALARM or its execution has ended, through the same rollback logic (lock + record: idempotent).
* An EventBridge rule on the rollout state machine's executions ending ABORTED/FAILED/TIMED_OUT invokes the
  rollback function (a console StopExecution, States.Runtime, States.DataLimitExceeded leave no Catch to run).
* The reconciler's own failures raise an alarm that pages.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from kanaria import names

ASYNC_RETRY_ATTEMPTS = 2  # Lambda's maximum: three attempts in all (about 0, +1 min, +2 min later)
ASYNC_MAX_EVENT_AGE = Duration.hours(1)
ENDED_STATUSES = ("ABORTED", "FAILED", "TIMED_OUT")


def build_failures_queue(scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey) -> sqs.Queue:
    """The rollback function's on-failure destination: KMS-encrypted, TLS-only, kept 14 days."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=names.rollback_failures_queue_name(prefix),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        visibility_timeout=Duration.minutes(2),
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself the dead-letter (on-failure) destination of the "
        "rollback function; the reconciler deletes a record only after paging on-call with it",
    )
    return queue


class RollbackSafetyNet(Construct):
    """Async retries + on-failure queue for `rollback`, the reconciler's schedule, the execution-status rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        rollback: lambda_.Function,
        reconciler: lambda_.Function,
        failures_queue: sqs.IQueue,
        state_machine_arn: str,
        alerts_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.async_config = rollback.configure_async_invoke(
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(failures_queue),
        )
        failures_queue.grant_consume_messages(reconciler)
        self.schedule = events.Rule(
            self,
            "Schedule",
            rule_name=f"{prefix}-rollout-reconciler",
            description="Kanaria rollout reconciler: roll back a canary left with traffic; page failed rollbacks",
            schedule=events.Schedule.rate(Duration.minutes(names.RECONCILE_EVERY_MINUTES)),
            targets=[targets.LambdaFunction(reconciler, retry_attempts=0)],  # the next minute is the retry
        )
        self.execution_ended = events.Rule(
            self,
            "ExecutionEnded",
            rule_name=f"{prefix}-rollout-execution-ended",
            description="A rollout execution ended ABORTED/FAILED/TIMED_OUT: roll back if it still holds the listener",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine_arn], "status": list(ENDED_STATUSES)},
            ),
            targets=[targets.LambdaFunction(rollback, retry_attempts=4, max_event_age=Duration.hours(1))],
        )
        self.reconciler_errors = cw.Alarm(
            self,
            "ReconcilerErrors",
            alarm_name=f"{prefix}-rollout-reconciler-errors",
            alarm_description="The rollout reconciler failed 3 minutes in a row: stranded canaries are not rolled "
            "back automatically; see its logs",
            metric=reconciler.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.reconciler_errors.add_alarm_action(cw_actions.SnsAction(alerts_topic))
