"""The ensemble simulator: exact (pathwise) references first, then statistical checks with stated tolerances."""
import warnings

import numba as nb
import numpy as np
import pytest
from scipy import stats

import leap_sde as ls
from leap_sde import _rng
from conftest import exact_mfpt


# ---------------------------------------------------------------------------------------------- pathwise
def test_kernel_matches_a_plain_python_reference_pathwise(double_well):
    """Same injected normals (the particle's stream, drawn separately), same update: identical paths."""
    eta, std, sigma, n_steps, seed = 0.01, 3.0, 0.004, 300, 11
    sched = ls.Warmup(ls.CosineAnnealingLR(T_max=200, eta_min=0.001), warmup_steps=50)
    res = ls.simulate(double_well, [-1.0], eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma),
                      schedule=sched, n_particles=3, max_steps=n_steps, seed=seed)
    words = _rng.particle_seeds(seed, 3)
    etas = sched.values(eta, n_steps)
    for i in range(3):
        z = np.empty(2 * n_steps)
        _rng.fill_normals(words[i], z)  # per step: gradient noise, then the LEAP perturbation
        x = -1.0
        for k in range(n_steps):
            x -= (etas[k] + sigma * z[2 * k + 1]) * (4 * x * (x * x - 1) + std * z[2 * k])
        assert res.positions[i, 0] == pytest.approx(x, rel=1e-12, abs=1e-12)
    assert res.times[0] == pytest.approx(etas.sum(), rel=1e-12)


def test_register_kernel_equals_general_kernel(double_well):
    kw = dict(eta=0.005, noise=ls.WhiteNoise.langevin(0.25, 0.005), leap=ls.LEAP(0.001),
              exit=ls.Threshold(1.0), n_particles=100, max_steps=20_000, seed=7, basins=True, snapshot_every=100)
    a = ls.simulate(double_well, [-1.0], **kw)
    b = ls.simulate(double_well, [-1.0], _general_kernel=True, **kw)
    assert np.array_equal(a.steps, b.steps) and np.array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.basin_steps, b.basin_steps)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)


@pytest.mark.parametrize("land, x0, noise, leap, exit", [
    (ls.EntropicWell(1.0, 0.5), [-1.0, 0.0], ls.WhiteNoise(10.0), ls.LEAP(0.003), ls.Threshold(1.0)),
    (ls.EntropicWell(1.0, 0.5), [-1.0, 0.0], ls.WhiteNoise(10.0), ls.LEAP(0.1, mode="scalar", relative=True),
     ls.ReachBall([1.0, 0.0], 0.3)),
    (ls.Quadratic(np.array([[1.5, 0.3], [0.3, 0.8]]), center=[0.2, -0.1]), [0.3, 0.1], ls.NoNoise(),
     ls.LEAP(0.9), ls.LeaveBall([0.0, 0.0], 50.0)),
    (ls.StyblinskiTang(2, [1.0, 1.5]), [2.75, -1.94], ls.WhiteNoise(40.0), ls.LEAP(0.3, variant="lognormal"),
     ls.Threshold(0.0, direction=-1)),
], ids=["entropic-threshold", "entropic-scalar-ball", "quadratic-gd-leap", "styblinski-lognormal"])
def test_2d_register_kernel_equals_general_kernel(land, x0, noise, leap, exit):
    kw = dict(eta=0.01, noise=noise, leap=leap, exit=exit, n_particles=64, max_steps=3000, seed=3,
              basins=bool(land.saddles), snapshot_every=50,
              schedule=ls.Warmup(ls.CosineAnnealingLR(2000), 100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ls.StabilityWarning)
        a = ls.simulate(land, x0, **kw)
        b = ls.simulate(land, x0, _general_kernel=True, **kw)
    assert a.n_escaped > 0  # the comparison covers exits, not only paths
    assert np.array_equal(a.steps, b.steps) and np.array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    if a.basin_steps is not None:
        np.testing.assert_array_equal(a.basin_steps, b.basin_steps)


def test_sde_mode_equals_discrete_mode_for_white_noise(double_well):
    """Without LEAP, Euler–Maruyama with dt = η and D = η·std²/2 is the discrete update itself."""
    kw = dict(eta=0.005, noise=ls.WhiteNoise.langevin(0.25, 0.005), exit=ls.Threshold(1.0),
              n_particles=100, max_steps=20_000, seed=7)
    a = ls.simulate(double_well, [-1.0], **kw)
    b = ls.simulate(double_well, [-1.0], mode="sde", **kw)
    assert np.array_equal(a.steps, b.steps)
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-10)


def test_results_do_not_depend_on_thread_count(double_well):
    kw = dict(eta=0.005, noise=ls.WhiteNoise.langevin(0.3, 0.005), leap=ls.LEAP(0.002), exit=ls.Threshold(1.0),
              n_particles=501, max_steps=30_000, seed=5)
    runs = [ls.simulate(double_well, [-1.0], threads=t, **kw) for t in (1, nb.config.NUMBA_NUM_THREADS)]
    assert np.array_equal(runs[0].steps, runs[1].steps)
    np.testing.assert_array_equal(runs[0].positions, runs[1].positions)
    e = ls.EntropicWell(1.0, 0.5)
    kw2 = dict(eta=0.01, noise=ls.WhiteNoise.langevin(0.3, 0.01), leap=ls.LEAP(0.003), exit=ls.Threshold(1.0),
               n_particles=101, max_steps=5000, seed=5)
    r1, r2 = (ls.simulate(e, [-1.0, 0.0], threads=t, **kw2) for t in (1, 2))
    np.testing.assert_array_equal(r1.positions, r2.positions)


@nb.njit
def _entropic_grad(x, p, out):
    out[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0) + 2.0 * p[1] * x[0] * x[1] * x[1]
    out[1] = p[0] * x[1] + 2.0 * p[1] * x[0] * x[0] * x[1]


def test_custom_landscape_reproduces_the_builtin_pathwise():
    """The documented user-landscape route: a compiled gradient gives the built-in EntropicWell's paths."""
    user = ls.CustomLandscape(_entropic_grad, 2, params=[1.0, 0.5], saddle_points=[[0.0, 0.0]])
    kw = dict(eta=0.01, noise=ls.WhiteNoise.langevin(0.3, 0.01), exit=ls.Threshold(1.0), n_particles=50,
              max_steps=5000, seed=2)
    a = ls.simulate(ls.EntropicWell(1.0, 0.5), [-1.0, 0.0], **kw)
    b = ls.simulate(user, [-1.0, 0.0], **kw)
    assert np.array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.positions, b.positions)


# ---------------------------------------------------------------------------------------------- GD / SGD
def test_gd_converges_on_a_quadratic():
    H = np.array([[3.0, 1.0], [1.0, 2.0]])
    res = ls.simulate(ls.Quadratic(H, center=[1.0, -1.0]), [4.0, 3.0], eta=0.3, n_particles=1, max_steps=200,
                      seed=0)
    np.testing.assert_allclose(res.positions[0], [1.0, -1.0], atol=1e-12)
    # and diverges, reported as such, when η·λ_max ≥ 2
    with pytest.warns(ls.StabilityWarning, match="unstable"):
        res = ls.simulate(ls.Quadratic(H), [1.0, 1.0], eta=0.6, n_particles=1, max_steps=5000, seed=0)
    assert res.status[0] == ls.Status.DIVERGED and res.n_escaped == 0


@pytest.mark.parametrize("eta_h", [0.2, 1.0, 1.8])
def test_sgd_stationary_variance_on_a_quadratic(eta_h):
    """Var_∞ = ησ²/(h(2 − ηh)) (docs/theory.md §2.2).  Seed 1, N = 20 000 particles, one sample each after
    a burn-in of 40/(ηh(2−ηh)) relaxation times; tolerance 3 standard errors of a variance, SE = Var·√(2/N)."""
    h, s, n = 1.0, 0.7, 20_000
    eta = eta_h / h
    burn = int(40 / (eta_h * (2 - eta_h))) + 10
    res = ls.simulate(ls.Quadratic(np.array([[h]])), [0.0], eta=eta, noise=ls.WhiteNoise(s), n_particles=n,
                      max_steps=burn, seed=1)
    expected = eta * s**2 / (h * (2 - eta * h))
    assert abs(res.positions[:, 0].var() - expected) < 3 * expected * np.sqrt(2 / n)


# ---------------------------------------------------------------------------------------------- Kramers
def test_langevin_mfpt_matches_exact_quadrature(double_well):
    """(x²−1)², ΔU/D = 4, absorbing at the other minimum x = +1, start at −1 (docs/theory.md §1.3, §2.3).
    Seed 2024, N = 20 000 particles, η = 0.002: relative SE of the mean 1/√(escapes) ≈ 0.7%, known O(η) bias
    ≈ 0.4% (§2.3); tolerance 3·SE + bias, which must stay within the 3% the simulator promises."""
    D, eta, n = 0.25, 0.002, 20_000
    res = ls.simulate(double_well, [-1.0], eta=eta, noise=ls.WhiteNoise.langevin(D, eta), exit=ls.Threshold(1.0),
                      n_particles=n, max_steps=2_000_000, seed=2024)
    est = res.rate(unit="time")
    assert est.n_censored == 0 and est.n_diverged == 0
    exact = exact_mfpt(lambda x: (x * x - 1) ** 2, D, -1.0, 1.0, -3.0)
    tol = 3 / np.sqrt(est.n_escaped) + 0.004
    assert tol <= 0.03
    assert abs(est.mean / exact - 1) < tol
    # the exit law is exponential after the in-well transient
    assert res.ks_pvalue() > 1e-3


# ---------------------------------------------------------------------------------------------- LEAP
def _one_step_rates(leap, eta=0.1, dim=3, n=200_000, seed=4):
    """η̃ samples: at x = 0 the loss ½‖x + 1‖² has gradient exactly 1, so one step moves each coordinate
    by −η̃."""
    land = ls.Quadratic(np.eye(dim), center=-np.ones(dim))
    res = ls.simulate(land, np.zeros(dim), eta=eta, leap=leap, n_particles=n, max_steps=1, seed=seed)
    return -res.positions


@pytest.mark.slow  # 200 000-particle runs
@pytest.mark.parametrize("relative", [False, True])
def test_leap_rates_have_requested_mean_and_variance_per_coordinate(relative):
    # seed 4, N = 200 000 samples per coordinate; mean within 3·σ/√N, variance within 3·σ²·√(2/N)
    eta, sigma, n = 0.1, 0.05, 200_000
    r = _one_step_rates(ls.LEAP(sigma, relative=relative), eta=eta, n=n)
    s = sigma * eta if relative else sigma
    assert np.all(np.abs(r.mean(0) - eta) < 3 * s / np.sqrt(n))
    assert np.all(np.abs(r.var(0) - s**2) < 3 * s**2 * np.sqrt(2 / n))
    c = np.corrcoef(r.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(c) < 3 / np.sqrt(n))  # independent per coordinate


def test_leap_scalar_mode_shares_one_perturbation():
    r = _one_step_rates(ls.LEAP(0.05, mode="scalar"), n=1000)
    np.testing.assert_array_equal(r[:, 0], r[:, 1])
    np.testing.assert_array_equal(r[:, 0], r[:, 2])


@pytest.mark.slow  # 200 000-particle runs
def test_leap_clipped_and_lognormal_variants():
    eta, sigma, n = 0.1, 0.1, 200_000  # seed 4; P(η̃ = 0) = Φ(−η/σ) within 3 binomial SE
    r = _one_step_rates(ls.LEAP(sigma, variant="clipped"), eta=eta, n=n)[:, 0]
    p = stats.norm.cdf(-eta / sigma)
    assert r.min() == 0.0 and abs(np.mean(r == 0) - p) < 3 * np.sqrt(p * (1 - p) / n)
    r = _one_step_rates(ls.LEAP(0.3, variant="lognormal"), eta=eta, n=n)[:, 0]
    var = eta**2 * np.expm1(0.09)
    assert r.min() > 0 and abs(r.mean() - eta) < 3 * np.sqrt(var / n)
    assert abs(r.var() - var) < 3 * np.sqrt(np.var((r - eta) ** 2) / n)


@pytest.mark.slow  # 200 000-particle runs
@pytest.mark.parametrize("mode", ["discrete", "sde"])
@pytest.mark.parametrize("leap_mode", ["per-coordinate", "scalar"])
def test_one_step_covariance_of_sgd_plus_leap(mode, leap_mode):
    """Cov(Δθ) = η²C + σ²·Diag(ggᵀ + C) (per-coordinate) or (η²+σ²)C + σ²ggᵀ (scalar), docs/theory.md §8.2:
    exact for the discrete step and the definition of the SDE model.  Seed 8, N = 200 000, tolerance
    3 standard errors of each covariance entry, SE ≈ sqrt((S_aa S_bb + S_ab²)/N)."""
    H = np.array([[2.0, 0.0], [0.0, 0.5]])
    land, x0, eta, s, sigma, n = ls.Quadratic(H), np.array([0.4, -0.8]), 0.2, 0.5, 0.1, 200_000
    res = ls.simulate(land, x0, eta=eta, noise=ls.WhiteNoise(s), leap=ls.LEAP(sigma, mode=leap_mode), mode=mode,
                      n_particles=n, max_steps=1, seed=8)
    g, C = H @ x0, s**2 * np.eye(2)
    if leap_mode == "per-coordinate":
        S = eta**2 * C + sigma**2 * np.diag(g**2 + np.diag(C))
    else:
        S = (eta**2 + sigma**2) * C + sigma**2 * np.outer(g, g)
    step = res.positions - x0
    np.testing.assert_allclose(step.mean(0), -eta * g, atol=3 * np.sqrt(np.diag(S) / n).max())
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n)
    assert np.all(np.abs(np.cov(step.T) - S) < 3 * se)


@pytest.mark.slow  # 200 000-particle runs
def test_hessian_noise_and_minibatch_noise_covariances():
    """HessianNoise: Var ξ = max(|h|, floor)/B; MinibatchNoise: Var = C(θ)/B with C the per-sample covariance.
    Seed 6, N = 200 000 one-step samples; tolerance 3 SE of a variance."""
    n, eta = 200_000, 0.1
    land = ls.Polynomial([1, 0, -2, 0, 1])
    for x0, h in ((-1.0, 8.0), (1 / np.sqrt(3), 0.0)):  # a minimum, and an inflection point (floor applies)
        res = ls.simulate(land, [x0], eta=eta, noise=ls.HessianNoise(4, floor=0.5), n_particles=n, max_steps=1,
                          seed=6)
        var = eta**2 * max(abs(h), 0.5) / 4
        assert abs(res.positions[:, 0].var() - var) < 3 * var * np.sqrt(2 / n)
    f = ls.FiniteSum.gaussian(land, 25, 0.3, seed=3)
    res = ls.simulate(f, [-0.9], eta=eta, noise=ls.MinibatchNoise(5), n_particles=n, max_steps=1, seed=6)
    var = eta**2 * f.gradient_covariance([-0.9])[0, 0] / 5
    assert abs(res.positions[:, 0].var() - var) < 3 * np.sqrt(np.var((res.positions[:, 0] - res.positions[:, 0].mean()) ** 2) / n)
    assert res.positions[:, 0].mean() == pytest.approx(-0.9 - eta * f.grad([-0.9])[0], abs=3 * np.sqrt(var / n))


# ---------------------------------------------------------------------------------------------- recording
def test_basin_occupation_and_snapshots():
    w = ls.SharpFlatWell(curv_flat=1.0, curv_sharp=4.0, barrier_flat=0.5, barrier_sharp=0.5, curv_saddle=1.0)
    res = ls.simulate(w, [w.minima[1].x[0]], eta=0.05, noise=ls.WhiteNoise(2.0), n_particles=200, max_steps=2000,
                      seed=3, basins=True, snapshot_every=100, snapshot_max_bytes=200 * 8 * 5)
    assert res.basin_steps.shape == (200, 2) and np.all(res.basin_steps.sum(1) == 2000)
    assert res.snapshots.shape == (5, 200, 1)  # the memory cap keeps 5 of the 21 snapshots
    np.testing.assert_array_equal(res.snapshots[0], w.minima[1].x[0])
    assert res.basin_fractions().sum() == pytest.approx(1.0)


def test_censoring_and_divergence_are_reported_separately():
    res = ls.simulate(ls.Polynomial([1, 0, -2, 0, 1]), [-1.0], eta=0.01, noise=ls.WhiteNoise(0.1),
                      exit=ls.Threshold(1.0), n_particles=10, max_steps=100, seed=0)
    assert res.n_censored == 10 and np.all(res.steps == 100)
    est = res.rate()
    assert est.n_escaped == 0 and est.rate == 0 and est.mean == np.inf and est.rate_ci[1] > 0
    with pytest.warns(ls.StabilityWarning):
        # Lyapunov exponent E log|1 − (1 + 2z)| = log 2 + E log|z| ≈ 0.058 > 0: every path overflows
        res = ls.simulate(ls.Quadratic(np.array([[1.0]])), [0.5], eta=1.0, leap=ls.LEAP(2.0),
                          n_particles=50, max_steps=100_000, seed=0)
    assert res.n_diverged == 50 and np.all(res.steps < 100_000)
    assert res.rate().n_diverged == 50 and res.rate().n_escaped == 0


def test_seed_normalisation():
    g = np.random.default_rng(5)
    assert isinstance(ls.normalize_seed(g), np.random.SeedSequence)
    a = ls.simulate(ls.Polynomial(), [-1.0], eta=0.01, noise=ls.WhiteNoise(1.0), n_particles=4, max_steps=10, seed=None)
    b = ls.simulate(ls.Polynomial(), [-1.0], eta=0.01, noise=ls.WhiteNoise(1.0), n_particles=4, max_steps=10,
                    seed=np.random.SeedSequence(a.seed_entropy))
    np.testing.assert_array_equal(a.positions, b.positions)
    with pytest.raises(ValueError, match="seed"):
        ls.normalize_seed(-1)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=0.0), "eta must be > 0"),
    (dict(eta=-1.0), "eta must be > 0"),
    (dict(eta=np.inf), "eta must be finite"),
    (dict(n_particles=0), "n_particles must be an integer >= 1"),
    (dict(max_steps=0), "max_steps must be an integer >= 1"),
    (dict(threads=0), "threads"),
    (dict(mode="ode"), "mode must be"),
    (dict(x0=[np.nan]), "x0 must be finite"),
    (dict(x0=[-1.0, 0.0]), r"x0 must have shape \(1,\)"),
    (dict(x0=[1.5]), "already satisfies the exit"),
    (dict(x0=[-0.5], exit=ls.Threshold(-0.9, direction=-1)), "no barrier"),
    (dict(noise=ls.MinibatchNoise(2)), "FiniteSum"),
    (dict(leap=ls.LEAP(0.1, variant="clipped"), mode="sde"), "clipped"),
])
def test_bad_input_raises_naming_the_argument(kwargs, match):
    base = dict(x0=[-1.0], eta=0.01, noise=ls.WhiteNoise(1.0), exit=ls.Threshold(1.0), n_particles=2,
                max_steps=10, seed=0)
    base.update(kwargs)
    x0 = base.pop("x0")
    with pytest.raises(ValueError, match=match):
        ls.simulate(ls.Polynomial([1, 0, -2, 0, 1]), x0, **base)


@pytest.mark.parametrize("make, match", [
    (lambda: ls.LEAP(-0.1), "sigma must be >= 0"),
    (lambda: ls.LEAP(0.1, mode="row"), "mode must be"),
    (lambda: ls.LEAP(0.1, variant="lognormal", relative=False), "relative"),
    (lambda: ls.HessianNoise(0.5), "batch_size must be >= 1"),
    (lambda: ls.MinibatchNoise(0), "batch_size must be an integer >= 1"),
    (lambda: ls.WhiteNoise(-1.0), "std must be >= 0"),
    (lambda: ls.WhiteNoise(np.nan), "std must be finite"),
    (lambda: ls.DoubleWell(barrier=-1.0), "barrier must be > 0"),
    (lambda: ls.Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]])), "symmetric"),
    (lambda: ls.StepLR(step_size=0), "step_size must be an integer >= 1"),
    (lambda: ls.Threshold(0.0, direction=2), "direction"),
    (lambda: ls.LeaveBall([0.0], -1.0), "radius must be > 0"),
])
def test_bad_parameters_raise_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_no_barrier_on_a_quadratic_and_leap_stability_warning():
    with pytest.raises(ValueError, match="no saddle"):
        ls.simulate(ls.Quadratic(np.eye(1)), [0.0], eta=0.1, exit=ls.Threshold(1.0), n_particles=1, max_steps=1,
                    seed=0)
    # h(η² + σ²) = 1.5·(1 + 0.64) = 2.46 ≥ 2η = 2 while ηh = 1.5 < 2: only LEAP's condition fails
    with pytest.warns(ls.StabilityWarning, match="mean-square"):
        ls.simulate(ls.Quadratic(np.array([[1.5]])), [0.1], eta=1.0, leap=ls.LEAP(0.8), n_particles=1,
                    max_steps=1, seed=0)


def test_per_particle_start_points_and_exit_at_the_saddle(double_well):
    """x0 of shape (N, d): particle i starts at x0[i] (a particle started in the right well exits at once
    if the exit is the saddle at 0 approached from the right... so start all left of it)."""
    starts = np.linspace(-1.5, -0.5, 40)[:, None]
    kw = dict(eta=0.01, noise=ls.WhiteNoise(0.5), n_particles=40, max_steps=5, seed=9)
    res = ls.simulate(double_well, starts, **kw)
    for i in (0, 17, 39):  # each matches the same particle run alone from its own start
        one = ls.simulate(double_well, starts[i], **{**kw, "n_particles": 40})
        assert res.positions[i, 0] == one.positions[i, 0]
    # an exit placed exactly at the saddle, or just before it (uphill), is a valid escape target
    ls.simulate(double_well, [-1.0], eta=0.01, exit=ls.Threshold(0.0), n_particles=2, max_steps=2, seed=0)
    ls.simulate(double_well, [-1.0], eta=0.01, exit=ls.Threshold(-0.05), n_particles=2, max_steps=2, seed=0)
    with pytest.raises(ValueError, match="n_particles"):
        ls.simulate(double_well, starts, eta=0.01, n_particles=10, max_steps=5, seed=0)
