"""Issue #13's input gaps, through the engine and the CLI: each bad input is an error naming the field (exit 2,
nothing printed for it but the error); each statistical gap gets an answer instead of a silent CONTINUE."""

from __future__ import annotations

import copy
import json
import math
import warnings

import pytest
from scipy import stats

from kanaria.analysis import analyze_snapshot
from kanaria.errors import ValidationError
from kanaria_tools.cli.main import main

from .builders import analyze, mean_stats, snapshot, variant

GOOD = snapshot(variant(1_000), variant(1_000))


def _set(body: dict, path: str, value) -> dict:
    body = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return body


BAD = [
    # sum² overflows a float: the exact (Decimal) second moment shows the negative variance, no RuntimeWarning
    (
        "overflow",
        "aggregates.A.quality_score",
        {"n": 10, "sum": 1e300, "sum_sq": 1e308},
        "aggregates.A.quality_score.sum_sq",
    ),
    ("bool count", "aggregates.B.error", {"n": 1000, "successes": True}, "aggregates.B.error.successes"),
    ("bool n", "aggregates.B.error", {"n": True, "successes": 0}, "aggregates.B.error.n"),
    ("float count", "aggregates.B.error", {"n": 1000, "successes": 3.0}, "aggregates.B.error.successes"),
    ("bool units", "aggregates.B.units", True, "aggregates.B.units"),
    ("bool sum", "aggregates.B.cost_usd", {"n": 1000, "sum": True, "sum_sq": 1.0}, "aggregates.B.cost_usd.sum"),
    ("missing control", "aggregates.A", KeyError, "aggregates.A"),
    ("negative cost", "aggregates.B.cost_usd", {"n": 10, "sum": -0.05, "sum_sq": 0.001}, "aggregates.B.cost_usd.sum"),
    (
        "negative quality",
        "aggregates.A.quality_score",
        {"n": 10, "sum": -1.0, "sum_sq": 1.0},
        "aggregates.A.quality_score.sum",
    ),
    ("histogram not adding up", "aggregates.B.latency_ms.histogram", {"300": 5}, "aggregates.B.latency_ms.histogram"),
]


@pytest.mark.parametrize("name, path, value, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_an_error_naming_the_field(name, path, value, field):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way either
        with pytest.raises(ValidationError) as caught:
            analyze_snapshot(_set(GOOD, path, value))
    assert caught.value.field == field


@pytest.mark.parametrize("name, path, value, field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_naming_the_field_in_the_cli(capsys, tmp_path, name, path, value, field):
    file = tmp_path / "snapshot.json"
    file.write_text(json.dumps(_set(GOOD, path, value)))
    code = main(["analyze", "--input", str(file)])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(err)["error"]["field"] == field
    assert json.loads(out) == {"line": 1, "error": json.loads(out)["error"]}  # an error line, no result


def _mean_1e8(n: int, mean: float, sd: float) -> dict:
    # exact decimal text of n values mean ± sd: sum_sq = n·mean² + (n − 1)·sd² has 20 significant digits
    from decimal import Decimal

    m, s = Decimal(repr(mean)), Decimal(repr(sd))
    return {"n": n, "sum": Decimal(n) * m, "sum_sq": Decimal(n) * m * m + Decimal(n - 1) * s * s}


def test_a_large_mean_keeps_its_variance_through_the_cli(capsys, tmp_path):
    # mean 1e8, SD 1: in floats sum_sq − sum²/n is 0 (the 999 of 1e19 + 999 is below a float's resolution)
    body = snapshot(variant(1_000), variant(1_000), primary="latency_ms", mde=0.5, planned_n=1_000)
    body["aggregates"]["A"]["latency_ms"] = {**_mean_1e8(1_000, 1e8, 1.0), "p99": None}
    body["aggregates"]["B"]["latency_ms"] = {**_mean_1e8(1_000, 1e8 - 0.2, 1.0), "p99": None}
    file = tmp_path / "snapshot.json"
    file.write_text(_json_with_decimals(body))
    assert main(["analyze", "--input", str(file)]) == 0
    result = json.loads(capsys.readouterr().out)
    latency = result["metrics"]["latency_ms"]["B"]
    reference = stats.ttest_ind_from_stats(1e8 - 0.2, 1.0, 1_000, 1e8, 1.0, 1_000, equal_var=False)
    assert latency["p_value"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert latency["significant"] is True and result["evidence"]["efficacy"]["B"]["significant"] is True


def _json_with_decimals(body: dict) -> str:
    """JSON text with each Decimal written as a number with all its digits."""
    return json.dumps(_decimals_as_markers(body)).replace('"@@', "").replace('@@"', "")


def _decimals_as_markers(value):
    from decimal import Decimal

    if isinstance(value, Decimal):
        return f"@@{value}@@"
    if isinstance(value, dict):
        return {k: _decimals_as_markers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals_as_markers(v) for v in value]
    return value


def test_one_of_one_against_zero_of_one_has_no_zero_width_interval():
    body = snapshot(variant(1_000), variant(1_000), planned_n=2_000)
    body["aggregates"]["A"]["task_completed"] = {"n": 1, "successes": 1}
    body["aggregates"]["B"]["task_completed"] = {"n": 1, "successes": 0}
    low, high = analyze(body)["metrics"]["task_completed"]["B"]["ci"]
    assert low == pytest.approx(-1.0, abs=0.2) and high > low + 0.5  # Newcombe: about [−0.97, 0.2]


@pytest.mark.parametrize("treatment_quality, decision", [(0.86, "PROMOTE"), (0.80, "ROLLBACK")])
def test_two_constant_arms_with_different_values_are_decided(treatment_quality, decision):
    # every response 0.83 in control and 0.86 (or 0.80) in the treatment: the difference is certain
    body = snapshot(variant(1_000), variant(1_000), planned_n=1_000)
    body["aggregates"]["A"]["quality_score"] = mean_stats(1_000, 0.83, 0.0)
    body["aggregates"]["B"]["quality_score"] = mean_stats(1_000, treatment_quality, 0.0)
    for name in "AB":  # guardrails that 1,000 units can prove
        body["aggregates"][name]["error"] = {"n": 1_000, "successes": 0}
        body["aggregates"][name]["safety_filtered"] = {"n": 1_000, "successes": 0}
    result = analyze(body)
    assert result["metrics"]["quality_score"]["B"]["p_value"] == 0.0
    assert result["decision"] == decision
    same = copy.deepcopy(body)
    same["aggregates"]["B"]["quality_score"] = mean_stats(1_000, 0.83, 0.0)
    assert analyze(same)["metrics"]["quality_score"]["B"]["p_value"] == 1.0
    assert not math.isnan(analyze(same)["metrics"]["quality_score"]["B"]["statistic"])
