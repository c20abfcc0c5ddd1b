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
