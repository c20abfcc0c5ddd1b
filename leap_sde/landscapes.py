"""Loss landscapes evaluated inside compiled code.

Each landscape is defined once: a frozen dataclass with named parameters, and three small compiled functions
(loss, gradient, Hessian) in one of three *forms*, declared by the class attribute ``form``:

    "1d"   loss(x, p) -> float          grad(x, p) -> float            hess(x, p) -> float
    "2d"   loss(x0, x1, p) -> float     grad(x0, x1, p) -> (g0, g1)     hess(x0, x1, p) -> (h00, h01, h11)
    "nd"   loss(x, p) -> float          grad(x, p, out) -> None         hess(x, p, out) -> None

with ``x`` a point of shape (d,) in the "nd" form (gradients written into ``out`` (d,), Hessians into
``out`` (d, d)) and ``p = lower()``, the landscape's parameters as a tuple or named tuple.  The kernel
generator (:mod:`leap_sde._codegen`) composes every simulation kernel from these functions, so the formulas
below are the only place they are written; the Python methods :meth:`Landscape.loss`, :meth:`~Landscape.grad`
and :meth:`~Landscape.hessian` call the same compiled code.  How to add a landscape: ``docs/developing.md``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

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
    "ThreeHoleWell",
    "StyblinskiTang",
    "FiniteSum",
    "CustomLandscape",
]


# --------------------------------------------------------------------------------------------------
# compiled definitions (one set per landscape)
@nb.njit(cache=True)
def poly_loss(x, c):
    """Σ_j c_j x^j by Horner's rule; ``c`` is a tuple, so its length (the degree) is fixed at compile time."""
    v = 0.0
    for j in range(len(c) - 1, -1, -1):
        v = v * x + c[j]
    return v


@nb.njit(cache=True)
def poly_grad(x, c):
    v = 0.0
    for j in range(len(c) - 1, 0, -1):
        v = v * x + j * c[j]
    return v


@nb.njit(cache=True)
def poly_hess(x, c):
    v = 0.0
    for j in range(len(c) - 1, 1, -1):
        v = v * x + j * (j - 1) * c[j]
    return v


class PWQParams(NamedTuple):
    """Two-sided C1 piecewise quadratic: loss at the saddle, saddle curvature, and per side the saddle-region
    half-width ``xb``, the signed minimum position ``xm``, the curvature ``h`` and the barrier ``du``."""

    top: float
    curv_saddle: float
    xb_left: float
    xm_left: float
    h_left: float
    du_left: float
    xb_right: float
    xm_right: float
    h_right: float
    du_right: float


@nb.njit(inline="always")
def _pwq_side(x, p):
    if x < 0.0:
        return p.xb_left, p.xm_left, p.h_left, p.du_left
    return p.xb_right, p.xm_right, p.h_right, p.du_right


@nb.njit(cache=True)
def pwq_loss(x, p):
    xb, xm, h, du = _pwq_side(x, p)
    if abs(x) <= xb:
        return p.top - 0.5 * p.curv_saddle * x * x
    return p.top - du + 0.5 * h * (x - xm) ** 2


@nb.njit(cache=True)
def pwq_grad(x, p):
    xb, xm, h, du = _pwq_side(x, p)
    return -p.curv_saddle * x if abs(x) <= xb else h * (x - xm)


@nb.njit(cache=True)
def pwq_hess(x, p):
    xb, xm, h, du = _pwq_side(x, p)
    return -p.curv_saddle if abs(x) <= xb else h


class QuadParams(NamedTuple):
    center: np.ndarray    # (d,)
    hess_t: np.ndarray    # (d, d), the transpose of H stored row-wise (H is symmetric up to rounding)


@nb.njit(cache=True)
def quad_loss(x, p):
    d = x.shape[0]
    v = 0.0
    for i in range(d):
        for j in range(d):
            v += 0.5 * (x[i] - p.center[i]) * p.hess_t[j, i] * (x[j] - p.center[j])
    return v


@nb.njit(cache=True)
def quad_grad(x, p, out):
    """``out_i = Σ_j H_ij (x_j − c_j)``, summed in j order as rows of Hᵀ added one by one: every ``out_i``
    has its own accumulator, so the loop over i vectorises (SIMD) without reassociating any sum."""
    d = x.shape[0]
    out[:] = 0.0
    for j in range(d):
        y = x[j] - p.center[j]
        row = p.hess_t[j]
        for i in range(d):
            out[i] += row[i] * y


@nb.njit(cache=True)
def quad_hess(x, p, out):
    d = x.shape[0]
    for i in range(d):
        for j in range(d):
            out[i, j] = p.hess_t[j, i]


@nb.njit(cache=True)
def entropic_loss(x0, x1, p):
    kappa, c = p
    a = x0 * x0 - 1.0
    return a * a + 0.5 * kappa * x1 * x1 + c * x0 * x0 * x1 * x1


@nb.njit(cache=True)
def entropic_grad(x0, x1, p):
    kappa, c = p
    return (4.0 * x0 * (x0 * x0 - 1.0) + 2.0 * c * x0 * x1 * x1,
            kappa * x1 + 2.0 * c * x0 * x0 * x1)


@nb.njit(cache=True)
def entropic_hess(x0, x1, p):
    kappa, c = p
    return 12.0 * x0 * x0 - 4.0 + 2.0 * c * x1 * x1, 4.0 * c * x0 * x1, kappa + 2.0 * c * x0 * x0


# three-hole potential (Metzner, Schütte & Vanden-Eijnden, J. Chem. Phys. 125, 084110, 2006), scaled by p
@nb.njit(cache=True)
def three_hole_loss(x0, x1, p):
    (scale,) = p
    y = x1 - 1.0 / 3.0
    v = (3.0 * math.exp(-x0 * x0 - y * y) - 3.0 * math.exp(-x0 * x0 - (x1 - 5.0 / 3.0) ** 2)
         - 5.0 * math.exp(-(x0 - 1.0) ** 2 - x1 * x1) - 5.0 * math.exp(-(x0 + 1.0) ** 2 - x1 * x1)
         + 0.2 * x0 ** 4 + 0.2 * y ** 4)
    return scale * v


@nb.njit(cache=True)
def three_hole_grad(x0, x1, p):
    (scale,) = p
    y, w = x1 - 1.0 / 3.0, x1 - 5.0 / 3.0
    a = 3.0 * math.exp(-x0 * x0 - y * y)
    b = -3.0 * math.exp(-x0 * x0 - w * w)
    c = -5.0 * math.exp(-(x0 - 1.0) ** 2 - x1 * x1)
    e = -5.0 * math.exp(-(x0 + 1.0) ** 2 - x1 * x1)
    g0 = -2.0 * x0 * (a + b) - 2.0 * (x0 - 1.0) * c - 2.0 * (x0 + 1.0) * e + 0.8 * x0 ** 3
    g1 = -2.0 * y * a - 2.0 * w * b - 2.0 * x1 * (c + e) + 0.8 * y ** 3
    return scale * g0, scale * g1


@nb.njit(cache=True)
def three_hole_hess(x0, x1, p):
    (scale,) = p
    y, w = x1 - 1.0 / 3.0, x1 - 5.0 / 3.0
    terms = ((3.0, 0.0, y), (-3.0, 0.0, w), (-5.0, 1.0, x1), (-5.0, -1.0, x1))
    h00, h01, h11 = 2.4 * x0 * x0, 0.0, 2.4 * y * y
    for amp, cx, dy in terms:  # amp·exp(−(x0 − cx)² − dy²)
        dx = x0 - cx
        f = amp * math.exp(-dx * dx - dy * dy)
        h00 += f * (4.0 * dx * dx - 2.0)
        h01 += f * 4.0 * dx * dy
        h11 += f * (4.0 * dy * dy - 2.0)
    return scale * h00, scale * h01, scale * h11


@nb.njit(cache=True)
def styblinski_loss(x, a):
    v = 0.0
    for i in range(x.shape[0]):
        z = a[i] * x[i]
        v += 0.5 * (z ** 4 - 16.0 * z * z + 5.0 * z)
    return v


@nb.njit(cache=True)
def styblinski_grad(x, a, out):
    for i in range(x.shape[0]):
        z = a[i] * x[i]
        out[i] = 0.5 * a[i] * (4.0 * z ** 3 - 32.0 * z + 5.0)


@nb.njit(cache=True)
def styblinski_hess(x, a, out):
    out[:, :] = 0.0
    for i in range(x.shape[0]):
        z = a[i] * x[i]
        out[i, i] = 0.5 * a[i] * a[i] * (12.0 * z * z - 32.0)


# --------------------------------------------------------------------------------------------------
# Python objects
@dataclass(frozen=True)
class CriticalPoint:
    """A critical point: location ``x`` (d,), loss, Hessian (d, d) and ``kind`` ('min' or 'saddle'; in 1-D a
    saddle is a local maximum)."""

    x: np.ndarray
    loss: float
    hessian: np.ndarray
    kind: str


class Landscape:
    """Abstract loss landscape ``L: R^d -> R``.

    Kernel contract (see the module docstring): a concrete class declares ``form`` ("1d", "2d" or "nd") and
    ``kernel_functions = (loss, grad, hess)``, compiled functions of that form, and :meth:`lower` returns
    their parameter argument.  ``constant_hessian`` declares a Hessian independent of ``x`` (lets the
    kernels factor HessianNoise once).  Known critical points are ``minima`` and ``saddles``.
    """

    dim: int
    form: str = "nd"
    kernel_functions: tuple = ()
    constant_hessian: bool = False

    def lower(self):
        """The parameter argument ``p`` of the compiled functions (a tuple or named tuple of floats/arrays)."""
        raise NotImplementedError

    # Python-side evaluation through the same compiled code the kernels use
    def _eval(self, x, what):
        loss_fn, grad_fn, hess_fn = self.kernel_functions
        p = self.lower()
        d = self.dim
        if what == "loss":
            return float(loss_fn(x[0], p) if self.form == "1d" else
                         loss_fn(x[0], x[1], p) if self.form == "2d" else loss_fn(x, p))
        if what == "grad":
            if self.form == "1d":
                return np.array([grad_fn(x[0], p)])
            if self.form == "2d":
                return np.array(grad_fn(x[0], x[1], p))
            out = np.empty(d)
            grad_fn(x, p, out)
            return out
        if self.form == "1d":
            return np.array([[hess_fn(x[0], p)]])
        if self.form == "2d":
            h00, h01, h11 = hess_fn(x[0], x[1], p)
            return np.array([[h00, h01], [h01, h11]])
        out = np.empty((d, d))
        hess_fn(x, p, out)
        return out

    def _mean(self, x, what):
        return self._eval(self._point(x), what)

    def loss(self, x) -> float:
        """``L(x)`` for ``x`` of shape (d,)."""
        return float(self._mean(x, "loss"))

    def grad(self, x) -> np.ndarray:
        """``∇L(x)``, shape (d,)."""
        return self._mean(x, "grad")

    def hessian(self, x) -> np.ndarray:
        """``∇²L(x)``, shape (d, d)."""
        return self._mean(x, "hess")

    def _point(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {x.shape}")
        return x

    def _critical(self, x, kind) -> CriticalPoint:
        x = self._point(x)
        return CriticalPoint(x, self.loss(x), self.hessian(x), kind)

    def _newton_critical(self, guess, kind, tol=1e-13, max_iter=50) -> CriticalPoint:
        """The critical point reached by Newton's method on ∇L from ``guess`` (for surfaces whose critical
        points have no closed form)."""
        x = self._point(guess).copy()
        for _ in range(max_iter):
            dx = np.linalg.solve(self.hessian(x), self.grad(x))
            x -= dx
            if np.max(np.abs(dx)) < tol * max(1.0, np.max(np.abs(x))):
                break
        return self._critical(x, kind)

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
    form = "nd"
    kernel_functions = (quad_loss, quad_grad, quad_hess)
    constant_hessian = True

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
        return QuadParams(self.center, np.ascontiguousarray(self.hessian_matrix.T))

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
    form = "1d"
    kernel_functions = (pwq_loss, pwq_grad, pwq_hess)

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
        return PWQParams(float(self.barrier_flat), float(self.curv_saddle),
                         xbl, -xml, float(self.curv_flat), float(self.barrier_flat),
                         xbr, xmr, float(self.curv_sharp), float(self.barrier_sharp))

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
    form = "1d"
    kernel_functions = (poly_loss, poly_grad, poly_hess)

    def __post_init__(self):
        c = np.asarray(self.coeffs, dtype=np.float64).reshape(-1)
        check_finite("coeffs", c)
        c = np.trim_zeros(c, "b")
        if c.size < 3 or (c.size - 1) % 2 != 0 or c[-1] <= 0:
            raise ValueError("coeffs (ascending powers) must describe a polynomial of even degree >= 2 "
                             f"with a positive leading coefficient, got {list(self.coeffs)}")
        object.__setattr__(self, "coeffs", tuple(float(v) for v in c))

    def lower(self):
        return self.coeffs  # a tuple: the kernels are compiled for the degree

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
        return tuple(self._critical([x], "saddle") for x, hh in zip(r, h) if hh < 0)


@dataclass(frozen=True)
class EntropicWell(Landscape):
    """2-D ``L(x, y) = (x² − 1)² + κ/2·y² + c·x²·y²``.

    Minima at ``(±1, 0)`` with Hessian diag(8, κ + 2c), saddle at the origin with Hessian diag(−4, κ).
    Eyring–Kramers then gives the rate multiplied by the entropic factor ``sqrt((κ + 2c)/κ)`` relative
    to ``c = 0`` (docs/theory.md §1.4).
    """

    kappa: float = 1.0
    c: float = 0.0
    dim: int = field(default=2, init=False)
    form = "2d"
    kernel_functions = (entropic_loss, entropic_grad, entropic_hess)

    def __post_init__(self):
        check_positive("kappa", self.kappa)
        check_finite("c", self.c)
        if self.c < 0:
            raise ValueError(f"c must be >= 0 (c < 0 makes the loss unbounded below), got {self.c}")

    def lower(self):
        return (float(self.kappa), float(self.c))

    @property
    def minima(self):
        return (self._critical([-1.0, 0.0], "min"), self._critical([1.0, 0.0], "min"))

    @property
    def saddles(self):
        return (self._critical([0.0, 0.0], "saddle"),)


@dataclass(frozen=True)
class ThreeHoleWell(Landscape):
    """2-D three-hole potential (Metzner, Schütte & Vanden-Eijnden, J. Chem. Phys. 125, 084110, 2006),
    multiplied by ``scale``::

        V(x, y) = 3 e^{−x² − (y − 1/3)²} − 3 e^{−x² − (y − 5/3)²} − 5 e^{−(x − 1)² − y²} − 5 e^{−(x + 1)² − y²}
                  + x⁴/5 + (y − 1/3)⁴/5

    Two deep minima near ``(±1.05, −0.04)`` and a shallow one near ``(0, 1.54)``; between the deep minima a
    direct channel through the saddle near ``(0, −0.32)`` and an upper channel through the saddles near
    ``(±0.62, 1.10)``, the shallow minimum on the way.  Critical points have no closed form: they are found
    by Newton's method on ∇V from these published approximate locations (computed once per object).
    ``minima`` are (left, upper, right) and ``saddles`` (upper left, lower, upper right), ordered by x.
    """

    scale: float = 1.0
    dim: int = field(default=2, init=False)
    form = "2d"
    kernel_functions = (three_hole_loss, three_hole_grad, three_hole_hess)

    def __post_init__(self):
        check_positive("scale", self.scale)

    def lower(self):
        return (float(self.scale),)

    @functools.cached_property
    def _points(self):
        mins = tuple(self._newton_critical(g, "min") for g in ([-1.05, -0.04], [0.0, 1.54], [1.05, -0.04]))
        sads = tuple(self._newton_critical(g, "saddle") for g in ([-0.62, 1.10], [0.0, -0.32], [0.62, 1.10]))
        return mins, sads

    @property
    def minima(self):
        return self._points[0]

    @property
    def saddles(self):
        return self._points[1]


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
    form = "nd"
    kernel_functions = (styblinski_loss, styblinski_grad, styblinski_hess)

    def __post_init__(self):
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim}")
        a = np.broadcast_to(np.asarray(self.sharpness, dtype=np.float64), (self.dim,)).copy()
        check_positive("sharpness", a)
        object.__setattr__(self, "sharpness", a)

    def lower(self):
        return self.sharpness

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

    @property
    def form(self):
        return self.base.form

    @property
    def kernel_functions(self):
        return self.base.kernel_functions

    def lower(self):
        return self.base.lower()

    def _mean(self, x, what):
        x = self._point(x)
        return sum(self.base._eval(x - a, what) for a in self.offsets) / self.n_samples

    def gradient_covariance(self, x) -> np.ndarray:
        """Per-sample gradient covariance ``C(θ) = (1/n) Σ_i (g_i − ḡ)(g_i − ḡ)ᵀ``, shape (d, d)."""
        x = self._point(x)
        g = np.array([self.base._eval(x - a, "grad") for a in self.offsets])
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
        return tuple(self._critical([x], "min") for x in mins), tuple(self._critical([x], "saddle") for x in maxs)

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

    ``minima``/``saddles`` may be given as sequences of points (d,).  Kernels compiled for these functions
    are cached on disk and reused by later processes when the functions are importable, i.e. defined at the
    top level of a module on ``sys.path`` (not in ``__main__`` or a notebook); otherwise they are compiled
    once per process.  See ``docs/developing.md``.
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

    form = "nd"

    @property
    def kernel_functions(self):
        return (self.loss_fn, self.grad_fn, self.hess_fn)

    def lower(self):
        return self.params

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
