"""The whole-rule simulator: its building blocks against independent computations, and its rule replicas against
the engine on a small scenario (the bench checks the same on its own runs)."""

import numpy as np
import pytest
from scipy import stats

from kanaria_tools.bench.decision_rules import new_codes, new_obf_schedule, rules
from kanaria_tools.bench.decision_sim import (
    FINAL,
    NONE,
    PROMOTE,
    ROLLBACK,
    Outcome,
    Scenario,
    bucket_value,
    clopper_pearson_vs,
    histogram_p99,
    lumped_histogram,
    simulate_arm,
)
from kanaria_tools.bench.statistics import simulate, verify


def test_first_decision_per_run_and_final_no_decision():
    codes = np.array([[NONE, ROLLBACK, PROMOTE], [NONE, NONE, NONE], [FINAL, NONE, NONE]])
    out = Outcome.first(codes)
    assert out.index.tolist() == [1, -1, 0] and out.kind.tolist() == [ROLLBACK, NONE, FINAL]
    assert out.decided.tolist() == [True, False, False]
    assert out.within(1).index.tolist() == [-1, -1, 0]


def test_clopper_pearson_thresholds_equal_the_beta_quantiles():
    n = np.arange(1, 2001)
    x = np.minimum(np.random.default_rng(0).binomial(n, 0.005)[None, :] + np.array([[0], [2], [6]]), n)
    passed, failed = clopper_pearson_vs(x, n, 0.005, 0.05)
    low = np.where(x > 0, stats.beta.ppf(0.025, np.maximum(x, 1e-300), n - x + 1), 0.0)
    high = np.where(x < n, stats.beta.ppf(0.975, x + 1, np.maximum(n - x, 1e-300)), 1.0)
    assert (passed == (high <= 0.005)).all() and (failed == (low > 0.005)).all()


def test_order_statistics_of_the_lumped_histogram_match_the_domain():
    from kanaria.analysis.guardrails import order_statistic_edges
    from kanaria.domain.observation import histogram_quantile

    arm = simulate_arm(np.random.default_rng(1), 2, Scenario("x", 100, reads=600))
    histogram = {int(k): v for k, v in lumped_histogram(arm.tail_le[0, 599]).items()}
    for rank in (1, 300, 590, 600, 601):
        low, high = order_statistic_edges(histogram, rank)
        got_low = bucket_value(arm.tail_le[0:1, 599:600], np.array([rank]), "low")[0, 0]
        got_high = bucket_value(arm.tail_le[0:1, 599:600], np.array([rank]), "high")[0, 0]
        assert (got_low, got_high) == pytest.approx((low, high)) or (rank > 600 and np.isinf(got_low))
    assert histogram_p99(arm.tail_le[0:1, 599:600])[0, 0] == pytest.approx(histogram_quantile(histogram, 0.99))


def test_obf_schedule_takes_the_planned_looks_as_the_engine_does():
    is_look, nominal, carried = new_obf_schedule(Scenario("x", 400, reads=700))
    assert np.flatnonzero(is_look).tolist() == [99, 199, 299, 399]  # n = 100, 200, 300, 400 of 400
    assert carried[400] == [0.25, 0.5, 0.75, 1.0] and 0 < nominal[99] < nominal[399] < 0.05


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("win", 1500, effect=0.03, reads=2600, error_rate=0.0, hallucination_rate=0.0, safety_rate=0.0),
        Scenario("harm", 300, effect=-0.05, reads=500, intents=True, treatment=(("hallucination_rate", 0.05),)),
    ],
    ids=["win", "harm"],
)
def test_the_new_rule_replicas_decide_as_the_engine(scenario):
    new = {name: rule for name, rule in rules().items() if rule.engine == "new"}
    sim = simulate(scenario, 12, 3, new, chunk=12)
    checked, disagreeing, notes = verify(scenario, sim, new, 4, per_rule=24)
    assert checked >= 24 and disagreeing == 0, notes
    assert any(o.decided.any() for o in sim.outcomes.values())  # the check covered decisions, not only silence


def test_without_guardrails_only_the_primary_decides():
    scenario = Scenario("errors", 300, effect=0.05, reads=600, error_rate=0.02, treatment=(("error_rate", 0.10),))
    rng = np.random.default_rng(5)
    control, treatment = simulate_arm(rng, 20, scenario), simulate_arm(rng, 20, scenario, treatment=True)
    whole = Outcome.first(new_codes(control, treatment, scenario, "always_valid"))
    primary = Outcome.first(new_codes(control, treatment, scenario, "always_valid", guardrails=False))
    assert (whole.kind == ROLLBACK).mean() > 0.8 and (primary.kind == PROMOTE).mean() > 0.8
