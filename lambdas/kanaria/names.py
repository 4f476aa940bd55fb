"""Resource, environment and metric names shared by the infrastructure, the Lambdas, the CLI and the tests.

Physical names are derived from one deployment prefix so that the CLI and the local rehearsal can find
resources without CloudFormation outputs.
"""

from __future__ import annotations

DEFAULT_PREFIX = "kanaria"

# Environment variables read by the Lambdas (pydantic env models in kanaria.handlers.env).
ENV_EXPERIMENTS_TABLE = "EXPERIMENTS_TABLE"
ENV_ASSIGNMENTS_TABLE = "ASSIGNMENTS_TABLE"
ENV_OBSERVATIONS_TABLE = "OBSERVATIONS_TABLE"
ENV_AGGREGATES_TABLE = "AGGREGATES_TABLE"
ENV_ROLLOUTS_TABLE = "ROLLOUTS_TABLE"
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
ENV_EVALUATIONS_TABLE = "EVALUATIONS_TABLE"
ENV_ALLOW_OFFLINE_EVALUATION = "ALLOW_OFFLINE_EVALUATION"  # "true" only in the local rehearsal
ENV_EVALUATION_BUCKET = "EVALUATION_BUCKET"  # golden datasets, evaluation records and reports
ENV_PROFILES_PARAMETER = "PROFILES_PARAMETER"
ENV_ALERTS_TOPIC_ARN = "ALERTS_TOPIC_ARN"

# CloudWatch metrics (Powertools Metrics / EMF). Alarms and dashboards use the same names.
METRIC_NAMESPACE = "Kanaria"
DIM_EXPERIMENT = "experiment_id"
DIM_VARIANT = "variant"
DIM_TARGET = "target"  # "canary" or "primary" for rollout alarms
DIM_INTENT = "intent"  # beside DIM_TARGET, for the canary judge's per-intent streams

METRIC_ASSIGNMENTS = "Assignments"
METRIC_OBSERVATIONS = "Observations"
METRIC_QUALITY = "QualityScore"
METRIC_LATENCY = "LatencyMs"
METRIC_ERRORS = "Errors"
METRIC_HALLUCINATIONS = "Hallucinations"
METRIC_THROTTLES = "Throttles"
METRIC_CSAT = "Csat"
METRIC_COST = "CostUsd"
METRIC_SAFETY_STOPS = "SafetyStops"  # responses stopped by the safety filter (0/1 per observation)
# Observations and the scheduled analysis (dimensions: experiment_id [+ variant]).
METRIC_FLAGGED_OBSERVATIONS = "FlaggedObservations"  # variant mismatch or excluded unit: kept out of the statistics
# target: canary from a caller that is not the canary deployment: kept out of the canary series
METRIC_REJECTED_CANARY_OBSERVATIONS = "RejectedCanaryObservations"
METRIC_ANALYSIS_RUNS = "AnalysisRuns"
METRIC_SRM_MISMATCH = "SrmMismatch"
METRIC_DECISION_CHANGES = "DecisionChanges"

# Canary rollouts (infra/stacks/rollout_stack.py). The canary alarms read the Kanaria metrics above with
# exactly one dimension, {DIM_TARGET: TARGET_CANARY | TARGET_PRIMARY}: CloudWatch matches the whole dimension
# set, so emit them with Metrics(service="") (Powertools otherwise adds a "service" dimension).
TARGET_CANARY = "canary"
TARGET_PRIMARY = "primary"
# The canary judge also reads them per intent, {DIM_TARGET, DIM_INTENT}, for a bounded set of intents (custom
# metrics are billed per dimension combination): ENV_JUDGED_INTENTS, default DEFAULT_JUDGED_INTENTS.
ENV_JUDGED_INTENTS = "JUDGED_INTENTS"
# IAM role ARNs (comma-separated) the canary deployment runs as: the only callers whose target: canary counts.
ENV_CANARY_OBSERVER_ROLE_ARNS = "CANARY_OBSERVER_ROLE_ARNS"
DEFAULT_JUDGED_INTENTS = ("recommendation", "product_search", "order_status", "manga_qa", "shipping_info", "chitchat")
METRIC_CANARY_WEIGHT = "CanaryWeight"  # percent of the listener's traffic on the canary, emitted at every step
ENV_LISTENER_ARN = "LISTENER_ARN"
ENV_PRIMARY_TARGET_GROUP_ARN = "PRIMARY_TARGET_GROUP_ARN"
ENV_CANARY_TARGET_GROUP_ARN = "CANARY_TARGET_GROUP_ARN"
ENV_OTHER_CANARY_TARGET_GROUP_ARNS = "OTHER_CANARY_TARGET_GROUP_ARNS"  # comma-separated: the canary allow-list
ENV_STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
ENV_METRIC_NAMESPACE = "METRIC_NAMESPACE"
ENV_CRITICAL_ALARM_NAME = "CRITICAL_ALARM_NAME"
ENV_WARNING_ALARM_NAME = "WARNING_ALARM_NAME"
ENV_CANARY_ALARM_NAMES = "CANARY_ALARM_NAMES"  # comma-separated metric alarm names (children of both composites)
# The rollback's safety net: the rollback function's async invocations that failed after Lambda's retries land in
# this SQS queue (on-failure destination); the reconciler pages on-call with each and rolls stranded rollouts back.
ENV_ROLLBACK_FAILURES_QUEUE_URL = "ROLLBACK_FAILURES_QUEUE_URL"
ENV_WARMUP_PARAMETER_PREFIX = "WARMUP_PARAMETER_PREFIX"  # the SSM path of warm-up secret headers
FUNCTION_ROLLOUT_STEPS = "rollout-steps"
FUNCTION_ROLLBACK = "rollback"
FUNCTION_RECONCILER = "rollout-reconciler"
RECONCILE_EVERY_MINUTES = 1  # EventBridge schedule of the reconciler
METRIC_RECONCILER_ROLLBACKS = "ReconcilerRollbacks"  # rollbacks the reconciler had to do (the primary paths failed)
METRIC_FAILED_ROLLBACK_INVOCATIONS = "FailedRollbackInvocations"  # on-failure destination records paged
# Alarm kinds: physical name = alarm_name(prefix, kind).
ALARM_CANARY_ERROR_RATE = "canary-error-rate"
ALARM_CANARY_LATENCY = "canary-latency-p99"
ALARM_CANARY_THROTTLING = "canary-throttling"
ALARM_CANARY_HALLUCINATION = "canary-hallucination-rate"
ALARM_CANARY_QUALITY = "canary-quality-drop"
ALARM_CANARY_CSAT = "canary-csat-drop"
ALARM_CANARY_CRITICAL = "canary-critical"  # error OR latency OR throttling: invokes the rollback function, pages
ALARM_CANARY_WARNING = "canary-warning"  # hallucination OR quality OR CSAT: notifies; the gate pauses on it
CRITICAL_ALARM_KINDS = (ALARM_CANARY_ERROR_RATE, ALARM_CANARY_LATENCY, ALARM_CANARY_THROTTLING)
WARNING_ALARM_KINDS = (ALARM_CANARY_HALLUCINATION, ALARM_CANARY_QUALITY, ALARM_CANARY_CSAT)
# The rollout pipeline's S3 source: a ZIP object holding ROLLOUT_REQUEST_FILE (candidate + plan), which the
# Step Functions action passes as the execution input.
ROLLOUT_REQUEST_OBJECT_KEY = "rollout-request.zip"
ROLLOUT_REQUEST_FILE = "rollout-request.json"

# Unit-of-time constants the domain uses.
ASSIGNMENT_TTL_SECONDS = 7 * 24 * 3600
BUCKETS = 10_000


def table_name(prefix: str, kind: str) -> str:
    """Physical DynamoDB table name for one table kind (experiments, assignments, ...)."""
    return f"{prefix}-{kind}"


def function_name(prefix: str, kind: str) -> str:
    """Physical Lambda function name for one function kind (api, observations, analysis, ...)."""
    return f"{prefix}-{kind}"


def profiles_parameter(prefix: str) -> str:
    """SSM parameter holding the per-intent parameter profiles as JSON."""
    return f"/{prefix}/profiles"


def warmup_parameter_prefix(prefix: str) -> str:
    """SSM path under which a rollout's warm-up secret headers are SecureString parameters (all its role reads)."""
    return f"/{prefix}/warmup/"


def alarm_name(prefix: str, kind: str) -> str:
    """Physical CloudWatch alarm name for one canary alarm kind (ALARM_CANARY_*)."""
    return f"{prefix}-{kind}"


def rollout_state_machine_name(prefix: str) -> str:
    """Physical name of the canary rollout state machine (STANDARD)."""
    return f"{prefix}-canary-rollout"


def rollout_pipeline_name(prefix: str) -> str:
    """Physical name of the CodePipeline that starts a rollout from the request object."""
    return f"{prefix}-canary-rollout"


def rollout_dashboard_name(prefix: str) -> str:
    """Physical name of the CloudWatch dashboard of canary rollouts."""
    return f"{prefix}-canary-rollout"


def rollout_request_bucket_name(prefix: str, account: str, region: str) -> str:
    """Versioned S3 bucket the CLI uploads ROLLOUT_REQUEST_OBJECT_KEY to (globally unique name)."""
    return f"{prefix}-rollout-requests-{account}-{region}"


def rollback_failures_queue_name(prefix: str) -> str:
    """SQS queue receiving the rollback function's failed asynchronous invocations (on-failure destination)."""
    return f"{prefix}-rollback-failures"


def evaluation_bucket_name(prefix: str, account: str, region: str) -> str:
    """Versioned S3 bucket of golden datasets and offline evaluation reports (globally unique name)."""
    return f"{prefix}-evaluations-{account}-{region}"


def evaluation_state_machine_name(prefix: str) -> str:
    """Physical name of the offline evaluation state machine (plan, Map over chunks, report)."""
    return f"{prefix}-offline-evaluation"
