"""Configurations under evaluation: a name plus resolved parameters, or overrides resolved per intent profile."""

from __future__ import annotations

import re
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kanaria.domain.profiles import (
    DEFAULT_PROFILES,
    FALLBACK_INTENT,
    IntentProfile,
    ModelParameters,
    ParameterOverrides,
    bedrock_config,
    config_hash,
    profile_for,
    resolve,
)
from kanaria.errors import ValidationError, validate

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
OFFLINE_PREFIX = "offline:"  # model ids answered by the offline adapter (kanaria_tools.offline_model)
SAGEMAKER_PREFIX = "sagemaker:"  # model ids answered by a SageMaker real-time endpoint: "sagemaker:<endpoint name>"
# CreateEndpoint's EndpointName rule: alphanumerics and hyphens, no leading or trailing hyphen, at most 63.
ENDPOINT_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PARAMETER_FIELDS = frozenset(ModelParameters.model_fields)


def is_offline(model_id: str) -> bool:
    """True for model ids the offline adapter answers (no boto3 here: the rollout gate asks this too)."""
    return model_id.startswith(OFFLINE_PREFIX)


def is_sagemaker(model_id: str) -> bool:
    """True for "sagemaker:<endpoint name>" model ids."""
    return model_id.startswith(SAGEMAKER_PREFIX)


def endpoint_name(model_id: str, field: str = "model_id") -> str:
    """The endpoint name of a "sagemaker:" model id; ValidationError naming `field` when it is not a valid name."""
    name = model_id.removeprefix(SAGEMAKER_PREFIX)
    if not ENDPOINT_NAME_PATTERN.match(name):
        raise ValidationError(
            f"{model_id!r}: a SageMaker model id is 'sagemaker:<endpoint name>', the name 1-63 letters, digits "
            "and hyphens, not starting or ending with a hyphen",
            field=field,
        )
    return name


def _model_id_problem(model_id: str | None, field: str) -> str | None:
    """'<field>: <reason>' for a malformed model id (the pydantic model-level error form), else None."""
    if model_id is None or not is_sagemaker(model_id):
        return None
    try:
        endpoint_name(model_id, field)
    except ValidationError as exc:
        return f"{field}: {exc.reason}"
    return None


class EvalConfiguration(BaseModel):
    """One configuration: either `parameters` (the same resolved parameters for every intent) or `overrides`
    applied to each intent's profile, like an experiment variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=500)
    parameters: ModelParameters | None = None
    overrides: ParameterOverrides | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "EvalConfiguration":
        if (self.parameters is None) == (self.overrides is None):
            raise ValueError("parameters: give exactly one of parameters (resolved) or overrides (per intent profile)")
        problem = _model_id_problem(self.parameters.model_id, "parameters.model_id") if self.parameters else None
        if self.overrides is not None:
            problem = _model_id_problem(self.overrides.model_id, "overrides.model_id")
        if problem:
            raise ValueError(problem)
        return self

    def resolved(self, intent: str, profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> ModelParameters:
        """The parameters sent to the model for a case of `intent`."""
        if self.parameters is not None:
            return self.parameters
        return resolve(profile_for(intent, profiles), self.overrides)

    def intent_hash(self, intent: str, profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> str:
        """config_hash of the resolved configuration for `intent` (what assignment reports for it)."""
        return config_hash(bedrock_config(self.resolved(intent, profiles)))

    def config_hash(self, profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> str:
        """Identity of the whole configuration: the resolved hash for `parameters`, else the hash of every profiled
        intent's resolved configuration (so a profile change is a new configuration)."""
        if self.parameters is not None:
            return config_hash(bedrock_config(self.parameters))
        return config_hash({i: bedrock_config(self.resolved(i, profiles)) for i in sorted(served_intents(profiles))})

    def model_ids(self, intents: list[str], profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> list[str]:
        """Distinct model ids this configuration calls."""
        return sorted({self.resolved(i, profiles).model_id for i in intents})


def served_intents(profiles: Mapping[str, IntentProfile] = DEFAULT_PROFILES) -> list[str]:
    """Every profiled intent except the fallback: what a configuration serves unless told otherwise."""
    return [i for i in profiles if i != FALLBACK_INTENT]


def _from_bedrock_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """ModelParameters fields from the bedrock_config() shape (what `kanaria assign` prints as `config`)."""
    inference = dict(config.get("inference") or {})
    fields = {k: v for k, v in config.items() if k not in {"inference"}}
    fields.update(inference)
    return fields


def parse_configuration(document: Any, where: str = "config") -> EvalConfiguration:
    """A configuration from JSON: {name, parameters|overrides|config} or flat ModelParameters fields with a name."""
    if not isinstance(document, dict):
        raise ValidationError("a configuration must be a JSON object", field=where)
    body = dict(document)
    if "config" in body:  # the resolved shape printed by `kanaria assign`
        body["parameters"] = _from_bedrock_config(body.pop("config"))
    elif "parameters" not in body and "overrides" not in body:
        flat = {k: body.pop(k) for k in list(body) if k in _PARAMETER_FIELDS}
        if flat:
            body["parameters"] = flat
    return validate(EvalConfiguration, body, prefix=where)


def check_unique(configurations: list[EvalConfiguration]) -> None:
    """Names identify configurations in the report: refuse duplicates."""
    names = [c.name for c in configurations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError(f"duplicate configuration name(s): {', '.join(duplicates)}", field="config.name")
    if not configurations:
        raise ValidationError("give at least one configuration", field="config")
