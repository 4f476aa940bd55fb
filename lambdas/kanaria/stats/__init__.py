"""Kanaria stats layer: pure statistics on sufficient statistics (numpy/scipy only, no AWS)."""

from kanaria.stats.bandit import ThompsonResult, thompson_weights
from kanaria.stats.frequentist import (
    Chi2Result,
    ComparisonResult,
    SrmResult,
    chi2_independence,
    clopper_pearson_interval,
    newcombe_difference_interval,
    srm_check,
    t_critical,
    two_proportion_statistics,
    two_proportion_z_test,
    welch_statistics,
    welch_t_test,
    wilson_interval,
    z_critical,
)
from kanaria.stats.multiple_testing import BhResult, benjamini_hochberg, fdr_registry
from kanaria.stats.sample_size import sample_size_two_means, sample_size_two_proportions
from kanaria.stats.sequential import (
    SequentialLook,
    group_sequential_boundaries,
    information_schedule,
    msprt_normal,
    obf_alpha_spent,
    obf_look,
)
from kanaria.stats.summaries import MeanSummary, ProportionSummary

__all__ = [
    "BhResult",
    "Chi2Result",
    "ComparisonResult",
    "MeanSummary",
    "ProportionSummary",
    "SequentialLook",
    "SrmResult",
    "ThompsonResult",
    "benjamini_hochberg",
    "chi2_independence",
    "clopper_pearson_interval",
    "fdr_registry",
    "group_sequential_boundaries",
    "information_schedule",
    "msprt_normal",
    "newcombe_difference_interval",
    "obf_alpha_spent",
    "obf_look",
    "sample_size_two_means",
    "sample_size_two_proportions",
    "srm_check",
    "t_critical",
    "thompson_weights",
    "two_proportion_statistics",
    "two_proportion_z_test",
    "welch_statistics",
    "welch_t_test",
    "wilson_interval",
    "z_critical",
]
