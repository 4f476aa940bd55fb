"""One Kanaria Lambda function: shared code asset, runtime layer, tracing, structured logs, scoped log group."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.bundling import function_code
from infra.nag import KMS_GRANT_ACTIONS, LAMBDA_NO_VPC, XRAY_RESOURCE, acknowledge_all, checkov_skip_all, log_streams
from kanaria.names import METRIC_NAMESPACE, function_name

RUNTIME = lambda_.Runtime.PYTHON_3_14

# How each function kind is invoked, i.e. why it has no dead-letter queue (checkov CKV_AWS_116). A new kind must
# say how a failed invocation is retried or reported, or synth fails here.
WITHOUT_DLQ: dict[str, str] = {
    "experiments": "Invoked synchronously by API Gateway (HTTP API): a failure is the caller's 5xx, no event is "
    "queued inside Lambda that a DLQ could catch",
    "assign": "Invoked synchronously by API Gateway (HTTP API) on every chatbot session: a failure is the caller's "
    "5xx (the client falls back to control), nothing is queued",
    "observations": "Invoked synchronously by API Gateway (HTTP API): a failure is the caller's 5xx and the client "
    "retries the batch (exactly-once by observation_id), nothing is queued",
    "analysis": "Invoked by an EventBridge schedule; every run re-reads all running experiments from the tables, so "
    "a failed run is redone by the next one",
    "evaluation": "Invoked synchronously by the offline evaluation state machine, whose tasks retry and catch "
    "failures; nothing is invoked asynchronously",
    "rollout-steps": "Invoked synchronously by the canary rollout state machine, whose every task retries and "
    "routes any failure to the rollback",
    "rollback": "Its asynchronous invocations (alarm action, execution-status rule) retry twice and then go to an "
    "on-failure destination (EventInvokeConfig -> encrypted SQS queue, paged by the reconciler), which "
    "carries the error and the response as well as the event",
    "rollout-reconciler": "Invoked every minute by an EventBridge schedule: the next minute is the retry, and three "
    "failed minutes raise an alarm that pages",
}
# Why a kind runs without reserved concurrency (checkov CKV_AWS_115): a reservation is also a cap, and every
# reservation is taken from the account's shared pool (Lambda keeps 10 unreserved).
UNRESERVED: dict[str, str] = {
    "experiments": "Unreserved on purpose: a reservation would cap the operators' API and take from the account "
    "pool; only the rollback path reserves concurrency (rollout_functions.py)",
    "assign": "Unreserved on purpose: reserved concurrency is also a maximum, and assign serves every chatbot "
    "session; capping it would throttle the chatbot itself",
    "observations": "Unreserved on purpose: reserved concurrency is also a maximum, and observations receive every "
    "chatbot response; capping it would throttle recording",
    "analysis": "Unreserved on purpose: one scheduled run at a time; a reservation would only take from the "
    "account pool",
    "evaluation": "Unreserved on purpose: the evaluation state machine's Map bounds its concurrency, and a "
    "reservation would take from the account pool",
    "rollout-steps": "Unreserved only when kanaria:reservedConcurrency=false (an account too small to reserve)",
    "rollback": "Unreserved only when kanaria:reservedConcurrency=false (an account too small to reserve)",
    "rollout-reconciler": "Unreserved only when kanaria:reservedConcurrency=false (an account too small to reserve)",
}


class KanariaFunction(Construct):
    """A Lambda running `kanaria.handlers.<module>.handler` with Powertools configured by environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        kind: str,
        handler_module: str,
        layers: list[lambda_.ILayerVersion],
        environment: dict[str, str],
        key: kms.IKey,
        memory_size: int = 512,
        timeout: Duration = Duration.seconds(30),
        description: str = "",
        reserved_concurrent_executions: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = self._build_log_group(prefix, kind, key)
        self.role = self._build_role(kind)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name(prefix, kind),
            description=description or f"Kanaria {kind}",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"kanaria.handlers.{handler_module}.handler",
            code=function_code(),
            layers=layers,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            reserved_concurrent_executions=reserved_concurrent_executions,
            environment_encryption=key,  # resource names only, but encrypted with the Kanaria key all the same
            environment={
                "POWERTOOLS_SERVICE_NAME": f"kanaria-{kind}",
                "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        self._acknowledge(kind, reserved=reserved_concurrent_executions is not None)

    def _build_log_group(self, prefix: str, kind: str, key: kms.IKey) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name(prefix, kind)}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_role(self, kind: str) -> iam.Role:
        # Own role instead of AWSLambdaBasicExecutionRole: logs only to this function's log group.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Kanaria {kind} function",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn, f"{self.log_group.log_group_arn}:log-stream:*"],
            )
        )
        return role

    def _acknowledge(self, kind: str, *, reserved: bool) -> None:
        """cdk-nag acknowledgements of the role, checkov skips of the function (each with its reason)."""
        log_group_id = Stack.of(self).get_logical_id(self.log_group.node.default_child)  # type: ignore[arg-type]
        acknowledge_all(self.role, (XRAY_RESOURCE, *KMS_GRANT_ACTIONS, log_streams(log_group_id)))
        skips = [LAMBDA_NO_VPC, ("CKV_AWS_116", WITHOUT_DLQ[kind])]
        if not reserved:
            skips.append(("CKV_AWS_115", UNRESERVED[kind]))
        checkov_skip_all(self.function, tuple(skips))
