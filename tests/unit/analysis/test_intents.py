"""Per-intent results, the severity-weighted composite and the revenue-critical block."""

import pytest

from .builders import analyze, snapshot, variant

LIFT = {  # +10% on two intents: enough for the severity-weighted composite to stay positive
    "manga_qa": (variant(5_000, quality=0.80), variant(5_000, quality=0.88)),
    "chitchat": (variant(5_000, quality=0.80), variant(5_000, quality=0.88)),
}


def with_intents(intents, **experiment):
    body = snapshot(variant(20_000), variant(20_000, quality=0.86), planned_n=20_000, **experiment)
    body["intents"] = {name: {"A": a, "B": b} for name, (a, b) in intents.items()}
    return body


def test_design_note_composite_example():
    # Canary notes A5: recommendation +3% (weight 0.25) and return_request −7% (weight 0.10), others flat:
    # 0.25·3% − 0.10·7% = +0.05%; return_request is not revenue-critical, so nothing blocks
    flat = (variant(2_000, quality=0.80), variant(2_000, quality=0.80))
    intents = {
        "recommendation": (variant(2_000, quality=0.80), variant(2_000, quality=0.824)),
        "return_request": (variant(2_000, quality=0.80), variant(2_000, quality=0.744)),
        "checkout_help": flat,
        "product_discovery": flat,
        "faq": flat,
    }
    weights = {
        "recommendation": 0.25,
        "checkout_help": 0.20,
        "product_discovery": 0.15,
        "return_request": 0.10,
        "faq": 0.30,
    }
    result = analyze(with_intents(intents, intent_weights=weights))
    verdict = result["evidence"]["intents"]["B"]
    assert verdict["composite_improvement"] == pytest.approx(0.0005, abs=1e-12)
    assert verdict["intents"]["return_request"]["relative_change"] == pytest.approx(-0.07)
    assert verdict["blocked_by"] == [] and result["decision"] == "PROMOTE"


def test_revenue_critical_regression_blocks_a_promotion_even_when_the_composite_improves():
    # product_search −6% on a small slice (not significant), manga_qa and chitchat +10%: the composite is positive
    intents = {
        "product_search": (variant(60, quality=0.85, quality_sd=0.2), variant(60, quality=0.80, quality_sd=0.2)),
        **LIFT,
    }
    result = analyze(with_intents(intents))
    verdict = result["evidence"]["intents"]["B"]
    assert verdict["composite_improvement"] > 0
    assert verdict["blocked_by"] == ["product_search"] and verdict["rollback_by"] == []
    assert result["decision"] == "CONTINUE" and not result["final"]  # the win waits while the intent blocks
    assert "product_search" in result["evidence"]["reasons"][0]


def test_revenue_critical_regression_shown_beyond_five_percent_rolls_back():
    # −12%: the always-valid test of "regressed by more than 5%" rejects at the harm level
    intents = {"recommendation": (variant(3_000, quality=0.85), variant(3_000, quality=0.75))}
    result = analyze(with_intents(intents))
    assert result["evidence"]["intents"]["B"]["rollback_by"] == ["recommendation"]
    assert result["decision"] == "ROLLBACK"
    # −6%, significant against 0 but not shown beyond 5%: it blocks, it does not roll back
    mild = analyze(with_intents({"recommendation": (variant(3_000, quality=0.85), variant(3_000, quality=0.80))}))
    assert mild["evidence"]["intents"]["B"]["blocked_by"] == ["recommendation"]
    assert mild["evidence"]["intents"]["B"]["rollback_by"] == [] and mild["decision"] == "CONTINUE"


def test_regression_within_five_percent_does_not_block():
    intents = {
        "product_search": (variant(60, quality=0.85, quality_sd=0.2), variant(60, quality=0.82, quality_sd=0.2)),
        **LIFT,
    }
    assert analyze(with_intents(intents))["decision"] == "PROMOTE"  # −3.5%


def test_a_composite_that_does_not_improve_blocks_a_promotion():
    intents = {"order_status": (variant(500, quality=0.85), variant(500, quality=0.84))}
    result = analyze(with_intents(intents))
    assert result["evidence"]["intents"]["B"]["composite_improvement"] < 0
    assert result["decision"] == "CONTINUE"


def test_revenue_critical_intents_are_configurable():
    intents = {
        "chitchat": (variant(60, quality=0.85, quality_sd=0.2), variant(60, quality=0.78, quality_sd=0.2)),
        "manga_qa": LIFT["manga_qa"],
    }
    default = analyze(with_intents(intents))
    configured = analyze(with_intents(intents, revenue_critical_intents=["chitchat"]))
    assert default["decision"] == "PROMOTE"
    assert configured["evidence"]["intents"]["B"]["blocked_by"] == ["chitchat"]


def test_a_revenue_critical_intent_without_enough_data_blocks():
    intents = {"recommendation": (variant(10, quality=0.85), variant(10, quality=0.86))}
    result = analyze(with_intents(intents))
    assert result["evidence"]["intents"]["B"]["insufficient_data"] == ["recommendation"]
    assert result["decision"] == "CONTINUE"


def test_default_weights_follow_intent_severity():
    intents = {"order_status": (variant(500), variant(500)), "chitchat": (variant(500), variant(500))}
    rows = analyze(with_intents(intents))["evidence"]["intents"]["B"]["intents"]
    assert (rows["order_status"]["weight"], rows["chitchat"]["weight"]) == (3.0, 1.0)  # high vs low severity
