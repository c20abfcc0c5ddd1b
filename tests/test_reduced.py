"""Reduced chain from pre-escape measurements (leap_sde.reduced): estimator and prediction where the truth is known.

The truth is a simulated 1-D chain ``q' = q + b(q) + sqrt(a(q)) ξ`` with a known cubic drift (``b = −ηU'`` for the
quartic double well ``U = (q² − 1)²``, minimum −1, saddle 0) and a known log-linear variance; its exact mean
exit time comes from :func:`leap_sde.theory.discrete_mfpt_1d` on the true ``b``, ``a``.
"""
import math

import numpy as np
import pytest
from scipy import stats

import leap_sde as ls
from leap_sde.theory import discrete_mfpt_1d

ETA = 0.05


def b_true(q):
    return -ETA * 4.0 * q * (q * q - 1.0)


def a_true(q):
    return ETA ** 2 * 10.0 * np.exp(0.4 * q)  # log-linear: the var_order = 1 model form is exact


def simulate_chain(n_rep, n_steps, seed, *, stop_hi=-0.4, x0=-1.0):
    """Replicas of the true chain from ``x0``, each stopped the first time ``q >= stop_hi`` (pre-escape runs:
    the last value is the first one outside the window, the rest nan)."""
    rng = np.random.default_rng(seed)
    q = np.full((n_rep, n_steps + 1), np.nan)
    x = np.full(n_rep, float(x0))
    alive = np.ones(n_rep, dtype=bool)
    q[:, 0] = x
    for k in range(n_steps):
        xn = x + b_true(x) + np.sqrt(a_true(x)) * rng.standard_normal(n_rep)
        q[alive, k + 1] = xn[alive]
        alive &= xn < stop_hi
        x = np.where(alive, xn, x)
        if not alive.any():
            break
    return q


def _bin_truth(q, edges, window_hi):
    """Per bin, the exact targets of the estimator on these data: mean of b(q_k) over the bin's pairs, and
    mean a(q_k) + the within-bin variance of b(q_k) (the estimator takes residuals from the bin mean)."""
    q0 = q[:, :-1].ravel()
    q1 = q[:, 1:].ravel()
    ok = np.isfinite(q0) & np.isfinite(q1) & (q0 < window_hi) & (q0 >= edges[0]) & (q0 <= edges[-1])
    q0 = q0[ok]
    idx = np.clip(np.searchsorted(edges, q0, side="right") - 1, 0, edges.size - 2)
    nb = edges.size - 1
    cnt = np.maximum(np.bincount(idx, minlength=nb), 1)
    mb = np.bincount(idx, weights=b_true(q0), minlength=nb) / cnt
    vb = np.bincount(idx, weights=(b_true(q0) - mb[idx]) ** 2, minlength=nb) / np.maximum(cnt - 1, 1)
    ma = np.bincount(idx, weights=a_true(q0), minlength=nb) / cnt
    return mb, ma + vb


def test_km_estimates_within_se_of_the_truth():
    """Every used bin's drift and variance within 3.5 SE of the exact bin target (40 z-scores: 3.5 SE is a
    family-wise ~2 % level), and Σ z² below the χ² 99.9 % quantile. Seed 1, 300 replicas × ≤ 600 steps."""
    seed, n_rep, n_steps, tol = 1, 300, 600, 3.5
    q = simulate_chain(n_rep, n_steps, seed)
    tab = ls.km_table(q, bins=20, window=(-np.inf, -0.4), min_count=50)
    u = tab.used
    assert u.sum() >= 15
    mb, ma = _bin_truth(q, tab.edges, -0.4)
    zb = (tab.drift - mb)[u] / tab.drift_se[u]
    za = (tab.var - ma)[u] / tab.var_se[u]
    assert np.max(np.abs(zb)) < tol, zb
    assert np.max(np.abs(za)) < tol, za
    z = np.concatenate((zb, za))
    assert np.sum(z ** 2) < stats.chi2.ppf(0.999, z.size)
    assert np.all(np.abs(tab.kurtosis[u]) < 1.0)  # Gaussian increments: excess kurtosis ~ 0 (SE ~ sqrt(24/n))


def test_cluster_standard_errors_are_calibrated():
    """The reported SEs are the size of the actual errors: z = (estimate − exact bin target)/SE pooled over 40
    independent data sets (seeds 0..39, 80 replicas × ≤ 400 steps) and the bins with >= 100 pairs in every set
    (>= 240 z-scores): RMS z in [0.8, 1.25] (its SD is ~0.05 for Gaussian z) and |mean z| < 4/sqrt(n)."""
    n_seeds, n_rep, n_steps = 40, 80, 400
    edges = np.linspace(-1.4, -0.4, 11)
    zs, cnt = [], []
    for s in range(n_seeds):
        q = simulate_chain(n_rep, n_steps, s)
        t = ls.km_table(q, bins=edges, window=(-np.inf, -0.4), min_count=20)
        mb, _ = _bin_truth(q, edges, -0.4)
        zs.append((t.drift - mb) / t.drift_se)
        cnt.append(t.count)
    zs, cnt = np.array(zs), np.array(cnt)
    good = cnt.min(0) >= 100
    z = zs[:, good].ravel()
    assert good.sum() >= 6 and np.all(np.isfinite(z))
    rms = math.sqrt(np.mean(z ** 2))
    assert 0.8 < rms < 1.25, rms
    assert abs(z.mean()) < 4 / math.sqrt(z.size)


def test_prediction_matches_the_exact_chain():
    """Fit from pre-escape runs (stopped at q = −0.4, 60 % of the way from the minimum −1 to the saddle 0), predict
    the mean exit time through the saddle, compare with the exact solution of the true chain:
    |ln T_pred − ln T_exact| <= 3 log_se + |ln(T_alt/T_pred)| (the stated model error). Seed 2, 1500 replicas ×
    ≤ 800 steps. Inside the visited range (exit at −0.6) the same comparison with 3 log_se only."""
    seed, n_rep, n_steps = 2, 1500, 800
    q = simulate_chain(n_rep, n_steps, seed)
    model = ls.fit_reduced_chain(q, window=(-np.inf, -0.4), bins=20, drift_order=3, var_order=1)
    assert model.visited[1] > -0.6
    exact = discrete_mfpt_1d(lambda x: -b_true(x), -1.0, 0.0, -2.5, eta=1.0, additive_var=a_true, n_cells=3000)
    pred = model.predict_escape(exit_hi=0.0, n_boot=40, seed=0)
    assert pred.status == "extrapolated" and pred.extrapolation > 0.3
    lo_, hi_ = pred.ci
    assert lo_ < pred.mean_steps < hi_
    model_err_log = abs(math.log((pred.mean_steps + pred.model_error) / pred.mean_steps))
    assert abs(math.log(pred.mean_steps / exact)) <= 3 * pred.log_se + model_err_log, (pred, exact)
    # inside the visited range: interpolation, no model error allowance
    exact_in = discrete_mfpt_1d(lambda x: -b_true(x), -1.0, -0.6, -2.5, eta=1.0, additive_var=a_true, n_cells=3000)
    pin = model.predict_escape(exit_hi=-0.6, n_boot=30, seed=0)
    assert pin.extrapolation == 0.0 and pin.status == "ok"
    assert abs(math.log(pin.mean_steps / exact_in)) <= 3 * pin.log_se
    assert pin.log_se < pred.log_se  # extrapolating is less certain
    # Fokker–Planck cross-check: same order of magnitude (differs by the O(step) discreteness)
    assert 0.5 < pred.fp_mean_steps / pred.mean_steps < 2.0


def _two_sided_mc(n, seed, lo=-1.3, hi=-0.6, x0=-1.0):
    """Exit steps of ``n`` direct simulations of the true chain from ``x0`` out of ``(lo, hi)``."""
    rng = np.random.default_rng(seed)
    x = np.full(n, x0)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    k = 0
    while alive.any():
        k += 1
        x[alive] = x[alive] + b_true(x[alive]) + np.sqrt(a_true(x[alive])) * rng.standard_normal(alive.sum())
        out = alive & ((x <= lo) | (x >= hi))
        t[out] = k
        alive &= ~out
    return t


def test_two_sided_exit_against_monte_carlo():
    """Two-sided exit from (−1.3, −0.6) of the true chain, given the true b and a as the 'fit' (order-3 drift and
    order-1 log-variance represent them exactly): reduced-chain solver vs direct simulation of 20 000 chains
    (seed 3), within 3 SE; the survival curve at 4 step counts within 3.5 binomial SE (4 checks), and Σ S(k) = E τ."""
    seed, n = 3, 20000
    t = _two_sided_mc(n, seed)
    mc, se = t.mean(), t.std(ddof=1) / math.sqrt(n)
    model = _exact_model()
    p = model.predict_escape(-1.3, -0.6, x0=-1.0, n_boot=0)
    assert abs(p.mean_steps - mc) < 3 * se, (p.mean_steps, mc, se)
    assert math.isnan(p.fp_mean_steps) and math.isnan(p.reflect_at)
    ks = np.array([5, 20, 50, 100])
    S = model.survival(ks, -1.3, -0.6, x0=-1.0)
    S_mc = np.array([(t > k).mean() for k in ks])
    assert np.all(np.abs(S - S_mc) < 3.5 * np.sqrt(S * (1 - S) / n) + 1e-12), (S, S_mc)
    kk = np.arange(0, int(60 * p.mean_steps))
    assert model.survival(kk, -1.3, -0.6, x0=-1.0).sum() == pytest.approx(p.mean_steps, rel=2e-3)


def _exact_model():
    """A ReducedModel whose coefficients are the true b (cubic) and log a (linear) in its scaled variable."""
    q = simulate_chain(50, 200, 0)
    m = ls.fit_reduced_chain(q, window=(-np.inf, -0.4), bins=10, drift_order=3, var_order=1, min_count=5)
    c, s = m.q_center, m.q_scale
    # b(q) = −4η(q³ − q), q = c + s t
    P = np.polynomial.Polynomial
    qt = P([c, s])
    bt = (-4.0 * ETA * (qt ** 3 - qt)).coef
    lat = (math.log(10.0 * ETA ** 2) + 0.4 * qt).coef
    import dataclasses

    return dataclasses.replace(m, drift_coef=bt, logvar_coef=lat)


def test_one_sided_solver_is_discrete_mfpt_1d():
    """With the true coefficients the one-sided prediction is the exact chain's E[τ] (it calls
    discrete_mfpt_1d); the two-sided solver with a far, never-reached low exit agrees with it at a comparable grid
    size (700 vs ~700 cells) to 1e-4."""
    m = _exact_model()
    exact = discrete_mfpt_1d(lambda x: -b_true(x), -1.0, 0.0, -2.0, eta=1.0, additive_var=a_true, n_cells=700)
    p1 = m.predict_escape(exit_hi=0.0, x0=-1.0, reflect_at=-2.0, n_boot=0, cells_per_sd=100, max_cells=700)
    assert p1.n_cells == 700 and p1.mean_steps == pytest.approx(exact, rel=1e-10)
    p2 = m.predict_escape(-2.0, 0.0, x0=-1.0, n_boot=0, cells_per_sd=100, max_cells=700)
    assert p2.mean_steps == pytest.approx(exact, rel=1e-4)


def test_bootstrap_is_seeded_and_ci_brackets():
    q = simulate_chain(200, 400, 4)
    m = ls.fit_reduced_chain(q, window=(-np.inf, -0.4), bins=15)
    a = m.predict_escape(exit_hi=-0.2, n_boot=15, seed=5)
    b = m.predict_escape(exit_hi=-0.2, n_boot=15, seed=5)
    c = m.predict_escape(exit_hi=-0.2, n_boot=15, seed=6)
    assert a.ci == b.ci and a.ci != c.ci
    assert a.ci[0] < a.mean_steps < a.ci[1]
    assert a.as_dict()["ci"] == list(a.ci)
    rows = m.table.as_rows()
    assert len(rows) == 15 and {"q_mean", "drift", "drift_se", "var", "var_se", "used"} <= set(rows[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(window=(1.0, 0.0)), "window"),
    (dict(bins=0), "bins"),
    (dict(drift_order=-1), "drift_order"),
    (dict(bins=3, drift_order=5), "bins have enough pairs"),
    (dict(min_count=1), "min_count"),
])
def test_fit_argument_errors(kwargs, match):
    q = simulate_chain(20, 100, 0)
    with pytest.raises(ValueError, match=match):
        ls.fit_reduced_chain(q, **{"window": (-np.inf, -0.4), **kwargs})


def test_predict_argument_errors():
    m = ls.fit_reduced_chain(simulate_chain(50, 200, 0), window=(-np.inf, -0.4), bins=10)
    with pytest.raises(ValueError, match="at least one finite exit"):
        m.predict_escape()
    with pytest.raises(ValueError, match="x0"):
        m.predict_escape(exit_hi=-1.5, x0=-1.0)
    with pytest.raises(ValueError, match="level"):
        m.predict_escape(exit_hi=0.0, level=1.5)
    with pytest.raises(ValueError, match="reflect_at"):
        m.predict_escape(exit_hi=0.0, reflect_at=-0.5)
    with pytest.raises(ValueError, match="at least 2 replicas"):
        ls.km_table([np.zeros(10)])
