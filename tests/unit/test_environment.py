"""kanaria.handlers.env: every function's environment in one module, each variable named by kanaria.names."""

from __future__ import annotations

import pytest

from kanaria import names
from kanaria.errors import OperationalError
from kanaria.handlers import env

MODELS = [
    env.ApiEnvironment,
    env.ObservationsEnvironment,
    env.AnalysisEnvironment,
    env.EvaluationEnvironment,
    env.RolloutEnvironment,
]
ENV_NAMES = {value for key, value in vars(names).items() if key.startswith("ENV_")}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_variable_is_one_of_the_names_the_infrastructure_sets(model) -> None:
    aliases = {field.alias for field in model.model_fields.values()}
    assert aliases and aliases <= ENV_NAMES


def test_a_missing_variable_is_an_operational_error_naming_it(monkeypatch) -> None:
    for key in ENV_NAMES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(names.ENV_EVALUATION_BUCKET, "bucket")
    with pytest.raises(OperationalError) as err:
        env.load_environment(env.EvaluationEnvironment)
    assert err.value.field == f"environment.{names.ENV_EVALUATIONS_TABLE}" and err.value.status_code == 502
    monkeypatch.setenv(names.ENV_EVALUATIONS_TABLE, "evaluations")
    loaded = env.load_environment(env.EvaluationEnvironment)
    assert (loaded.evaluations_table, loaded.evaluation_bucket) == ("evaluations", "bucket")
