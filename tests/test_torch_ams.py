"""The rare-event engine through the plug-in (``leap_sde.torch.ams_escape``) against the simulator on the same
landscape: the torch SharpFlatWell driven by SGD (± momentum, ± LEAP) with white gradient noise drawn from each
replica's stream is the simulator's discrete chain ``x' = x − η̃(U'(x) + std·z)`` exactly, so the two must agree
within their standard errors (no model error)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import leap_sde as ls  # noqa: E402
import leap_sde.torch as lt  # noqa: E402

ETA, D = 0.05, 0.25
STD = math.sqrt(2 * D / ETA)


def _problem(sigma=0.0, momentum=0.0):
    """Escape from the sharp minimum (x = x_m > 0) to the saddle at 0: score −x, exit −x ≥ 0 (ΔU/D = 4)."""
    m = lt.SharpFlatWell(curv_sharp=4.0, n=1)
    xm = m.xm_sharp
    with torch.no_grad():
        m.x[:] = xm

    def loss_fn(model, z):
        return model().sum() + STD * z * model.x.sum()

    def sample(gen):
        return torch.randn((), generator=gen, dtype=torch.float64)

    def factory(ps):
        inner = torch.optim.SGD(ps, lr=ETA, momentum=momentum)
        return lt.LEAP(inner, sigma=sigma, seed=0) if sigma > 0 else inner

    kw = dict(optimizer_factory=factory, score=lambda mod: float(-mod.x[0]), exit_level=0.0)
    return m, loss_fn, sample, kw, xm


def _simulator_brute_force(sigma, momentum, n, seed):
    sim_kw = dict(eta=ETA, noise=ls.WhiteNoise(STD), leap=ls.LEAP(sigma) if sigma > 0 else None,
                  optimizer=ls.SGD(momentum=momentum), exit=ls.Threshold(0.0, direction=-1))
    xm = lt.SharpFlatWell(curv_sharp=4.0).xm_sharp
    b = ls.simulate(ls.SharpFlatWell(curv_sharp=4.0), [xm], n_particles=n, max_steps=10**7, seed=seed, **sim_kw)
    assert b.n_escaped == n
    return float(b.steps.mean()), float(b.steps.std(ddof=1) / math.sqrt(n))


def test_ams_escape_is_reproducible_and_leaves_the_model_at_theta0():
    m, loss_fn, sample, kw, xm = _problem(sigma=0.02, momentum=0.5)
    levels = (-0.95 * xm, -0.9 * xm)
    a = lt.ams_escape(m, loss_fn, sample, levels=levels, n_replicas=8, n_runs=2, loops=3, seed=3, **kw)
    b = lt.ams_escape(m, loss_fn, sample, levels=levels, n_replicas=8, n_runs=2, loops=3, seed=3, **kw)
    assert a.mean_steps == b.mean_steps and a.probability == b.probability and a.work_steps == b.work_steps
    assert 0 < a.probability < 1 and a.mean_steps_ci[0] < a.mean_steps < a.mean_steps_ci[1]
    assert float(m.x.detach()[0]) == xm  # the model is back at θ₀
    c = lt.ams_escape(m, loss_fn, sample, levels=levels, n_replicas=8, n_runs=2, loops=3, seed=4, **kw)
    assert c.mean_steps != a.mean_steps


def test_replica_clones_carry_the_optimizer_state():
    """A momentum replica encoded after k steps and decoded into a fresh optimizer continues the same path as
    the uninterrupted run (parameters, momentum buffer and stream all travel with the clone)."""
    from leap_sde.torch._ams import _setup

    m, loss_fn, sample, kw, xm = _problem(sigma=0.02, momentum=0.9)
    eng, x0 = _setup(m, loss_fn, sample, kw["optimizer_factory"], kw["score"], kw["exit_level"])
    key = 12345
    eng.load(x0)
    eng.codec.decode(np.zeros(eng.codec.size))
    straight = [eng.step(key, k) for k in range(20)]
    eng.load(x0)
    eng.codec.decode(np.zeros(eng.codec.size))
    first = [eng.step(key, k) for k in range(10)]
    x, o = eng.flat(), np.empty(eng.codec.size)
    eng.codec.encode(o)
    assert o[0] == 1.0 and o[1] != 0.0  # a state exists and holds the momentum buffer
    eng.load(x0)
    eng.codec.decode(np.zeros(eng.codec.size))
    eng.step(999, 0)  # disturb the live optimizer
    eng.load(x)
    eng.codec.decode(o)
    assert first + [eng.step(key, k) for k in range(10, 20)] == straight


def test_ams_escape_refuses_bad_arguments():
    m, loss_fn, sample, kw, xm = _problem()
    with pytest.raises(ValueError, match="levels"):
        lt.ams_escape(m, loss_fn, sample, levels=(-0.5 * xm, -0.9 * xm), seed=0, **kw)
    with pytest.raises(ValueError, match="n_replicas"):
        lt.ams_escape(m, loss_fn, sample, levels=(-0.95 * xm, -0.9 * xm), n_replicas=1, seed=0, **kw)
    bad = dict(kw, optimizer_factory=lambda ps: lt.LEAP(torch.optim.SGD(ps, lr=ETA), sigma=0.1,
                                                        generator=torch.Generator()))
    with pytest.raises(ValueError, match="seed="):
        lt.ams_escape(m, loss_fn, sample, levels=(-0.95 * xm, -0.9 * xm), seed=0, **bad)
    with pytest.raises(TypeError, match="score"):
        lt.ams_escape(m, loss_fn, sample, levels=(-0.95 * xm, -0.9 * xm), seed=0, **dict(kw, score=1.0))


@pytest.mark.slow
@pytest.mark.parametrize("sigma,momentum,seed", [(0.02, 0.0, 1), (0.02, 0.5, 2)])
def test_ams_escape_matches_the_simulator_brute_force(sigma, momentum, seed):
    """ΔU/D = 4 from the sharp minimum of SharpFlatWell(curv_sharp=4): torch AMS (seed 1/2, 8 runs x 40
    replicas, SE = jackknife over runs) against the simulator's brute force on the same chain (4 000 particles,
    seed 8, SE = std/√n): |difference| ≤ 3 combined SE.  The same check against the simulator's own AMS."""
    m, loss_fn, sample, kw, xm = _problem(sigma, momentum)
    a = lt.ams_escape(m, loss_fn, sample, levels=(-0.95 * xm, -0.9 * xm), n_replicas=40, n_runs=8, loops=8,
                      seed=seed, **kw)
    mean, se = _simulator_brute_force(sigma, momentum, 4000, 8)
    assert abs(a.mean_steps - mean) <= 3 * math.hypot(a.mean_steps_se, se), (a.mean_steps, a.mean_steps_se, mean)
    s = ls.ams(ls.SharpFlatWell(curv_sharp=4.0), [xm], eta=ETA, noise=ls.WhiteNoise(STD),
               leap=ls.LEAP(sigma), optimizer=ls.SGD(momentum=momentum), exit=ls.Threshold(0.0, direction=-1),
               n_replicas=200, n_runs=10, seed=7)
    assert abs(a.mean_steps - s.mean_steps) <= 3 * math.hypot(a.mean_steps_se, s.mean_steps_se)


@pytest.mark.slow
def test_brute_force_escape_matches_the_simulator():
    """The replica engine itself (no splitting): 150 torch replicas (seed 5) against 4 000 simulator particles
    (seed 8), same chain, within 3 combined SE of the mean."""
    m, loss_fn, sample, kw, xm = _problem(0.02, 0.0)
    bf = lt.brute_force_escape(m, loss_fn, sample, n_replicas=150, max_steps=10**5, seed=5, **kw)
    assert bf.escaped.all()
    mean, se = _simulator_brute_force(0.02, 0.0, 4000, 8)
    t = bf.steps.astype(float)
    assert abs(t.mean() - mean) <= 3 * math.hypot(t.std(ddof=1) / math.sqrt(t.size), se), (t.mean(), mean)
