"""Code paths without a test before 0.2: the general d-D kernel with Hessian noise, a CustomLandscape with a
Hessian, the SDE mode with log-normal LEAP and with minibatch noise, and every learning-rate schedule against
its closed form (written out here, no torch).

Statistical checks state seed, sample size and tolerance together; a covariance entry ``S_ab`` estimated from
``N`` i.i.d. Gaussian samples has standard error ``sqrt((S_aa S_bb + S_ab²)/N)``.
"""
import math

import numba
import numpy as np
import pytest
from scipy import linalg

import leap_sde as ls


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def _abs_floor(H, floor):
    """``V diag(max(|λ|, floor)) Vᵀ`` (docs/theory.md §4.3), by eigendecomposition here."""
    lam, V = np.linalg.eigh(H)
    return (V * np.maximum(np.abs(lam), floor)) @ V.T


def _cov_se(S, n):
    return np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n)


def _assert_step_moments(step, mean, S, n, k=3.0):
    """Sample mean and covariance of one-step displacements within k standard errors; the covariance
    entries' standard errors are estimated from the sample (std of the centred products / √N), which also
    holds for the non-Gaussian steps of a random learning rate."""
    se_mean = np.sqrt(np.diag(S) / n)
    assert np.all(np.abs(step.mean(0) - mean) < k * se_mean), (step.mean(0), mean)
    c = step - step.mean(0)
    prods = c[:, :, None] * c[:, None, :]
    dev = np.abs(prods.mean(0) - S)
    assert np.all(dev < k * prods.std(0) / np.sqrt(n)), (prods.mean(0), S)


# ------------------------------------------------------------------------------------- Hessian noise, d > 1
H3 = _rotation(3, 7) @ np.diag([3.0, 1.0, 0.02]) @ _rotation(3, 7).T  # one eigenvalue below the floor


def test_hessian_noise_one_step_covariance_in_3d():
    """ξ ~ N(0, |H|_f / B) with the floor applied to the small eigenvalue: Δθ = −η(H(x0 − c) + ξ) has mean
    −ηH(x0 − c) and covariance η²|H|_f/B.  Seed 21, N = 40 000, tolerance 3 SE per entry."""
    B, floor, eta, n = 4.0, 0.3, 0.1, 40_000
    c, x0 = np.array([0.5, -0.2, 0.1]), np.array([1.0, 0.3, -0.4])
    res = ls.simulate(ls.Quadratic(H3, center=c), x0, eta=eta, noise=ls.HessianNoise(B, floor=floor),
                      n_particles=n, max_steps=1, seed=21)
    S = eta**2 * _abs_floor(H3, floor) / B
    _assert_step_moments(res.positions - x0, -eta * H3 @ (x0 - c), S, n)


def test_hessian_noise_stationary_covariance_in_3d():
    """Stationary covariance of θ' = (I − ηH)θ − ηξ, Cov ξ = |H|_f/B, on L = θᵀHθ/2: the discrete Lyapunov
    equation C = K C Kᵀ + η²|H|_f/B, K = I − ηH (docs/theory.md §2.2), solved by SciPy.  Seed 22,
    N = 20 000 particles after 400 steps (the slowest mode has contracted by (1 − 0.1)^800); tolerance 4 SE
    per entry (six entries compared)."""
    H = _rotation(3, 3) @ np.diag([3.0, 1.0, 0.5]) @ _rotation(3, 3).T
    B, floor, eta, n = 2.0, 0.6, 0.2, 20_000
    res = ls.simulate(ls.Quadratic(H), np.zeros(3), eta=eta, noise=ls.HessianNoise(B, floor=floor),
                      n_particles=n, max_steps=400, seed=22)
    K = np.eye(3) - eta * H
    C = linalg.solve_discrete_lyapunov(K, eta**2 * _abs_floor(H, floor) / B)
    emp = np.cov(res.positions.T, bias=True)
    # the stationary law is Gaussian, so the i.i.d. Gaussian standard error of a covariance applies
    assert np.all(np.abs(emp - C) < 4 * _cov_se(C, n)), (emp, C)
    assert np.all(np.abs(res.positions.mean(0)) < 4 * np.sqrt(np.diag(C) / n))


# ------------------------------------------------------------------------------------- CustomLandscape + Hessian
@numba.njit
def _quad_grad(x, p, out):  # L = ½ (x − c)ᵀ H (x − c), p = [H (row-major, 9), c (3)]
    for a in range(3):
        v = 0.0
        for b in range(3):
            v += p[3 * a + b] * (x[b] - p[9 + b])
        out[a] = v


@numba.njit
def _quad_hess(x, p, out):
    for a in range(3):
        for b in range(3):
            out[a, b] = p[3 * a + b]


def test_custom_landscape_with_hessian_drives_hessian_noise():
    """A CustomLandscape with hess_fn gives the same paths as the built-in Quadratic under HessianNoise
    (both run the general kernel on the same streams), and its one-step covariance is η²|H|_f/B.
    Seed 23, N = 20 000, tolerance 3 SE per entry."""
    c, x0 = np.array([0.5, -0.2, 0.1]), np.array([1.0, 0.3, -0.4])
    B, floor, eta, n = 4.0, 0.3, 0.1, 20_000
    custom = ls.CustomLandscape(_quad_grad, dim=3, params=np.concatenate([H3.ravel(), c]), hess_fn=_quad_hess)
    np.testing.assert_array_equal(custom.hessian(x0), H3)
    kw = dict(eta=eta, noise=ls.HessianNoise(B, floor=floor), n_particles=n, max_steps=1, seed=23)
    a = ls.simulate(custom, x0, **kw)
    b = ls.simulate(ls.Quadratic(H3, center=c), x0, **kw)
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-13)
    _assert_step_moments(a.positions - x0, -eta * H3 @ (x0 - c), eta**2 * _abs_floor(H3, floor) / B, n)
    # several steps: the Hessian is evaluated along the path (here constant, so still pathwise equal)
    a = ls.simulate(custom, x0, **{**kw, "n_particles": 50, "max_steps": 30})
    b = ls.simulate(ls.Quadratic(H3, center=c), x0, **{**kw, "n_particles": 50, "max_steps": 30})
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-12)


def test_custom_landscape_without_hessian_refuses_hessian_noise():
    custom = ls.CustomLandscape(_quad_grad, dim=3, params=np.concatenate([H3.ravel(), np.zeros(3)]))
    with pytest.raises(ValueError, match="hess_fn"):
        ls.simulate(custom, np.zeros(3), eta=0.1, noise=ls.HessianNoise(4.0), n_particles=2, max_steps=1, seed=0)


# ------------------------------------------------------------------------------------- SDE mode
@pytest.mark.parametrize("leap_mode", ["per-coordinate", "scalar"])
@pytest.mark.parametrize("mode", ["sde", "discrete"])
def test_lognormal_leap_one_step_covariance(mode, leap_mode):
    """Log-normal LEAP η̃ = η·exp(σz − σ²/2): E η̃ = η, Var η̃ = v = η²(e^{σ²} − 1).  Both the discrete step
    and the SDE model have mean −η∇L and covariance η²C + v·Diag(ggᵀ + C) (per-coordinate) or
    (η² + v)C + v·ggᵀ (scalar) (docs/theory.md §8.2 with σ² → Var η̃).  Seed 24, N = 40 000, white noise
    s = 0.3, σ = 0.8 (a Gaussian step of the same σ·η would have v 30 % smaller), tolerance 3 SE per entry."""
    H = np.array([[2.0, 0.6], [0.6, 0.5]])
    x0, eta, s, sigma, n = np.array([0.8, -1.2]), 0.2, 0.3, 0.8, 40_000
    res = ls.simulate(ls.Quadratic(H), x0, eta=eta, noise=ls.WhiteNoise(s), mode=mode,
                      leap=ls.LEAP(sigma, mode=leap_mode, variant="lognormal"), n_particles=n, max_steps=1, seed=24)
    g, C, v = H @ x0, s**2 * np.eye(2), eta**2 * math.expm1(sigma**2)
    if leap_mode == "per-coordinate":
        S = eta**2 * C + v * np.diag(g**2 + np.diag(C))
    else:
        S = (eta**2 + v) * C + v * np.outer(g, g)
    step = res.positions - x0
    _assert_step_moments(step, -eta * g, S, n)
    if mode == "sde":  # an Euler–Maruyama step is Gaussian: no excess kurtosis (SE ≈ √(24/N))
        z = (step - step.mean(0)) @ np.linalg.inv(linalg.sqrtm(S)).T
        assert np.all(np.abs((z**4).mean(0) - 3) < 4 * math.sqrt(96 / n))


@pytest.mark.parametrize("sigma", [0.0, 0.05])
def test_sde_mode_with_minibatch_noise(sigma):
    """SDE mode with MinibatchNoise integrates the Gaussian model with C(θ) = per-sample gradient covariance
    / B (docs/theory.md §0.2): one step has mean −η∇L(θ) and covariance η²C (+ per-coordinate LEAP's
    σ²·Diag(ggᵀ + C)).  C is computed here from the samples' own gradients.  Seed 25, N = 40 000, tolerance
    3 SE per entry."""
    f = ls.FiniteSum.gaussian(ls.EntropicWell(kappa=1.0, c=0.5), 30, 0.4, seed=5)
    x0, eta, B, n = np.array([-0.7, 0.3]), 0.05, 3, 40_000
    G = np.array([f.base.grad(x0 - a) for a in f.offsets])  # per-sample gradients ℓ_i(θ) = L(θ − a_i)
    g = G.mean(0)
    C = np.cov(G.T, bias=True) / B
    np.testing.assert_allclose(f.grad(x0), g, rtol=1e-12, atol=1e-12)
    res = ls.simulate(f, x0, eta=eta, noise=ls.MinibatchNoise(B), mode="sde", leap=ls.LEAP(sigma),
                      n_particles=n, max_steps=1, seed=25)
    S = eta**2 * C + sigma**2 * np.diag(g**2 + np.diag(C))
    _assert_step_moments(res.positions - x0, -eta * g, S, n)


# ------------------------------------------------------------------------------------- schedules, closed forms
def _cosine(eta, eta_min, t, T):
    return eta_min + (eta - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


def _warm_restarts(eta, n, T_0, T_mult, eta_min):
    """torch's stepping rule: T_cur counts steps in the current period, which grows by T_mult at a restart."""
    out, t_cur, t_i = [], 0, T_0
    for _ in range(n):
        out.append(_cosine(eta, eta_min, t_cur, t_i))
        t_cur += 1
        if t_cur >= t_i:
            t_cur -= t_i
            t_i *= T_mult
    return out


def _cyclic(eta, k, max_lr, up, down, mode, gamma):
    length = up + down
    pos, cycle = k % length, k // length + 1
    scale = pos / up if pos < up else 1 - (pos - up) / down
    amp = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma**k}[mode]
    return eta + (max_lr - eta) * scale * amp


CLOSED_FORMS = [
    (ls.Constant(), lambda eta, k: eta),
    (ls.StepLR(step_size=7, gamma=0.5), lambda eta, k: eta * 0.5 ** (k // 7)),
    (ls.ExponentialLR(gamma=0.97), lambda eta, k: eta * 0.97**k),
    (ls.CosineAnnealingLR(T_max=40, eta_min=0.01), lambda eta, k: _cosine(eta, 0.01, k, 40)),
    (ls.CosineAnnealingLR(T_max=13), lambda eta, k: _cosine(eta, 0.0, k, 13)),
    (ls.CyclicLR(max_lr=1.0, step_size_up=5, step_size_down=8), lambda eta, k: _cyclic(eta, k, 1.0, 5, 8, "triangular", 1)),
    (ls.CyclicLR(max_lr=0.5, step_size_up=4, mode="triangular2"), lambda eta, k: _cyclic(eta, k, 0.5, 4, 4, "triangular2", 1)),
    (ls.CyclicLR(max_lr=0.5, step_size_up=6, step_size_down=3, mode="exp_range", gamma=0.99),
     lambda eta, k: _cyclic(eta, k, 0.5, 6, 3, "exp_range", 0.99)),
    (ls.InverseTimeLR(gamma=0.1, power=0.75), lambda eta, k: eta * (1 + 0.1 * k) ** -0.75),
    (ls.Warmup(ls.StepLR(step_size=10, gamma=0.1), warmup_steps=6, start_factor=0.25),
     lambda eta, k: eta * (0.25 + 0.75 * k / 6) if k < 6 else eta * 0.1 ** ((k - 6) // 10)),
    (ls.Warmup(ls.Constant(), warmup_steps=3), lambda eta, k: eta * (1 / 3 + (2 / 3) * k / 3) if k < 3 else eta),
]


@pytest.mark.parametrize("sched, form", CLOSED_FORMS, ids=lambda v: type(v).__name__ if isinstance(v, ls.Schedule) else "")
def test_schedule_matches_its_closed_form(sched, form):
    eta, n = 0.1, 300
    expected = np.array([form(eta, k) for k in range(n)])
    np.testing.assert_allclose(sched.values(eta, n), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("T_0, T_mult, eta_min", [(10, 1, 0.0), (3, 2, 0.01), (5, 3, 0.0), (1, 2, 0.0)])
def test_warm_restarts_match_torch_stepping_rule(T_0, T_mult, eta_min):
    """CosineAnnealingWarmRestarts is computed in closed form (a logarithm finds the period); the reference
    steps T_cur as torch does, over many restarts (T_0 = 1, T_mult = 2: periods 1, 2, 4, …, 512)."""
    eta, n = 0.1, 1500
    got = ls.CosineAnnealingWarmRestarts(T_0=T_0, T_mult=T_mult, eta_min=eta_min).values(eta, n)
    np.testing.assert_allclose(got, _warm_restarts(eta, n, T_0, T_mult, eta_min), rtol=1e-12, atol=1e-15)


def test_simulated_time_is_the_sum_of_the_scheduled_rates():
    """t = Σ_{j<k} η_j (docs/theory.md §0.2): a particle resting at the minimum of a quadratic has, after k
    steps, the partial sum of the schedule as its time."""
    sched = ls.Warmup(ls.CosineAnnealingLR(T_max=50, eta_min=0.001), warmup_steps=5)
    eta, k = 0.05, 37
    res = ls.simulate(ls.Quadratic(np.array([[1.0]])), [0.0], eta=eta, schedule=sched, n_particles=1,
                      max_steps=k, seed=0)
    expected = sum(eta * (1 / 3 + (2 / 3) * j / 5) if j < 5 else _cosine(eta, 0.001, j - 5, 50) for j in range(k))
    assert res.times[0] == pytest.approx(expected, rel=1e-12)
