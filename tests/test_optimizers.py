"""Optimizers in the simulator: torch.optim's rules step for step, plain SGD unchanged, momentum's exact
stationary variance with and without LEAP."""
import warnings

import numpy as np
import pytest

import leap_sde as ls
import leap_sde.theory as th
from leap_sde import _rng

torch = pytest.importorskip("torch")

OPTIMIZERS = [
    (ls.SGD(momentum=0.9), lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9)),
    (ls.SGD(momentum=0.9, nesterov=True), lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True)),
    (ls.SGD(momentum=0.5, dampening=0.3, weight_decay=0.01),
     lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.5, dampening=0.3, weight_decay=0.01)),
    (ls.Adam(), lambda p, lr: torch.optim.Adam([p], lr=lr)),
    (ls.Adam(betas=(0.8, 0.99), weight_decay=0.01),
     lambda p, lr: torch.optim.Adam([p], lr=lr, betas=(0.8, 0.99), weight_decay=0.01)),
    (ls.AdamW(weight_decay=0.05), lambda p, lr: torch.optim.AdamW([p], lr=lr, weight_decay=0.05)),
]
LANDSCAPES = [
    (ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), [-1.0]),
    (ls.EntropicWell(1.0, 0.5), [-1.0, 0.2]),
    (ls.Quadratic(np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]]), center=[0.1, 0.0, -0.2]),
     [0.5, -0.3, 0.2]),
]


@pytest.mark.parametrize("opt, make_torch", OPTIMIZERS, ids=lambda o: getattr(o, "key", ""))
@pytest.mark.parametrize("land, x0", LANDSCAPES, ids=["poly-1d", "entropic-2d", "quadratic-3d"])
def test_simulator_equals_torch_optimizer_with_leap_step_for_step(opt, make_torch, land, x0):
    """Injected noise: the particle's own normals (per step: d gradient-noise normals, then d LEAP normals)
    drive a float64 torch.optim optimizer, whose step is rescaled per element by (η_k + ε)/η_k — the rule
    of leap_sde.torch.LEAP (θ ← θ_old + (1 + ε/η)(θ_new − θ_old)); the positions agree to rounding."""
    eta, std, sigma, n_steps, seed, n = 0.01, 2.0, 0.004, 200, 3, 4
    sched = ls.Warmup(ls.CosineAnnealingLR(T_max=150, eta_min=0.002), warmup_steps=20)
    d = land.dim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ls.StabilityWarning)
        res = ls.simulate(land, x0, eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma), schedule=sched,
                          optimizer=opt, n_particles=n, max_steps=n_steps, seed=seed, require_barrier=False)
    etas = sched.values(eta, n_steps)
    words = _rng.particle_seeds(ls.normalize_seed(seed), n)
    for i in range(n):
        z = np.empty(2 * d * n_steps)
        _rng.fill_normals(words[i], z)
        z = z.reshape(n_steps, 2, d)
        p = torch.tensor(np.asarray(x0, dtype=np.float64), requires_grad=True)
        tor = make_torch(p, eta)
        for k in range(n_steps):
            for group in tor.param_groups:
                group["lr"] = float(etas[k])
            g = land.grad(p.detach().numpy()) + std * z[k, 0]
            p.grad = torch.tensor(g)
            old = p.detach().clone()
            tor.step()
            with torch.no_grad():
                p.copy_(old + (1.0 + torch.tensor(sigma * z[k, 1] / etas[k])) * (p - old))
        np.testing.assert_allclose(res.positions[i], p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_default_optimizer_is_the_plain_update():
    land = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
    kw = dict(eta=0.01, noise=ls.WhiteNoise(4.0), leap=ls.LEAP(0.005), exit=ls.Threshold(0.5), n_particles=64,
              max_steps=3000, seed=5)
    a = ls.simulate(land, [-1.0], **kw)
    b = ls.simulate(land, [-1.0], optimizer=ls.SGD(), **kw)
    c = ls.simulate(land, [-1.0], optimizer=ls.SGD(momentum=0.0, dampening=0.5), **kw)  # dampening unused
    for r in (b, c):
        assert np.array_equal(a.steps, r.steps)
        np.testing.assert_array_equal(a.positions, r.positions)


def test_momentum_and_adam_are_discrete_only_and_validated():
    land = ls.Quadratic(1.0)
    with pytest.raises(ValueError, match="optimizer.*SDE"):
        ls.simulate(land, [0.0], eta=0.1, mode="sde", optimizer=ls.SGD(momentum=0.9), n_particles=2,
                    max_steps=2, seed=0)
    with pytest.raises(ValueError, match="momentum must be in"):
        ls.SGD(momentum=1.0)
    with pytest.raises(ValueError, match="nesterov"):
        ls.SGD(nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        ls.Adam(betas=(0.9,))
    with pytest.raises(TypeError, match="optimizer"):
        ls.simulate(land, [0.0], eta=0.1, optimizer="adam", n_particles=2, max_steps=2, seed=0)


@pytest.mark.parametrize("beta", [0.5, 0.9])
@pytest.mark.parametrize("sigma", [0.0, 0.02])
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_stationary_variance_is_exact(beta, sigma, nesterov):
    """Var θ after mixing equals the exact second moment of the random affine recursion (theory.momentum);
    seed 11, N = 20 000 particles, tolerance 3 SE with SE = std(θ²)/√N (2000 steps: transient < 1e-40)."""
    h, eta, s, n, steps, seed = 1.0, 0.05, 1.0, 20_000, 2000, 11
    x2, _, _ = th.momentum_stationary_moments(h, eta, beta, s * s, sigma, nesterov=nesterov)
    res = ls.simulate(ls.Quadratic(h), [0.0], eta=eta, noise=ls.WhiteNoise(s), leap=ls.LEAP(sigma) if sigma else None,
                      optimizer=ls.SGD(momentum=beta, nesterov=nesterov), exit=ls.NoExit(), n_particles=n,
                      max_steps=steps, seed=seed)
    sq = res.positions[:, 0] ** 2
    assert abs(sq.mean() - x2) <= 3 * sq.std() / np.sqrt(n), (sq.mean(), x2)


def test_momentum_theory_reduces_to_plain_sgd_and_detects_instability():
    for sigma in (0.0, 0.05):
        assert th.momentum_stationary_moments(2.0, 0.1, 0.0, 1.0, sigma)[0] == pytest.approx(
            th.leap_stationary_variance(2.0, 0.1, sigma, 1.0), rel=1e-12)
    # heavy ball without noise: stable iff η h < 2(1 + μ)
    eta, mu = 0.1, 0.5
    h_max = th.heavy_ball_stability_threshold(eta, mu)
    assert th.momentum_mean_square_radius(0.99 * h_max, eta, mu) < 1 < th.momentum_mean_square_radius(1.01 * h_max, eta, mu)
    with pytest.raises(ValueError, match="diverge"):
        th.momentum_stationary_moments(1.01 * h_max, eta, mu, 1.0)


def test_momentum_almost_sure_stability_follows_the_lyapunov_exponent():
    """GD + heavy ball (μ = 0.5, ηh = 1) + LEAP: at σ = 1 the second moments diverge (mean-square radius > 1) but
    the Lyapunov exponent is negative, so the iterates still converge; at σ = 1.5 it is positive and every
    particle leaves.  Exponent: independent Monte Carlo of the 2 x 2 products (seed 0, 10⁵ steps, 3 SE margin);
    simulation: seed 1, 500 particles, 2000 steps."""
    h, eta, mu = 1.0, 1.0, 0.5
    lam0, _ = th.momentum_lyapunov_exponent(h, eta, mu, 0.0)
    M0 = th.momentum_transfer(h, eta, mu)[0]
    assert lam0 == pytest.approx(np.log(max(abs(np.linalg.eigvals(M0)))), rel=1e-12)
    for sigma, leaves in ((1.0, False), (1.5, True)):
        lam, se = th.momentum_lyapunov_exponent(h, eta, mu, sigma, n_steps=100_000)
        assert (lam - 3 * se > 0) if leaves else (lam + 3 * se < 0), (sigma, lam, se)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ls.StabilityWarning)
            res = ls.simulate(ls.Quadratic(h), [0.5], eta=eta, leap=ls.LEAP(sigma), optimizer=ls.SGD(momentum=mu),
                              exit=ls.LeaveBall([0.0], 1e6), n_particles=500, max_steps=2000, seed=1)
        if leaves:
            assert res.n_escaped == 500
        else:
            assert res.n_escaped == 0 and np.max(np.abs(res.positions)) < 1e-6
    assert th.momentum_mean_square_radius(h, eta, mu, 1.0) > 1  # the mean-square reading would call σ = 1 unstable
