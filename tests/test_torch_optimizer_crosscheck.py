"""The plug-in and the simulator agree under momentum and Adam: torch ``LEAP(SGD(momentum=0.9))`` and
``LEAP(Adam)`` on the torch SharpFlatWell (N particles = N elements of one tensor; both optimizers act
element-wise, so the elements are independent particles) against ``simulate(..., optimizer=...)``.

Independent samples of the same law: mean escape steps within 4 combined standard errors and a two-sample
KS test that does not reject (p > 1e-3); LEAP moves the mean by more than 4 standard errors in each setup
(checked), so the comparison has power against a wrong composition of LEAP and the optimizer."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
from scipy import stats  # noqa: E402

import leap_sde as ls  # noqa: E402
import leap_sde.torch as lt  # noqa: E402

GEO = dict(curv_flat=1.0, curv_sharp=4.0, barrier_flat=1.0, barrier_sharp=0.5, curv_saddle=2.0)
CASES = [  # (simulator optimizer, torch factory, eta, sigma): noise std 2.5, exit past the saddle (x <= -0.3)
    (ls.SGD(momentum=0.9), lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9), 0.005, 0.006),
    (ls.Adam(), lambda ps, lr: torch.optim.Adam(ps, lr=lr), 0.2, 0.25),
]


@pytest.mark.parametrize("opt, make_torch, eta, sigma", CASES, ids=["momentum-0.9", "adam"])
def test_escape_times_agree_with_the_plug_in(opt, make_torch, eta, sigma):
    land = ls.SharpFlatWell(**GEO)
    x_sharp, std, N, max_steps = float(land.minima[1].x[0]), 2.5, 1000, 20_000
    exit_ = ls.Threshold(-0.3, direction=-1)
    sim = ls.simulate(land, [x_sharp], eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma), optimizer=opt,
                      exit=exit_, n_particles=N, max_steps=max_steps, seed=31)
    plain = ls.simulate(land, [x_sharp], eta=eta, noise=ls.WhiteNoise(std), optimizer=opt, exit=exit_,
                        n_particles=N, max_steps=max_steps, seed=32)
    assert sim.n_escaped == N and plain.n_escaped == N
    mod = lt.SharpFlatWell(**GEO, n=N, x0=x_sharp)
    leap = lt.LEAP(make_torch(mod.parameters(), eta), sigma=sigma, seed=33)
    gen = torch.Generator().manual_seed(34)
    steps = torch.full((N,), -1, dtype=torch.long)
    for k in range(1, max_steps + 1):
        leap.zero_grad()
        mod().sum().backward()
        mod.x.grad.add_(torch.randn(mod.x.shape, generator=gen, dtype=mod.x.dtype), alpha=std)
        leap.step()
        new = (mod.x.detach() <= -0.3) & (steps < 0)
        steps[new] = k
        if bool((steps >= 0).all()):
            break
    t = steps.numpy().astype(float)
    assert (t > 0).all()
    s = sim.steps.astype(float)
    se = math.sqrt(s.var(ddof=1) / N + t.var(ddof=1) / N)
    assert abs(s.mean() - t.mean()) < 4 * se, (s.mean(), t.mean(), se)
    assert stats.ks_2samp(s, t).pvalue > 1e-3
    assert abs(plain.steps.mean() - s.mean()) > 4 * se  # power: LEAP changes the law measurably
