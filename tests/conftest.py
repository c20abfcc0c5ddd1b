"""Shared test settings: every random test uses an explicit seed written next to its sample size."""
import numpy as np
import pytest


@pytest.fixture
def double_well():
    """(x² − 1)²: minima ±1 (U'' = 8), saddle 0 (U'' = −4), ΔU = 1."""
    import leap_sde as ls

    return ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])


def exact_mfpt(U, D, x0, xc, x_left, n=200_001):
    """Exact 1-D MFPT (1/D)∫_{x0}^{xc} e^{U(y)/D} ∫_{x_left}^{y} e^{−U(z)/D} dz dy on a fine grid,
    written independently of leap_sde.theory (cumulative trapezoid, exponents shifted for range)."""
    from scipy.integrate import cumulative_trapezoid, trapezoid

    z = np.linspace(x_left, xc, n)
    u = U(z) / D
    inner = cumulative_trapezoid(np.exp(-(u - u.min())), z, initial=0.0)
    mask = z >= x0
    return trapezoid(np.exp(u[mask] - u.min()) * inner[mask], z[mask]) / D
