"""The plug-in and the Numba simulator run the same perturbed dynamics: escape-time distributions agree.

Torch side: N particles = the N elements of one parameter tensor of a landscape module; each step
``loss.sum().backward()``, white noise ξ ~ N(0, std²) added to ``.grad``, then ``LEAP(SGD)``, whose
per-element perturbation is the simulator's per-coordinate LEAP.  Simulator side: ``leap_sde.simulate``
with the same landscape, η, noise, LEAP and exit rule.  The two samples are independent draws of the
same law, so (i) the two-sample KS test does not reject and (ii) the mean escape steps differ by less
than 4 combined standard errors.  The setups are chosen so that LEAP changes the mean by many standard
errors (checked too), i.e. the test would notice a wrong perturbation.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
from scipy import stats  # noqa: E402

import leap_sde as ls  # noqa: E402
import leap_sde.torch as lt  # noqa: E402


def _torch_escapes(module, *, eta, std, sigma, relative, value, coord, direction, max_steps, seed):
    """Escape steps of every particle (−1 = not escaped within max_steps)."""
    inner = torch.optim.SGD(module.parameters(), lr=eta)
    opt = lt.LEAP(inner, sigma=sigma, relative=relative, seed=seed) if sigma > 0 else inner
    gen = torch.Generator().manual_seed(seed + 1)
    x = module.x
    n = x.shape[0]
    steps = torch.full((n,), -1, dtype=torch.long)
    for k in range(1, max_steps + 1):
        opt.zero_grad()
        module().sum().backward()
        x.grad.add_(torch.randn(x.shape, generator=gen, dtype=x.dtype), alpha=std)  # ξ_k
        opt.step()
        pos = x.detach()[:, coord] if x.dim() == 2 else x.detach()
        new = (direction * (pos - value) >= 0) & (steps < 0)
        steps[new] = k
        if bool((steps >= 0).all()):
            break
    return steps.numpy()


def _compare(sim_steps, torch_steps, label):
    assert (torch_steps > 0).all(), f"{label}: torch particles censored"
    m1, m2 = sim_steps.mean(), torch_steps.mean()
    se = math.sqrt(sim_steps.var(ddof=1) / len(sim_steps) + torch_steps.var(ddof=1) / len(torch_steps))
    ks = stats.ks_2samp(sim_steps, torch_steps)
    assert abs(m1 - m2) < 4 * se, f"{label}: mean steps simulator {m1:.1f} vs torch {m2:.1f} (se {se:.1f})"
    assert ks.pvalue > 1e-3, f"{label}: KS p = {ks.pvalue:.2g}"
    return m1, m2, se


def test_sharp_flat_well_per_coordinate_leap():
    # 1-D: start in the sharp minimum (h = 4, ΔU = 0.5), exit once past the saddle (x ≤ −0.3).
    geo = dict(curv_flat=1.0, curv_sharp=4.0, barrier_flat=1.0, barrier_sharp=0.5, curv_saddle=2.0)
    land = ls.SharpFlatWell(**geo)
    x_sharp = float(land.minima[1].x[0])
    eta, std, sigma = 0.05, 2.5, 0.04  # ΔU / (η std²/2) = 3.2; σ/η = 0.8
    exit_ = ls.Threshold(value=-0.3, coord=0, direction=-1)
    N, max_steps = 2000, 20000  # mean ≈ 260 steps (≈ 970 without LEAP): no censoring (P < e^-70)
    sim = ls.simulate(land, [x_sharp], eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma),
                      exit=exit_, n_particles=N, max_steps=max_steps, seed=11)
    assert sim.n_escaped == N
    mod = lt.SharpFlatWell(**geo, n=N, x0=x_sharp)
    t = _torch_escapes(mod, eta=eta, std=std, sigma=sigma, relative=False, value=-0.3, coord=0, direction=-1,
                       max_steps=max_steps, seed=12)
    m_sim, m_torch, se = _compare(sim.steps.astype(float), t.astype(float), "SharpFlatWell")
    # the test has power: without LEAP the mean is many standard errors larger
    plain = ls.simulate(land, [x_sharp], eta=eta, noise=ls.WhiteNoise(std), exit=exit_, n_particles=N,
                        max_steps=max_steps, seed=13)
    assert plain.steps.mean() - m_sim > 8 * se


def test_entropic_well_relative_leap():
    # 2-D: start at (−1, 0), exit at x ≥ 0.5 (past the saddle); relative per-coordinate LEAP.
    kappa, c = 1.0, 2.0
    land = ls.EntropicWell(kappa, c)
    eta, std, sigma = 0.05, 2.6, 1.0  # ΔU = 1, η std²/2 = 0.17; ε = σ·η·z
    exit_ = ls.Threshold(value=0.5, coord=0, direction=1)
    N, max_steps = 1500, 20000
    sim = ls.simulate(land, [-1.0, 0.0], eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma, relative=True),
                      exit=exit_, n_particles=N, max_steps=max_steps, seed=21)
    assert sim.n_escaped == N
    mod = lt.EntropicWell(kappa, c, n=N, x0=(-1.0, 0.0))
    t = _torch_escapes(mod, eta=eta, std=std, sigma=sigma, relative=True, value=0.5, coord=0, direction=1,
                       max_steps=max_steps, seed=22)
    _, _, se = _compare(sim.steps.astype(float), t.astype(float), "EntropicWell")
    plain = ls.simulate(land, [-1.0, 0.0], eta=eta, noise=ls.WhiteNoise(std), exit=exit_, n_particles=N,
                        max_steps=max_steps, seed=23)
    assert abs(plain.steps.mean() - sim.steps.mean()) > 6 * se


def test_torch_landscapes_match_simulator_loss_and_gradient():
    geo = dict(curv_flat=1.5, curv_sharp=6.0, barrier_flat=0.7, barrier_sharp=0.4, curv_saddle=3.0)
    land = ls.SharpFlatWell(**geo)
    xs = np.linspace(-2.0, 2.0, 41)
    mod = lt.SharpFlatWell(**geo, n=len(xs))
    with torch.no_grad():
        mod.x.copy_(torch.as_tensor(xs))
    mod().sum().backward()
    np.testing.assert_allclose(mod().detach().numpy(), [land.loss([x]) for x in xs], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mod.x.grad.numpy(), [land.grad([x])[0] for x in xs], rtol=1e-12, atol=1e-12)
    assert mod.minima == pytest.approx((land.minima[0].x[0], land.minima[1].x[0]), rel=1e-12)
    ent = ls.EntropicWell(0.7, 1.3)
    pts = np.random.default_rng(0).normal(size=(30, 2))
    em = lt.EntropicWell(0.7, 1.3, n=30)
    with torch.no_grad():
        em.x.copy_(torch.as_tensor(pts))
    em().sum().backward()
    np.testing.assert_allclose(em().detach().numpy(), [ent.loss(p) for p in pts], rtol=1e-12)
    np.testing.assert_allclose(em.x.grad.numpy(), np.array([ent.grad(p) for p in pts]), rtol=1e-12, atol=1e-12)
