"""Sample size per variant, exact to the integer for the documented formulas."""

import math

import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from kanaria.stats import sample_size_two_means, sample_size_two_proportions


def by_hand_proportions(p1, delta, alpha, power):
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    p2 = p1 + delta
    return math.ceil(z**2 * (p1 * (1 - p1) + p2 * (1 - p2)) / delta**2)


def test_design_note_example_0_78_to_0_80_is_6507_not_6497():
    # The canary notes (002, A3) round z to 1.96 + 0.84 and claim ≈ 6,497; the stated formula gives 6506.7 → 6507
    assert sample_size_two_proportions(0.78, 0.02, alpha=0.05, power=0.80) == 6507


def test_guide_example_0_75_plus_0_05_is_1091_not_385():
    # The A/B guide (003) claims ~385 (its code returns 588: it drops p2's variance and truncates)
    assert sample_size_two_proportions(0.75, 0.05) == 1091


def test_parameter_notes_example_0_85_plus_0_03():
    # Notes 000 claim 1962 with a pooled-variance variant of the formula (which actually gives 2036)
    assert sample_size_two_proportions(0.85, 0.03) == 2033


@pytest.mark.parametrize(
    "p1, delta, alpha, power",
    [(0.1, 0.01, 0.05, 0.8), (0.5, -0.05, 0.01, 0.9), (0.02, 0.005, 0.05, 0.8), (0.9, 0.04, 0.1, 0.95)],
)
def test_proportions_match_hand_computation(p1, delta, alpha, power):
    assert sample_size_two_proportions(p1, delta, alpha, power) == by_hand_proportions(p1, delta, alpha, power)


@pytest.mark.parametrize(
    "sd, delta, alpha, power", [(1.0, 0.5, 0.05, 0.8), (0.15, 0.02, 0.05, 0.8), (900.0, 50.0, 0.01, 0.9)]
)
def test_means_match_statsmodels_one_sided_at_half_alpha(sd, delta, alpha, power):
    # The formula ignores the far tail, which is exactly a one-sided test at alpha/2
    nobs = NormalIndPower().solve_power(effect_size=delta / sd, alpha=alpha / 2, power=power, alternative="larger")
    assert sample_size_two_means(sd, delta, alpha, power) == math.ceil(nobs)


@pytest.mark.parametrize("sd, delta", [(1.0, 0.5), (0.15, 0.02), (2.0, 0.3)])
def test_means_within_one_of_statsmodels_two_sided(sd, delta):
    nobs = NormalIndPower().solve_power(effect_size=delta / sd, alpha=0.05, power=0.8, alternative="two-sided")
    assert 0 <= sample_size_two_means(sd, delta) - math.ceil(nobs) <= 1


def test_textbook_half_sd_effect_needs_63_per_group():
    # d = 0.5 at alpha 0.05, power 0.8: 2·(1.95996 + 0.84162)²/0.25 = 62.8 → 63 (normal approximation)
    assert sample_size_two_means(1.0, 0.5) == 63


@pytest.mark.parametrize("baseline, delta", [(0.0, 0.1), (0.95, 0.06), (0.5, 0.0), (1.2, 0.1)])
def test_impossible_proportion_designs_are_rejected(baseline, delta):
    with pytest.raises(ValueError):
        sample_size_two_proportions(baseline, delta)
