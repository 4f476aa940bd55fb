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
ENV_PROFILES_PARAMETER = "PROFILES_PARAMETER"
ENV_ALERTS_TOPIC_ARN = "ALERTS_TOPIC_ARN"

# CloudWatch metrics (Powertools Metrics / EMF). Alarms and dashboards use the same names.
METRIC_NAMESPACE = "Kanaria"
DIM_EXPERIMENT = "experiment_id"
DIM_VARIANT = "variant"
DIM_TARGET = "target"  # "canary" or "primary" for rollout alarms

METRIC_ASSIGNMENTS = "Assignments"
METRIC_OBSERVATIONS = "Observations"
METRIC_QUALITY = "QualityScore"
METRIC_LATENCY = "LatencyMs"
METRIC_ERRORS = "Errors"
METRIC_HALLUCINATIONS = "Hallucinations"
METRIC_THROTTLES = "Throttles"
METRIC_CSAT = "Csat"
METRIC_COST = "CostUsd"

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
