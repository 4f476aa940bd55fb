"""The rollout Lambdas (rollout-steps, rollback, reconciler) with the environment and least-privilege IAM they share.

Each may shift weights on THE listener only, read the canary's metrics and alarms, record the rollout in DynamoDB,
publish to the alerts topic and describe/stop executions of THE rollout state machine. None of them may answer
the approval task (SendTaskSuccess/SendTaskFailure): only a human's `kanaria rollout approve|reject` does. Only
rollout-steps, which sends the warm-up, may read SSM parameters: the warm-up's secret headers under
/<prefix>/warmup/.

Reserved concurrency: the rollback and the reconciler must run when the account's concurrency is exhausted (a
traffic spike on the chatbot throttles every unreserved function), and the steps function must not be starved
either; the reconciler runs one at a time.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.demo_alb import CanaryListener
from infra.constructs.python_function import KanariaFunction
from infra.nag import acknowledge
from infra.stacks.data_stack import DataStack
from kanaria import names

ROLLOUT_STEPS = names.FUNCTION_ROLLOUT_STEPS
ROLLBACK = names.FUNCTION_ROLLBACK
RECONCILER = names.FUNCTION_RECONCILER
# Reserved concurrent executions per function (kanaria:reservedConcurrency=false leaves them unreserved, for an
# account whose concurrency limit is too small to reserve 11 and keep Lambda's 10 unreserved).
RESERVED_CONCURRENCY = {ROLLOUT_STEPS: 5, ROLLBACK: 5, RECONCILER: 1}

# Actions that IAM cannot scope to a resource (their statements use Resource "*", acknowledged below).
DESCRIBE_ACTIONS = (
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
METRIC_READ_ACTIONS = ("cloudwatch:GetMetricData",)

_RESOURCE_STAR_REASON = (
    "Resource * only on elasticloadbalancing:Describe* (Describe actions support no resource-level permissions) "
    "and cloudwatch:GetMetricData (no resource-level permissions); every write is scoped to one ARN"
)
_LISTENER_RULES_REASON = (
    "ModifyRule on the rules of the one rollout listener (rule ids are generated): a rollback removes the canary "
    "from any rule that still forwards to it"
)
_WARMUP_PARAMETERS_REASON = (
    "GetParameter on the deployment's warm-up path only (/<prefix>/warmup/*): a rollout request names its warm-up's "
    "secret headers by parameter, so the names under the path are chosen per rollout"
)
_EXECUTIONS_REASON = (
    "Executions of the one rollout state machine: execution names are generated per rollout, the ARN is fixed "
    "up to the name"
)


class RolloutFunctions(Construct):
    """`self.rollout_steps` and `self.rollback` (lambda_.Function) with `self.environment` and scoped policies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        data: DataStack,
        runtime_layer: lambda_.ILayerVersion,
        listener: CanaryListener,
        state_machine_name: str,
        alarm_names: dict[str, str],
        allow_offline_evaluation: bool = False,
        reserve_concurrency: bool = True,
        rollback_failures_queue_url: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Built from the fixed name, not from the state machine construct: the state machine references these
        # functions, so referencing it back would be a dependency cycle.
        self.state_machine_arn = _arn(stack, "states", "stateMachine", state_machine_name)
        self.executions_arn = _arn(stack, "states", "execution", f"{state_machine_name}:*")
        # How cdk-nag renders executions_arn in its finding id (the partition is a pseudo parameter).
        self._executions_finding = (
            f"arn:<AWS::Partition>:states:{stack.region}:{stack.account}:execution:{state_machine_name}:*"
        )
        self.alarm_arns = [_arn(stack, "cloudwatch", "alarm", name) for name in alarm_names.values()]
        warmup_path = names.warmup_parameter_prefix(prefix)
        self.warmup_parameters_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=f"{warmup_path.strip('/')}/*"
        )
        self._warmup_parameters_finding = (
            f"arn:<AWS::Partition>:ssm:{stack.region}:{stack.account}:parameter/{warmup_path.strip('/')}/*"
        )
        self.environment = _environment(data, listener, alarm_names, self.state_machine_arn, allow_offline_evaluation)
        self._reserve = reserve_concurrency
        self.listener_rules_arn, self._listener_rules_finding = _listener_rules(stack, listener)
        self.rollout_steps = self._build_function(
            prefix,
            data,
            runtime_layer,
            listener,
            ROLLOUT_STEPS,
            "rollout_steps",
            "Kanaria rollout steps: set weights, evaluate a stage's gate, record progress",
            extra_environment={names.ENV_WARMUP_PARAMETER_PREFIX: warmup_path},
        )
        self.rollback = self._build_function(
            prefix,
            data,
            runtime_layer,
            listener,
            ROLLBACK,
            "rollback",
            "Kanaria rollback: all traffic to primary, record why, fail the rollout (state machine or alarm action)",
        )
        self.reconciler = self._build_function(
            prefix,
            data,
            runtime_layer,
            listener,
            RECONCILER,
            "reconciler",
            "Kanaria rollout reconciler (every minute): rolls back a canary left with traffic, pages failed rollbacks",
            extra_environment={names.ENV_ROLLBACK_FAILURES_QUEUE_URL: rollback_failures_queue_url}
            if rollback_failures_queue_url
            else None,
        )

    def _build_function(
        self,
        prefix: str,
        data: DataStack,
        runtime_layer: lambda_.ILayerVersion,
        listener: CanaryListener,
        kind: str,
        handler_module: str,
        description: str,
        extra_environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        construct_id = "".join(part.capitalize() for part in kind.split("-"))
        kanaria_function = KanariaFunction(
            self,
            construct_id,
            prefix=prefix,
            kind=kind,
            handler_module=handler_module,
            layers=[runtime_layer],
            environment={**self.environment, **(extra_environment or {})},
            key=data.key,
            memory_size=256,
            timeout=Duration.seconds(60),
            description=description,
            reserved_concurrent_executions=RESERVED_CONCURRENCY[kind] if self._reserve else None,
        )
        function = kanaria_function.function
        data.tables["rollouts"].grant_read_write_data(function)
        if kind == ROLLOUT_STEPS:
            data.tables["experiments"].grant_read_data(function)  # stage 0 checks the candidate's variant
        else:
            data.tables["experiments"].grant_read_write_data(function)  # a rollback stops the candidate variant
        data.tables["aggregates"].grant_read_data(function)
        data.tables["evaluations"].grant_read_data(function)  # stage 0: the candidate's stored offline evaluation
        data.alerts_topic.grant_publish(function)
        statements = self._statements(listener)
        if kind == ROLLOUT_STEPS:
            # The warm-up's secret headers (SSM SecureStrings under the warm-up path; aws/ssm key): stage 0 only.
            statements.append(
                iam.PolicyStatement(
                    sid="ReadWarmupSecretHeaders",
                    actions=["ssm:GetParameter"],
                    resources=[self.warmup_parameters_arn],
                )
            )
        policy = iam.Policy(self, f"{construct_id}Access", statements=statements)
        policy.attach_to_role(kanaria_function.role)
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", _RESOURCE_STAR_REASON)
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{self._executions_finding}]", _EXECUTIONS_REASON)
        if kind == ROLLOUT_STEPS:
            acknowledge(
                policy, f"AwsSolutions-IAM5[Resource::{self._warmup_parameters_finding}]", _WARMUP_PARAMETERS_REASON
            )
        if self.listener_rules_arn:
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{self._listener_rules_finding}]", _LISTENER_RULES_REASON)
        return function

    def _statements(self, listener: CanaryListener) -> list[iam.PolicyStatement]:
        statements = (
            []
            if not self.listener_rules_arn
            else [
                iam.PolicyStatement(
                    sid="TakeTheCanaryOutOfThisListenersRules",
                    actions=["elasticloadbalancing:ModifyRule"],
                    resources=[self.listener_rules_arn],
                ),
            ]
        )
        return statements + [
            iam.PolicyStatement(
                sid="ShiftWeightsOnTheListenerOnly",
                actions=["elasticloadbalancing:ModifyListener"],
                resources=[listener.listener_arn],
            ),
            iam.PolicyStatement(sid="DescribeListenerAndTargets", actions=list(DESCRIBE_ACTIONS), resources=["*"]),
            iam.PolicyStatement(sid="ReadCanaryMetrics", actions=list(METRIC_READ_ACTIONS), resources=["*"]),
            iam.PolicyStatement(
                sid="ReadCanaryAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=self.alarm_arns,
            ),
            iam.PolicyStatement(
                sid="RolloutExecutions",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[self.executions_arn],
            ),
        ]


def _environment(
    data: DataStack,
    listener: CanaryListener,
    alarm_names: dict[str, str],
    state_machine_arn: str,
    allow_offline_evaluation: bool,
) -> dict[str, str]:
    """The environment every rollout function shares."""
    metric_alarm_names = [alarm_names[kind] for kind in (*names.CRITICAL_ALARM_KINDS, *names.WARNING_ALARM_KINDS)]
    return {
        names.ENV_LISTENER_ARN: listener.listener_arn,
        names.ENV_PRIMARY_TARGET_GROUP_ARN: listener.primary_target_group_arn,
        names.ENV_CANARY_TARGET_GROUP_ARN: listener.canary_target_group_arn,
        names.ENV_ROLLOUTS_TABLE: data.tables["rollouts"].table_name,
        names.ENV_EXPERIMENTS_TABLE: data.tables["experiments"].table_name,
        names.ENV_AGGREGATES_TABLE: data.tables["aggregates"].table_name,
        names.ENV_ALERTS_TOPIC_ARN: data.alerts_topic.topic_arn,
        names.ENV_STATE_MACHINE_ARN: state_machine_arn,
        names.ENV_METRIC_NAMESPACE: names.METRIC_NAMESPACE,
        names.ENV_CRITICAL_ALARM_NAME: alarm_names[names.ALARM_CANARY_CRITICAL],
        names.ENV_WARNING_ALARM_NAME: alarm_names[names.ALARM_CANARY_WARNING],
        names.ENV_CANARY_ALARM_NAMES: ",".join(metric_alarm_names),
        names.ENV_EVALUATIONS_TABLE: data.tables["evaluations"].table_name,
        names.ENV_ALLOW_OFFLINE_EVALUATION: "true" if allow_offline_evaluation else "false",
    }


def _listener_rules(stack: Stack, listener: CanaryListener) -> tuple[str | None, str | None]:
    """The ARN of THIS listener's rules (arn:...:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id>) and how
    cdk-nag renders it, for an existing listener given by context; (None, None) for the demo ALB's listener, which
    has no rules besides its default action."""
    if Token.is_unresolved(listener.listener_arn):
        return None, None
    listener_path = listener.listener_arn.split(":listener/", 1)[1]
    arn = stack.format_arn(
        service="elasticloadbalancing",
        resource="listener-rule",
        resource_name=f"{listener_path}/*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )
    finding = (
        f"arn:<AWS::Partition>:elasticloadbalancing:{stack.region}:{stack.account}:listener-rule/{listener_path}/*"
    )
    return arn, finding


def _arn(stack: Stack, service: str, resource: str, name: str) -> str:
    """arn:<partition>:<service>:<region>:<account>:<resource>:<name> of this stack's environment."""
    return stack.format_arn(
        service=service, resource=resource, resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )
