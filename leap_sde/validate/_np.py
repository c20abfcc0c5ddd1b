"""Vectorised NumPy versions of the built-in 1-D landscapes (for the quadrature references).

The compiled landscapes evaluate one point at a time; the exact references integrate over grids of
10⁵ points, so they need array versions. ``tests/test_validate.py`` checks these against the
landscapes' own ``loss``/``grad``/``hessian``.
"""
from __future__ import annotations

import numpy as np

import leap_sde as ls

__all__ = ["funcs_1d", "finite_sum_funcs"]


def _poly(coeffs):
    c = np.asarray(coeffs, dtype=np.float64)
    dc = np.polynomial.polynomial.polyder(c)
    d2c = np.polynomial.polynomial.polyder(dc)
    P = np.polynomial.polynomial.polyval
    return (lambda x: P(np.asarray(x, float), c), lambda x: P(np.asarray(x, float), dc),
            lambda x: P(np.asarray(x, float), d2c))


def _pwq(land):
    p = land.lower()
    top, hb = p.top, p.curv_saddle
    sides = [(p.xb_left, p.xm_left, p.h_left, p.du_left), (p.xb_right, p.xm_right, p.h_right, p.du_right)]

    def parts(x):
        x = np.asarray(x, dtype=np.float64)
        left = x < 0
        xb = np.where(left, sides[0][0], sides[1][0])
        xm = np.where(left, sides[0][1], sides[1][1])
        h = np.where(left, sides[0][2], sides[1][2])
        du = np.where(left, sides[0][3], sides[1][3])
        return x, np.abs(x) <= xb, xm, h, du

    def U(x):
        x, inner, xm, h, du = parts(x)
        return np.where(inner, top - 0.5 * hb * x * x, top - du + 0.5 * h * (x - xm) ** 2)

    def dU(x):
        x, inner, xm, h, du = parts(x)
        return np.where(inner, -hb * x, h * (x - xm))

    def d2U(x):
        x, inner, xm, h, du = parts(x)
        return np.where(inner, -hb, h)

    return U, dU, d2U


def funcs_1d(land):
    """``(U, U', U'')`` as vectorised NumPy functions for a built-in 1-D landscape."""
    if isinstance(land, ls.Polynomial):
        return _poly(land.coeffs)
    if isinstance(land, ls.PiecewiseQuadraticWell):  # SharpFlatWell and DoubleWell
        return _pwq(land)
    if isinstance(land, ls.Quadratic) and land.dim == 1:
        h, c = float(land.hessian_matrix[0, 0]), float(land.center[0])
        return (lambda x: 0.5 * h * (np.asarray(x, float) - c) ** 2, lambda x: h * (np.asarray(x, float) - c),
                lambda x: np.full(np.shape(x), h))
    if isinstance(land, ls.StyblinskiTang) and land.dim == 1:
        a = float(land.sharpness[0])
        return (lambda x: 0.5 * ((a * x) ** 4 - 16 * (a * x) ** 2 + 5 * a * x),
                lambda x: 0.5 * a * (4 * (a * x) ** 3 - 32 * a * x + 5),
                lambda x: 0.5 * a * a * (12 * (a * x) ** 2 - 32))
    raise TypeError(f"no NumPy version for {type(land).__name__}")


def finite_sum_funcs(land):
    """``(U, U', C)`` for a 1-D :class:`~leap_sde.FiniteSum`: mean loss, mean gradient and the per-sample
    gradient variance ``C(θ) = Var_i ℓ_i'(θ)`` (minibatch noise variance is ``C/B``)."""
    if not isinstance(land, ls.FiniteSum) or land.dim != 1:
        raise TypeError("finite_sum_funcs needs a 1-D FiniteSum")
    Ub, dUb, _ = funcs_1d(land.base)
    a = land.offsets[:, 0]

    def U(x):
        x = np.asarray(x, dtype=np.float64)
        return Ub(x[..., None] - a).mean(axis=-1)

    def dU(x):
        x = np.asarray(x, dtype=np.float64)
        return dUb(x[..., None] - a).mean(axis=-1)

    def C(x):
        x = np.asarray(x, dtype=np.float64)
        return dUb(x[..., None] - a).var(axis=-1)

    return U, dU, C
