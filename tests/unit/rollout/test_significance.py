"""The rollout gate's reading of the latest analysis result: the typed Decision, per variant, no spelling guesses."""

import json

import pytest

from kanaria.domain.analysis_result import AnalysisResult, Decision, decode_result_item, verdict_for_variant
from kanaria.domain.rollout_gates import Outcome, significance_from_result


def stored(
    decision: str | None, winner: str | None = None, stop: list[str] | None = None, variants: dict | None = None
) -> dict:
    """A RESULT#LATEST item as the scheduled analysis writes it (result as JSON text)."""
    result = None
    if decision in {d.value for d in Decision}:
        result = AnalysisResult(
            experiment_id="e",
            decision=decision,
            winner=winner,
            stop_variants=stop or [],
            evidence={"variants": variants or {}},
        ).to_json()
    return {
        "experiment_id": "e",
        "computed_at": "t",
        "decision": decision or "-",
        "result": json.dumps(result) if result is not None else None,
    }


@pytest.mark.parametrize(
    ("item", "outcome"),
    [
        (None, Outcome.INCONCLUSIVE),
        (stored(None), Outcome.INCONCLUSIVE),
        (stored("PROMOTE", winner="treatment"), Outcome.PASS),
        (stored("PROMOTE", winner="other"), Outcome.INCONCLUSIVE),
        (stored("REVIEW", winner="treatment"), Outcome.INCONCLUSIVE),
        (stored("ROLLBACK"), Outcome.FAIL),
        (stored("CONTINUE"), Outcome.INCONCLUSIVE),
        (stored("NO_DECISION"), Outcome.INCONCLUSIVE),
        # three arms: another arm wins while the candidate's arm is stopped as harmful
        (stored("PROMOTE", winner="other", stop=["treatment"]), Outcome.FAIL),
        (
            stored("CONTINUE", stop=["other"], variants={"treatment": {"decision": "CONTINUE", "action": "continue"}}),
            Outcome.INCONCLUSIVE,
        ),
    ],
)
def test_stored_decisions_map_to_gate_outcomes(item, outcome):
    # the item as decoded by the one reader, and the older {decision, computed_at, result} mapping alike
    decoded = decode_result_item(item) if item is not None else None
    assert significance_from_result(decoded, "treatment").outcome is outcome
    mapping = None if item is None else {**item, "result": json.loads(item["result"]) if item["result"] else None}
    assert significance_from_result(mapping, "treatment").outcome is outcome


@pytest.mark.parametrize(
    "spelling",
    [
        "promote",
        "PROMOTE_TREATMENT — better quality",
        "ROLLBACK — treatment is worse",
        "stop_for_harm",
        '{"action": "promote"}',
    ],
)
def test_anything_but_a_decision_value_is_inconclusive_and_says_so(spelling):
    verdict = significance_from_result({"decision": spelling, "computed_at": "t"}, "treatment")
    assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.decision == spelling
    assert "not one of PROMOTE, ROLLBACK, REVIEW, CONTINUE, NO_DECISION" in verdict.reason


def test_a_stored_result_that_is_not_an_analysis_result_is_reported_not_raised():
    item = {"experiment_id": "e", "computed_at": "t", "decision": "PROMOTE", "result": json.dumps({"decision": 5})}
    decoded = decode_result_item(item)
    assert decoded.result is None and "not an analysis result" in decoded.error
    assert verdict_for_variant(decoded, "treatment").verdict == "pass"  # the stored decision itself is typed


def test_the_typed_result_imports_without_numpy():
    import subprocess
    import sys

    probe = (
        "import sys, kanaria.domain.analysis_result, kanaria.domain.rollout, kanaria.domain.rollout_gates; "
        "print('numpy' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
