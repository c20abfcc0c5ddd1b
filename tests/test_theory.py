"""Tests of leap_sde.theory against independent references.

References: scipy.integrate.quad, dense eigen-solves, closed forms, the tabulated values of the
docs/theory.md (§1.1, §3.3, §6.2) and seeded Monte Carlo (seed, sample size and the standard error
used for the tolerance are written next to each other).
"""
import math

import numpy as np
import pytest
from scipy import integrate, linalg

from leap_sde import theory as th


def U4(x):
    return (x**2 - 1.0) ** 2


def dU4(x):
    return 4.0 * x * (x**2 - 1.0)


TAU_K_PREF = 2 * math.pi / math.sqrt(8.0 * 4.0)  # (x²-1)²: U''(±1) = 8, U''(0) = -4


# ------------------------------------------------------------------------------------------
# exact 1-D MFPT
# ------------------------------------------------------------------------------------------
# docs/theory.md §1.1 table: exact/Kramers for U = (x²-1)², x0 = -1, reflecting at -2
NOTES_TABLE = {
    3: (0.569, 1.093, 1.194),
    4: (0.560, 1.087, 1.142),
    5: (0.549, 1.076, 1.107),
    6: (0.540, 1.066, 1.083),
    8: (0.528, 1.051, 1.057),
    12: (0.518, 1.034, 1.035),
}


@pytest.mark.parametrize("ratio", sorted(NOTES_TABLE))
def test_mfpt_reproduces_notes_table(ratio):
    D = 1.0 / ratio
    tk = th.kramers_time(1.0, 8.0, -4.0, D)
    for xc, expected in zip((0.0, 0.5, 1.0), NOTES_TABLE[ratio]):
        got = th.mfpt_1d(U4, D, -1.0, xc, -2.0, n=50_001) / tk
        # table printed to 3 decimals: rounding error 5e-4, plus grid error << 1e-4
        assert abs(got - expected) <= 6e-4, (ratio, xc, got, expected)


def _mfpt_quad(U, D, x0, xc, xl, Uref):
    """Independent reference: nested adaptive quadrature of the constant-D formula."""

    def inner(y):
        return integrate.quad(lambda z: math.exp(-(U(z) - Uref) / D), xl, y, epsabs=0, epsrel=1e-11, limit=200)[0]

    val = integrate.quad(
        lambda y: math.exp((U(y) - Uref) / D) * inner(y), x0, xc, epsabs=0, epsrel=1e-10, limit=200
    )[0]
    return val / D


def test_mfpt_constant_D_matches_nested_quad():
    D = 0.3
    ref = _mfpt_quad(U4, D, -1.0, 0.7, -2.0, 0.0)
    got = th.mfpt_1d(U4, D, -1.0, 0.7, -2.0)
    assert got == pytest.approx(ref, rel=1e-7)


def test_mfpt_state_dependent_matches_closed_form_phi():
    # D(x) = 0.2(1 + x²/2): Φ = ∫U'/D = 20(x² − 3 log(x² + 2)) in closed form (docs/theory.md §1.3, checked case)
    def Dx(x):
        return 0.2 * (1.0 + 0.5 * x**2)

    def phi(x):
        return 20.0 * (x**2 - 3.0 * math.log(x**2 + 2.0))

    x0, xc, xl = -1.0, 1.0, -2.5
    inner = lambda y: integrate.quad(lambda z: math.exp(-phi(z) + phi(-1.0)) / Dx(z), xl, y, epsrel=1e-11, limit=200)[0]
    ref = integrate.quad(lambda y: math.exp(phi(y) - phi(-1.0)) * inner(y), x0, xc, epsrel=1e-10, limit=200)[0]
    got_exact_dU = th.mfpt_1d(U4, Dx, x0, xc, xl, dU=dU4)
    got_fd = th.mfpt_1d(U4, Dx, x0, xc, xl)  # U' by finite differences
    assert got_exact_dU == pytest.approx(ref, rel=1e-7)
    assert got_fd == pytest.approx(ref, rel=1e-6)
    # U not needed when dU is given
    assert th.mfpt_1d(None, Dx, x0, xc, xl, dU=dU4) == pytest.approx(ref, rel=1e-7)


def test_mfpt_constant_callable_D_equals_constant():
    a = th.mfpt_1d(U4, 0.25, -1.0, 1.0, -2.0)
    b = th.mfpt_1d(U4, lambda x: np.full_like(x, 0.25), -1.0, 1.0, -2.0, dU=dU4)
    assert b == pytest.approx(a, rel=1e-8)


@pytest.mark.parametrize("ratio", [100.0, 500.0, 800.0])
def test_mfpt_log_space_high_barrier(ratio):
    D = 1.0 / ratio
    logT = th.mfpt_1d(U4, D, -1.0, 1.0, -2.0, log=True)
    logK = th.kramers_time(1.0, 8.0, -4.0, D, log=True)
    assert math.isfinite(logT)
    # Kramers is exact to O(D/ΔU): docs/theory.md §1.1, the ratio is ≈ 1 + (0.4–0.6) D/ΔU
    assert 0.0 < logT - logK < 1.0 / ratio
    if ratio < 700:
        assert th.mfpt_1d(U4, D, -1.0, 1.0, -2.0) == pytest.approx(math.exp(logT), rel=1e-12)


def test_mfpt_orientation_and_auto_reflecting_end():
    D = 0.25
    left = th.mfpt_1d(U4, D, -1.0, 1.0, -2.0)
    mirrored = th.mfpt_1d(lambda x: U4(-x), D, 1.0, -1.0, 2.0)
    assert mirrored == pytest.approx(left, rel=1e-10)
    auto = th.mfpt_1d(U4, D, -1.0, 1.0, -np.inf)
    far = th.mfpt_1d(U4, D, -1.0, 1.0, -3.0)
    assert auto == pytest.approx(far, rel=1e-9)


def test_mfpt_grid_profile_solves_backward_equation():
    D = 0.4
    x = np.linspace(-2.0, 1.0, 30_001)
    T = th.mfpt_1d_grid(x, U4(x), D)
    h = x[1] - x[0]
    Tp = np.gradient(T, h)
    Tpp = np.gradient(Tp, h)
    resid = D * Tpp - dU4(x) * Tp + 1.0
    assert np.max(np.abs(resid[50:-50])) < 1e-3
    assert T[-1] == 0.0 and abs(Tp[0]) < 1e-3 * T.max()


def test_mfpt_bad_input():
    with pytest.raises(ValueError, match="D"):
        th.mfpt_1d(U4, -1.0, -1.0, 1.0, -2.0)
    with pytest.raises(ValueError, match="x_l"):
        th.mfpt_1d(U4, 0.2, -1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="x_c"):
        th.mfpt_1d(U4, 0.2, -1.0, -1.0, -2.0)
    with pytest.raises(ValueError, match="D"):
        th.mfpt_1d(U4, lambda x: x, -1.0, 1.0, -2.0)  # D(x) <= 0 on part of the grid
    with pytest.raises(ValueError, match="x"):
        th.mfpt_1d_grid([0.0, 1.0, 0.5], [0, 0, 0], 1.0)


# ------------------------------------------------------------------------------------------
# spectral gap
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio,expected,tol", [(3, 1.074, 6e-4), (5, 1.013, 6e-4), (8, 1.0008, 6e-5)])
def test_spectral_gap_matches_notes(ratio, expected, tol):
    D = 1.0 / ratio
    lam = th.spectral_gap_1d(U4, D, -2.5, 2.5, n=1200)
    T = th.mfpt_1d(U4, D, -1.0, 1.0, -2.5)
    assert abs(lam * T / 2 - expected) <= tol


def test_spectral_gap_matches_dense_generator():
    D, n = 1 / 3, 150
    x = np.linspace(-2.0, 2.0, n)
    u = U4(x) + 0.3 * x  # asymmetric
    h = x[1] - x[0]
    Q = np.zeros((n, n))
    for i in range(n - 1):
        Q[i, i + 1] = D / h**2 * math.exp(-(u[i + 1] - u[i]) / (2 * D))
        Q[i + 1, i] = D / h**2 * math.exp(-(u[i] - u[i + 1]) / (2 * D))
    Q -= np.diag(Q.sum(axis=1))
    ev = np.sort(-np.linalg.eigvals(Q).real)
    assert abs(ev[0]) < 1e-9
    assert th.spectral_gap_1d_grid(x, u, D) == pytest.approx(ev[1], rel=1e-9)


# ------------------------------------------------------------------------------------------
# Kramers, Eyring–Kramers, Xie et al.
# ------------------------------------------------------------------------------------------
def test_kramers_and_eyring_kramers_reduce():
    D = 0.2
    k1 = th.kramers_time(1.0, 8.0, -4.0, D)
    assert k1 == pytest.approx(math.pi / math.sqrt(8) * math.exp(5.0), rel=1e-14)
    assert th.eyring_kramers_time(1.0, 8.0, -4.0, D) == pytest.approx(k1, rel=1e-14)
    # docs/theory.md §1.4: κ cancels
    for kappa in (0.5, 3.0):
        ek = th.eyring_kramers_time(1.0, np.diag([8.0, kappa]), np.diag([-4.0, kappa]), D)
        assert ek == pytest.approx(k1, rel=1e-13)
    # entropic factor: + c x²y² raises the y-curvature at the minima to κ + 2c
    kappa, c = 1.0, 2.0
    ek = th.eyring_kramers_time(1.0, np.diag([8.0, kappa + 2 * c]), np.diag([-4.0, kappa]), D)
    assert ek / k1 == pytest.approx(math.sqrt(kappa / (kappa + 2 * c)), rel=1e-13)
    # rotation invariance
    R = linalg.expm(np.array([[0.0, 0.7], [-0.7, 0.0]]))
    ekr = th.eyring_kramers_time(1.0, R @ np.diag([8.0, 5.0]) @ R.T, R @ np.diag([-4.0, 1.0]) @ R.T, D)
    assert ekr == pytest.approx(ek, rel=1e-12)


def test_saddle_validation():
    with pytest.raises(ValueError, match="hess_saddle"):
        th.eyring_kramers_time(1.0, np.eye(2), np.eye(2), 0.1)
    with pytest.raises(ValueError, match="hess_min"):
        th.eyring_kramers_time(1.0, np.diag([1.0, -1.0]), np.diag([-1.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="curv_saddle"):
        th.kramers_time(1.0, 1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="barrier"):
        th.kramers_time(-1.0, 1.0, -1.0, 0.1)


def _pwq(ha, hb, dL):
    """C¹ piecewise-quadratic well: min at a < 0 (curv ha), saddle at 0 (curv -hb), barrier dL."""
    s = hb / (ha + hb)  # fraction of the barrier climbed on the minimum's parabola
    xj = -math.sqrt(2 * (1 - s) * dL / hb)  # junction
    a = xj - math.sqrt(2 * s * dL / ha)

    def U(x):
        return np.where(x < xj, 0.5 * ha * (x - a) ** 2, dL - 0.5 * hb * x**2)

    def dU(x):
        return np.where(x < xj, ha * (x - a), -hb * x)

    def curv(x):
        return np.where(x < xj, ha, hb)

    return U, dU, curv, a, s


def test_xie_exponent_is_exact_for_piecewise_quadratic_with_piecewise_D():
    # D = (η/2B)|U''| piecewise: Φ(b) − Φ(a) = (2BΔL/η)(s/H_a + (1−s)/|H_b|) exactly,
    # and the Itô Laplace prefactor is 2π/H_a (docs/theory.md §4.3).
    ha, hb, dL = 2.0, 1.0, 0.5
    U, dU, curv, a, s = _pwq(ha, hb, dL)
    eta = 0.1
    logs = []
    Bs = [20.0, 24.0]
    for B in Bs:
        D = lambda x, B=B: eta / (2 * B) * curv(x)
        xc = 1.5  # absorbing a few widths past the saddle (on the saddle parabola's far side)
        logT = th.mfpt_1d(U, D, a, xc, a - 3.0, dU=dU, log=True)
        expo = th.xie_sgd_exponent(dL, ha, -hb, batch_size=B, eta=eta, s=s)
        logs.append(logT)
        # asymptotic: logT = expo + log(2π/H_a) + O(1/expo)
        assert abs(logT - expo - math.log(2 * math.pi / ha)) < 3.0 / expo
    slope = (logs[1] - logs[0]) / ((Bs[1] - Bs[0]) / eta)
    assert slope == pytest.approx(th.xie_sgd_log_slope(dL, ha, -hb, s), rel=0.01)


def test_xie_escape_time_forms():
    t1 = th.xie_sgd_escape_time(0.5, 2.0, -1.0, batch_size=8, eta=0.1, s=0.3)
    ref = 2 * math.pi / math.sqrt(2.0) * math.exp(2 * 8 * 0.5 / 0.1 * (0.3 / 2.0 + 0.7 / 1.0))
    assert t1 == pytest.approx(ref, rel=1e-13)
    # separable 2-D: extra dimension only changes the prefactor by sqrt(|κ_b| / κ_a)
    t2 = th.xie_sgd_escape_time(0.5, np.diag([2.0, 3.0]), np.diag([-1.0, 5.0]), batch_size=8, eta=0.1, s=0.3)
    assert t2 / t1 == pytest.approx(math.sqrt(5.0 / 3.0), rel=1e-12)
    assert th.xie_white_noise_escape_time(0.5, 2.0, -1.0, 0.1) == pytest.approx(
        th.kramers_time(0.5, 2.0, -1.0, 0.1), rel=1e-14
    )
    with pytest.raises(ValueError, match="s"):
        th.xie_sgd_escape_time(0.5, 2.0, -1.0, batch_size=8, eta=0.1, s=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        th.xie_sgd_escape_time(0.5, 2.0, -1.0, batch_size=0.5, eta=0.1, s=0.5)


# ------------------------------------------------------------------------------------------
# LEAP effective diffusion
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["per-coordinate", "scalar"])
def test_leap_diffusion_matches_one_step_covariance(mode):
    rng = np.random.default_rng(20240601)
    n = 400_000  # samples of one step Δθ = −(η + ε)⊙(g + ξ)
    eta, sigma = 0.1, 0.07
    g = np.array([0.8, -0.5])
    C = np.array([[1.0, 0.3], [0.3, 0.5]])
    xi = rng.multivariate_normal(np.zeros(2), C, size=n)
    eps = sigma * rng.standard_normal((n, 2) if mode == "per-coordinate" else (n, 1))
    step = -(eta + eps) * (g + xi)
    cov = np.cov(step.T)
    D = th.leap_diffusion(g, C, eta, sigma, mode=mode)
    # SE of a sample covariance entry: sqrt(Var(u v)/n), estimated from the same samples
    c = step - step.mean(axis=0)
    se = np.sqrt(np.var(c[:, :, None] * c[:, None, :], axis=0) / n)
    assert np.all(np.abs(cov - 2 * eta * D) < 4 * se + 1e-12)
    assert np.allclose(step.mean(axis=0), -eta * g, atol=4 * np.sqrt(np.diag(cov) / n).max())


def test_leap_diffusion_1d_modes_agree_and_relative():
    a = th.leap_diffusion(np.array([0.3]), np.array([[0.2]]), 0.1, 0.05, mode="per-coordinate")
    b = th.leap_diffusion(np.array([0.3]), np.array([[0.2]]), 0.1, 0.05, mode="scalar")
    c = th.leap_diffusion(0.3, 0.2, 0.1, 0.5, relative=True)
    assert a[0, 0] == pytest.approx(b[0, 0]) == pytest.approx(c)
    assert c == pytest.approx(((0.01 + 0.0025) * 0.2 + 0.0025 * 0.09) / 0.2)


def test_leap_mfpt_reduces_to_sgd_at_sigma_zero_and_speeds_escape():
    eta, var = 0.05, 4.0  # D = η var / 2 = 0.1
    base = th.mfpt_1d(U4, eta * var / 2, -1.0, 1.0, -2.0)
    t0 = th.leap_mfpt_1d(U4, dU4, -1.0, 1.0, -2.0, eta=eta, sigma=0.0, noise_var=var)
    assert t0 == pytest.approx(base, rel=1e-7)
    t1 = th.leap_mfpt_1d(U4, dU4, -1.0, 1.0, -2.0, eta=eta, sigma=0.03, noise_var=var)
    assert t1 < t0
    with pytest.raises(ValueError, match="noise_var"):
        th.leap_mfpt_1d(U4, dU4, -1.0, 1.0, -2.0, eta=eta, sigma=0.03, noise_var=0.0)


def test_leap_xie_exponent_forms():
    kw = dict(batch_size=16, eta=0.1, s=0.4)
    assert th.leap_xie_exponent(0.5, 2.0, -1.0, sigma=0.0, **kw) == pytest.approx(
        th.xie_sgd_exponent(0.5, 2.0, -1.0, **kw), rel=1e-13
    )
    Beff = th.leap_effective_batch(16, 0.1, 0.05)
    assert Beff == pytest.approx(16 * 0.01 / 0.0125)
    for mode in ("scalar", "per-coordinate"):  # identical in 1-D
        assert th.leap_xie_exponent(0.5, 2.0, -1.0, sigma=0.05, mode=mode, **kw) == pytest.approx(
            th.xie_sgd_exponent(0.5, 2.0, -1.0, batch_size=Beff, eta=0.1, s=0.4), rel=1e-13
        )
    # 2-D, non-diagonal H: per-coordinate adds (σ²/2ηB)Σ e_i²|H|_ii, scalar adds (σ²/2ηB)H_ae
    R = linalg.expm(np.array([[0.0, 0.5], [-0.5, 0.0]]))
    Ha = R @ np.diag([2.0, 6.0]) @ R.T
    Hb = R @ np.diag([-1.0, 6.0]) @ R.T
    e = R[:, 0]
    Da_pc = 0.1 / 32 * (e @ Ha @ e) + 0.0025 / 3.2 * (e**2 @ np.diag(Ha))
    Db_pc = 0.1 / 32 * 1.0 + 0.0025 / 3.2 * (e**2 @ np.diag(linalg.sqrtm(Hb @ Hb).real))
    got = th.leap_xie_exponent(0.5, Ha, Hb, sigma=0.05, mode="per-coordinate", **kw)
    assert got == pytest.approx(0.5 * (0.4 / Da_pc + 0.6 / Db_pc), rel=1e-10)
    t = th.leap_xie_escape_time(0.5, Ha, Hb, sigma=0.05, mode="scalar", **kw)
    assert t == pytest.approx(th.xie_sgd_escape_time(0.5, Ha, Hb, batch_size=Beff, eta=0.1, s=0.4), rel=1e-10)


# ------------------------------------------------------------------------------------------
# discrete-time quadratics
# ------------------------------------------------------------------------------------------
def test_stationary_variances_notes_values():
    assert th.sgd_stationary_variance(1.0, 0.5, 1.0) == pytest.approx(1 / 3)  # docs/theory.md §2.2
    assert th.leap_stationary_variance(1.0, 0.5, 0.3, 1.0) == pytest.approx(0.5152, abs=1e-4)  # §3.3
    assert th.ou_stationary_variance(1.0, 0.5 * 1.0 / 2) == pytest.approx(0.25)
    assert th.langevin_stationary_variance(2.0, 0.1, 0.3) == pytest.approx(0.3 / (2.0 * 0.9))
    assert th.sgd_stationary_variance(1.0, 2.0, 1.0) == math.inf
    assert th.leap_stationary_variance(1.0, 0.5, 0.9, 1.0) == math.inf  # h(η²+σ²) = 1.06 > 2η = 1
    assert th.leap_stationary_variance(1.0, 0.5, 0.6, 1.0, relative=True) == pytest.approx(
        th.leap_stationary_variance(1.0, 0.5, 0.3, 1.0)
    )


def test_stationary_covariance_reduces_to_scalar_forms():
    for sigma in (0.0, 0.3):
        for mode in ("per-coordinate", "scalar"):
            C = th.stationary_covariance(1.0, 0.5, grad_noise_cov=1.0, sigma=sigma, mode=mode)
            assert C[0, 0] == pytest.approx(th.leap_stationary_variance(1.0, 0.5, sigma, 1.0), rel=1e-12)
    C = th.stationary_covariance(np.diag([1.0, 3.0]), 0.2, additive_noise_cov=2 * 0.2 * 0.1 * np.eye(2))
    assert np.diag(C) == pytest.approx([th.langevin_stationary_variance(h, 0.2, 0.1) for h in (1.0, 3.0)])
    # per-coordinate LEAP with diagonal H and diagonal noise decouples into 1-D LEAP chains
    C = th.stationary_covariance(np.diag([1.0, 2.0]), 0.4, grad_noise_cov=np.diag([1.0, 0.5]), sigma=0.2)
    assert C[0, 1] == pytest.approx(0.0, abs=1e-14)
    assert C[1, 1] == pytest.approx(th.leap_stationary_variance(2.0, 0.4, 0.2, 0.5), rel=1e-12)
    assert np.all(np.isinf(th.stationary_covariance(np.diag([1.0, 5.0]), 0.5, grad_noise_cov=np.eye(2))))


def _fixed_point_iteration(H, eta, Sg, sigma, mode, n_iter=3000):
    d = H.shape[0]
    K = np.eye(d) - eta * H
    C = np.zeros((d, d))
    for _ in range(n_iter):
        HCH = H @ C @ H
        if mode == "per-coordinate":
            C = K @ C @ K + sigma**2 * np.diag(np.diag(HCH)) + eta**2 * Sg + sigma**2 * np.diag(np.diag(Sg))
        else:
            C = K @ C @ K + sigma**2 * HCH + (eta**2 + sigma**2) * Sg
    return C


H2 = np.array([[2.0, 0.8], [0.8, 1.0]])
S2 = np.array([[1.0, -0.4], [-0.4, 0.7]])


@pytest.mark.parametrize("mode", ["per-coordinate", "scalar"])
def test_stationary_covariance_vs_iteration_and_monte_carlo(mode):
    eta, sigma = 0.3, 0.25
    C = th.stationary_covariance(H2, eta, grad_noise_cov=S2, sigma=sigma, mode=mode)
    assert np.allclose(C, _fixed_point_iteration(H2, eta, S2, sigma, mode), rtol=1e-10, atol=1e-13)
    # Monte Carlo of the random-step recursion itself (tests the expectation algebra)
    rng = np.random.default_rng(7)
    n, steps = 40_000, 300  # independent chains; contraction ≤ 0.9^300 ≈ 2e-14 of the start
    x = np.zeros((n, 2))
    Lc = np.linalg.cholesky(S2)
    for _ in range(steps):
        eps = sigma * rng.standard_normal((n, 2) if mode == "per-coordinate" else (n, 1))
        xi = rng.standard_normal((n, 2)) @ Lc.T
        x = x - (eta + eps) * (x @ H2 + xi)
    emp = x.T @ x / n
    se = np.sqrt(np.var(x[:, :, None] * x[:, None, :], axis=0) / n)  # SE of each entry
    assert np.all(np.abs(emp - C) < 4 * se)


def test_stability_thresholds():
    assert th.gd_stability_threshold(0.5) == 4.0
    assert th.leap_mean_square_threshold(1.0, 0.5) == pytest.approx(1.6)
    assert th.leap_almost_sure_threshold(1.0, 0.0) == 2.0
    for sigma in (0.1, 0.5, 1.0):
        hs = th.leap_almost_sure_threshold(1.0, sigma)
        assert abs(th.leap_lyapunov_exponent(hs, 1.0, sigma)) < 1e-10
        assert hs >= th.leap_mean_square_threshold(1.0, sigma)  # Jensen
        assert th.leap_lyapunov_exponent(0.99 * hs, 1.0, sigma) < 0 < th.leap_lyapunov_exponent(1.01 * hs, 1.0, sigma)
    # small perturbations stabilise slightly beyond 2/η (E log|1+σhz| < 0 for small σh); large ones destabilise
    assert th.leap_almost_sure_threshold(1.0, 0.1) > 2.0 > th.leap_almost_sure_threshold(1.0, 1.0)


def _leap_step(z, eta, sigma, variant):
    """The LEAP step laws written out here (docs/theory.md §3.4), independent of leap_sde.theory."""
    if variant == "gaussian":
        return eta + sigma * z
    if variant == "clipped":
        return np.maximum(eta + sigma * z, 0.0)
    assert variant == "lognormal"
    return eta * np.exp(sigma * z - sigma**2 / 2)


def test_lyapunov_exponent_vs_monte_carlo():
    rng = np.random.default_rng(12345)
    n = 1_000_000  # SE = std(log|A|)/sqrt(n) ≈ 1.1e-3 here; tolerance 4 SE
    h, eta, sigma = 1.5, 0.5, 0.4
    z = rng.standard_normal(n)
    for variant in th.STEP_VARIANTS:
        la = np.log(np.abs(1.0 - _leap_step(z, eta, sigma, variant) * h))
        se = la.std() / math.sqrt(n)
        assert abs(th.leap_lyapunov_exponent(h, eta, sigma, variant=variant) - la.mean()) < 4 * se


def test_lyapunov_is_derivative_of_moment_function():
    # λ = d/dp log E|A|^p at p = 0, with E|A|^p from the closed hyp1f1 form (independent of the quadrature)
    for h, eta, sigma in [(1.5, 0.5, 0.4), (3.0, 1.0, 0.2), (0.5, 0.1, 0.3)]:
        e = 1e-5
        deriv = (math.log(th.leap_abs_moment(e, h, eta, sigma)) - math.log(th.leap_abs_moment(-e, h, eta, sigma))) / (2 * e)
        assert th.leap_lyapunov_exponent(h, eta, sigma) == pytest.approx(deriv, abs=1e-7)


# ------------------------------------------------------------------------------------------
# heavy tails
# ------------------------------------------------------------------------------------------
def test_tail_index_closed_cases():
    assert th.kesten_tail_index(1.0, 1.0, 1.0) == pytest.approx(2.0, abs=1e-10)  # ηh = 1, hs = 1
    assert th.kesten_tail_index(1.0, 1.0, 0.9) == pytest.approx(2.642, abs=5e-4)  # docs/theory.md §3.3
    a = th.kesten_tail_index(2.0, 0.5, 0.55)  # ηh = 1, hs = 1.1
    # μ = 0 closed form: (hs)^α 2^{α/2} Γ((α+1)/2)/√π = 1
    assert (1.1**a) * 2 ** (a / 2) * math.gamma((a + 1) / 2) / math.sqrt(math.pi) == pytest.approx(1.0, abs=1e-10)
    assert 4.8 < th.kesten_tail_index(1.0, 1.0, 0.7) < 4.9 and 0.87 < th.kesten_tail_index(1.0, 1.0, 1.3) < 0.89
    # α > 2 ⟺ mean-square stable
    assert th.kesten_tail_index(1.0, 0.5, 0.3) > 2.0
    assert math.isnan(th.kesten_tail_index(5.0, 1.0, 0.1))  # E log|A| > 0: no stationary law


def test_abs_moment_closed_form_vs_quadrature():
    for p, h, eta, sigma in [(2.5, 1.0, 0.5, 0.3), (0.7, 3.0, 0.5, 0.05), (8.0, 1.0, 1.0, 0.9), (-0.5, 1.0, 1.0, 0.5)]:
        closed = th.leap_abs_moment(p, h, eta, sigma)
        quad = integrate.quad(
            lambda z: abs(1 - (eta + sigma * z) * h) ** p * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
            -np.inf, np.inf, points=None, limit=400,
        )[0] if p > 0 else th._quad_abs_moment(p, h, eta, sigma, "gaussian")
        assert closed == pytest.approx(quad, rel=1e-7)
    for variant in th.STEP_VARIANTS:
        a = th.kesten_tail_index(1.5, 0.5, 0.4, variant=variant)
        assert th.leap_abs_moment(a, 1.5, 0.5, 0.4, variant=variant) == pytest.approx(1.0, abs=1e-9)


def test_hill_estimator_on_pareto():
    rng = np.random.default_rng(99)
    n, alpha, k = 200_000, 2.5, 2000  # exact Pareto: SE(α̂_k) ≈ α/sqrt(k) = 0.056; tolerance 4 SE
    x = rng.pareto(alpha, n) + 1.0
    x *= rng.choice([-1.0, 1.0], n)  # sign is ignored
    est = th.hill_estimator(x, k)
    assert abs(est - alpha) < 4 * alpha / math.sqrt(k)
    ests = th.hill_estimator(x, np.array([500, 2000]))
    assert ests.shape == (2,)
    with pytest.raises(ValueError, match="k"):
        th.hill_estimator(x, n)


# ------------------------------------------------------------------------------------------
# Tr(HΣ)
# ------------------------------------------------------------------------------------------
def test_ou_loss_increase_vs_integral():
    R = linalg.expm(np.array([[0.0, 0.6], [-0.6, 0.0]]))
    H = R @ np.diag([4.0, 0.25]) @ R.T
    S = np.array([[1.0, 0.5], [0.5, 2.0]])
    t = 0.5
    # E L(t) = ½ Tr(H C(t)), C(t) = ∫_0^t e^{-Hs} Σ e^{-Hs} ds
    integrand = lambda s: 0.5 * np.trace(H @ linalg.expm(-H * s) @ S @ linalg.expm(-H * s))
    ref = integrate.quad(integrand, 0, t, epsrel=1e-12)[0]
    assert th.ou_loss_increase(H, S, t) == pytest.approx(ref, rel=1e-10)
    small = 1e-6
    assert th.ou_loss_increase(H, S, small) == pytest.approx(small / 2 * th.escape_indicator(H, S), rel=1e-5)
    assert th.escape_indicator_isotropic(H, S) == pytest.approx(np.trace(H) * np.trace(S) / 2)
    # discrete SGD with small η approaches the OU form with Σ_OU = η Σ
    eta = 1e-3
    disc = th.discrete_loss_increase(H, S, eta, int(t / eta))
    assert disc == pytest.approx(th.ou_loss_increase(H, eta * S, t), rel=5e-3)


def test_boundary_shift_constant():
    assert th.GOBET_MENOZZI_BETA == pytest.approx(0.5826, abs=1e-4)
    assert th.em_boundary_shift(0.25, 0.01) == pytest.approx(0.5826 * math.sqrt(0.005), rel=1e-4)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: th.sgd_stationary_variance(1.0, 0.0, 1.0), "eta"),
        (lambda: th.leap_stationary_variance(1.0, 0.5, -0.1, 1.0), "sigma"),
        (lambda: th.leap_lyapunov_exponent(1.0, 0.5, 0.1, variant="uniform"), "variant"),
        (lambda: th.leap_diffusion([1.0, 2.0], np.eye(2), 0.1, 0.1, mode="vector"), "mode"),
        (lambda: th.stationary_covariance([[1.0, 2.0], [0.0, 1.0]], 0.1), "hessian"),
        (lambda: th.kesten_tail_index(1.0, 1.0, float("nan")), "sigma"),
        (lambda: th.ou_loss_increase(np.eye(2), np.eye(3), 1.0), "noise_cov"),
        (lambda: th.em_boundary_shift(0.1, 0.0), "dt"),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("variant", ["clipped", "lognormal"])
def test_leap_stationary_variance_non_gaussian_vs_monte_carlo(variant):
    h, eta, sigma = 1.0, 0.5, 0.4
    var = th.leap_stationary_variance(h, eta, sigma, 1.0, variant=variant)
    rng = np.random.default_rng(31)
    n, steps = 100_000, 200  # independent chains; E A² ≤ 0.5 so 200 steps reach stationarity
    x = np.zeros(n)
    for _ in range(steps):
        st = _leap_step(rng.standard_normal(n), eta, sigma, variant)
        x = x - st * (h * x + rng.standard_normal(n))
    se = np.std(x**2) / math.sqrt(n)  # SE of the second-moment estimate; tolerance 4 SE
    assert abs(np.mean(x**2) - var) < 4 * se


# ------------------------------------------------------------------------------------------
# exact references for the discrete-time chain and for d-D grids
# ------------------------------------------------------------------------------------------
def test_discrete_mfpt_tends_to_continuous_and_matches_notes_bias():
    D = 0.25
    cont = th.mfpt_1d(U4, D, -1.0, 1.0, -2.0)
    r = {}
    for eta in (0.02, 0.01, 0.005):
        r[eta] = th.discrete_mfpt_1d(dU4, -1.0, 1.0, -2.0, eta=eta, additive_var=2 * D * eta, n_cells=2000) * eta / cont
    # docs/theory.md §2.3 (ΔU/D = 4, absorbing at +1): MC/exact = 0.97–0.98 at Δt = 0.02, 0.99 at 0.005
    assert 0.965 < r[0.02] < 0.985 and 0.985 < r[0.005] < 0.9995
    # first-order convergence: the bias halves with the step
    assert (1 - r[0.01]) / (1 - r[0.02]) == pytest.approx(0.5, abs=0.08)
    assert (1 - r[0.005]) / (1 - r[0.01]) == pytest.approx(0.5, abs=0.08)


def _mc_chain(eta, sigma, C, n, rng, x0=-1.0, xc=1.0, max_steps=200_000):
    """Plain-numpy simulation of x' = x − η̃ (U'(x) + sqrt(C) Z) until x >= xc."""
    x = np.full(n, x0)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for k in range(1, max_steps + 1):
        idx = np.nonzero(alive)[0]
        if idx.size == 0:
            break
        st = eta + sigma * rng.standard_normal(idx.size)
        x[idx] = x[idx] - st * (dU4(x[idx]) + math.sqrt(C) * rng.standard_normal(idx.size))
        done = x[idx] >= xc
        t[idx[done]] = k
        alive[idx[done]] = False
    assert not alive.any()
    return t


@pytest.mark.parametrize("sigma", [0.0, 0.03])
def test_discrete_mfpt_matches_numpy_monte_carlo(sigma):
    eta, C = 0.05, 2 * 0.5 / 0.05  # Langevin-like white gradient noise, D = ηC/2 = 0.5 (ΔU/D = 2)
    rng = np.random.default_rng(2024 + int(sigma * 100))
    n = 4000  # SE of the mean ≈ mean·CV/sqrt(n) ≈ 1.6% (CV ≈ 1); tolerance 4 SE
    t = _mc_chain(eta, sigma, C, n, rng)
    m, m2 = th.discrete_mfpt_1d(dU4, -1.0, 1.0, -2.5, eta=eta, noise_var=C, sigma=sigma, n_cells=1200,
                                n_nodes=16, second_moment=True)
    se = t.std() / math.sqrt(n)
    assert abs(t.mean() - m) < 4 * se
    se2 = (t**2).std() / math.sqrt(n)
    assert abs((t**2).mean() - m2) < 4 * se2


def test_discrete_stationary_matches_sgd_variance():
    # quadratic h = 1, η = 0.5, gradient noise var 1: Var = 1/3 (docs/theory.md §2.2); LEAP σ = 0.3: 0.5152
    for sigma, var in ((0.0, th.sgd_stationary_variance(1.0, 0.5, 1.0)), (0.3, th.leap_stationary_variance(1.0, 0.5, 0.3, 1.0))):
        c, pi, rho = th.discrete_stationary_1d(lambda x: x, -8.0, 8.0, eta=0.5, noise_var=1.0, sigma=sigma,
                                               n_cells=1600, n_nodes=16)
        assert rho == pytest.approx(1.0, abs=1e-12)
        assert float(np.sum(pi * c**2)) == pytest.approx(var, rel=2e-3)


def test_mfpt_sqra_grid_reduces_to_1d_and_converges_to_eyring_kramers():
    D = 0.25
    xs = np.linspace(-2.0, 1.0, 301)
    ys = np.linspace(-3.0, 3.0, 61)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    T = th.mfpt_sqra_grid(U4(X) + 0.5 * Y**2, D, (xs[1] - xs[0], ys[1] - ys[0]), X >= 1.0 - 1e-12)
    i0, j0 = 100, 30  # (x, y) = (-1, 0)
    assert T[i0, j0] == pytest.approx(th.mfpt_1d(U4, D, -1.0, 1.0, -2.0), rel=2e-3)  # O(h²) grid error
    # entropic factor: exact ratio approaches sqrt(κ/(κ+2c)) as D -> 0 (docs/theory.md §1.4)
    errs = []
    for D in (1 / 4, 1 / 8):
        ys = np.linspace(-1.0, 1.0, 81) * 6 * math.sqrt(D)
        X, Y = np.meshgrid(xs, ys, indexing="ij")
        t = [th.mfpt_sqra_grid(U4(X) + 0.5 * Y**2 + c * X**2 * Y**2, D, (xs[1] - xs[0], ys[1] - ys[0]), X >= 1.0 - 1e-12)[i0, 40]
             for c in (0.0, 0.5)]
        errs.append(t[1] / t[0] / math.sqrt(1 / 2.0) - 1)
    assert 0 < errs[1] < errs[0] < 0.1
