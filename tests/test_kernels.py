"""The kernel generator: single component definitions, no silent defaults, drivers that agree bit for bit,
kernels reused across processes."""
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import leap_sde as ls
from leap_sde import _kernels
from leap_sde.dynamics import abs_floor_root_2x2
from leap_sde.schedules import CyclicParams, cyclic_eta


# ------------------------------------------------------------------------------------ no silent defaults
@dataclass(frozen=True)
class _UnknownNoise(ls.dynamics.Noise):
    """A noise model that defines no kernel code."""


class _UnknownLandscape(ls.Landscape):
    dim = 1

    def lower(self):
        return ()


def test_a_component_without_kernel_code_is_refused_before_running():
    land = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="no kernel code"):
        ls.simulate(land, [-1.0], eta=0.01, noise=_UnknownNoise(), n_particles=2, max_steps=2, seed=0)
    with pytest.raises(TypeError, match="declares no kernel definition"):
        ls.simulate(_UnknownLandscape(), [-1.0], eta=0.01, n_particles=2, max_steps=2, seed=0)


@dataclass(frozen=True)
class _BadCyclic(ls.CyclicLR):
    """CyclicLR whose lowered mode code is not one the kernel knows."""

    def lower(self):
        return super().lower()._replace(mode=7)


def test_an_impossible_branch_inside_a_kernel_marks_particles_diverged():
    assert np.isnan(cyclic_eta(CyclicParams(0.1, 10.0, 10.0, 7, 1.0), 0.01, 3))
    res = ls.simulate(ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), [-1.0], eta=0.01, noise=ls.WhiteNoise(1.0),
                      schedule=_BadCyclic(0.1, 10), n_particles=8, max_steps=50, seed=0)
    assert res.n_diverged == 8 and res.n_escaped == 0


# ------------------------------------------------------------------------------ drivers agree bit for bit
def _agree(land, x0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ls.StabilityWarning)
        a = ls.simulate(land, x0, **kw)
        b = ls.simulate(land, x0, _general_kernel=True, **kw)
    assert np.array_equal(a.steps, b.steps) and np.array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.positions, b.positions)
    if a.basin_steps is not None:
        np.testing.assert_array_equal(a.basin_steps, b.basin_steps)
    return a


def test_register_and_array_drivers_agree_with_minibatch_noise():
    fs = ls.FiniteSum.gaussian(ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), 20, 0.4, seed=1)
    a = _agree(fs, [fs.minima[0].x[0]], eta=0.1, noise=ls.MinibatchNoise(1), leap=ls.LEAP(0.01),
               exit=ls.Threshold(fs.saddles[0].x[0]), n_particles=100, max_steps=3000, seed=5, basins=True)
    assert 0 < a.n_escaped < 100


def test_register_and_array_drivers_agree_with_hessian_noise_in_1d():
    w = ls.SharpFlatWell(curv_sharp=4.0)
    a = _agree(w, [w.minima[1].x[0]], eta=0.1, noise=ls.HessianNoise(1.0), leap=ls.LEAP(0.05),
               exit=ls.Threshold(0.0, direction=-1), n_particles=100, max_steps=3000, seed=5)
    assert 0 < a.n_escaped < 100


def test_lanes_do_not_change_results(monkeypatch):
    """Interleaving more particles per thread changes nothing: each particle keeps its own stream."""
    land = ls.EntropicWell(1.0, 0.5)
    kw = dict(eta=0.01, noise=ls.WhiteNoise(10.0), leap=ls.LEAP(0.003), exit=ls.Threshold(1.0),
              n_particles=150, max_steps=2000, seed=9)
    a = ls.simulate(land, [-1.0, 0.0], **kw)
    monkeypatch.setattr(_kernels, "LANES", 3)
    _kernels._compiled.cache_clear()
    try:
        b = ls.simulate(land, [-1.0, 0.0], **kw)
    finally:
        _kernels._compiled.cache_clear()
    assert 0 < a.n_escaped < 150
    assert np.array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.positions, b.positions)


def test_closed_form_2x2_root_equals_the_eigendecomposition():
    rng = np.random.default_rng(4)
    for _ in range(200):
        h00, h01, h11 = rng.normal(size=3) * rng.choice([1e-3, 1.0, 30.0])
        H = np.array([[h00, h01], [h01, h11]])
        lam, V = np.linalg.eigh(H)
        R = (V * np.sqrt(np.maximum(np.abs(lam), 0.01) / 4.0)) @ V.T
        r00, r01, r11 = abs_floor_root_2x2(h00, h01, h11, 0.01, 0.25)
        np.testing.assert_allclose([[r00, r01], [r01, r11]], R, rtol=1e-9, atol=1e-12 * np.abs(R).max())
    assert abs_floor_root_2x2(2.0, 0.0, 2.0, 0.01, 1.0) == (np.sqrt(2.0), 0.0, np.sqrt(2.0))


# ------------------------------------------------------------------------ a landscape added in one place
def test_three_hole_well_critical_points_and_derivatives():
    land = ls.ThreeHoleWell()
    assert [m.kind for m in land.minima] == ["min"] * 3 and [s.kind for s in land.saddles] == ["saddle"] * 3
    for cp in land.minima + land.saddles:
        assert np.max(np.abs(land.grad(cp.x))) < 1e-10
        n_negative = int(np.sum(np.linalg.eigvalsh(cp.hessian) < 0))
        assert n_negative == (0 if cp.kind == "min" else 1)
    (left, upper, right), (s_left, s_low, s_right) = land.minima, land.saddles
    assert left.x[0] < 0 < right.x[0] and upper.x[1] > 1 and s_low.x[1] < 0 < s_left.x[1]
    assert left.loss == pytest.approx(right.loss, rel=1e-12) and upper.loss > left.loss  # mirror symmetry
    # derivatives against central differences of the loss / the gradient (h = 1e-5: error O(h²) ~ 1e-9)
    h = 1e-5
    for x in np.random.default_rng(0).uniform(-1.5, 2.0, size=(20, 2)):
        fd_g = [(land.loss(x + h * e) - land.loss(x - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(land.grad(x), fd_g, rtol=1e-6, atol=1e-7)
        fd_h = np.array([(land.grad(x + h * e) - land.grad(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(land.hessian(x), fd_h, rtol=1e-6, atol=1e-7)
    assert ls.ThreeHoleWell(2.0).barrier(0, 1) == pytest.approx(2.0 * land.barrier(0, 1))


def test_three_hole_well_runs_on_both_drivers():
    land = ls.ThreeHoleWell()
    left = land.minima[0].x
    a = _agree(land, left, eta=0.01, noise=ls.WhiteNoise(8.0), leap=ls.LEAP(0.002),
               exit=ls.ReachBall(land.minima[2].x, 0.3), n_particles=64, max_steps=20_000, seed=2, basins=True)
    assert a.n_escaped > 0 and a.n_diverged == 0


# ------------------------------------------------------------------------------- compiled once per machine
_USER = """
import numba as nb


@nb.njit
def grad(x, p, out):
    out[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0) + p[0]
"""

_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
import leap_sde as ls
from leap_sde import _kernels
from user_grad import grad
land = ls.CustomLandscape(grad, 1, params=[0.05])
res = ls.simulate(land, [-1.0], eta=0.01, noise=ls.WhiteNoise(4.0), exit=ls.Threshold(1.0),
                  n_particles=16, max_steps=500, seed=3, require_barrier=False)  # no saddle given
kernel = _kernels.kernel_for(land, ls.WhiteNoise(4.0), None, ls.Constant(), ls.Threshold(1.0), "discrete")
print(len(kernel.stats.cache_hits), len(kernel.stats.cache_misses), int(res.steps.sum()))
"""


def test_custom_landscape_kernel_is_reused_by_a_second_process(tmp_path):
    """The gradient lives in an importable module: the second process loads the compiled kernel from disk."""
    (tmp_path / "user_grad.py").write_text(textwrap.dedent(_USER))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), LEAP_SDE_CACHE_DIR=str(tmp_path / "kernels"))
    runs = [subprocess.run([sys.executable, "-c", _RUN, str(tmp_path)], env=env, capture_output=True, text=True,
                           check=True, timeout=300).stdout.split() for _ in range(2)]
    (hits1, misses1, work1), (hits2, misses2, work2) = runs
    assert (hits1, misses1) == ("0", "1")  # compiled (and saved) by the first process
    assert (hits2, misses2) == ("1", "0")  # loaded by the second
    assert work1 == work2
