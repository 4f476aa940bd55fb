"""The canary rollout state machine: STANDARD, ASL from state_machines/, logging of every event (without the
execution data: task token, warm-up headers) to an encrypted log group,
X-Ray tracing, and a role that may only invoke the two rollout functions and publish to the alerts topic."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge

ROOT = Path(__file__).resolve().parents[2]
DEFINITION_FILE = ROOT / "state_machines" / "canary_rollout.asl.json"

# ${...} placeholders the ASL uses (contract with the rollout code); CloudFormation substitutes them at deploy.
SUB_ROLLOUT_STEPS_ARN = "RolloutStepsFunctionArn"
SUB_ROLLBACK_ARN = "RollbackFunctionArn"
SUB_ALERTS_TOPIC_ARN = "AlertsTopicArn"

_RESOURCE_STAR_REASON = (
    "Resource * only on what Step Functions needs for its own telemetry: X-Ray PutTraceSegments/"
    "PutTelemetryRecords/GetSampling* and CloudWatch Logs vended log delivery (*LogDelivery*, "
    "Put/DescribeResourcePolicies, DescribeLogGroups), none of which support resource-level permissions"
)


class RolloutStateMachine(Construct):
    """`self.state_machine` built from the ASL file with the three definition substitutions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        definition_file: Path,
        rollout_steps: lambda_.IFunction,
        rollback: lambda_.IFunction,
        alerts_topic: sns.ITopic,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = self._build_role(name, rollout_steps, rollback, alerts_topic, key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline (DefinitionString), not DefinitionBody.from_file: from_file uploads the ASL as an asset and
            # deploys it as DefinitionS3Location, which template assertions cannot read and moto ignores.
            definition_body=sfn.DefinitionBody.from_string(definition_file.read_text(encoding="utf-8")),
            definition_substitutions={
                SUB_ROLLOUT_STEPS_ARN: rollout_steps.function_arn,
                SUB_ROLLBACK_ARN: rollback.function_arn,
                SUB_ALERTS_TOPIC_ARN: alerts_topic.topic_arn,
            },
            role=self.role,
            # Every state transition is logged, but not the state itself: it carries the approval task token (which
            # approves the promotion) and the warm-up request's headers (possibly an Authorization header). The
            # execution history (IAM-protected, states:GetExecutionHistory) still shows them to operators.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]", _RESOURCE_STAR_REASON)

    def _build_role(
        self,
        name: str,
        rollout_steps: lambda_.IFunction,
        rollback: lambda_.IFunction,
        alerts_topic: sns.ITopic,
        key: kms.IKey,
    ) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"{name}: invoke the two rollout functions, publish alerts",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeRolloutFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[rollout_steps.function_arn, rollback.function_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishAlerts",
                actions=["sns:Publish"],
                resources=[alerts_topic.topic_arn],
            )
        )
        # The alerts topic is SSE-KMS: publishing needs a data key from the Kanaria key.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptAlerts",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
            )
        )
        return role
