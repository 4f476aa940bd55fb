"""SNS alerts and Step Functions execution control for rollouts."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


class SnsNotifier:
    """Notifier on the on-call alert topic."""

    def __init__(self, topic_arn: str, client: Any | None = None):
        self._topic_arn = topic_arn
        self._client = client or boto3.client("sns")

    def publish(self, subject: str, message: str) -> None:
        """One message (subject <= 100 chars, as SNS requires)."""
        self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=message)


class SfnExecutions:
    """Executions on Step Functions."""

    def __init__(self, client: Any | None = None):
        self._client = client or boto3.client("stepfunctions")

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """Stop a running execution; False when it is not running (finished, or unknown)."""
        try:
            status = self._client.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return False
            raise
        if status != "RUNNING":
            return False
        self._client.stop_execution(executionArn=execution_arn, error=error, cause=cause)
        return True
