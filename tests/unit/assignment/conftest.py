"""Experiment definitions used by the assignment tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest


def definition(**changes: Any) -> dict[str, Any]:
    """A valid two-variant experiment definition with `changes` applied on top."""
    base: dict[str, Any] = {
        "id": "exp-temp",
        "description": "Cooler recommendation sampling",
        "hypothesis": "temperature 0.6 raises quality by 0.02",
        "intents": ["recommendation", "product_search"],
        "unit": "session",
        "traffic": 1.0,
        "control": "A",
        "variants": [
            {"id": "A", "weight": 0.5},
            {"id": "B", "weight": 0.5, "overrides": {"temperature": 0.6}},
        ],
        "primary_metric": "quality_score",
        "decision": {"mde": 0.02},
    }
    merged = copy.deepcopy(base)
    merged.update(changes)
    return merged


@pytest.fixture
def make_definition():
    """Factory for experiment definitions."""
    return definition
