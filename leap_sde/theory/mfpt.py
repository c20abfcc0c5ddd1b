"""Exact mean first-passage times of diffusions: 1-D quadrature and the d-D SQRA grid solve."""
from __future__ import annotations

import math

import numpy as np

from ._common import _LOG2, _eval, _finish, _positive, _scalar

__all__ = ["mfpt_1d_grid", "mfpt_1d", "mfpt_sqra_grid"]


def mfpt_1d_grid(x, U, D, *, dU=None, log: bool = False) -> np.ndarray:
    r"""Exact mean first-passage time of a 1-D diffusion at every point of a grid.

    For ``dX = -U'(X) dt + sqrt(2 D(X)) dW`` (Itô), reflecting at ``x[0]`` and absorbing at
    ``x[-1]``, with ``Φ(x) = ∫^x U'(y)/D(y) dy``,

    .. math:: T(x_0) = \int_{x_0}^{x_c} dy\, e^{Φ(y)} \int_{x_l}^{y} dz\, \frac{e^{-Φ(z)}}{D(z)},

    which for constant ``D`` is ``(1/D) ∫ dy e^{U(y)/D} ∫ dz e^{-U(z)/D}``. Both integrals are
    cumulative trapezoids evaluated in log space (``logaddexp``), so ``ΔU/D`` of several hundred
    neither overflows nor underflows; ``T`` itself overflows float64 only when ``log T > 709``
    (use ``log=True`` there).

    Parameters
    ----------
    x : array_like, shape (n,)
        Strictly monotone grid, ``n >= 3``. ``x[0]`` is the reflecting end ``x_l`` and ``x[-1]`` the
        absorbing point ``x_c``; the grid may decrease (absorbing on the left).
    U : array_like, shape (n,)
        Potential on the grid. Only needed up to an additive constant.
    D : float or array_like, shape (n,)
        Diffusion coefficient (> 0), constant or on the grid.
    dU : array_like, shape (n,), optional
        ``U'`` on the grid, used for ``Φ`` when ``D`` varies. Defaults to ``np.gradient(U, x)``
        (second-order accurate).
    log : bool
        Return ``log T`` instead of ``T``.

    Returns
    -------
    ndarray, shape (n,)
        ``T(x_i)`` (or its log); ``T(x[-1]) = 0`` (``-inf`` in log).

    Notes
    -----
    Valid for any ``U`` and positive ``D`` (no small-noise assumption): it solves the backward
    equation ``D T'' - U' T' = -1``, ``T(x_c) = 0``, ``T'(x_l) = 0`` exactly up to the O(h²)
    trapezoid error. A reflecting end placed where ``Φ - min Φ ≫ 1`` reproduces ``x_l = -∞``.
    The start point shifts ``T`` by an additive in-well relaxation time, so compare Monte Carlo
    and quadrature from the same ``x_0``.

    Source: standard (Gardiner, Handbook of Stochastic Methods §5.2.7); the Itô form and its
    numerical check (EM vs quadrature to ~1%): docs/theory.md §1.3.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 3:
        raise ValueError(f"x must be a 1-D grid with at least 3 points, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    dx = np.diff(x)
    if not (np.all(dx > 0) or np.all(dx < 0)):
        raise ValueError("x must be strictly monotone")
    U = np.asarray(U, dtype=np.float64)
    if U.shape != x.shape or not np.all(np.isfinite(U)):
        raise ValueError(f"U must be finite with the shape of x {x.shape}, got {U.shape}")
    if np.ndim(D) == 0:
        Dc = _positive("D", D)
        phi = U / Dc
        logw = -phi - math.log(Dc)
    else:
        Dv = np.asarray(D, dtype=np.float64)
        if Dv.shape != x.shape or not np.all(np.isfinite(Dv)) or np.any(Dv <= 0):
            raise ValueError(f"D must be finite and > 0 with the shape of x {x.shape}")
        if dU is None:
            dUv = np.gradient(U, x, edge_order=2)
        else:
            dUv = np.asarray(dU, dtype=np.float64)
            if dUv.shape != x.shape or not np.all(np.isfinite(dUv)):
                raise ValueError(f"dU must be finite with the shape of x {x.shape}")
        f = dUv / Dv
        phi = np.concatenate(([0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * dx)))
        logw = -phi - np.log(Dv)
    m = float(phi.min())  # T is invariant under Φ -> Φ + const; shift both factors
    phi = phi - m
    logw = logw + m
    logdx = np.log(np.abs(dx))
    # inner integral I(y) = ∫_{x_l}^{y} e^{-Φ}/D, in log space
    seg = np.logaddexp(logw[:-1], logw[1:]) - _LOG2 + logdx
    logI = np.concatenate(([-np.inf], np.logaddexp.accumulate(seg)))
    # outer integral from x_i to x_c of e^{Φ} I
    g = phi + logI
    seg2 = np.logaddexp(g[:-1], g[1:]) - _LOG2 + logdx
    logT = np.concatenate((np.logaddexp.accumulate(seg2[::-1])[::-1], [-np.inf]))
    return logT if log else np.exp(logT)


def _phi_on(x: np.ndarray, U, D, dU) -> np.ndarray:
    """Φ on a grid (for locating a far reflecting end); constant offset irrelevant."""
    Uv = _eval(U, x, "U") if U is not None else None
    if np.ndim(D) == 0 and not callable(D):
        if Uv is None:
            g = _eval(dU, x, "dU")
            return np.concatenate(([0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(x)))) / D
        return Uv / D
    Dv = _eval(D, x, "D")
    g = _eval(dU, x, "dU") if dU is not None else np.gradient(Uv, x, edge_order=2)
    f = g / Dv
    return np.concatenate(([0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(x))))


def _far_end(U, D, dU, x0: float, direction: float, margin: float = 50.0) -> float:
    """Find a reflecting end ``x0 + direction*w`` with Φ(end) - min Φ on [x0, end] >= margin."""
    w = 1.0
    for _ in range(60):
        xs = x0 + direction * np.linspace(0.0, w, 2001)
        try:
            phi = _phi_on(xs, U, D, dU)
        except ValueError:
            break
        if phi[-1] - phi.min() >= margin:
            return float(xs[-1])
        w *= 2.0
    raise ValueError(
        "x_l: could not find a reflecting end where the potential confines the process "
        "(Φ rises by 50 within 2^60 of x0); pass a finite x_l"
    )


def mfpt_1d(U, D, x0, x_c, x_l, *, dU=None, n: int = 200_001, log: bool = False) -> float:
    r"""Exact mean first-passage time from ``x0`` to an absorbing point ``x_c`` (1-D quadrature).

    .. math:: T(x_0) = \int_{x_0}^{x_c} dy\, e^{Φ(y)} \int_{x_l}^{y} dz\, e^{-Φ(z)}/D(z),
              \qquad Φ(x) = \int^x U'/D

    for ``dX = -U'(X) dt + sqrt(2 D(X)) dW`` (Itô, as Euler–Maruyama simulates it), reflecting at
    ``x_l`` and absorbing at ``x_c``; with constant ``D``, ``Φ = U/D``. Evaluated by
    :func:`mfpt_1d_grid` on a grid of ``n`` points that contains ``x0`` exactly, in log space.

    Parameters
    ----------
    U : callable or None
        Potential ``U(x)`` (vectorised or scalar). May be ``None`` if ``dU`` is given.
    D : float or callable
        Diffusion coefficient ``D > 0`` (constant) or ``D(x) > 0`` (state-dependent, Itô).
    x0 : float
        Start point, strictly between ``x_l`` and ``x_c``.
    x_c : float
        Absorbing point (finite). May lie on either side of ``x0``.
    x_l : float
        Reflecting end, on the other side of ``x0``. ``±inf`` (the side away from ``x_c``) picks a
        finite end automatically where ``Φ`` has risen by 50 above its minimum (neglected mass
        ``≲ e^{-50}``).
    dU : callable, optional
        ``U'(x)``. Used for ``Φ`` when ``D`` is state dependent (default: finite differences of
        ``U``, second order), or alone (with ``U=None``).
    n : int
        Number of grid points (``>= 101``). 2·10⁵ gives ~1e-8 relative accuracy on smooth
        double wells at ``ΔU/D ≤ 500``; the grid must resolve ``sqrt(D/|U''|)``.
    log : bool
        Return ``log T``.

    Returns
    -------
    float
        ``T`` in continuous time (divide by the step ``η`` for iterations), or ``log T``.

    Notes
    -----
    Exact for any barrier height (no small-noise assumption) up to the O(h²) grid error. Absorb
    at the *other minimum* or a few ``sqrt(D/|U''(b)|)`` beyond the saddle to measure the Kramers
    time: absorbing at the saddle itself gives about half of it (docs/theory.md §1.2).

    Source: standard (Gardiner §5.2.7); Itô form derived in this project: docs/theory.md §1.3.
    """
    x0 = _scalar("x0", x0)
    x_c = _scalar("x_c", x_c)
    if np.ndim(x_l) != 0:
        raise ValueError("x_l must be a scalar")
    x_l = float(x_l)
    if math.isnan(x_l):
        raise ValueError("x_l must not be nan")
    if U is None and dU is None:
        raise ValueError("U: give U or dU")
    if U is not None and not callable(U):
        raise ValueError("U must be callable (use mfpt_1d_grid for values on a grid)")
    if dU is not None and not callable(dU):
        raise ValueError("dU must be callable")
    if callable(D):
        Dc = D
    else:
        Dc = _positive("D", D)
    n = int(n)
    if n < 101:
        raise ValueError(f"n must be >= 101, got {n}")
    if x_c == x0:
        raise ValueError("x_c must differ from x0")
    direction = math.copysign(1.0, x_c - x0)  # towards the absorbing point
    if math.isinf(x_l):
        if math.copysign(1.0, x_l) == direction:
            raise ValueError("x_l = ±inf must lie on the side of x0 away from x_c")
        x_l = _far_end(U, Dc, dU, x0, -direction)
    if not (x_l - x0) * direction < 0:
        raise ValueError(f"x_l must lie on the other side of x0 from x_c (x_l={x_l}, x0={x0}, x_c={x_c})")
    L1, L2 = abs(x0 - x_l), abs(x_c - x0)
    n1 = max(3, int(round((n - 1) * L1 / (L1 + L2))) + 1)
    n2 = max(3, n - n1 + 1)
    xs = np.concatenate((np.linspace(x_l, x0, n1), np.linspace(x0, x_c, n2)[1:]))
    i0 = n1 - 1
    if U is not None:
        Uv = _eval(U, xs, "U")
    else:
        g = _eval(dU, xs, "dU")
        Uv = np.concatenate(([0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(xs))))
    if callable(Dc):
        Dv = _eval(Dc, xs, "D")
        if np.any(Dv <= 0):
            raise ValueError(f"D(x) must be > 0; D({xs[np.argmin(Dv)]!r}) = {Dv.min()!r}")
        dUv = _eval(dU, xs, "dU") if dU is not None else None
        logT = mfpt_1d_grid(xs, Uv, Dv, dU=dUv, log=True)
    else:
        logT = mfpt_1d_grid(xs, Uv, Dc, log=True)
    return _finish(logT[i0], log)


def mfpt_sqra_grid(U, D, spacing, absorbing, *, reflecting=None) -> np.ndarray:
    r"""Exact MFPT of ``dX = −∇U dt + sqrt(2D) dW`` on a d-D Cartesian grid (SQRA generator).

    Square-root approximation between face neighbours ``i → j`` along axis ``k`` (spacing ``h_k``):
    ``Q_ij = (D/h_k²) exp(−(U_j − U_i)/(2D))``; the box boundary reflects. Solves the backward
    equation ``−Q T = 1`` on the non-absorbing cells with ``T = 0`` on ``absorbing`` (sparse LU).

    Parameters
    ----------
    U : ndarray, shape (n_1, ..., n_d)
        Potential on the grid.
    D : float
        Constant isotropic diffusion coefficient (> 0).
    spacing : float or sequence of d floats
        Grid spacings ``h_k``.
    absorbing : ndarray of bool, shape of ``U``
        Absorbing cells (non-empty).
    reflecting : None
        Deprecated (the box boundary always reflects); passing it warns, ``False`` is an error.

    Returns
    -------
    ndarray, shape of ``U``
        ``T`` at every cell (0 on absorbing cells).

    Notes
    -----
    Converges to the generator ``L = DΔ − ∇U·∇`` as ``h → 0`` (O(h²)); no small-noise assumption,
    so it is the exact reference for Eyring–Kramers' finite-``D`` corrections (docs/theory.md
    §6.3). Choose the box where ``U − min U ≫ D``.

    Source: SQRA (Lie, Fackeldey & Weber 2013; Donati, Weber & Keller); d-D form derived in this
    project, docs/theory.md §6.3.
    """
    from scipy import sparse
    from scipy.sparse import linalg as splinalg

    U = np.asarray(U, dtype=np.float64)
    if U.ndim < 1 or not np.all(np.isfinite(U)):
        raise ValueError("U must be a finite array with at least one axis")
    D = _positive("D", D)
    h = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (U.ndim,))
    if not np.all(h > 0):
        raise ValueError("spacing must be > 0")
    ab = np.asarray(absorbing, dtype=bool)
    if ab.shape != U.shape:
        raise ValueError(f"absorbing must have the shape of U {U.shape}")
    if not ab.any() or ab.all():
        raise ValueError("absorbing must mark some but not all cells")
    if reflecting is not None:
        import warnings

        warnings.warn("mfpt_sqra_grid: reflecting= is deprecated and will be removed (the box boundary always "
                      "reflects)", DeprecationWarning, stacklevel=2)
        if not reflecting:
            raise ValueError("reflecting: only a reflecting box boundary is implemented (reflecting=False "
                             "is not supported)")
    N = U.size
    idx = np.arange(N).reshape(U.shape)
    rows, cols, vals = [], [], []
    diag = np.zeros(N)
    for k in range(U.ndim):
        a = [slice(None)] * U.ndim
        b = [slice(None)] * U.ndim
        a[k], b[k] = slice(None, -1), slice(1, None)
        i, j = idx[tuple(a)].ravel(), idx[tuple(b)].ravel()
        du = (U[tuple(b)] - U[tuple(a)]).ravel() / (2.0 * D)
        f = D / h[k] ** 2
        qij, qji = f * np.exp(-du), f * np.exp(du)
        rows += [i, j]
        cols += [j, i]
        vals += [qij, qji]
        np.add.at(diag, i, qij)
        np.add.at(diag, j, qji)
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    Q = sparse.csr_matrix((vals, (rows, cols)), shape=(N, N)) - sparse.diags(diag)
    free = ~ab.ravel()
    A = -Q[free][:, free]
    T = np.zeros(N)
    T[free] = splinalg.spsolve(A.tocsc(), np.ones(int(free.sum())))
    return T.reshape(U.shape)
