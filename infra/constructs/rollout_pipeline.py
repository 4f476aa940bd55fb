"""CodePipeline that starts a canary rollout from a request object and fails when the rollout does.

Source: the S3 object ROLLOUT_REQUEST_OBJECT_KEY (a ZIP holding ROLLOUT_REQUEST_FILE: candidate + plan) in a
versioned, KMS-encrypted bucket; an EventBridge rule on "Object Created" for that key starts the pipeline (no
polling, no CloudTrail trail needed). Invoke: Step Functions with the file as the execution input. The action
waits for the execution and fails when it ends FAILED/TIMED_OUT/ABORTED, i.e. when the rollout rolled back.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.log_bucket import build_log_bucket
from infra.nag import acknowledge_all, checkov_skip
from kanaria import names

SOURCE_ACTION = "RolloutRequest"
INVOKE_ACTION = "StartRollout"
EXECUTION_NAME_PREFIX = "pipeline"

_S3_GRANT_ACTIONS = tuple(
    (
        f"AwsSolutions-IAM5[Action::{action}]",
        f"{action} is the CDK bucket grant's action family, on the pipeline's two buckets only",
    )
    for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
)


class RolloutPipeline(Construct):
    """`self.request_bucket`, `self.artifact_bucket`, `self.pipeline` and the trigger rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        key: kms.IKey,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        # Server access log delivery through a bucket policy, not the legacy LogDeliveryWrite ACL (set here so
        # that it holds whether or not cdk.json is read, e.g. in tests).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        stack = Stack.of(self)
        self.server_access_logs = self._build_server_access_logs_bucket()
        self.request_bucket = self._build_bucket(
            "RequestBucket",
            key,
            bucket_name=names.rollout_request_bucket_name(prefix, stack.account, stack.region),
            versioned=True,
            event_bridge_enabled=True,
        )
        self.artifact_bucket = self._build_bucket("ArtifactBucket", key, versioned=False)
        checkov_skip(
            self.artifact_bucket,
            "CKV_AWS_21",
            "CodePipeline's artifact store: each execution writes new "
            "artifacts under generated keys from the versioned request bucket (the record that matters), and "
            "they expire after 90 days; nothing here is overwritten or needs an old version",
        )
        self.pipeline = self._build_pipeline(prefix, state_machine)
        self.trigger = self._build_trigger()

    def _build_server_access_logs_bucket(self) -> s3.Bucket:
        return build_log_bucket(
            self,
            "ServerAccessLogs",
            expiration=Duration.days(90),
            receives="the pipeline buckets' S3 server access logs",
        )

    def _build_bucket(
        self,
        construct_id: str,
        key: kms.IKey,
        *,
        versioned: bool,
        bucket_name: str | None = None,
        event_bridge_enabled: bool = False,
    ) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            construct_id,
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=versioned,  # the S3 source action requires a versioned bucket
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.server_access_logs,
            server_access_logs_prefix=f"{construct_id}/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))]
            if versioned
            else [s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        if event_bridge_enabled:
            # Native CloudFormation property: Bucket(event_bridge_enabled=True) would add a custom-resource Lambda.
            cfn_bucket = bucket.node.default_child
            assert isinstance(cfn_bucket, s3.CfnBucket)
            cfn_bucket.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )
        return bucket

    def _build_pipeline(self, prefix: str, state_machine: sfn.IStateMachine) -> codepipeline.Pipeline:
        pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=names.rollout_pipeline_name(prefix),
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=codepipeline.ExecutionMode.QUEUED,  # one rollout at a time, in request order
            artifact_bucket=self.artifact_bucket,
            restart_execution_on_update=False,
            stages=self._stages(state_machine),
        )
        self._acknowledge_pipeline(pipeline, state_machine)
        return pipeline

    def _stages(self, state_machine: sfn.IStateMachine) -> list[codepipeline.StageProps]:
        """Request (the S3 object, started by the EventBridge rule), then Rollout (the state machine on it)."""
        source_output = codepipeline.Artifact("RolloutRequest")
        return [
            codepipeline.StageProps(
                stage_name="Request",
                actions=[
                    actions.S3SourceAction(
                        action_name=SOURCE_ACTION,
                        bucket=self.request_bucket,
                        bucket_key=names.ROLLOUT_REQUEST_OBJECT_KEY,
                        output=source_output,
                        trigger=actions.S3Trigger.NONE,  # started by the EventBridge rule below
                    ),
                ],
            ),
            codepipeline.StageProps(
                stage_name="Rollout",
                actions=[
                    actions.StepFunctionInvokeAction(
                        action_name=INVOKE_ACTION,
                        state_machine=state_machine,
                        state_machine_input=actions.StateMachineInput.file_path(
                            source_output.at_path(names.ROLLOUT_REQUEST_FILE)
                        ),
                        execution_name_prefix=EXECUTION_NAME_PREFIX,
                    ),
                ],
            ),
        ]

    def _acknowledge_pipeline(self, pipeline: codepipeline.Pipeline, state_machine: sfn.IStateMachine) -> None:
        stack = Stack.of(self)
        artifact_bucket_id = stack.get_logical_id(self.artifact_bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge_all(
            pipeline,
            _S3_GRANT_ACTIONS
            + (
                (
                    f"AwsSolutions-IAM5[Resource::<{artifact_bucket_id}.Arn>/*]",
                    "Objects of the pipeline's own artifact bucket: artifact keys are generated per execution",
                ),
                (
                    f"AwsSolutions-IAM5[Resource::{_nag_executions(stack, state_machine)}]",
                    "Executions this pipeline starts (name prefix 'pipeline') of the one rollout state machine",
                ),
                (
                    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
                    "kms:ReEncrypt* is the CDK bucket grant's action family on the single Kanaria key ARN",
                ),
                (
                    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                    "kms:GenerateDataKey* is the CDK bucket grant's action family on the single Kanaria key ARN",
                ),
            ),
        )

    def _build_trigger(self) -> events.Rule:
        return events.Rule(
            self,
            "OnRequest",
            description="Start the canary rollout pipeline when a rollout request is uploaded",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.request_bucket.bucket_name]},
                    "object": {"key": [names.ROLLOUT_REQUEST_OBJECT_KEY]},
                },
            ),
            targets=[targets.CodePipeline(self.pipeline)],
        )


def _nag_executions(stack: Stack, state_machine: sfn.IStateMachine) -> str:
    """cdk-nag's rendering of the action role's execution ARN (CDK splits the state machine's ARN token)."""
    ref = {"Ref": stack.get_logical_id(state_machine.node.default_child)}  # type: ignore[arg-type]

    def part(index: int) -> str:
        return json.dumps({"Fn::Select": [index, {"Fn::Split": [":", ref]}]}, separators=(",", ":"))

    return f"arn:{part(1)}:states:{part(3)}:{part(4)}:execution:{part(6)}:{EXECUTION_NAME_PREFIX}*"
