"""Reduced chain with the empirical (non-Gaussian) one-step kernel, where the truth is known.

The truth is a simulated OU-like chain ``q' = q − κ q + sqrt(A) ξ`` (κ = 0.2, A = 0.01, stationary SD
``s = sqrt(A/(1 − (1 − κ)²)) = 1/6``) whose noise ``ξ`` is either N(0, 1) or a standardized, reflected gamma
variable ``ξ = −(G − k)/sqrt(k)``, ``G ~ Gamma(k)``, with skewness ``−2/sqrt(k)`` (k = 16: −0.5, the skewness
measured on real networks above the minimum). Pre-escape runs start at 0 and stop at 1.5 s; the exit is at
3 s. Ground truth: the exact solution of the true chain on a fine cell grid, with cell masses from the true
gamma CDF (independent of the code under test), itself checked against brute-force simulation.
"""
import math

import numpy as np
import pytest
from scipy import stats

import leap_sde as ls
from leap_sde.reduced import empirical_chain_matrix

KAPPA, A = 0.2, 0.01
S_OU = math.sqrt(A / (1.0 - (1.0 - KAPPA) ** 2))
K_GAMMA = 16.0  # skewness -2/sqrt(16) = -0.5


def _noise(rng, n, skewed):
    if not skewed:
        return rng.standard_normal(n)
    g = rng.gamma(K_GAMMA, size=n)
    return -(g - K_GAMMA) / math.sqrt(K_GAMMA)


def _pre_escape_runs(n_rep, n_steps, seed, skewed, stop_hi=1.5 * S_OU):
    rng = np.random.default_rng(seed)
    q = np.full((n_rep, n_steps + 1), np.nan)
    x = np.zeros(n_rep)
    alive = np.ones(n_rep, dtype=bool)
    q[:, 0] = x
    for k in range(n_steps):
        xn = x - KAPPA * x + math.sqrt(A) * _noise(rng, n_rep, skewed)
        q[alive, k + 1] = xn[alive]
        alive &= xn < stop_hi
        x = np.where(alive, xn, x)
        if not alive.any():
            break
    return q


def _brute_force(n, seed, exit_hi, skewed):
    """Exit steps of ``n`` direct simulations of the true chain from 0 to ``q >= exit_hi``."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    k = 0
    while alive.any():
        k += 1
        xa = x[alive]
        x[alive] = xa - KAPPA * xa + math.sqrt(A) * _noise(rng, xa.size, skewed)
        out = alive & (x >= exit_hi)
        t[out] = k
        alive &= ~out
    return t


def _true_skewed_mfpt(exit_hi, ref=-5 * S_OU, n_cells=1200):
    """Exact mean exit time from 0 of the true skewed chain on a cell grid of (ref, exit_hi): cell masses from the
    gamma CDF, P(ξ <= z) = P(G >= k − z sqrt(k)); the far end reflects (never reached in practice)."""
    edges = np.linspace(ref, exit_hi, n_cells + 1)
    c = 0.5 * (edges[1:] + edges[:-1])
    mu = c - KAPPA * c
    z = (edges[None, :] - mu[:, None]) / math.sqrt(A)
    F = stats.gamma.sf(K_GAMMA - z * math.sqrt(K_GAMMA), K_GAMMA)
    P = np.diff(F, axis=1)
    P[:, 0] += F[:, 0]  # reflecting low end
    T = np.linalg.solve(np.eye(n_cells) - P, np.ones(n_cells))
    return float(np.interp(0.0, c, T))


@pytest.fixture(scope="module")
def skewed_model():
    # seed 1, 300 pre-escape runs x <= 400 steps, stopped at 1.5 s: ~12 000 pairs
    q = _pre_escape_runs(300, 400, 1, skewed=True)
    return ls.fit_reduced_chain(q, window=(-np.inf, 1.5 * S_OU), bins=15, drift_order=1, var_order=0)


def test_empirical_kernel_matches_the_true_skewed_chain(skewed_model):
    """Skewed noise (−0.5), exit at 3 s (extrapolated from runs stopped at 1.5 s). (1) The test's exact solver of
    the true chain agrees with 3000 brute-force chains (seed 5) within 3 SE. (2) The empirical kernel's prediction
    is within 3 SE of both: |ln T_emp − ln T_true| <= 3 log_se and, against brute force,
    <= 3 sqrt(log_se² + (SE_bf/T_bf)²) (log_se: 40-draw bootstrap of coefficients and replica-clustered
    residuals, seed 0). (3) The Gaussian kernel on the same fit is off by more than 3 of its own log_se."""
    exit_hi = 3 * S_OU
    t_true = _true_skewed_mfpt(exit_hi)
    t = _brute_force(3000, 5, exit_hi, skewed=True)
    bf, bf_se = t.mean(), t.std(ddof=1) / math.sqrt(t.size)
    assert abs(t_true - bf) < 3 * bf_se, (t_true, bf, bf_se)

    pe = skewed_model.predict_escape(exit_hi=exit_hi, n_boot=40, seed=0, kernel="empirical")
    assert pe.kernel == "empirical" and pe.status == "extrapolated"
    assert any("empirical kernel" in n for n in pe.notes)
    assert pe.ci[0] < pe.mean_steps < pe.ci[1]
    assert abs(math.log(pe.mean_steps / t_true)) <= 3 * pe.log_se, (pe.mean_steps, pe.log_se, t_true)
    tol_bf = 3 * math.sqrt(pe.log_se ** 2 + (bf_se / bf) ** 2)
    assert abs(math.log(pe.mean_steps / bf)) <= tol_bf, (pe.mean_steps, bf)

    pg = skewed_model.predict_escape(exit_hi=exit_hi, n_boot=40, seed=0)
    assert pg.kernel == "gaussian"
    assert math.log(t_true / pg.mean_steps) > 3 * pg.log_se, (pg.mean_steps, pg.log_se, t_true)


def test_empirical_kernel_reduces_to_gaussian_for_gaussian_noise():
    """Gaussian noise (seed 2, 300 runs, exit 3 s): the empirical kernel's prediction and the Gaussian kernel's on
    the same fit agree within the empirical bootstrap's 3 log_se (40 draws), the Gaussian value inside its 95 % CI,
    and the pooled residual skewness is within 4 SE (sqrt(6/n)) of 0."""
    q = _pre_escape_runs(300, 400, 2, skewed=False)
    m = ls.fit_reduced_chain(q, window=(-np.inf, 1.5 * S_OU), bins=15, drift_order=1, var_order=0,
                             kernel="empirical")
    assert m.kernel == "empirical"
    xi, _ = m.residuals()
    assert abs(xi.mean()) < 1e-12 and xi.var() == pytest.approx(1.0, rel=1e-12)
    assert abs(np.mean(xi ** 3)) < 4 * math.sqrt(6 / xi.size)
    pe = m.predict_escape(exit_hi=3 * S_OU, n_boot=40, seed=0)
    pg = m.predict_escape(exit_hi=3 * S_OU, n_boot=0, kernel="gaussian")
    assert pe.kernel == "empirical"
    assert abs(math.log(pe.mean_steps / pg.mean_steps)) <= 3 * pe.log_se, (pe.mean_steps, pg.mean_steps, pe.log_se)
    assert pe.ci[0] <= pg.mean_steps <= pe.ci[1]


def test_empirical_chain_matrix_is_stochastic_and_exact_counts():
    """Rows of P plus the killed mass sum to 1 (integer counts of the ECDF); a cell mass is the fraction of sample
    points falling in the scaled cell; with reflection at the low end nothing is killed there."""
    rng = np.random.default_rng(0)
    xi = np.sort(rng.standard_normal(5000))
    b = lambda q: -0.1 * q  # noqa: E731
    a = lambda q: np.full_like(q, 0.04)  # noqa: E731
    c, P, e = empirical_chain_matrix(b, a, xi, -1.0, 1.0, 50)
    assert np.all(P >= 0) and np.all(e >= 0)
    np.testing.assert_allclose(P.sum(1) + e, 1.0, rtol=0, atol=1e-13)
    i, j = 20, 23
    edges = np.linspace(-1.0, 1.0, 51)
    mu, s = c[i] + b(c[i]), 0.2
    direct = np.mean(((mu + s * xi) > edges[j]) & ((mu + s * xi) <= edges[j + 1]))
    assert P[i, j] == pytest.approx(direct, abs=1e-15)
    _, P2, e2 = empirical_chain_matrix(b, a, xi, -1.0, 1.0, 50, kill_lo=False)
    np.testing.assert_allclose(P2.sum(1) + e2, 1.0, rtol=0, atol=1e-13)
    assert np.all(e2 <= e)


def test_empirical_survival_two_sided_and_errors(skewed_model):
    """Two-sided exit with the empirical kernel: Σ_k S(k) = E τ of predict_escape (same grid); the bootstrap is
    reproducible from its seed; an unknown kernel and a model without pairs are refused by name."""
    lo, hi = -2 * S_OU, 2 * S_OU
    p = skewed_model.predict_escape(lo, hi, x0=0.0, n_boot=0, kernel="empirical", max_cells=300)
    n_cells = p.n_cells
    kk = np.arange(0, int(80 * p.mean_steps))
    S = skewed_model.survival(kk, lo, hi, x0=0.0, kernel="empirical", max_cells=n_cells)
    assert S.sum() == pytest.approx(p.mean_steps, rel=2e-3)
    b1 = skewed_model.predict_escape(exit_hi=2 * S_OU, n_boot=5, seed=3, kernel="empirical")
    b2 = skewed_model.predict_escape(exit_hi=2 * S_OU, n_boot=5, seed=3, kernel="empirical")
    assert b1.ci == b2.ci
    with pytest.raises(ValueError, match="kernel"):
        skewed_model.predict_escape(exit_hi=2 * S_OU, n_boot=0, kernel="kde")
    with pytest.raises(ValueError, match="kernel"):
        ls.fit_reduced_chain(np.zeros((3, 5)) + np.arange(5), kernel="skew")
    import dataclasses

    bare = dataclasses.replace(skewed_model, pairs=None)
    with pytest.raises(ValueError, match="pairs"):
        bare.predict_escape(exit_hi=2 * S_OU, n_boot=0, kernel="empirical")


def _side_noise(rng, x):
    """Skewness −0.5 for q >= 0 (kicks toward the exit rarer), +0.5 for q < 0 (the mirror): pooled, ~0."""
    g = rng.gamma(K_GAMMA, size=x.size)
    xi = -(g - K_GAMMA) / math.sqrt(K_GAMMA)
    return np.where(x >= 0, xi, -xi)


def _side_runs(n_rep, n_steps, seed, stop_hi=1.5 * S_OU):
    rng = np.random.default_rng(seed)
    q = np.full((n_rep, n_steps + 1), np.nan)
    x = np.zeros(n_rep)
    alive = np.ones(n_rep, dtype=bool)
    q[:, 0] = x
    for k in range(n_steps):
        xn = x - KAPPA * x + math.sqrt(A) * _side_noise(rng, x)
        q[alive, k + 1] = xn[alive]
        alive &= xn < stop_hi
        x = np.where(alive, xn, x)
        if not alive.any():
            break
    return q


def _side_truth(exit_hi, ref=-5 * S_OU, n_cells=1200):
    edges = np.linspace(ref, exit_hi, n_cells + 1)
    c = 0.5 * (edges[1:] + edges[:-1])
    mu = c - KAPPA * c
    z = (edges[None, :] - mu[:, None]) / math.sqrt(A)
    F_neg = stats.gamma.sf(K_GAMMA - z * math.sqrt(K_GAMMA), K_GAMMA)  # ξ = −(G − k)/√k
    F_pos = stats.gamma.cdf(K_GAMMA + z * math.sqrt(K_GAMMA), K_GAMMA)  # ξ = +(G − k)/√k
    F = np.where((c >= 0)[:, None], F_neg, F_pos)
    P = np.diff(F, axis=1)
    P[:, 0] += F[:, 0]
    T = np.linalg.solve(np.eye(n_cells) - P, np.ones(n_cells))
    return float(np.interp(0.0, c, T))


def test_split_residual_laws_follow_a_side_dependent_skew():
    """Noise skewness −0.5 above the minimum and +0.5 below (seed 7, 300 runs stopped at 1.5 s, exit 3 s): the
    pooled law is nearly symmetric, so the pooled empirical kernel is too fast like the Gaussian one; with
    ``split_at=0`` the prediction is within 3 log_se (40 draws) of the exact true chain, which agrees with 3000
    brute-force chains (seed 8) within 3 SE; the pooled kernel is off by more than 3 of its log_se."""
    exit_hi = 3 * S_OU
    t_true = _side_truth(exit_hi)
    rng = np.random.default_rng(8)
    x = np.zeros(3000)
    t = np.zeros(3000)
    alive = np.ones(3000, dtype=bool)
    k = 0
    while alive.any():
        k += 1
        xa = x[alive]
        x[alive] = xa - KAPPA * xa + math.sqrt(A) * _side_noise(rng, xa)
        out = alive & (x >= exit_hi)
        t[out] = k
        alive &= ~out
    assert abs(t_true - t.mean()) < 3 * t.std(ddof=1) / math.sqrt(t.size), (t_true, t.mean())
    m = ls.fit_reduced_chain(_side_runs(300, 400, 7), window=(-np.inf, 1.5 * S_OU), bins=15, drift_order=1,
                             var_order=0, kernel="empirical")
    xi, _, up = m.residuals(0.0)
    assert np.mean(xi[up] ** 3) < -0.3 and np.mean(xi[~up] ** 3) > 0.3
    ps = m.predict_escape(exit_hi=exit_hi, n_boot=40, seed=0, split_at=0.0)
    assert sum("empirical kernel with" in n for n in ps.notes) == 2
    assert abs(math.log(ps.mean_steps / t_true)) <= 3 * ps.log_se, (ps.mean_steps, ps.log_se, t_true)
    pp = m.predict_escape(exit_hi=exit_hi, n_boot=40, seed=0)
    assert math.log(t_true / pp.mean_steps) > 3 * pp.log_se, (pp.mean_steps, pp.log_se, t_true)
    with pytest.raises(ValueError, match="split_at"):
        m.predict_escape(exit_hi=exit_hi, n_boot=0, kernel="gaussian", split_at=0.0)
    # survival with the split kernel sums to its mean exit time (two-sided, same grid)
    p2 = m.predict_escape(-2 * S_OU, 2 * S_OU, x0=0.0, n_boot=0, split_at=0.0, max_cells=300)
    S = m.survival(np.arange(0, int(80 * p2.mean_steps)), -2 * S_OU, 2 * S_OU, x0=0.0, split_at=0.0,
                   max_cells=p2.n_cells)
    assert S.sum() == pytest.approx(p2.mean_steps, rel=2e-3)
