"""Every Lambda's environment, in one module: one pydantic model per function family, each variable named by its
constant in kanaria.names (what the CDK constructs set), parsed once per execution environment by the
function's cached accessor through `load_environment`. A missing or bad variable is an OperationalError naming
it (a deployment fault, never the caller's: HTTP 502, not 400).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kanaria import names
from kanaria.domain.canary_evidence import CanaryObservers
from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile, profiles_from_json
from kanaria.errors import OperationalError, ValidationError, validate

PROFILES_MAX_AGE_SECONDS = 300
Env = TypeVar("Env", bound=BaseModel)


def load_environment(model: type[Env]) -> Env:
    """`model` from os.environ; OperationalError naming the variable when one is missing or invalid."""
    try:
        return validate(model, dict(os.environ), "environment")
    except ValidationError as exc:
        raise OperationalError(exc.reason, field=exc.field, details=exc.details) from None


class ApiEnvironment(BaseModel):
    """What the experiments and assignment functions need."""

    experiments_table: str = Field(min_length=1, alias=names.ENV_EXPERIMENTS_TABLE)
    assignments_table: str = Field(min_length=1, alias=names.ENV_ASSIGNMENTS_TABLE)
    aggregates_table: str = Field(min_length=1, alias=names.ENV_AGGREGATES_TABLE)
    profiles_parameter: str = Field(min_length=1, alias=names.ENV_PROFILES_PARAMETER)


class ObservationsEnvironment(BaseModel):
    """What the observations function needs."""

    experiments_table: str = Field(min_length=1, alias=names.ENV_EXPERIMENTS_TABLE)
    assignments_table: str = Field(min_length=1, alias=names.ENV_ASSIGNMENTS_TABLE)
    observations_table: str = Field(min_length=1, alias=names.ENV_OBSERVATIONS_TABLE)
    aggregates_table: str = Field(min_length=1, alias=names.ENV_AGGREGATES_TABLE)
    profiles_parameter: str = Field(min_length=1, alias=names.ENV_PROFILES_PARAMETER)
    judged_intents: str = Field(
        default=",".join(names.DEFAULT_JUDGED_INTENTS),
        alias=names.ENV_JUDGED_INTENTS,
        description="intents with their own canary metrics (comma-separated)",
    )

    @property
    def judged_intent_set(self) -> frozenset[str]:
        """The bounded set of intent dimension values (each one is a billed custom metric per metric)."""
        return frozenset(i.strip() for i in self.judged_intents.split(",") if i.strip())

    canary_observer_role_arns: str = Field(
        default="",
        alias=names.ENV_CANARY_OBSERVER_ROLE_ARNS,
        description="roles of the canary deployment: the only callers whose target canary counts (comma-separated)",
    )

    @field_validator("canary_observer_role_arns")
    @classmethod
    def _role_arns(cls, value: str) -> str:
        CanaryObservers.parse(value)
        return value

    @property
    def canary_observers(self) -> CanaryObservers:
        """The canary deployment's roles (none configured: no target canary observation counts)."""
        return CanaryObservers.parse(self.canary_observer_role_arns)


class AnalysisEnvironment(BaseModel):
    """What the analysis function needs."""

    experiments_table: str = Field(min_length=1, alias=names.ENV_EXPERIMENTS_TABLE)
    aggregates_table: str = Field(min_length=1, alias=names.ENV_AGGREGATES_TABLE)
    alerts_topic_arn: str = Field(min_length=1, alias=names.ENV_ALERTS_TOPIC_ARN)
    profiles_parameter: str = Field(min_length=1, alias=names.ENV_PROFILES_PARAMETER)


class EvaluationEnvironment(BaseModel):
    """What the evaluation function needs."""

    evaluations_table: str = Field(min_length=1, alias=names.ENV_EVALUATIONS_TABLE)
    evaluation_bucket: str = Field(min_length=1, alias=names.ENV_EVALUATION_BUCKET)


class RolloutEnvironment(BaseModel):
    """What the rollout functions read from their environment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    listener_arn: str = Field(min_length=1, alias=names.ENV_LISTENER_ARN)
    primary_target_group_arn: str = Field(min_length=1, alias=names.ENV_PRIMARY_TARGET_GROUP_ARN)
    canary_target_group_arn: str = Field(min_length=1, alias=names.ENV_CANARY_TARGET_GROUP_ARN)
    rollouts_table: str = Field(min_length=1, alias=names.ENV_ROLLOUTS_TABLE)
    experiments_table: str = Field(min_length=1, alias=names.ENV_EXPERIMENTS_TABLE)
    alerts_topic_arn: str = Field(min_length=1, alias=names.ENV_ALERTS_TOPIC_ARN)
    state_machine_arn: str = Field(min_length=1, alias=names.ENV_STATE_MACHINE_ARN)
    metric_namespace: str = Field(default=names.METRIC_NAMESPACE, min_length=1, alias=names.ENV_METRIC_NAMESPACE)
    aggregates_table: str | None = Field(default=None, alias=names.ENV_AGGREGATES_TABLE)  # significance gate
    critical_alarm_name: str | None = Field(default=None, alias=names.ENV_CRITICAL_ALARM_NAME)
    warning_alarm_name: str | None = Field(default=None, alias=names.ENV_WARNING_ALARM_NAME)
    canary_alarm_names: str = Field(default="", alias=names.ENV_CANARY_ALARM_NAMES)  # the composites' children
    evaluations_table: str | None = Field(default=None, alias=names.ENV_EVALUATIONS_TABLE)  # stage-0 gate
    allow_offline_evaluation: bool = Field(default=False, alias=names.ENV_ALLOW_OFFLINE_EVALUATION)
    rollback_failures_queue_url: str | None = Field(default=None, alias=names.ENV_ROLLBACK_FAILURES_QUEUE_URL)
    other_canary_target_groups: str = Field(default="", alias=names.ENV_OTHER_CANARY_TARGET_GROUP_ARNS)
    warmup_parameter_prefix: str | None = Field(default=None, alias=names.ENV_WARMUP_PARAMETER_PREFIX)


@cache
def api_environment() -> ApiEnvironment:
    """Parsed once per execution environment."""
    return load_environment(ApiEnvironment)


def load_profiles(parameter_name: str) -> dict[str, IntentProfile]:
    """Per-intent profiles from SSM, cached by Powertools Parameters for 5 minutes; defaults fill gaps."""
    from aws_lambda_powertools.utilities import parameters

    document: Any = parameters.get_parameter(parameter_name, transform="json", max_age=PROFILES_MAX_AGE_SECONDS)
    return {**DEFAULT_PROFILES, **profiles_from_json(document)}
