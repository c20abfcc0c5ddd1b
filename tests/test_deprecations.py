"""Deprecated names and arguments still work for one release, with a DeprecationWarning that names the
replacement, and give the same results as the new names."""
import warnings

import numpy as np
import pytest

from leap_sde import theory as th


def test_mfpt_sqra_grid_reflecting_is_deprecated():
    x = np.linspace(-2.0, 2.0, 81)
    U = (x**2 - 1) ** 2
    absorbing = x >= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = th.mfpt_sqra_grid(U, 0.5, x[1] - x[0], absorbing)  # no warning without the argument
    with pytest.warns(DeprecationWarning, match="reflecting"):
        np.testing.assert_array_equal(th.mfpt_sqra_grid(U, 0.5, x[1] - x[0], absorbing, reflecting=True), ref)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="reflecting"):
        th.mfpt_sqra_grid(U, 0.5, x[1] - x[0], absorbing, reflecting=False)


def test_spectral_gap_1d_old_keyword_names():
    def U(x):
        return (x**2 - 1) ** 2

    ref = th.spectral_gap_1d(U, 0.25, -2.5, 2.5, n=400)
    assert th.spectral_gap_1d(U, 0.25, x_lo=-2.5, x_hi=2.5, n=400) == ref
    with pytest.warns(DeprecationWarning, match="'x_l' is deprecated; use 'x_lo'"):
        assert th.spectral_gap_1d(U, 0.25, x_l=-2.5, x_hi=2.5, n=400) == ref
    with pytest.warns(DeprecationWarning, match="'x_r' is deprecated; use 'x_hi'"):
        assert th.spectral_gap_1d(U, 0.25, -2.5, x_r=2.5, n=400) == ref
    with pytest.raises(TypeError, match="not both"):
        th.spectral_gap_1d(U, 0.25, -2.5, 2.5, x_l=-2.5)
    with pytest.raises(TypeError, match="x_hi"):
        th.spectral_gap_1d(U, 0.25, -2.5)


def test_rate_estimate_stderr_is_a_deprecated_alias_of_rate_se():
    import leap_sde as ls

    est = ls.exponential_rate(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, True, False, True]))
    assert est.rate_se == pytest.approx(est.rate / np.sqrt(3))
    assert "rate_se" in est.as_dict() and "stderr" not in est.as_dict()
    with pytest.warns(DeprecationWarning, match="rate_se"):
        assert est.stderr == est.rate_se
