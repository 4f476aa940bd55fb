"""Experiment definition validation and lifecycle rules."""

from __future__ import annotations

import pytest

from kanaria.domain.experiment import Status, next_status, parse_experiment
from kanaria.errors import ConflictError, ValidationError
from tests.unit.assignment.conftest import definition


@pytest.mark.parametrize(
    ("changes", "field", "reason_part"),
    [
        ({"variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.4}]}, "variants", "sum to 1"),
        ({"control": "Z"}, "control", "not one of the variants"),
        (
            {"variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"temperature": 1.7}}]},
            "variants.1.overrides.temperature",
            "less than or equal to 1",
        ),
        (
            {"variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"top_k": -1}}]},
            "variants.1.overrides.top_k",
            "greater than or equal to 0",
        ),
        (
            {"variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"max_tokens": 0}}]},
            "variants.1.overrides.max_tokens",
            "greater than or equal to 1",
        ),
        (
            {"variants": [{"id": "A", "weight": 0.5}, {"id": "B", "weight": 0.5, "overrides": {"colour": "red"}}]},
            "variants.1.overrides.colour",
            "Extra inputs",
        ),
        ({"traffic": 1.5}, "traffic.default", "less than or equal to 1"),
        ({"traffic": {"default": 0.1, "per_intent": {"chitchat": 2}}}, "traffic.per_intent", "between 0 and 1"),
        ({"unit": "device"}, "unit", "session"),
        ({"primary_metric": "vibes"}, "primary_metric", "unknown metric"),
        ({"decision": {"mde": 0.02, "alpha": 0.7}}, "decision.alpha", "less than 0.5"),
        ({"decision": {"mde": 0.02, "method": "bayes"}}, "decision.method", "fixed"),
        ({"id": "Has Spaces"}, "id", "pattern"),
        ({"namespace_segment": [5000, 4000]}, "namespace_segment", "start < end"),
        ({"variants": [{"id": "A", "weight": 0.5}, {"id": "A", "weight": 0.5}]}, "variants", "unique"),
    ],
)
def test_bad_definitions_name_the_field_and_reason(changes, field, reason_part):
    with pytest.raises(ValidationError) as caught:
        parse_experiment(definition(**changes))
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_missing_required_field_is_named():
    document = definition()
    del document["hypothesis"]
    with pytest.raises(ValidationError) as caught:
        parse_experiment(document)
    assert caught.value.field == "hypothesis" and caught.value.reason == "required field is missing"


def test_a_valid_definition_parses_with_defaults():
    experiment = parse_experiment(definition())
    assert experiment.layer == "exp-temp" and experiment.assignment_salt == "exp-temp"
    assert experiment.decision.method == "obf" and experiment.decision.alpha == 0.05
    assert experiment.traffic.rate("anything") == 1.0


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (Status.DRAFT, "start", Status.RUNNING),
        (Status.RUNNING, "pause", Status.PAUSED),
        (Status.PAUSED, "resume", Status.RUNNING),
        (Status.RUNNING, "complete", Status.COMPLETED),
        (Status.PAUSED, "complete", Status.COMPLETED),
    ],
)
def test_legal_transitions(current, action, expected):
    assert next_status(current, action) is expected


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (Status.DRAFT, "pause"),
        (Status.DRAFT, "complete"),
        (Status.COMPLETED, "start"),
        (Status.COMPLETED, "resume"),
        (Status.RUNNING, "start"),
        (Status.PAUSED, "pause"),
    ],
)
def test_illegal_transitions_are_refused(current, action):
    with pytest.raises(ConflictError) as caught:
        next_status(current, action)
    assert caught.value.status_code == 409
