"""Bandit experiments: Thompson-sampling weights, the 10% floor and the quality floor."""

import pytest

from .builders import analyze, snapshot, variant


def bandit_snapshot(**extra):
    body = snapshot(variant(1_000), variant(1_000), primary="task_completed", mde=0.02, bandit=True, **extra)
    body["experiment"]["weights"] = {"A": 0.4, "B": 0.3, "C": 0.3}
    body["aggregates"] = {
        "A": variant(2_000, task_completed=0.70),
        "B": variant(1_500, task_completed=0.76),
        "C": variant(1_500, task_completed=0.80, quality=0.75),  # best reward, but below the 0.80 quality floor
    }
    return body


def test_bandit_weights_follow_the_posterior_with_floors():
    result = analyze(bandit_snapshot())
    weights = result["weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert weights["C"] == 0.0 and "quality" in result["bandit"]["removed"]["C"]
    assert weights["A"] >= 0.10 - 1e-12 and weights["B"] > weights["A"]
    assert result["decision"] == "CONTINUE" and result["actions"] == ["update_weights"]
    assert result["srm"]["mismatch"] is None  # weights move over time: no SRM against the current ones


def test_bandit_weights_are_reproducible_for_the_same_data():
    assert analyze(bandit_snapshot())["weights"] == analyze(bandit_snapshot())["weights"]


def test_bandit_seed_can_be_pinned():
    assert analyze(bandit_snapshot(seed=7))["bandit"]["seed"] == 7
