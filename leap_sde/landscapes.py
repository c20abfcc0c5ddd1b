"""Loss landscapes evaluated inside compiled code.

Every built-in landscape lowers to ``(code, params)``: an integer kind code and a flat float64 parameter
vector read by the compiled dispatchers :func:`grad_at`, :func:`loss_at` and :func:`hess_at`.  A user's own
landscape (:class:`CustomLandscape`) supplies compiled functions instead; the kernels are then compiled
for it (once per process, not cached on disk).

Conventions: ``x`` is a point of shape ``(d,)``; gradients are written into ``out`` of shape ``(d,)`` and
Hessians into ``out`` of shape ``(d, d)``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numba as nb
import numpy as np

from ._checks import check_finite, check_positive

__all__ = [
    "Landscape",
    "Quadratic",
    "DoubleWell",
    "SharpFlatWell",
    "Polynomial",
    "EntropicWell",
    "StyblinskiTang",
    "FiniteSum",
    "CustomLandscape",
]

POLY, PWQ, QUAD, ENTROPIC, STANG = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------------------------------
# compiled dispatch
@nb.njit(cache=True)
def _pwq_side(p, x):
    """Side parameters of the two-sided piecewise quadratic: (x_b, x_m, h, dU), x_m signed."""
    if x < 0.0:
        return p[2], p[3], p[4], p[5]
    return p[6], p[7], p[8], p[9]


@nb.njit(cache=True)
def loss_at(code, p, x):
    """Loss at ``x`` (d,)."""
    if code == POLY:
        v = 0.0
        for j in range(p.shape[0] - 1, -1, -1):
            v = v * x[0] + p[j]
        return v
    if code == PWQ:
        xb, xm, h, du = _pwq_side(p, x[0])
        if abs(x[0]) <= xb:
            return p[0] - 0.5 * p[1] * x[0] * x[0]
        return p[0] - du + 0.5 * h * (x[0] - xm) ** 2
    if code == QUAD:
        d = np.int64(p[0])
        v = 0.0
        for i in range(d):
            for j in range(d):
                v += 0.5 * (x[i] - p[1 + i]) * p[1 + d + i * d + j] * (x[j] - p[1 + j])
        return v
    if code == ENTROPIC:
        a = x[0] * x[0] - 1.0
        return a * a + 0.5 * p[0] * x[1] * x[1] + p[1] * x[0] * x[0] * x[1] * x[1]
    # STANG
    d = np.int64(p[0])
    v = 0.0
    for i in range(d):
        z = p[1 + i] * x[i]
        v += 0.5 * (z ** 4 - 16.0 * z * z + 5.0 * z)
    return v


@nb.njit(cache=True)
def grad_at(code, p, x, out):
    """Gradient at ``x`` (d,) written into ``out`` (d,)."""
    if code == POLY:
        v = 0.0
        for j in range(p.shape[0] - 1, 0, -1):
            v = v * x[0] + j * p[j]
        out[0] = v
    elif code == PWQ:
        xb, xm, h, du = _pwq_side(p, x[0])
        if abs(x[0]) <= xb:
            out[0] = -p[1] * x[0]
        else:
            out[0] = h * (x[0] - xm)
    elif code == QUAD:
        d = np.int64(p[0])
        for i in range(d):
            v = 0.0
            for j in range(d):
                v += p[1 + d + i * d + j] * (x[j] - p[1 + j])
            out[i] = v
    elif code == ENTROPIC:
        out[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0) + 2.0 * p[1] * x[0] * x[1] * x[1]
        out[1] = p[0] * x[1] + 2.0 * p[1] * x[0] * x[0] * x[1]
    else:
        d = np.int64(p[0])
        for i in range(d):
            a = p[1 + i]
            z = a * x[i]
            out[i] = 0.5 * a * (4.0 * z ** 3 - 32.0 * z + 5.0)


@nb.njit(cache=True)
def hess_at(code, p, x, out):
    """Hessian at ``x`` (d,) written into ``out`` (d, d)."""
    if code == POLY:
        v = 0.0
        for j in range(p.shape[0] - 1, 1, -1):
            v = v * x[0] + j * (j - 1) * p[j]
        out[0, 0] = v
    elif code == PWQ:
        xb, xm, h, du = _pwq_side(p, x[0])
        out[0, 0] = -p[1] if abs(x[0]) <= xb else h
    elif code == QUAD:
        d = np.int64(p[0])
        for i in range(d):
            for j in range(d):
                out[i, j] = p[1 + d + i * d + j]
    elif code == ENTROPIC:
        out[0, 0] = 12.0 * x[0] * x[0] - 4.0 + 2.0 * p[1] * x[1] * x[1]
        out[0, 1] = 4.0 * p[1] * x[0] * x[1]
        out[1, 0] = out[0, 1]
        out[1, 1] = p[0] + 2.0 * p[1] * x[0] * x[0]
    else:
        d = np.int64(p[0])
        for i in range(d):
            for j in range(d):
                out[i, j] = 0.0
            a = p[1 + i]
            z = a * x[i]
            out[i, i] = 0.5 * a * a * (12.0 * z * z - 32.0)


@nb.njit(cache=True)
def grad1_at(code, p, x):
    """Scalar ``L'(x)`` of a 1-D built-in landscape (the kernels' fast path)."""
    if code == POLY:
        v = 0.0
        for j in range(p.shape[0] - 1, 0, -1):
            v = v * x + j * p[j]
        return v
    if code == PWQ:
        xb, xm, h, du = _pwq_side(p, x)
        return -p[1] * x if abs(x) <= xb else h * (x - xm)
    if code == QUAD:
        return p[2] * (x - p[1])
    z = p[1] * x  # STANG
    return 0.5 * p[1] * (4.0 * z ** 3 - 32.0 * z + 5.0)


@nb.njit(cache=True)
def hess1_at(code, p, x):
    """Scalar ``L''(x)`` of a 1-D built-in landscape."""
    if code == POLY:
        v = 0.0
        for j in range(p.shape[0] - 1, 1, -1):
            v = v * x + j * (j - 1) * p[j]
        return v
    if code == PWQ:
        xb, xm, h, du = _pwq_side(p, x)
        return -p[1] if abs(x) <= xb else h
    if code == QUAD:
        return p[2]
    z = p[1] * x
    return 0.5 * p[1] * p[1] * (12.0 * z * z - 32.0)


@nb.njit(cache=True)
def grad2_at(code, p, x0, x1):
    """``∇L`` of a 2-D built-in landscape at ``(x0, x1)`` as a pair of scalars (the kernels' fast path)."""
    if code == ENTROPIC:
        return (4.0 * x0 * (x0 * x0 - 1.0) + 2.0 * p[1] * x0 * x1 * x1,
                p[0] * x1 + 2.0 * p[1] * x0 * x0 * x1)
    if code == QUAD:  # p = [2, c0, c1, H00, H01, H10, H11]
        y0, y1 = x0 - p[1], x1 - p[2]
        return p[3] * y0 + p[4] * y1, p[5] * y0 + p[6] * y1
    a0, a1 = p[1], p[2]  # STANG
    z0, z1 = a0 * x0, a1 * x1
    return 0.5 * a0 * (4.0 * z0 ** 3 - 32.0 * z0 + 5.0), 0.5 * a1 * (4.0 * z1 ** 3 - 32.0 * z1 + 5.0)


# --------------------------------------------------------------------------------------------------
# Python objects
@dataclass(frozen=True)
class CriticalPoint:
    """A critical point: location ``x`` (d,), loss, Hessian (d, d) and ``kind`` ('min', 'saddle', 'max')."""

    x: np.ndarray
    loss: float
    hessian: np.ndarray
    kind: str


class Landscape:
    """Abstract loss landscape ``L: R^d -> R``.

    Concrete classes are frozen dataclasses that lower to compiled form with :meth:`lower` and expose
    their known critical points (``minima``, ``saddles``), each a :class:`CriticalPoint`.
    """

    dim: int

    def lower(self):
        """``(code, params, offsets)``: kind code, float64 parameters, per-sample offsets (n, d)."""
        raise NotImplementedError

    # Python-side evaluation through the same compiled code the kernels use
    def loss(self, x) -> float:
        """``L(x)`` for ``x`` of shape (d,)."""
        code, p, off = self.lower()
        x = self._point(x)
        if off.shape[0] == 0:
            return float(loss_at(code, p, x))
        return float(np.mean([loss_at(code, p, x - a) for a in off]))

    def grad(self, x) -> np.ndarray:
        """``∇L(x)``, shape (d,)."""
        code, p, off = self.lower()
        x = self._point(x)
        out = np.empty(self.dim)
        if off.shape[0] == 0:
            grad_at(code, p, x, out)
            return out
        acc = np.zeros(self.dim)
        for a in off:
            grad_at(code, p, x - a, out)
            acc += out
        return acc / off.shape[0]

    def hessian(self, x) -> np.ndarray:
        """``∇²L(x)``, shape (d, d)."""
        code, p, off = self.lower()
        x = self._point(x)
        out = np.empty((self.dim, self.dim))
        if off.shape[0] == 0:
            hess_at(code, p, x, out)
            return out
        acc = np.zeros((self.dim, self.dim))
        for a in off:
            hess_at(code, p, x - a, out)
            acc += out
        return acc / off.shape[0]

    def _point(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {x.shape}")
        return x

    def _critical(self, x, kind) -> CriticalPoint:
        x = self._point(x)
        return CriticalPoint(x, self.loss(x), self.hessian(x), kind)

    @property
    def minima(self) -> tuple:
        """Known local minima (tuple of :class:`CriticalPoint`), ordered by the first coordinate."""
        return ()

    @property
    def saddles(self) -> tuple:
        """Known index-1 saddles (in 1-D: local maxima), ordered by the first coordinate."""
        return ()

    def barrier(self, minimum: int = 0, saddle: int = 0) -> float:
        """``L(saddle) − L(minimum)`` for the given indices into :attr:`minima` and :attr:`saddles`."""
        if not self.saddles:
            raise ValueError(f"{type(self).__name__} has no saddle: no barrier to escape over")
        return self.saddles[saddle].loss - self.minima[minimum].loss

    def basin_edges(self) -> np.ndarray:
        """Basin boundaries along coordinate 0: the first coordinates of the saddles (sorted)."""
        return np.sort(np.array([s.x[0] for s in self.saddles], dtype=np.float64))


@dataclass(frozen=True)
class Quadratic(Landscape):
    """``L(x) = ½ (x − c)ᵀ H (x − c)`` in any dimension; one critical point at ``c``.

    Parameters
    ----------
    hessian_matrix : (d, d) symmetric array (or a scalar for d = 1).
    center : (d,) array, default 0.
    """

    hessian_matrix: np.ndarray
    center: Optional[np.ndarray] = None

    def __post_init__(self):
        H = np.atleast_2d(np.asarray(self.hessian_matrix, dtype=np.float64))
        if H.ndim != 2 or H.shape[0] != H.shape[1]:
            raise ValueError(f"hessian_matrix must be square (d, d), got shape {H.shape}")
        check_finite("hessian_matrix", H)
        if not np.allclose(H, H.T, rtol=1e-12, atol=1e-14):
            raise ValueError("hessian_matrix must be symmetric")
        c = np.zeros(H.shape[0]) if self.center is None else np.asarray(self.center, np.float64).reshape(-1)
        if c.shape != (H.shape[0],):
            raise ValueError(f"center must have shape ({H.shape[0]},), got {c.shape}")
        check_finite("center", c)
        object.__setattr__(self, "hessian_matrix", H)
        object.__setattr__(self, "center", c)

    @property
    def dim(self):
        return self.hessian_matrix.shape[0]

    def lower(self):
        d = self.dim
        p = np.concatenate([[float(d)], self.center, self.hessian_matrix.ravel()])
        return QUAD, p, np.zeros((0, d))

    @property
    def minima(self):
        if np.all(np.linalg.eigvalsh(self.hessian_matrix) > 0):
            return (self._critical(self.center, "min"),)
        return ()


def _pwq_geometry(h, du, hb):
    """Saddle-region half-width x_b and minimum distance x_m of one C1 piecewise-quadratic side."""
    xb = math.sqrt(2.0 * du * h / (hb * (h + hb)))
    return xb, xb * (1.0 + hb / h)


@dataclass(frozen=True)
class SharpFlatWell(Landscape):
    """Asymmetric 1-D double well, C1 piecewise quadratic, saddle at ``x = 0``.

    With ``U_top = barrier_flat`` and, for each side (curvature h at its minimum, barrier ΔU,
    saddle curvature h_b = ``curv_saddle``)::

        x_b = sqrt(2 ΔU h / (h_b (h + h_b))),   x_m = x_b (1 + h_b / h)
        U(x) = U_top − h_b x² / 2                    for |x| ≤ x_b (on that side)
        U(x) = U_top − ΔU + h (|x| − x_m)² / 2         beyond

    Value and slope match at ``|x| = x_b``, so ``U`` is C1 and ``U''`` is piecewise constant: exactly
    ``h`` in the minimum's region and ``−h_b`` in the saddle region.  The flat minimum sits at
    ``x = −x_m`` (loss 0), the sharp one at ``+x_m`` (loss ``barrier_flat − barrier_sharp``).  On each side
    the loss rises by ``s·ΔU`` with ``s = h_b / (h + h_b)`` inside the minimum's region (the path parameter
    of Xie et al.'s escape law is then exact).  Formula derived in this project.
    """

    curv_flat: float = 1.0
    curv_sharp: float = 4.0
    barrier_flat: float = 1.0
    barrier_sharp: float = 1.0
    curv_saddle: float = 1.0
    dim: int = field(default=1, init=False)

    def __post_init__(self):
        for name in ("curv_flat", "curv_sharp", "barrier_flat", "barrier_sharp", "curv_saddle"):
            check_positive(name, getattr(self, name))

    def _sides(self):
        hb = self.curv_saddle
        xbl, xml = _pwq_geometry(self.curv_flat, self.barrier_flat, hb)
        xbr, xmr = _pwq_geometry(self.curv_sharp, self.barrier_sharp, hb)
        return xbl, xml, xbr, xmr

    def lower(self):
        xbl, xml, xbr, xmr = self._sides()
        p = np.array([self.barrier_flat, self.curv_saddle,
                      xbl, -xml, self.curv_flat, self.barrier_flat,
                      xbr, xmr, self.curv_sharp, self.barrier_sharp])
        return PWQ, p, np.zeros((0, 1))

    @property
    def minima(self):
        _, xml, _, xmr = self._sides()
        return (self._critical([-xml], "min"), self._critical([xmr], "min"))

    @property
    def saddles(self):
        return (self._critical([0.0], "saddle"),)

    def path_parameter(self, side: str = "flat") -> float:
        """``s = h_b / (h + h_b)``: fraction of the barrier climbed inside the minimum's region."""
        h = self.curv_flat if side == "flat" else self.curv_sharp
        return self.curv_saddle / (h + self.curv_saddle)


class DoubleWell(SharpFlatWell):
    """Symmetric 1-D double well with independent ``barrier``, ``curv_min`` and ``curv_saddle``.

    The C1 piecewise-quadratic form of :class:`SharpFlatWell` with equal sides: minima at ``±x_m``
    (loss 0), saddle at 0 (loss ``barrier``), ``U'' = curv_min`` near the minima and ``−curv_saddle``
    for ``|x| ≤ x_b``.
    """

    def __init__(self, barrier: float = 1.0, curv_min: float = 1.0, curv_saddle: float = 1.0):
        super().__init__(curv_flat=curv_min, curv_sharp=curv_min, barrier_flat=barrier,
                         barrier_sharp=barrier, curv_saddle=curv_saddle)

    def __repr__(self):
        return (f"DoubleWell(barrier={self.barrier_flat!r}, curv_min={self.curv_flat!r}, "
                f"curv_saddle={self.curv_saddle!r})")


@dataclass(frozen=True)
class Polynomial(Landscape):
    """1-D polynomial ``L(x) = Σ_j c_j x^j`` (``coeffs`` in ascending powers).

    Critical points are the real roots of ``L'`` (``numpy.roots``), classified by the sign of ``L''``
    (minimum, maximum; a degenerate root with ``L'' = 0`` is dropped).  The leading coefficient must
    make ``L`` bounded below (even degree ≥ 2, positive leading coefficient) so that every run has a basin.
    Example: ``Polynomial([1, 0, -2, 0, 1])`` is ``(x² − 1)²``.
    """

    coeffs: tuple = (1.0, 0.0, -2.0, 0.0, 1.0)
    dim: int = field(default=1, init=False)

    def __post_init__(self):
        c = np.asarray(self.coeffs, dtype=np.float64).reshape(-1)
        check_finite("coeffs", c)
        c = np.trim_zeros(c, "b")
        if c.size < 3 or (c.size - 1) % 2 != 0 or c[-1] <= 0:
            raise ValueError("coeffs (ascending powers) must describe a polynomial of even degree >= 2 "
                             f"with a positive leading coefficient, got {list(self.coeffs)}")
        object.__setattr__(self, "coeffs", tuple(float(v) for v in c))

    def lower(self):
        return POLY, np.array(self.coeffs), np.zeros((0, 1))

    def _roots(self):
        c = np.array(self.coeffs)
        dc = np.polynomial.polynomial.polyder(c)
        r = np.polynomial.polynomial.polyroots(dc)
        r = np.sort(r[np.abs(r.imag) <= 1e-9 * np.maximum(1.0, np.abs(r.real))].real)
        # polish with Newton on L' (roots of ill-conditioned polynomials lose digits)
        d2 = np.polynomial.polynomial.polyder(dc)
        for _ in range(3):
            h2 = np.polynomial.polynomial.polyval(r, d2)
            ok = h2 != 0
            r[ok] -= np.polynomial.polynomial.polyval(r[ok], dc) / h2[ok]
        return np.unique(r), np.polynomial.polynomial.polyval(np.unique(r), d2)

    @property
    def minima(self):
        r, h = self._roots()
        return tuple(self._critical([x], "min") for x, hh in zip(r, h) if hh > 0)

    @property
    def saddles(self):
        r, h = self._roots()
        return tuple(self._critical([x], "max") for x, hh in zip(r, h) if hh < 0)


@dataclass(frozen=True)
class EntropicWell(Landscape):
    """2-D ``L(x, y) = (x² − 1)² + κ/2·y² + c·x²·y²``.

    Minima at ``(±1, 0)`` with Hessian diag(8, κ + 2c), saddle at the origin with Hessian diag(−4, κ).
    Eyring–Kramers then gives the rate multiplied by the entropic factor ``sqrt((κ + 2c)/κ)`` relative
    to ``c = 0`` (theory notes §1.3).
    """

    kappa: float = 1.0
    c: float = 0.0
    dim: int = field(default=2, init=False)

    def __post_init__(self):
        check_positive("kappa", self.kappa)
        check_finite("c", self.c)
        if self.c < 0:
            raise ValueError(f"c must be >= 0 (c < 0 makes the loss unbounded below), got {self.c}")

    def lower(self):
        return ENTROPIC, np.array([self.kappa, self.c], dtype=np.float64), np.zeros((0, 2))

    @property
    def minima(self):
        return (self._critical([-1.0, 0.0], "min"), self._critical([1.0, 0.0], "min"))

    @property
    def saddles(self):
        return (self._critical([0.0, 0.0], "saddle"),)


@dataclass(frozen=True)
class StyblinskiTang(Landscape):
    """d-dimensional Styblinski–Tang with a sharpness multiplier ``a`` (scalar or (d,))::

        L(x) = ½ Σ_i [ (a_i x_i)⁴ − 16 (a_i x_i)² + 5 a_i x_i ]

    Scaling the coordinates keeps every barrier height and multiplies the Hessian by ``a_i²``.  Per
    coordinate the minima are at ``m/a_i`` with ``m ≈ −2.9035`` (global) and ``m ≈ 2.7468`` (local), the
    maximum at ``m ≈ 0.1567`` (roots of 4m³ − 32m + 5).  ``minima``/``saddles`` list the global minimum, the
    local minimum along coordinate 0 and the saddle between them along coordinate 0.
    """

    dim: int = 2
    sharpness: object = 1.0

    def __post_init__(self):
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim}")
        a = np.broadcast_to(np.asarray(self.sharpness, dtype=np.float64), (self.dim,)).copy()
        check_positive("sharpness", a)
        object.__setattr__(self, "sharpness", a)

    def lower(self):
        return STANG, np.concatenate([[float(self.dim)], self.sharpness]), np.zeros((0, self.dim))

    @staticmethod
    def _roots():
        return np.sort(np.roots([4.0, 0.0, -32.0, 5.0]).real)  # m_glob < m_max < m_loc

    @property
    def minima(self):
        lo, _, hi = self._roots()
        g = lo / self.sharpness
        local = g.copy()
        local[0] = hi / self.sharpness[0]
        return (self._critical(g, "min"), self._critical(local, "min"))

    @property
    def saddles(self):
        lo, mx, _ = self._roots()
        s = lo / self.sharpness
        s[0] = mx / self.sharpness[0]
        return (self._critical(s, "saddle"),)


@dataclass(frozen=True)
class FiniteSum(Landscape):
    """Finite-sum objective ``L(θ) = (1/n) Σ_i ℓ_i(θ)`` with ``ℓ_i(θ) = base(θ − a_i)``.

    The per-sample offsets ``a_i`` (n, d) play the role of a data set; a minibatch gradient averages
    ``∇base(θ − a_i)`` over ``B`` indices drawn uniformly with replacement, so its covariance is exactly
    ``C(θ)/B`` with ``C`` the per-sample gradient covariance (:meth:`gradient_covariance`).  Critical points
    of the full loss are those of ``base`` smoothed by the offsets; for 1-D bases they are found on a grid
    by bisection on the sign of the gradient (computed once per object).
    """

    base: Landscape
    offsets: np.ndarray

    def __post_init__(self):
        if isinstance(self.base, (FiniteSum, CustomLandscape)):
            raise ValueError("base must be a built-in landscape (not FiniteSum or CustomLandscape)")
        a = np.asarray(self.offsets, dtype=np.float64)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != self.base.dim or a.shape[0] < 1:
            raise ValueError(f"offsets must have shape (n >= 1, {self.base.dim}), got {a.shape}")
        check_finite("offsets", a)
        object.__setattr__(self, "offsets", a)

    @classmethod
    def gaussian(cls, base: Landscape, n: int, scale: float, *, seed) -> "FiniteSum":
        """``n`` offsets drawn from N(0, scale² I) with ``seed``, recentred to mean zero."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        check_positive("scale", scale)
        a = np.random.default_rng(seed).normal(0.0, scale, size=(n, base.dim))
        return cls(base, a - a.mean(axis=0))

    @property
    def dim(self):
        return self.base.dim

    @property
    def n_samples(self) -> int:
        return self.offsets.shape[0]

    def lower(self):
        code, p, _ = self.base.lower()
        return code, p, self.offsets

    def gradient_covariance(self, x) -> np.ndarray:
        """Per-sample gradient covariance ``C(θ) = (1/n) Σ_i (g_i − ḡ)(g_i − ḡ)ᵀ``, shape (d, d)."""
        code, p, _ = self.base.lower()
        x = self._point(x)
        g = np.empty((self.n_samples, self.dim))
        for i, a in enumerate(self.offsets):
            grad_at(code, p, x - a, g[i])
        g -= g.mean(axis=0)
        return g.T @ g / self.n_samples

    @functools.cached_property
    def _points_1d(self):
        if self.dim != 1:
            return (), ()
        base_pts = [c.x[0] for c in self.base.minima + self.base.saddles]
        lo, hi = min(base_pts) - 3 * np.abs(self.offsets).max() - 1, max(base_pts) + 3 * np.abs(self.offsets).max() + 1
        xs = np.linspace(lo, hi, 4001)
        gs = np.array([self.grad([x])[0] for x in xs])
        idx = np.nonzero(np.sign(gs[:-1]) != np.sign(gs[1:]))[0]
        mins, maxs = [], []
        for i in idx:
            a, b = xs[i], xs[i + 1]
            for _ in range(60):  # bisection on the gradient sign change
                m = 0.5 * (a + b)
                if np.sign(self.grad([m])[0]) == np.sign(self.grad([a])[0]):
                    a = m
                else:
                    b = m
            x = 0.5 * (a + b)
            (mins if gs[i] < 0 else maxs).append(x)
        return tuple(self._critical([x], "min") for x in mins), tuple(self._critical([x], "max") for x in maxs)

    @property
    def minima(self):
        return self._points_1d[0] if self.dim == 1 else self.base.minima

    @property
    def saddles(self):
        return self._points_1d[1] if self.dim == 1 else self.base.saddles


@dataclass(frozen=True)
class CustomLandscape(Landscape):
    """A user's landscape given by compiled (``numba.njit``) functions.

    Contract (``params`` is a float64 array passed through unchanged)::

        grad(x, params, out) -> None      # required: write ∇L(x) into out (d,)
        loss(x, params) -> float          # optional (needed for barrier heights)
        hess(x, params, out) -> None      # optional: write ∇²L(x) into out (d, d); needed for HessianNoise

    ``minima``/``saddles`` may be given as sequences of points (d,).  The simulation kernels are compiled
    for these functions once per process (the on-disk cache covers the built-in landscapes only).
    """

    grad_fn: Callable
    dim: int
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loss_fn: Optional[Callable] = None
    hess_fn: Optional[Callable] = None
    minimum_points: tuple = ()
    saddle_points: tuple = ()

    def __post_init__(self):
        if not isinstance(self.grad_fn, nb.core.registry.CPUDispatcher):
            raise TypeError("grad_fn must be a numba.njit-compiled function grad(x, params, out)")
        for name in ("loss_fn", "hess_fn"):
            f = getattr(self, name)
            if f is not None and not isinstance(f, nb.core.registry.CPUDispatcher):
                raise TypeError(f"{name} must be a numba.njit-compiled function or None")
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim}")
        object.__setattr__(self, "params", np.asarray(self.params, dtype=np.float64).reshape(-1))

    def lower(self):
        return -1, self.params, np.zeros((0, self.dim))

    def loss(self, x):
        if self.loss_fn is None:
            raise ValueError("this CustomLandscape has no loss_fn")
        return float(self.loss_fn(self._point(x), self.params))

    def grad(self, x):
        out = np.empty(self.dim)
        self.grad_fn(self._point(x), self.params, out)
        return out

    def hessian(self, x):
        if self.hess_fn is None:
            raise ValueError("this CustomLandscape has no hess_fn")
        out = np.empty((self.dim, self.dim))
        self.hess_fn(self._point(x), self.params, out)
        return out

    def _maybe_critical(self, x, kind):
        x = self._point(x)
        loss = self.loss(x) if self.loss_fn is not None else float("nan")
        hess = self.hessian(x) if self.hess_fn is not None else np.full((self.dim, self.dim), np.nan)
        return CriticalPoint(x, loss, hess, kind)

    @property
    def minima(self):
        return tuple(self._maybe_critical(x, "min") for x in self.minimum_points)

    @property
    def saddles(self):
        return tuple(self._maybe_critical(x, "saddle") for x in self.saddle_points)
