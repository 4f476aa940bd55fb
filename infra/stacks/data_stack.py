"""Shared state: the encryption key, the tables and the on-call alert topic."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.tables import KanariaTables
from infra.settings import Settings


class DataStack(Stack):
    """KMS key, DynamoDB tables and the SNS topic every other stack writes to."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = self._build_key(settings)
        self.tables = KanariaTables(self, "Tables", prefix=settings.prefix, key=self.key).by_kind
        self.alerts_topic = self._build_alerts_topic(settings)
        CfnOutput(
            self,
            "AlertsTopicArn",
            value=self.alerts_topic.topic_arn,
            description="On-call: canary alarms, rollbacks, SRM pauses (subscribe with kanaria:alarmEmail or SNS)",
        )

    def _build_key(self, settings: Settings) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            alias=f"alias/{settings.prefix}",
            description="Kanaria data at rest: tables, logs, alert topic",
            enable_key_rotation=True,
        )
        # CloudWatch Logs encrypts the Lambda log groups with this key; scoped to this account's log groups.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{self.region}:{self.account}:log-group:*"
                    }
                },
            )
        )
        # CloudWatch alarms publish to the encrypted alert topic.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        return key

    def _build_alerts_topic(self, settings: Settings) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlertsTopic",
            topic_name=f"{settings.prefix}-alerts",
            display_name="Kanaria on-call alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        return topic
