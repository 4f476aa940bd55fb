"""An experiment's results per look: the effect as the engine stored it, the relative lift with an interval of the
effect interval's coverage (checked by simulation against scipy's Welch interval), per intent, SRM and every
guardrail, and a readable effect figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from kanaria_tools.rehearsal.phase_report import experiment_sections, looks
from kanaria_tools.rehearsal.results import PhaseResult
from kanaria_tools.reports import experiment_results as er
from kanaria_tools.reports.figure_check import label_problems
from tests.unit.reports.builders import experiment_detail


def _phase() -> PhaseResult:
    return PhaseResult("exp", "experiment", None, "CONTINUE", True, 0, 3600, detail=experiment_detail())


def _moments(sample: np.ndarray) -> dict[str, float]:
    return {"n": len(sample), "sum": float(sample.sum()), "sum_sq": float((sample**2).sum())}


def test_the_relative_lift_interval_covers_the_true_lift_as_often_as_the_effect_interval() -> None:
    # Given Welch intervals of the difference (scipy) on 2,000 simulated A/B tests with a true lift of 3.5%
    rng = np.random.default_rng(7)
    true_lift = 0.88 / 0.85 - 1
    covered = 0
    for _ in range(2000):
        control, treatment = rng.normal(0.85, 0.12, 200), rng.normal(0.88, 0.12, 200)
        ci = stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.95)
        test = {"effect": treatment.mean() - control.mean(), "ci": [ci.low, ci.high]}
        # When the lift's interval is read with the same critical value
        lift = er.relative_lift(test, _moments(control), _moments(treatment))
        covered += lift.low <= true_lift <= lift.high
    # Then it covers the true lift about 95% of the time (binomial SE ~0.5%)
    assert covered / 2000 == pytest.approx(0.95, abs=0.015)


def test_the_lift_of_a_rate_uses_the_binomial_variance() -> None:
    test = {"effect": 0.02, "ci": [0.0, 0.04]}
    lift = er.relative_lift(test, {"n": 1000, "successes": 100}, {"n": 1000, "successes": 120})
    se_effect = np.sqrt(0.1 * 0.9 / 1000 + 0.12 * 0.88 / 1000)
    se_lift = np.sqrt(0.12 * 0.88 / 1000 / 0.1**2 + 0.12**2 * 0.1 * 0.9 / 1000 / 0.1**4)
    assert lift.estimate == pytest.approx(0.2)
    assert lift.high - lift.estimate == pytest.approx(0.02 / se_effect * se_lift)


def test_each_look_shows_the_stored_effect_srm_every_guardrail_and_each_intent() -> None:
    first, second = looks(_phase())
    stored = experiment_detail()["looks"][1]["stored"]["result"]["metrics"]["quality_score"]["B"]
    assert (second.effect.estimate, second.effect.low, second.effect.high) == (
        stored["effect"],
        stored["ci"][0],
        stored["ci"][1],
    )
    assert second.lift.estimate == pytest.approx(0.88 / 0.85 - 1)
    assert first.effect.high - first.effect.low > second.effect.high - second.effect.low  # narrower with more data
    assert second.srm_mismatch is False and second.srm_p == pytest.approx(1.0)
    assert {m for m, _ in second.guardrails} >= {"latency_p99_ms", "error"}
    assert [e.intent for e in second.intents] == ["chitchat", "order_status"]
    order = second.intents[1]
    assert order.n_control == 300 and order.lift.estimate == pytest.approx(0.90 / 0.85 - 1)


def test_the_sections_hold_the_tables_and_a_readable_figure() -> None:
    (section,) = experiment_sections(_phase(), ["## Experiment exp"])
    text = section.markdown
    assert "| look | units A / B |" in text and "| 2 (60 min) | 600 / 600 |" in text
    assert "| intent | n control / treatment |" in text and "| guardrail | status |" in text
    assert "+3.5% [" in text
    (picture,) = section.pictures
    assert picture.file == "experiment-exp.svg" and picture.svg.startswith("<svg")
    figure = er.effect_figure(looks(_phase()), "quality_score", 0.02, "Experiment exp: B vs A, effect per look")
    assert label_problems(figure) == []


def test_an_experiment_without_stored_analysis_keeps_its_progress_rows() -> None:
    phase = PhaseResult(
        "exp", "experiment", None, "no analysis", False, 0, 60, detail={"rows": [["1", 1, 1, "-", "-", "-", "ok"]]}
    )
    (section,) = experiment_sections(phase, ["## Experiment exp"])
    assert "| analysis (traffic) |" in section.markdown and not section.pictures
