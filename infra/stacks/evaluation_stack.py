"""Offline evaluation: the dataset/report bucket, the runner function and the state machine (plan, Map over case
chunks with bounded concurrency, report). Results land in the data stack's evaluations table.

The runner may call bedrock:InvokeModel (what Converse needs) on the foundation models the price table knows, in
the stack's region only; `-c kanaria:evaluationModels=id1,id2` replaces that list. It may call
sagemaker:InvokeEndpoint only on the endpoints `-c kanaria:evaluationEndpoints=name1,name2` names (in the stack's
account and region; none by default), for configurations whose model id is "sagemaker:<endpoint name>".
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.log_bucket import build_log_bucket
from infra.constructs.python_function import KanariaFunction
from infra.nag import acknowledge_all
from infra.settings import Settings
from infra.stacks.data_stack import DataStack
from infra.stacks.experiments_stack import ExperimentsStack
from kanaria import names
from kanaria.domain.pricing import PRICES
from kanaria.evaluation.configs import ENDPOINT_NAME_PATTERN

MAP_MAX_CONCURRENCY = 4  # chunks in flight; each runner has at most RunSettings.concurrency calls in flight
RUNNER_TIMEOUT = Duration.minutes(15)
EXECUTION_TIMEOUT = Duration.hours(6)
READ_PREFIXES = ("datasets/*", "runs/*")
WRITE_PREFIXES = ("runs/*", "reports/*")
_STAR_REASON = (
    "Resource * only for Step Functions' own telemetry: X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* "
    "and CloudWatch Logs vended log delivery (*LogDelivery*, Put/DescribeResourcePolicies, DescribeLogGroups), "
    "which support no resource-level permissions"
)


def evaluation_model_ids(scope: Construct) -> list[str]:
    """Foundation models the runner may invoke: context kanaria:evaluationModels or every priced model."""
    value = scope.node.try_get_context("kanaria:evaluationModels")
    if value:
        return [m.strip() for m in str(value).split(",") if m.strip()]
    return sorted(PRICES)


def evaluation_endpoint_names(scope: Construct) -> list[str]:
    """SageMaker endpoints the runner may invoke: context kanaria:evaluationEndpoints (none by default)."""
    value = scope.node.try_get_context("kanaria:evaluationEndpoints")
    endpoints = [e.strip() for e in str(value or "").split(",") if e.strip()]
    bad = [e for e in endpoints if not ENDPOINT_NAME_PATTERN.match(e)]
    if bad:
        raise ValueError(
            f"kanaria:evaluationEndpoints: {', '.join(bad)} not SageMaker endpoint names "
            "(1-63 letters, digits and hyphens, no leading or trailing hyphen)"
        )
    return endpoints


class EvaluationStack(Stack):
    """Bucket, runner function and state machine of offline evaluations."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        experiments: ExperimentsStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Server access log delivery through a bucket policy, not the legacy LogDeliveryWrite ACL.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.access_logs = self._build_access_logs_bucket()
        self.bucket = self._build_bucket(settings, data.key)
        self.runner = KanariaFunction(
            self,
            "Runner",
            prefix=settings.prefix,
            kind="evaluation",
            handler_module="evaluation",
            layers=[experiments.runtime_layer],
            key=data.key,
            memory_size=1024,
            timeout=RUNNER_TIMEOUT,
            environment={
                names.ENV_EVALUATIONS_TABLE: data.tables["evaluations"].table_name,
                names.ENV_EVALUATION_BUCKET: self.bucket.bucket_name,
            },
            description="Kanaria offline evaluation: plan, evaluate a chunk of golden cases, report",
        )
        self._grant_runner(self.runner, data)
        self.state_machine = self._build_state_machine(settings, self.runner.function, data.key)
        cdk.CfnOutput(self, "EvaluationBucketName", value=self.bucket.bucket_name)
        cdk.CfnOutput(self, "EvaluationStateMachineArn", value=self.state_machine.state_machine_arn)

    def _build_access_logs_bucket(self) -> s3.Bucket:
        return build_log_bucket(
            self, "AccessLogs", expiration=Duration.days(90), receives="the evaluation bucket's S3 server access logs"
        )

    def _build_bucket(self, settings: Settings, key: kms.IKey) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Bucket",
            bucket_name=names.evaluation_bucket_name(settings.prefix, self.account, self.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            versioned=True,  # a dataset's object version pins what a run evaluated
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="evaluations/",
            lifecycle_rules=[
                s3.LifecycleRule(id="ChunkRecords", prefix="runs/", expiration=Duration.days(30)),
                s3.LifecycleRule(id="OldVersions", noncurrent_version_expiration=Duration.days(365)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _grant_runner(self, runner: KanariaFunction, data: DataStack) -> None:
        role = runner.role
        bucket_arn = self.bucket.bucket_arn
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDatasetsAndRecords",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{bucket_arn}/{p}" for p in READ_PREFIXES],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRecordsAndReports",
                actions=["s3:PutObject"],
                resources=[f"{bucket_arn}/{p}" for p in WRITE_PREFIXES],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListRunRecords",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["runs/*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="UseKanariaKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[data.key.key_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EvaluationsTable",
                actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"],
                resources=[data.tables["evaluations"].table_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeFoundationModels",
                actions=["bedrock:InvokeModel"],
                resources=[
                    f"arn:{self.partition}:bedrock:{self.region}::foundation-model/{m}"
                    for m in evaluation_model_ids(self)
                ],
            )
        )
        endpoints = evaluation_endpoint_names(self)
        if endpoints:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="InvokeEvaluationEndpoints",
                    actions=["sagemaker:InvokeEndpoint"],
                    # SageMaker ARNs carry the endpoint name in lower case
                    resources=[
                        f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:endpoint/{e.lower()}"
                        for e in endpoints
                    ],
                )
            )
        bucket_id = self.get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge_all(
            role,
            tuple(
                (
                    f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{p}]",
                    f"Objects under {p.rstrip('*')} of the evaluation bucket only: keys are generated per dataset and run",
                )
                for p in dict.fromkeys(READ_PREFIXES + WRITE_PREFIXES)
            ),
        )

    def _build_state_machine(self, settings: Settings, runner: lambda_.IFunction, key: kms.IKey) -> sfn.StateMachine:
        name = names.evaluation_state_machine_name(settings.prefix)
        definition = self._build_steps(runner)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"{name}: invoke the evaluation runner only",
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            role=role,
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        runner_id = self.get_logical_id(runner.node.default_child)  # type: ignore[arg-type]
        acknowledge_all(
            role,
            (
                ("AwsSolutions-IAM5[Resource::*]", _STAR_REASON),
                (
                    f"AwsSolutions-IAM5[Resource::<{runner_id}.Arn>:*]",
                    "Versions and aliases of the one evaluation runner function (CDK's LambdaInvoke grant)",
                ),
            ),
        )
        return machine

    def _build_steps(self, runner: lambda_.IFunction) -> sfn.Chain:
        """Plan, the Map of chunk evaluations, report."""
        plan = tasks.LambdaInvoke(
            self,
            "Plan",
            lambda_function=runner,
            payload_response_only=True,
            payload=sfn.TaskInput.from_object({"action": "plan", "request": sfn.JsonPath.entire_payload}),
            comment="validate the request and the dataset, pin the dataset version, split into chunks",
        )
        chunks = self._build_chunk_map(runner)
        report = tasks.LambdaInvoke(
            self,
            "Report",
            lambda_function=runner,
            payload_response_only=True,
            payload=sfn.TaskInput.from_object(
                {
                    "action": "report",
                    "run_id": sfn.JsonPath.string_at("$.run_id"),
                    "created_at": sfn.JsonPath.string_at("$.created_at"),
                    "request": sfn.JsonPath.object_at("$.request"),
                }
            ),
            comment="aggregate records, write the report, move LATEST per config hash",
        )
        return plan.next(chunks).next(report)

    def _build_chunk_map(self, runner: lambda_.IFunction) -> sfn.Map:
        """The Map state evaluating every chunk, at most MAP_MAX_CONCURRENCY at a time."""
        evaluate = tasks.LambdaInvoke(  # no payload: the Map item ({action, run_id, request, chunk}) as is
            self,
            "EvaluateChunk",
            lambda_function=runner,
            payload_response_only=True,
            comment="every configuration on one chunk of cases; records to S3",
        )
        evaluate.add_retry(
            errors=["States.Timeout", "Lambda.Unknown"], max_attempts=2, interval=Duration.seconds(30), backoff_rate=2.0
        )
        chunks = sfn.Map(
            self,
            "EvaluateChunks",
            items_path="$.chunks",
            max_concurrency=MAP_MAX_CONCURRENCY,
            item_selector={
                "action": "evaluate",
                "run_id.$": "$.run_id",
                "request.$": "$.request",
                "chunk.$": "$$.Map.Item.Value",
            },
            result_path="$.chunk_results",
        )
        chunks.item_processor(evaluate)
        return chunks


def add_evaluation_stacks(
    app: cdk.App, *, settings: Settings, env: cdk.Environment, stacks: dict[str, Stack]
) -> dict[str, Stack]:
    """The KanariaEvaluation stack (added by infra.app_builder.build_app)."""
    data, experiments = stacks["data"], stacks["experiments"]
    assert isinstance(data, DataStack) and isinstance(experiments, ExperimentsStack)
    return {
        "evaluation": EvaluationStack(
            app, "KanariaEvaluation", settings=settings, data=data, experiments=experiments, env=env
        )
    }
