"""The on-call subscriber: an SQS queue subscribed to the alerts topic, read as a pager would be."""

from __future__ import annotations

import json
from typing import Any

from kanaria_tools.rehearsal.alert_text import alert_summary
from kanaria_tools.rehearsal.context import RunContext


class OnCall:
    """Receives what the deployed stacks publish to the alerts topic; records it in the result."""

    def __init__(self, ctx: RunContext, sqs: Any, queue_url: str):
        self._ctx = ctx
        self._sqs = sqs
        self._queue_url = queue_url

    @classmethod
    def subscribe(cls, ctx: RunContext, topic_arn: str) -> "OnCall":
        """A queue subscribed to `topic_arn`."""
        sqs, sns = ctx.client("sqs"), ctx.client("sns")
        queue_url = sqs.create_queue(QueueName=f"{ctx.prefix}-rehearsal-oncall")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        ctx.progress.line(
            f"on-call subscriber: SQS queue {queue_arn.rsplit(':', 1)[1]} subscribed to {topic_arn.rsplit(':', 1)[1]}"
        )
        return cls(ctx, sqs, queue_url)

    def poll(self) -> list[tuple[float, str, str]]:
        """The alerts received since the last poll, (scenario seconds, subject, body), also in the result."""
        received = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                received.append(self._receive(message))
        return received

    def _receive(self, message: dict[str, Any]) -> tuple[float, str, str]:
        ctx = self._ctx
        envelope = json.loads(message["Body"])
        subject, body = envelope.get("Subject") or "", envelope.get("Message") or ""
        at = ctx.clock.now()
        ctx.result.alerts.append((at, subject, body))
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        ctx.progress.line(f"ON-CALL ALERT  {subject}", at=at)
        for line in alert_summary(body):
            ctx.progress.line(f"    {line}")
        return at, subject, body
