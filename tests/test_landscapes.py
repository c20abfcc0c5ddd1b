"""Landscapes: derivatives against finite differences, critical points, the documented geometry."""
import numba as nb
import numpy as np
import pytest

import leap_sde as ls

LANDSCAPES = [
    ls.Polynomial([0, 0.08, -0.5, 0, 0.25]),
    ls.DoubleWell(barrier=1.5, curv_min=3.0, curv_saddle=2.0),
    ls.SharpFlatWell(curv_flat=1.0, curv_sharp=6.0, barrier_flat=1.0, barrier_sharp=0.7, curv_saddle=2.0),
    ls.Quadratic(np.array([[2.0, 0.5], [0.5, 1.0]]), center=[0.3, -0.2]),
    ls.EntropicWell(kappa=1.5, c=0.7),
    ls.StyblinskiTang(dim=3, sharpness=[1.0, 2.0, 0.5]),
    ls.FiniteSum.gaussian(ls.Polynomial([1, 0, -2, 0, 1]), 16, 0.2, seed=0),
]


@pytest.mark.parametrize("land", LANDSCAPES, ids=lambda l: type(l).__name__)
def test_gradient_and_hessian_match_finite_differences(land):
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.uniform(-1.8, 1.8, land.dim)
        h = 1e-6
        fd = np.array([(land.loss(x + h * e) - land.loss(x - h * e)) / (2 * h) for e in np.eye(land.dim)])
        np.testing.assert_allclose(land.grad(x), fd, rtol=1e-6, atol=1e-6)
        fdh = np.array([(land.grad(x + h * e) - land.grad(x - h * e)) / (2 * h) for e in np.eye(land.dim)])
        # piecewise-quadratic wells have a jump in U'' at ±x_b: skip points within h of a kink
        np.testing.assert_allclose(land.hessian(x), fdh.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("land", LANDSCAPES, ids=lambda l: type(l).__name__)
def test_critical_points_are_critical_and_classified(land):
    for c in land.minima:
        np.testing.assert_allclose(land.grad(c.x), 0, atol=1e-9)
        assert np.all(np.linalg.eigvalsh(c.hessian) > 0)
    for c in land.saddles:
        np.testing.assert_allclose(land.grad(c.x), 0, atol=1e-9)
        assert np.sum(np.linalg.eigvalsh(c.hessian) < 0) == 1


def test_piecewise_quadratic_geometry():
    w = ls.SharpFlatWell(curv_flat=1.0, curv_sharp=6.0, barrier_flat=1.0, barrier_sharp=0.7, curv_saddle=2.0)
    flat, sharp = w.minima
    (saddle,) = w.saddles
    assert flat.x[0] < 0 < sharp.x[0] and saddle.x[0] == 0
    assert flat.hessian[0, 0] == 1.0 and sharp.hessian[0, 0] == 6.0 and saddle.hessian[0, 0] == -2.0
    assert w.barrier(0) == pytest.approx(1.0) and w.barrier(1) == pytest.approx(0.7)
    # C1: value and slope continuous at the kink x_b, and the loss rises by s·ΔU before it
    xb = np.sqrt(2 * 0.7 * 6.0 / (2.0 * 8.0))
    for x in (xb * (1 - 1e-12), xb * (1 + 1e-12)):
        assert w.loss([x]) == pytest.approx(w.loss([xb]), abs=1e-9)
        assert w.grad([x])[0] == pytest.approx(-2.0 * xb, rel=1e-9)
    s = w.path_parameter("sharp")
    assert w.loss([xb]) - sharp.loss == pytest.approx(s * 0.7)


def test_polynomial_tilted_double_well():
    p = ls.Polynomial([0, 0.08, -0.5, 0, 0.25])
    assert len(p.minima) == 2 and len(p.saddles) == 1
    assert p.minima[0].loss < p.minima[1].loss  # the tilt makes the left well deeper
    with pytest.raises(ValueError, match="coeffs"):
        ls.Polynomial([0, 1, 0, -1])  # odd degree: unbounded below


def test_styblinski_tang_sharpness_scales_hessian_not_barrier():
    a, b = ls.StyblinskiTang(2, 1.0), ls.StyblinskiTang(2, 3.0)
    assert a.barrier(1) == pytest.approx(b.barrier(1))
    np.testing.assert_allclose(b.minima[0].hessian, 9 * a.minima[0].hessian)


def test_finite_sum_covariance_matches_its_definition():
    f = ls.FiniteSum.gaussian(ls.Quadratic(np.diag([2.0, 1.0])), 40, 0.5, seed=1)
    # quadratic base: g_i = H(x − a_i), so C = H Cov(a) H exactly
    a = f.offsets - f.offsets.mean(0)
    H = np.diag([2.0, 1.0])
    np.testing.assert_allclose(f.gradient_covariance([0.3, 0.1]), H @ (a.T @ a / 40) @ H, rtol=1e-12)


@nb.njit
def _tilted_grad(x, p, out):
    out[0] = 4 * x[0] * (x[0] ** 2 - 1) + p[0]


@nb.njit
def _tilted_loss(x, p):
    return (x[0] ** 2 - 1) ** 2 + p[0] * x[0]


def test_custom_landscape_contract():
    land = ls.CustomLandscape(_tilted_grad, 1, params=[0.1], loss_fn=_tilted_loss, saddle_points=[[0.025]])
    assert land.grad([0.5])[0] == pytest.approx(4 * 0.5 * (0.25 - 1) + 0.1)
    assert land.loss([0.5]) == pytest.approx(0.5625 + 0.05)
    with pytest.raises(TypeError, match="grad_fn"):
        ls.CustomLandscape(lambda x, p, out: None, 1)


def test_double_well_is_a_dataclass_of_its_parameters():
    import dataclasses

    w = ls.DoubleWell(barrier=1.5, curv_min=3.0, curv_saddle=2.0)
    assert [f.name for f in dataclasses.fields(w) if f.init] == ["barrier", "curv_min", "curv_saddle"]
    v = dataclasses.replace(w, barrier=0.5)
    assert v.barrier == 0.5 and v.barrier_height() == pytest.approx(0.5)
    assert w.barrier_height() == pytest.approx(1.5) and w.minima[1].hessian[0, 0] == 3.0
    # the same C1 piecewise quadratic as the sharp-flat well with equal sides
    s = ls.SharpFlatWell(curv_flat=3.0, curv_sharp=3.0, barrier_flat=1.5, barrier_sharp=1.5, curv_saddle=2.0)
    assert w.lower() == s.lower()
    assert isinstance(w, ls.PiecewiseQuadraticWell) and isinstance(s, ls.PiecewiseQuadraticWell)
