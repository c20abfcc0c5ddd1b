"""Exact MFPT of the 1-D discrete chain at high barriers: subtraction-free (GTH-type) elimination.

Fixed problem throughout: gradient descent with white noise on U = (x² − 1)² (ΔU = 1), start at the minimum
x0 = −1, exit at the saddle x_c = 0, reflecting end x_l = −3, step η, gradient-noise variance 2D/η
(so that the chain is Euler–Maruyama for dX = −U' dt + sqrt(2D) dW), docs/theory.md §2.4, §11.3.
"""
import math
import warnings

import numpy as np
import pytest
from scipy import linalg

import leap_sde.theory as th
from leap_sde.theory.discrete import _chain_system, _gth_mfpt


def _dU(x):
    return 4.0 * x * (x * x - 1.0)


def _U(x):
    return (x * x - 1.0) ** 2


def _kw(ratio, eta=0.01, sigma=0.0):
    return dict(eta=eta, noise_var=2.0 / ratio / eta, sigma=sigma, variant="gaussian", relative=False,
                additive_var=0.0, n_nodes=24)


def _lu_refined(P, b, rtol=1e-10, max_iter=8):
    """The solver discrete_mfpt_1d used before: LU of I − P (float64) with iterative refinement, residuals in
    np.longdouble; None if the corrections do not fall below rtol (cond·ε₆₄ ≳ 1)."""
    A = np.eye(P.shape[0]) - P
    lu = linalg.lu_factor(A)
    Al, bl = A.astype(np.longdouble), b.astype(np.longdouble)
    x = linalg.lu_solve(lu, b).astype(np.longdouble)
    for _ in range(max_iter):
        dx = linalg.lu_solve(lu, (bl - Al @ x).astype(np.float64))
        x += dx
        if np.max(np.abs(dx)) <= rtol * float(np.max(np.abs(x))):
            return x.astype(np.float64)
    return None


def _chain(ratio, n, eta=0.01):
    return th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=eta, noise_var=2.0 / ratio / eta, n_cells=n)


# ------------------------------------------------------------------------------------------------------------
# 1. agreement with LU + refinement where that converges
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.0, 0.005])
@pytest.mark.parametrize("ratio", [8.0, 12.0, 16.0])
def test_gth_agrees_with_lu_refinement_where_it_converges(ratio, sigma):
    """Same matrix, both solvers, every cell: relative difference <= 1e-8 (η = 0.01, LEAP σ = η/2 or none).

    The tolerance is set by the *LU* side: it solves with the diagonal 1 − P_ii rounded in float64 and the
    defect implied as 1 − Σ_j P_ij, a backward error ~ε₆₄ per row that cond(I − P) ~ E τ amplifies to
    ~ε₆₄·E τ/sqrt(#cells in the well): measured 0.9e-9 (1.2e-9 with LEAP) at ΔU/D = 16, E τ ≈ 5.6e8 (1.9e7),
    and 3e-8 at ΔU/D = 20, growing like E τ; GTH's own error is O(n ε₆₄) (the mpmath test below)."""
    n = 1500 if sigma == 0.0 else 800  # the comparison is per matrix, so the grid only needs to be a valid one
    c, P, e = _chain_system(_dU, -1.0, 0.0, -3.0, n_cells=n, **_kw(ratio, sigma=sigma))
    # the killed mass computed directly is the row defect of the same matrix, up to rounding of 1 − Σ P
    assert np.all(e >= 0) and np.max(np.abs(e - (1.0 - P.sum(axis=1)))) < 1e-14
    (T,) = _gth_mfpt(P, e)
    ref = _lu_refined(P, np.ones(c.size))
    assert ref is not None  # refinement converges here
    assert np.max(np.abs(T / ref - 1.0)) <= 1e-8
    # and the public function is this solve, read at x0
    t0 = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=0.01, noise_var=2.0 / ratio / 0.01, sigma=sigma, n_cells=n)
    assert t0 == pytest.approx(float(np.interp(-1.0, c, ref)), rel=1e-8)


def test_second_moment_agrees_with_lu_refinement():
    """M₂ = (I − P)⁻¹(1 + 2PT) from the same factorisation: <= 1e-8 relative against LU + refinement (ΔU/D = 12)."""
    c, P, e = _chain_system(_dU, -1.0, 0.0, -3.0, n_cells=1500, **_kw(12.0))
    T, M2 = _gth_mfpt(P, e, second_moment=True)
    ref_T = _lu_refined(P, np.ones(c.size))
    ref_M2 = _lu_refined(P, 1.0 + 2.0 * (P @ ref_T))
    assert np.max(np.abs(M2 / ref_M2 - 1.0)) <= 1e-8


# ------------------------------------------------------------------------------------------------------------
# 2. high barriers: finite, grid-converged, and the expected discrete-time bias against the SDE
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [25.0, 30.0])
def test_high_barrier_chain_is_finite_and_grid_converged(ratio):
    """ΔU/D = 25, 30 (E τ ≈ 4.5e12, 6.7e14 steps), where LU + refinement returns nan.

    The cell discretisation error is O(h²) (docs/theory.md §2.4), so with n = 1500, 2000, 3000 cells the
    Richardson extrapolations from (1500, 3000) and (2000, 3000) must agree (<= 1e-4; they differ by the O(h⁴)
    remainder, measured ~3e-5) and the n = 3000 value's own error estimate |t₃₀₀₀ − t₁₅₀₀|/3 must be <= 1%.
    The raw 1500-vs-3000 difference is 0.77% at ΔU/D = 25 (asserted <= 1%) and 1.1% at 30 (asserted <= 1.5%)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no nan path
        t = {n: _chain(ratio, n) for n in (1500, 2000, 3000)}
    assert all(math.isfinite(v) and v > 0 for v in t.values())
    r_a = t[3000] + (t[3000] - t[1500]) / 3.0
    r_b = t[3000] + (t[3000] - t[2000]) / (1.5**2 - 1.0)
    assert abs(r_a / r_b - 1.0) <= 1e-4
    assert abs(t[3000] - t[1500]) / 3.0 <= 0.01 * t[3000]
    assert abs(t[3000] - t[1500]) <= (0.01 if ratio == 25.0 else 0.015) * t[3000]
    # the LU path cannot do this (documents why the solver was replaced)
    c, P, e = _chain_system(_dU, -1.0, 0.0, -3.0, n_cells=1500, **_kw(ratio))
    assert _lu_refined(P, np.ones(c.size)) is None
    # and the SDE quadrature is within the discrete-time bias (see the η-sequence test below): 0 < bias < 15%
    sde = th.mfpt_1d(_U, 1.0 / ratio, -1.0, 0.0, -3.0, dU=_dU) / 0.01
    assert 1.0 < r_a / sde < 1.15


def test_high_barrier_chain_tends_to_the_sde_as_eta_shrinks():
    """ΔU/D = 25, η = 0.01, 0.005, 0.0025: chain/SDE → 1 monotonically (measured 1.113, 1.085, 1.062).

    Discrete monitoring of the exit delays it by the Gobet–Menozzi shift δ = β sqrt(2Dη) (docs/theory.md §2.3),
    an O(√η) bias: successive bias ratios must lie in [0.6, 0.85] (1/√2 = 0.71 plus the O(η) term; measured
    0.75, 0.73). Against the SDE's MFPT to x_c + δ the remainder is O(η): |1 − ratio| <= 2% at η = 0.01
    (measured 1.5%) and it must halve with η (ratios in [0.35, 0.65]; measured 0.43, 0.48).
    Chain values Richardson-extrapolated from n = 3000 and 1500."""
    ratio, D = 25.0, 1.0 / 25.0
    plain, shifted = [], []
    for eta in (0.01, 0.005, 0.0025):
        t1, t2 = _chain(ratio, 3000, eta), _chain(ratio, 1500, eta)
        chain = t1 + (t1 - t2) / 3.0
        plain.append(chain / (th.mfpt_1d(_U, D, -1.0, 0.0, -3.0, dU=_dU) / eta))
        delta = th.em_boundary_shift(D, eta)
        shifted.append(chain / (th.mfpt_1d(_U, D, -1.0, delta, -3.0, dU=_dU) / eta))
    b = np.array(plain) - 1.0
    assert np.all(b > 0) and b[0] > b[1] > b[2]
    assert np.all((b[1:] / b[:-1] >= 0.6) & (b[1:] / b[:-1] <= 0.85)), plain
    s = np.abs(1.0 - np.array(shifted))
    assert s[0] <= 0.02
    assert np.all((s[1:] / s[:-1] >= 0.35) & (s[1:] / s[:-1] <= 0.65)), shifted


def test_high_barrier_second_moment_is_that_of_an_exponential_time():
    """A rare escape from a quasi-stationary well is exponential: E τ²/(E τ)² = 2 − O(t_relax/E τ), here
    |ratio − 2| <= 1e-6 at ΔU/D = 25 (t_relax/E τ ~ 1e-10). Checks the second solve where LU gives nan."""
    m, m2 = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=0.01, noise_var=2.0 / 25.0 / 0.01, n_cells=1500,
                                second_moment=True)
    assert abs(m2 / m**2 - 2.0) <= 1e-6


def test_exit_below_the_start_is_the_mirror_image():
    """x_c < x0 (absorbing end at the low side, eliminated in reverse order): the mirrored problem on the
    symmetric well gives the same grid reflected, so the same E τ to rounding (<= 1e-12), at ΔU/D = 25."""
    kw = dict(eta=0.01, noise_var=2.0 / 25.0 / 0.01, n_cells=1500)
    a = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, **kw)
    b = th.discrete_mfpt_1d(_dU, 1.0, 0.0, 3.0, **kw)
    assert b == pytest.approx(a, rel=1e-12)


def test_unreachable_exit_returns_nan_with_a_warning():
    """Without noise gradient descent stays in the well: I − P is singular, reported, not a garbage number."""
    with pytest.warns(RuntimeWarning, match="unreachable"):
        v = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=0.01, n_cells=200)
    assert math.isnan(v)


# ------------------------------------------------------------------------------------------------------------
# 3. entrywise accuracy against an independent multiprecision solve
# ------------------------------------------------------------------------------------------------------------
def test_entrywise_accuracy_against_mpmath_where_float64_lu_fails():
    """60 cells, ΔU/D = 60 (E τ ~ 1e25 steps, cond(I − P) ~ 1e25): the same float64 data (off-diagonals P_ij,
    killed mass e_i) solved exactly in mpmath at 120 digits, A_ii = Σ_{j≠i} P_ij + e_i. GTH is accurate to
    <= 1e-10 relative in every cell (theory: O(n²ε₆₄) worst case ~1e-12), for T and M₂; float64 LU of I − P
    is off by more than 1% somewhere (it cannot resolve a defect ~1e-25 next to a diagonal ~1)."""
    mpmath = pytest.importorskip("mpmath")
    ratio, eta = 60.0, 0.02
    c, P, e = _chain_system(_dU, -1.0, 0.0, -1.6, n_cells=60, **_kw(ratio, eta=eta))
    n = c.size
    T, M2 = _gth_mfpt(P, e, second_moment=True)
    assert T.max() > 1e20  # the regime where float64 LU has no digits left
    with mpmath.workdps(120):
        A = mpmath.matrix(n, n)
        for i in range(n):
            off = mpmath.mpf(0)
            for j in range(n):
                if j != i:
                    A[i, j] = -mpmath.mpf(float(P[i, j]))
                    off += mpmath.mpf(float(P[i, j]))
            A[i, i] = off + mpmath.mpf(float(e[i]))
        Tm = mpmath.lu_solve(A, mpmath.matrix([1] * n))
        rhs = [1 + 2 * mpmath.fsum(mpmath.mpf(float(P[i, j])) * Tm[j] for j in range(n)) for i in range(n)]
        M2m = mpmath.lu_solve(A, mpmath.matrix(rhs))
        ref_T = np.array([float(v) for v in Tm])
        ref_M2 = np.array([float(v) for v in M2m])
    assert np.max(np.abs(T / ref_T - 1.0)) <= 1e-10
    assert np.max(np.abs(M2 / ref_M2 - 1.0)) <= 1e-10
    with np.errstate(all="ignore"):
        lu = np.linalg.solve(np.eye(n) - P, np.ones(n))
    assert not np.max(np.abs(lu / ref_T - 1.0)) <= 1e-2
