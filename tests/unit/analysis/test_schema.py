"""Snapshot validation: bad input is a kanaria ValidationError naming the field."""

import copy

import pytest

from kanaria.analysis import parse_snapshot
from kanaria.errors import ValidationError

from .builders import analyze, snapshot, variant

GOOD = snapshot(variant(1_000), variant(1_000))


def broken(path: str, value):
    body = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return body


@pytest.mark.parametrize(
    "path, value, field, reason",
    [
        ("experiment.weights", {"A": 0.5, "B": 0.6}, "experiment.weights", "must sum to 1"),
        ("experiment.weights", {"A": 1.0}, "experiment.weights", "at least two"),
        ("experiment.control", "Z", "experiment.control", "one of the variants"),
        ("experiment.method", "bayes", "experiment.method", ""),
        ("experiment.method", KeyError, "experiment.method", "required"),
        ("experiment.alpha", 0.7, "experiment.alpha", ""),
        ("experiment.looks", [0.5, 0.3], "experiment.looks", "increasing"),
        ("experiment.guardrails", [{"metric": "vibes", "max": 1}], "experiment.guardrails.0.metric", "unknown"),
        ("experiment.guardrails", [{"metric": "error"}], "experiment.guardrails.0", "needs"),
        ("aggregates.B.error", {"n": 10, "successes": 11}, "aggregates.B.error.successes", "exceed"),
        ("aggregates.A.quality_score", {"n": -1, "sum": 0, "sum_sq": 0}, "aggregates.A.quality_score.n", ""),
        (
            "aggregates.A.quality_score",
            {"n": 10, "sum": 10.0, "sum_sq": 1.0},
            "aggregates.A.quality_score.sum_sq",
            "negative variance",
        ),
        ("aggregates.A.error", {"n": 10, "sum": 1.0, "sum_sq": 1.0}, "aggregates.A.error.successes", "required"),
        ("aggregates.A.quality_score", 5, "aggregates.A.quality_score", "dictionary"),
        ("aggregates.A.units", KeyError, "aggregates.A.units", "required"),
        ("aggregates.Z", variant(10), "aggregates.Z", "not in experiment.weights"),
        ("experiment.primary_metric", "joy", "experiment.primary_metric", "unknown metric"),
    ],
)
def test_bad_snapshots_name_the_field(path, value, field, reason):
    with pytest.raises(ValidationError) as caught:
        analyze(broken(path, value))
    assert caught.value.field == field
    assert reason.lower() in caught.value.reason.lower()


def test_always_valid_needs_an_mde():
    body = broken("experiment.mde", KeyError)
    body["experiment"]["method"] = "always_valid"
    with pytest.raises(ValidationError) as caught:
        analyze(body)
    assert caught.value.field == "experiment.mde"


def test_bandit_needs_a_binary_primary_metric():
    with pytest.raises(ValidationError) as caught:
        analyze(broken("experiment.bandit", True))
    assert caught.value.field == "experiment.primary_metric"


def test_not_an_object():
    with pytest.raises(ValidationError) as caught:
        analyze([1, 2])  # type: ignore[arg-type]
    assert caught.value.field == "snapshot"


def test_snapshot_from_the_scheduled_analysis_shape_is_accepted():
    # as built by kanaria.logic.analysis_run: observations count, quantiles (None without data), guardrail list,
    # nested config hashes, stopped variants and flagged counters
    body = snapshot(
        variant(500),
        variant(500),
        planned_n=None,
        tier="revenue_critical",
        guardrails=[{"metric": "latency_p99_ms", "max_degradation": 0.1, "relative": True}],
        config_hashes={"A": {"chitchat": "ab12"}, "B": {"chitchat": "cd34"}},
        stopped_variants={},
    )
    for agg in body["aggregates"].values():
        agg["observations"] = 500
        agg["latency_ms"].update(p50=None, p95=None, p99=None)
    body["intents"] = {"chitchat": copy.deepcopy(body["aggregates"]), "-": copy.deepcopy(body["aggregates"])}
    body["flagged"] = {"mismatched": {}, "excluded": {}}
    parsed = parse_snapshot(body)
    assert parsed.aggregates["A"].means["latency_ms"].p99 is None
    result = analyze(body)
    assert result["evidence"]["config_hashes"]["B"] == {"chitchat": "cd34"}
    assert result["evidence"]["intents"]["B"]["intents"]["-"]["weight"] == 0.0


def test_unknown_metrics_are_analysed_by_shape():
    body = copy.deepcopy(GOOD)
    body["aggregates"]["A"]["thumbs_up"] = {"n": 1000, "successes": 500}
    body["aggregates"]["B"]["thumbs_up"] = {"n": 1000, "successes": 560}
    result = analyze(body)
    assert result["metrics"]["thumbs_up"]["B"]["test"] == "two_proportion_z"


def test_stopped_variants_may_be_a_list():
    body = copy.deepcopy(GOOD)
    body["experiment"]["weights"] = {"A": 0.5, "B": 0.25, "C": 0.25}
    body["aggregates"]["C"] = variant(100)
    body["experiment"]["stopped_variants"] = ["C"]
    assert parse_snapshot(body).experiment.stopped_variants == {"C": "stopped"}
    body["experiment"]["stopped_variants"] = ["A"]
    with pytest.raises(ValidationError) as caught:
        parse_snapshot(body)
    assert caught.value.field == "experiment.stopped_variants"
