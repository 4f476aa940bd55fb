"""What the rehearsal changes in moto, and why: the pinned version and the ADAPTATIONS catalogue (shown by
`kanaria demo --list-adaptations`, in the report and in docs/rehearsal.md)."""

from __future__ import annotations

from dataclasses import dataclass

MOTO_VERSION = "5.2.5"


class AdaptationError(RuntimeError):
    """The installed moto is not the version these adaptations were measured against, or one failed."""


def check_moto_version() -> None:
    """Fail loudly on any moto other than MOTO_VERSION: every adaptation below was measured on it."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise AdaptationError(
            f"the local rehearsal is pinned to moto {MOTO_VERSION} but moto {moto.__version__} is installed; "
            "re-measure every adaptation in kanaria_tools/rehearsal/moto_adaptations/ (run "
            "tests/unit/rehearsal/test_moto_adaptations.py) before changing MOTO_VERSION"
        )


@dataclass(frozen=True)
class Adaptation:
    """One way moto 5.2.5 differs from AWS, and what the rehearsal does about it."""

    name: str
    moto_behaviour: str
    adaptation: str


ADAPTATIONS: tuple[Adaptation, ...] = (
    Adaptation(
        "server-startup-errors",
        "ThreadedMotoServer.start() waits forever when its thread cannot bind the port",
        "the server thread reports bind/startup errors and start() gives up after a timeout",
    ),
    Adaptation(
        "cfn-change-set-failures",
        "an exception while executing a change set returns HTTP 500; the SDK retries, the retry finds nothing "
        "to add and the stack reports CREATE_COMPLETE with the remaining resources never created",
        "a failing resource marks the stack ROLLBACK_COMPLETE (UPDATE_ROLLBACK_COMPLETE on update) with a "
        "CREATE_FAILED event naming the resource and the error, so `cdk deploy` fails and prints it",
    ),
    Adaptation(
        "cfn-change-set-outputs",
        "a stack created or updated by a change set (how `cdk deploy` works) has no Outputs and registers no "
        "Exports, and its Fn::ImportValue sees no other stack's exports: every cross-stack reference fails",
        "imports resolve against the account's exports; after execution the stack's Outputs and Exports are "
        "built from the executed template",
    ),
    Adaptation(
        "cfn-resource-tags",
        "CloudFormation-created AWS::KMS::Key tags ({Key, Value}) crash KMS (expects TagKey/TagValue) and "
        "AWS::SSM::Parameter tags (a JSON map in CloudFormation) crash SSM (expects a list)",
        "tags are converted to the shape each moto backend expects before the resource is created",
    ),
    Adaptation(
        "cfn-dynamodb-global-table",
        "AWS::DynamoDB::GlobalTable (what CDK's TableV2 synthesizes) is not supported by CloudFormation: the "
        "tables are silently skipped",
        "a GlobalTable is created as the single-region DynamoDB table of its replica in the stack's region "
        "(key schema, attributes, indexes, billing mode, TTL, stream)",
    ),
    Adaptation(
        "cfn-apigatewayv2",
        "AWS::ApiGatewayV2::Api, ::Stage, ::Route and ::Integration are not supported by CloudFormation: "
        "skipped, so a stack exporting the API id (for another stack's routes) fails on the import",
        "they are created through moto's API Gateway v2 backend (moto does not serve HTTP APIs: the rehearsal "
        "invokes the functions with API-Gateway-HTTP-shaped events)",
    ),
    Adaptation(
        "cfn-lambda-event-invoke-config",
        "AWS::Lambda::EventInvokeConfig is not supported by CloudFormation: a function's asynchronous retry count and "
        "on-failure destination are silently dropped",
        "created through the Lambda backend (PutFunctionEventInvokeConfig), so GetFunctionEventInvokeConfig answers "
        "what the template says; the rehearsal's asynchronous invocations follow it (kanaria_tools.rehearsal.invoke)",
    ),
    Adaptation(
        "cfn-alb-forward-config",
        "an AWS::ElasticLoadBalancingV2::Listener/ListenerRule whose forward action uses ForwardConfig "
        "(weighted target groups) crashes CloudFormation with KeyError 'TargetGroupArn'",
        "the action is created through the ELBv2 backend with its ForwardConfig intact (weights kept)",
    ),
    Adaptation(
        "cfn-elbv2-attributes",
        "Fn::GetAtt of LoadBalancerFullName, SecurityGroups (load balancer) and of any target group attribute "
        "(TargetGroupFullName, ...) is not implemented: the reference resolves to a placeholder string or the "
        "deployment fails",
        "the attributes are derived from the ARNs as AWS defines them (app/<name>/<id>, targetgroup/<name>/<id>)",
    ),
    Adaptation(
        "cfn-sfn-definition",
        "an AWS::StepFunctions::StateMachine's DefinitionSubstitutions (and an object Definition) are ignored: "
        "the state machine keeps '${RolloutStepsFunctionArn}' placeholders and its tasks call no function",
        "the definition is built and substituted as CloudFormation does",
    ),
    Adaptation(
        "cfn-step-functions-store",
        "with state machine execution enabled, the Step Functions API serves a separate backend from the one "
        "CloudFormation writes state machines to, so deployed state machines are invisible to StartExecution",
        "CloudFormation creates, updates and deletes state machines in the executing backend",
    ),
    Adaptation(
        "dynamodb-transaction-backup",
        "TransactWriteItems deep-copies every table it touches before each transaction (its rollback backup): "
        "each observation recorded costs time proportional to the tables' size",
        "the transaction backs up only the items it touches (same checks, same rollback, same errors)",
    ),
    Adaptation(
        "dynamodb-atomic-writes",
        "a conditional write checks its condition and then writes with no lock, and the server serves each "
        "request in its own thread: two concurrent writes can both pass attribute_not_exists (two rollback "
        "triggers both take the rollback lock, and the on-call is paged twice)",
        "the backend's writes (PutItem, UpdateItem, DeleteItem, each item of BatchWriteItem, TransactWriteItems) "
        "run one at a time, so a condition holds when its write lands, as DynamoDB guarantees",
    ),
    Adaptation(
        "sfn-execute-state-machines",
        "Step Functions does not execute ASL unless configured; its service integrations call moto on "
        "localhost:$MOTO_PORT (default 5000)",
        "execution is switched on (Wait, Choice, Catch, lambda:invoke, sns:publish run) and MOTO_PORT points at "
        "the rehearsal's server",
    ),
    Adaptation(
        "sfn-unnamed-executions",
        "StartExecution without a name names the execution 'None': the second unnamed start collides with the "
        "first (returns it, or fails)",
        "an unnamed execution gets a fresh UUID name, as in AWS",
    ),
    Adaptation(
        "sfn-aws-sdk-elbv2",
        "aws-sdk:elasticloadbalancingv2 tasks fail: boto3 names that service 'elbv2'",
        "the service name is mapped to boto3's",
    ),
    Adaptation(
        "lambda-in-process",
        "Lambda runs function code only in docker (no docker engine here): Invoke returns an error",
        "a function whose handler is in the kanaria package runs in this process: its module is imported from "
        "lambdas/, its environment variables are set for the call (invocations are serialized; keys are never "
        "removed while other threads may read the environment), it gets a "
        "LambdaContext, its stdout becomes its CloudWatch Logs stream; a run longer than the function's timeout "
        "is reported (the emulator is slower than AWS), not failed",
    ),
    Adaptation(
        "lambda-emf-metrics",
        "CloudWatch Logs does not extract Embedded Metric Format records into metrics",
        "EMF records printed by an in-process function are put into CloudWatch as metrics (each dimension "
        "set, Values arrays, units), stamped by the rehearsal clock",
    ),
    Adaptation(
        "cloudwatch-percentiles",
        "GetMetricData and GetMetricStatistics return no value for percentile statistics (p99, p99.9, ...) "
        "and percentile ranks (PR(:x), PR(x:y)): the response serializer fails",
        "percentiles are computed from the period's raw values (nearest rank), the same function the alarm "
        "evaluator uses; a percentile rank is the % of raw values in (x, y], as CloudWatch defines it",
    ),
    Adaptation(
        "cloudwatch-metric-index",
        "GetMetricData compares every MetricStat query's dimensions with every datapoint of the window (sorting "
        "both each time): the judge's 168 queries over 40 periods of data cost ~1.7 M sorts, 1-3 wall seconds, "
        "i.e. 1-3 scenario minutes at 60x",
        "the window's datapoints are grouped once per call by (namespace, name, dimension set); each MetricStat "
        "query reads its group with moto's own statistics (calls with metric math go to moto unchanged)",
    ),
    Adaptation(
        "cloudwatch-alarms",
        "CloudFormation silently skips AWS::CloudWatch::Alarm and ::CompositeAlarm; PutCompositeAlarm is not "
        "implemented; SetAlarmState and PutMetricData trigger no evaluation and no actions",
        "the rehearsal's alarm evaluator (kanaria_tools.rehearsal.alarms) reads the alarms from the synthesized "
        "templates; they are registered here so DescribeAlarms shows them, and their state changes are "
        "written here; PutCompositeAlarm stores the composite alarm",
    ),
)
