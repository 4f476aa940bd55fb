"""The hot-path distribution functions are scipy.stats' own routines: equal to scipy.stats to rounding."""

import numpy as np
import pytest
from scipy import stats

from kanaria.stats import distributions as d

X = np.array([-40.0, -8.5, -3.0, -1.0, 0.0, 0.3, 1.96, 4.0, 9.0, 38.0])
DF = np.array([1.0, 2.5, 9.0, 29.7, 120.0, 1e3, 8007.95, 1e5, 1e7, 3.0])
Q = np.array([1e-12, 1e-6, 0.0005, 0.025, 0.3, 0.5, 0.8, 0.975, 0.9995, 1 - 1e-9])


def test_norm():
    np.testing.assert_allclose(d.norm_cdf(X), stats.norm.cdf(X), rtol=1e-13, atol=0)
    np.testing.assert_allclose(d.norm_sf(X), stats.norm.sf(X), rtol=1e-13, atol=0)
    np.testing.assert_allclose(d.norm_ppf(Q), stats.norm.ppf(Q), rtol=1e-13)


def test_student_t():
    np.testing.assert_allclose(d.t_sf(X, DF), stats.t.sf(X, DF), rtol=1e-12, atol=0)
    np.testing.assert_allclose(d.t_ppf(Q, DF), stats.t.ppf(Q, DF), rtol=1e-12)


def test_chi_squared():
    x = np.abs(X) * 3
    np.testing.assert_allclose(
        d.chi2_sf(x, np.round(DF[:10]) + 1), stats.chi2.sf(x, np.round(DF[:10]) + 1), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize(
    "a, b", [(1e-300, 1001.0), (3.0, 998.0), (12.0, 29.0), (40.5, 1.0), (1.0, 1.0), (5000.0, 95001.0)]
)
def test_beta_quantile(a, b):
    np.testing.assert_allclose(d.beta_ppf(Q, a, b), stats.beta.ppf(Q, a, b), rtol=1e-10, atol=1e-300)
