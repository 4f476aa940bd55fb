"""Decision rules on whole snapshots: PROMOTE, REVIEW, ROLLBACK, CONTINUE, NO_DECISION and their evidence."""

import json

import pytest

from .builders import analyze, mean_stats, rate_stats, snapshot, variant


def analyse(body):
    result = analyze(body)
    json.dumps(result, allow_nan=False)  # always valid JSON
    return result


def test_significant_win_with_every_guardrail_passing_is_promoted_with_evidence():
    # Given a 0.85 → 0.86 quality win on 10,000 units per arm (the plan) and healthy guardrails
    body = snapshot(variant(10_000), variant(10_000, quality=0.86), config_hashes={"A": "h-a", "B": "h-b"})
    # When analysed
    result = analyse(body)
    # Then B is promoted, and the evidence carries the statistics, guardrails, SRM, alpha spent and config hashes
    assert (result["decision"], result["winner"]) == ("PROMOTE", "B")
    evidence = result["evidence"]
    assert evidence["primary"]["B"]["significant"] is True
    assert {g["metric"]: g["status"] for g in evidence["guardrails"]["B"]} == {
        "latency_p99_ms": "pass",
        "error": "pass",
        "hallucination": "pass",
        "safety_filtered": "pass",
        "cost_usd": "pass",
    }
    assert result["srm"]["mismatch"] is False
    assert evidence["alpha_spent"] == 0.05
    assert evidence["config_hashes"] == {"A": "h-a", "B": "h-b"}
    assert set(result["metrics"]["quality_score"]) == {"B"}  # control is not listed


def test_better_quality_at_notably_higher_cost_goes_to_review():
    result = analyse(snapshot(variant(10_000), variant(10_000, quality=0.86, cost=0.0096)))  # +20% cost
    assert (result["decision"], result["winner"]) == ("REVIEW", "B")


def test_significantly_worse_primary_metric_rolls_back():
    result = analyse(snapshot(variant(10_000), variant(10_000, quality=0.84)))
    assert result["decision"] == "ROLLBACK" and result["actions"] == ["rollback"]


def test_a_significantly_failed_guardrail_rolls_back_even_when_quality_improves():
    # error rate 1% against a 0.5% ceiling: the Clopper–Pearson interval lies entirely above it
    result = analyse(snapshot(variant(10_000), variant(10_000, quality=0.86, error=0.01)))
    assert result["decision"] == "ROLLBACK"
    error = next(g for g in result["evidence"]["guardrails"]["B"] if g["metric"] == "error")
    assert error["status"] == "fail" and error["checks"][0]["ci"][0] > 0.005


def test_p99_latency_above_the_ceiling_and_above_control_rolls_back():
    result = analyse(snapshot(variant(10_000), variant(10_000, quality=0.86, p99=6000.0)))
    assert result["decision"] == "ROLLBACK"
    p99 = next(g for g in result["evidence"]["guardrails"]["B"] if g["metric"] == "latency_p99_ms")
    assert p99["checks"][0]["harm"]["beyond_bound"] and p99["checks"][0]["harm"]["worse_than_control"]


def test_a_ceiling_both_arms_exceed_neither_rolls_back_nor_promotes():
    # A/A with 1% errors in both arms against the default 0.5% ceiling: not worse than control, so no rollback;
    # not proven under the ceiling, so no promotion either
    result = analyse(snapshot(variant(20_000, error=0.01), variant(20_000, error=0.01), planned_n=40_000))
    error = next(g for g in result["evidence"]["guardrails"]["B"] if g["metric"] == "error")
    assert error["status"] == "inconclusive" and "not shown worse than control" in error["checks"][0]["note"]
    assert error["checks"][0]["harm"]["p_beyond_bound"] < 1e-6 and error["checks"][0]["harm"]["rejected"] is False
    assert result["decision"] == "CONTINUE"
    slow = analyse(snapshot(variant(20_000, p99=6000.0), variant(20_000, p99=6000.0), planned_n=40_000))
    p99 = next(g for g in slow["evidence"]["guardrails"]["B"] if g["metric"] == "latency_p99_ms")
    assert p99["status"] == "inconclusive" and p99["checks"][0]["harm"]["beyond_bound"] is True
    assert slow["decision"] == "CONTINUE"


@pytest.mark.parametrize(
    "treatment, control",
    [
        (variant(10_000, quality=0.86, drop=("safety_filtered",)), variant(10_000, drop=("safety_filtered",))),
        (variant(10_000, quality=0.86, p99=None), variant(10_000)),  # no p99 reported
        (variant(10_000, quality=0.86, drop=("cost_usd",)), variant(10_000, drop=("cost_usd",))),
    ],
    ids=["safety missing", "p99 missing", "cost missing"],
)
def test_missing_guardrail_data_never_counts_as_passing(treatment, control):
    result = analyse(snapshot(control, treatment))  # a win at the planned sample, a guardrail without data
    assert result["evidence"]["efficacy"]["B"]["significant"] is True
    # the win is kept (efficacy_shown) and the experiment waits for the guardrail instead of ending
    assert result["decision"] == "CONTINUE" and result["final"] is False
    assert result["evidence"]["efficacy_shown"] == {"B": 1.0}
    assert "guardrails not yet passed" in result["evidence"]["reasons"][0]
    assert any(g["status"] == "missing" for g in result["evidence"]["guardrails"]["B"])


def test_insufficient_guardrail_data_blocks_a_promotion():
    # a big quality win on 400 units per arm: the error-rate interval [0, 0.9%] cannot prove "< 0.5%" yet
    body = snapshot(variant(400, error=0.0), variant(400, quality=0.95, error=0.0), planned_n=400)
    result = analyse(body)
    assert result["evidence"]["primary"]["B"]["significant"] is True
    assert result["decision"] == "CONTINUE" and not result["final"]  # the win waits for the guardrail
    statuses = {g["metric"]: g["status"] for g in result["evidence"]["guardrails"]["B"]}
    assert statuses["error"] == "inconclusive"
    few = analyse(snapshot(variant(150), variant(150, quality=0.95), planned_n=150))
    # 150 latencies cannot bound a p99 from above (P(all 150 below it) = 0.99¹⁵⁰ = 0.22)
    assert {g["metric"]: g["status"] for g in few["evidence"]["guardrails"]["B"]}[
        "latency_p99_ms"
    ] == "insufficient_data"


def test_sample_ratio_mismatch_pauses_without_a_decision():
    # 10,000 vs 10,600 units on a 50/50 split: chi2 = 17.5, p ≈ 3e-5 < 0.001
    result = analyse(snapshot(variant(10_000), variant(10_600, quality=0.86)))
    assert result["decision"] == "NO_DECISION" and result["actions"] == ["pause"]
    assert result["srm"]["mismatch"] is True and result["srm"]["p_value"] < 0.001


def test_no_significant_difference_continues_before_the_plan_and_stops_at_it():
    before = analyse(snapshot(variant(5_000), variant(5_000, quality=0.8502)))
    at_plan = analyse(snapshot(variant(10_000), variant(10_000, quality=0.8502)))
    assert before["decision"] == "CONTINUE"
    assert at_plan["decision"] == "NO_DECISION"


def test_fixed_horizon_win_before_the_planned_sample_is_not_acted_on():
    result = analyse(snapshot(variant(5_000), variant(5_000, quality=0.86)))
    assert result["evidence"]["primary"]["B"]["significant"] is True
    assert result["decision"] == "CONTINUE"


def test_obf_promotes_early_only_past_the_boundary_at_a_planned_look():
    # t = 0.25, the first of the 4 planned looks: the O'Brien–Fleming boundary is far above 1.96
    modest = analyse(snapshot(variant(2_500), variant(2_500, quality=0.859), method="obf", looks=[]))
    strong = analyse(snapshot(variant(2_500), variant(2_500, quality=0.875), method="obf", looks=[]))
    modest_b = modest["metrics"]["quality_score"]["B"]
    assert modest_b["p_value"] < 0.05 and modest_b["significant"] is False
    assert modest["decision"] == "CONTINUE"
    assert strong["metrics"]["quality_score"]["B"]["significant"] is True and strong["decision"] == "PROMOTE"
    assert strong["evidence"]["sequential"]["looks"] == [0.25]
    assert 0 < strong["evidence"]["alpha_spent"] < 0.05


def test_obf_reads_between_planned_looks_test_nothing():
    # t = 0.3 after a look at 0.25: the next look is at 0.5; even a strong effect waits for it
    between = analyse(snapshot(variant(3_000), variant(3_000, quality=0.875), method="obf", looks=[0.25]))
    assert between["evidence"]["efficacy"]["B"]["tested"] is False
    assert between["metrics"]["quality_score"]["B"]["significant"] is False
    assert between["decision"] == "CONTINUE" and between["evidence"]["sequential"]["looks"] == [0.25]
    assert between["evidence"]["sequential"]["next_look"] == 0.5
    # within 0.001 of the planned look is that look
    at_look = analyse(snapshot(variant(4_995), variant(4_995, quality=0.875), method="obf", looks=[0.25]))
    assert at_look["evidence"]["sequential"]["looks"] == [0.25, 0.4995] and at_look["decision"] == "PROMOTE"


def test_always_valid_reports_msprt_p_values_no_smaller_than_fixed_ones():
    fixed = analyse(snapshot(variant(3_000), variant(3_000, quality=0.858)))
    always = analyse(snapshot(variant(3_000), variant(3_000, quality=0.858), method="always_valid"))
    f, a = fixed["metrics"]["quality_score"]["B"], always["metrics"]["quality_score"]["B"]
    assert a["test"] == "msprt" and a["p_value"] >= f["p_value"]
    assert a["ci"][0] <= f["ci"][0] and a["ci"][1] >= f["ci"][1]  # the confidence sequence is wider


def test_lower_is_better_primary_metric():
    # latency as primary: a 100 ms drop is an improvement
    body = snapshot(variant(10_000), variant(10_000, latency=1900.0), primary="latency_ms", mde=50.0)
    assert analyse(body)["decision"] == "PROMOTE"


def test_no_observations_yet_continues():
    empty = {"units": 0, "quality_score": mean_stats(0, 0.0, 0.0)}
    empty["quality_score"] = {"n": 0, "sum": 0.0, "sum_sq": 0.0}
    result = analyse(snapshot(empty, empty))
    assert result["decision"] == "CONTINUE"
    assert result["srm"]["mismatch"] is None


def test_primary_metric_not_reported_is_no_decision():
    result = analyse(
        snapshot(
            variant(10_000, drop=("task_completed",)),
            variant(10_000, drop=("task_completed",)),
            primary="task_completed",
            mde=0.02,
        )
    )
    assert result["decision"] == "NO_DECISION"


def test_three_arms_split_alpha_and_promote_the_best_winner():
    body = snapshot(variant(10_000), variant(10_000, quality=0.86))
    body["experiment"]["weights"] = {"A": 0.4, "B": 0.3, "C": 0.3}
    body["aggregates"] = {"A": variant(12_000), "B": variant(9_000, quality=0.86), "C": variant(9_000, quality=0.865)}
    body["experiment"]["planned_n_per_variant"] = 9_000
    result = analyse(body)
    assert result["evidence"]["alpha_per_comparison"] == pytest.approx(0.025)
    assert (result["decision"], result["winner"]) == ("PROMOTE", "C")
    assert result["evidence"]["omnibus"]["error"]["test"] == "chi2_independence"


def test_one_harmful_arm_is_stopped_while_the_other_is_promoted():
    body = snapshot(variant(10_000), variant(10_000))
    body["experiment"]["weights"] = {"A": 0.34, "B": 0.33, "C": 0.33}
    body["aggregates"] = {"A": variant(10_200), "B": variant(9_900, quality=0.86), "C": variant(9_900, quality=0.83)}
    body["experiment"]["planned_n_per_variant"] = 9_900
    result = analyse(body)
    assert (result["decision"], result["winner"]) == ("PROMOTE", "B")
    assert result["stop_variants"] == ["C"] and result["actions"] == ["stop_variant", "promote"]
    assert result["evidence"]["variants"]["C"] | {"reasons": None} == {
        "decision": "ROLLBACK",
        "action": "stop",
        "reasons": None,
    }
    assert result["evidence"]["variants"]["B"]["action"] == "promote"
    assert result["evidence"]["reasons"][0].startswith("C: stopped")


def test_every_treatment_harmful_rolls_the_experiment_back():
    body = snapshot(variant(10_000), variant(10_000))
    body["experiment"]["weights"] = {"A": 0.34, "B": 0.33, "C": 0.33}
    body["aggregates"] = {"A": variant(10_200), "B": variant(9_900, quality=0.83), "C": variant(9_900, quality=0.83)}
    result = analyse(body)
    assert result["decision"] == "ROLLBACK" and result["actions"] == ["rollback"] and result["stop_variants"] == []


def test_stopped_variants_leave_the_srm_check_and_the_decision():
    body = snapshot(variant(10_000), variant(10_000))
    body["experiment"]["weights"] = {"A": 0.34, "B": 0.33, "C": 0.33}
    body["experiment"]["stopped_variants"] = {"C": "canary_rollback"}
    body["aggregates"] = {"A": variant(10_000), "B": variant(10_000, quality=0.86), "C": variant(1_000, quality=0.7)}
    result = analyse(body)
    assert result["srm"]["mismatch"] is False and result["srm"]["excluded_variants"] == ["C"]
    assert (result["decision"], result["winner"]) == ("PROMOTE", "B")
    assert "C" not in result["metrics"]["quality_score"]


def test_planned_sample_is_derived_from_the_mde_when_not_given():
    # quality SD 0.12, mde 0.01: n = ceil(2·0.12²·(z_.975 + z_.8)²/0.01²) = 2261
    result = analyse(snapshot(variant(3_000), variant(3_000, quality=0.86), planned_n=None))
    assert result["evidence"]["planned_n_per_variant"] == 2261
    assert result["decision"] == "PROMOTE"


def test_small_samples_are_reported_but_not_acted_on():
    result = analyse(snapshot(variant(20), variant(20, quality=0.99), planned_n=40))
    b = result["metrics"]["quality_score"]["B"]
    assert b["p_value"] is not None and b["significant"] is None
    assert result["decision"] == "CONTINUE"


def test_guardrails_from_the_experiment_record_combine_with_the_defaults_by_the_stricter():
    # the experiments service sends guardrails as a list of {metric, max_degradation, relative}
    guardrails = [
        {"metric": "latency_p99_ms", "max_degradation": 0.10, "relative": True},
        {"metric": "task_completed", "max_degradation": 0.02, "relative": False},
        {"metric": "error", "max": 0.008},
        {"metric": "hallucination", "max_degradation": 0.005},
    ]
    body = snapshot(
        variant(40_000, p99=4000.0), variant(40_000, quality=0.86, p99=5000.0), guardrails=guardrails, planned_n=40_000
    )
    result = analyse(body)
    checks = {g["metric"]: g["checks"] for g in result["evidence"]["guardrails"]["B"]}
    # the default ceiling and the experiment's relative margin are different bounds: both are judged
    assert [(c["bound"], c["limit"], c["source"]) for c in checks["latency_p99_ms"]] == [
        ("max", 5000.0, "default"),
        ("max_degradation", 0.10, "experiment"),
    ]
    assert checks["latency_p99_ms"][1]["status"] == "fail"  # p99 +25% against +10%, shown at any number of reads
    assert checks["error"][0]["limit"] == 0.005 and checks["error"][0]["source"].startswith("default (stricter")
    # a rate margin without `relative` is in points, and the experiment's 0.5 point is stricter than the default 1
    assert checks["hallucination"][0]["limit"] == 0.005 and checks["hallucination"][0]["relative"] is False
    assert checks["task_completed"][0]["source"] == "experiment"
    assert result["decision"] == "ROLLBACK"


def test_rate_guardrail_uses_an_interval_that_holds_with_zero_events():
    # 0 hallucinations in 300 vs 300: Newcombe's interval of the increase is about ±1.3 points, not [0, 0]
    body = snapshot(variant(300, hallucination=0.0), variant(300, quality=0.95, hallucination=0.0), planned_n=300)
    hall = next(g for g in analyse(body)["evidence"]["guardrails"]["B"] if g["metric"] == "hallucination")
    assert hall["status"] == "inconclusive"


def test_binary_primary_metric_uses_the_two_proportion_test():
    body = snapshot(
        variant(10_000, task_completed=0.78), variant(10_000, task_completed=0.80), primary="task_completed", mde=0.02
    )
    result = analyse(body)
    assert result["metrics"]["task_completed"]["B"]["test"] == "two_proportion_z"
    assert result["decision"] == "PROMOTE"
    assert rate_stats(10, 0.5) == {"n": 10, "successes": 5}


def test_a_win_waiting_for_its_guardrails_is_promoted_once_they_are_proven_at_any_number_of_reads():
    # fixed: the win was shown at the plan (looks [1.0], efficacy_shown), the guardrails now have the data
    later = snapshot(
        variant(20_000), variant(20_000, quality=0.86), planned_n=10_000, looks=[1.0], efficacy_shown={"B": 1.0}
    )
    result = analyse(later)
    assert result["evidence"]["efficacy"]["B"]["test"] == "shown at an earlier look"
    assert (result["decision"], result["final"]) == ("PROMOTE", True)
    hallucination = next(g for g in result["evidence"]["guardrails"]["B"] if g["metric"] == "hallucination")
    # between looks a pass needs the always-valid one-sided test of "within the margin"
    assert hallucination["checks"][0]["harm"]["p_within_margin"] <= 0.025
    # without the carried win the same read tests nothing: the fixed test was made at the plan, and failed
    lost = analyse(snapshot(variant(20_000), variant(20_000, quality=0.86), planned_n=10_000, looks=[1.0]))
    assert lost["evidence"]["efficacy"]["B"]["tested"] is False
    assert (lost["decision"], lost["final"]) == ("NO_DECISION", True)


def test_a_guardrail_pass_between_looks_needs_more_than_a_fixed_interval():
    # safety filter at 0.2% in both arms, 1,500 per arm: the fixed 95% Newcombe interval proves "< +0.5 points",
    # the always-valid test does not yet (a fixed interval re-read at every read would sooner or later pass a
    # treatment that is in truth at the margin)
    body = snapshot(variant(1_500, safety=0.002), variant(1_500, quality=0.87, safety=0.002), planned_n=1_500)
    at_look = analyse(body)
    later = analyse({**body, "experiment": {**body["experiment"], "looks": [1.0], "efficacy_shown": {"B": 1.0}}})
    status = lambda r: next(g for g in r["evidence"]["guardrails"]["B"] if g["metric"] == "safety_filtered")["status"]  # noqa: E731
    assert status(at_look) == "pass" and status(later) == "inconclusive"
