"""SNS alerts and Step Functions execution control for rollouts."""

from __future__ import annotations

import json
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

    def status(self, execution_arn: str) -> str | None:
        """The execution's status, or None when Step Functions does not know it."""
        try:
            return self._client.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"ExecutionDoesNotExist", "InvalidArn"}:
                return None
            raise

    def stop(self, execution_arn: str, error: str, cause: str) -> bool:
        """Stop a running execution; False when it is not running (finished, or unknown)."""
        if self.status(execution_arn) != "RUNNING":
            return False
        self._client.stop_execution(executionArn=execution_arn, error=error, cause=cause)
        return True


class SqsFailedInvocations:
    """FailedInvocations on the rollback-failures queue (the rollback function's on-failure destination)."""

    def __init__(self, queue_url: str, client: Any | None = None, max_batches: int = 10):
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")
        self._max_batches = max_batches

    def receive(self) -> list[tuple[str, Any]]:
        """Up to max_batches x 10 waiting records: (receipt handle, decoded body; the raw text when not JSON)."""
        received: list[tuple[str, Any]] = []
        for _ in range(self._max_batches):
            messages = self._client.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, VisibilityTimeout=120
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    body: Any = json.loads(message["Body"])
                except ValueError:
                    body = message["Body"]
                received.append((message["ReceiptHandle"], body))
        return received

    def delete(self, receipt: str) -> None:
        """Forget a record once on-call has been paged with it."""
        self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
