"""The alarm evaluator's view of the deployed stacks: references resolved against them (the alarms moto does
not create) and the actions of a transition (Lambda invoked asynchronously, SNS published), as AWS runs them."""

from __future__ import annotations

import threading
from typing import Any

from kanaria.errors import OperationalError


class StackResolver:
    """References of the deployed stacks, for the alarm definitions moto did not create."""

    def __init__(self, deployment: Any, cfn: Any, account: str, region: str):
        self._deployment = deployment
        self._cfn = cfn
        self._account = account
        self._region = region
        self._exports: dict[str, str] | None = None

    def ref(self, stack: str, logical_id: str) -> Any:
        value = self._deployment.stacks[stack].resources.get(logical_id)
        if value is None:
            raise OperationalError(f"{stack}/{logical_id} was not created in the emulator", field="alarms")
        return value

    def get_att(self, stack: str, logical_id: str, attribute: str) -> Any:
        from kanaria_tools.rehearsal.moto_adaptations import cfn_attribute

        return cfn_attribute(self._account, self._region, stack, logical_id, attribute)

    def import_value(self, name: str) -> Any:
        if self._exports is None:
            self._exports = {}
            for page in self._cfn.get_paginator("list_exports").paginate():
                self._exports.update({e["Name"]: e["Value"] for e in page.get("Exports", [])})
        if name not in self._exports:
            raise OperationalError(f"no export {name!r} in the emulator", field="alarms")
        return self._exports[name]


class AlarmActionSink:
    """Alarm actions into the emulator: asynchronous Lambda invocation (with Lambda's retries and the function's
    on-failure destination, which moto does not apply), SNS publish."""

    def __init__(self, aws: Any, sleep: Any):
        from kanaria_tools.rehearsal.invoke import sqs_sender

        self._lambda = aws.client("lambda")
        self._sns = aws.client("sns")
        self._send = sqs_sender(aws.client("sqs"))
        self._sleep = sleep  # scenario seconds -> waits the corresponding wall time
        self._policies: dict[str, Any] = {}
        self.errors: list[str] = []
        self.gave_up: list[tuple[str, int, Any]] = []  # (function, attempts, last error): sent to the destination

    def _policy(self, function_arn: str) -> Any:
        from kanaria_tools.rehearsal.invoke import AsyncPolicy

        if function_arn not in self._policies:
            try:
                config = self._lambda.get_function_event_invoke_config(FunctionName=function_arn)
            except Exception:  # noqa: BLE001 - none configured: Lambda's defaults (2 retries, no destination)
                config = None
            self._policies[function_arn] = AsyncPolicy.of(config)
        return self._policies[function_arn]

    def invoke_lambda(self, function_arn: str, event: dict[str, Any]) -> None:
        from kanaria_tools.rehearsal.invoke import invoke_async

        def run() -> None:
            try:
                attempts, error = invoke_async(
                    self._lambda, function_arn, event, self._policy(function_arn), sleep=self._sleep, send=self._send
                )
                if error is not None:
                    self.gave_up.append((function_arn, attempts, error))
            except Exception as exc:  # noqa: BLE001 - recorded, shown in the report
                self.errors.append(f"invoke {function_arn}: {exc}")

        # CloudWatch invokes alarm actions asynchronously; the evaluator does not wait for the function.
        threading.Thread(target=run, daemon=True, name="alarm-action").start()

    def publish_sns(self, topic_arn: str, subject: str, message: str) -> None:
        try:
            self._sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"publish {topic_arn}: {exc}")
