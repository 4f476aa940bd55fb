"""Environment of the Lambdas, validated once at cold start (pydantic env models)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from kanaria.domain.profiles import DEFAULT_PROFILES, IntentProfile, profiles_from_json

PROFILES_MAX_AGE_SECONDS = 300


class ApiEnvironment(BaseModel):
    """What the experiments and assignment functions need."""

    experiments_table: str = Field(min_length=1, alias="EXPERIMENTS_TABLE")
    assignments_table: str = Field(min_length=1, alias="ASSIGNMENTS_TABLE")
    aggregates_table: str = Field(min_length=1, alias="AGGREGATES_TABLE")
    profiles_parameter: str = Field(min_length=1, alias="PROFILES_PARAMETER")


@cache
def api_environment() -> ApiEnvironment:
    """Parsed once per execution environment."""
    return ApiEnvironment.model_validate(dict(os.environ))


def load_profiles(parameter_name: str) -> dict[str, IntentProfile]:
    """Per-intent profiles from SSM, cached by Powertools Parameters for 5 minutes; defaults fill gaps."""
    from aws_lambda_powertools.utilities import parameters

    document: Any = parameters.get_parameter(parameter_name, transform="json", max_age=PROFILES_MAX_AGE_SECONDS)
    return {**DEFAULT_PROFILES, **profiles_from_json(document)}
