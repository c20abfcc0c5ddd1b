r"""Closed forms and exact (non-Monte-Carlo) references for escape dynamics.

Pure NumPy/SciPy, float64 throughout, no dependence on the simulator. Every function states its
formula first, then the conditions under which it holds and its source. Source tags follow
``shared/reference/theory-notes.md``: **V** verbatim from a retrieved source, **R** recalled from
the cited paper (verify against the PDF before quoting), **D** derived, **N** checked numerically.
Results marked *derived in this project* are ours, not the cited papers'.

Conventions (theory notes §0). The SDE is ``dX = -U'(X) dt + sqrt(2 D) dW`` (Itô), with invariant
density ``∝ exp(-U/D)``; there is no friction constant. A discrete optimiser
``θ_{k+1} = θ_k - η (∇L + ξ_k)`` with ``Cov ξ = C`` is read as this SDE with time ``t = k η`` and
``D = η C / 2``; escape times in *iterations* are ``τ / η``. All escape times returned here are in
continuous time ``t`` unless stated otherwise.

Contents
--------
Exact references
    :func:`mfpt_1d`, :func:`mfpt_1d_grid` (1-D mean first-passage time, constant or Itô
    state-dependent D, log space), :func:`spectral_gap_1d`, :func:`spectral_gap_1d_grid`
    (square-root approximation of the Fokker–Planck generator).
Asymptotic escape laws
    :func:`kramers_time`, :func:`eyring_kramers_time`, :func:`xie_sgd_escape_time`,
    :func:`xie_sgd_exponent`, :func:`xie_sgd_log_slope`, :func:`xie_white_noise_escape_time`.
LEAP (derived in this project, theory notes §8)
    :func:`leap_diffusion`, :func:`leap_diffusion_1d`, :func:`leap_mfpt_1d`,
    :func:`leap_effective_batch`, :func:`leap_xie_exponent`, :func:`leap_xie_escape_time`.
Discrete-time quadratics
    :func:`sgd_stationary_variance`, :func:`langevin_stationary_variance`,
    :func:`ou_stationary_variance`, :func:`leap_stationary_variance`,
    :func:`stationary_covariance`, :func:`gd_stability_threshold`,
    :func:`leap_mean_square_threshold`, :func:`leap_lyapunov_exponent`,
    :func:`leap_almost_sure_threshold`, :func:`em_boundary_shift`.
Heavy tails
    :func:`leap_abs_moment`, :func:`kesten_tail_index`, :func:`hill_estimator`.
Escape-efficiency indicator (Zhu et al.)
    :func:`escape_indicator`, :func:`escape_indicator_isotropic`, :func:`ou_loss_increase`,
    :func:`discrete_loss_increase`.
"""
from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np
from scipy import integrate, linalg, optimize, special

__all__ = [
    "GOBET_MENOZZI_BETA",
    "STEP_VARIANTS",
    "mfpt_1d",
    "mfpt_1d_grid",
    "spectral_gap_1d",
    "spectral_gap_1d_grid",
    "kramers_time",
    "eyring_kramers_time",
    "xie_sgd_exponent",
    "xie_sgd_log_slope",
    "xie_sgd_escape_time",
    "xie_white_noise_escape_time",
    "leap_diffusion",
    "leap_diffusion_1d",
    "leap_mfpt_1d",
    "leap_effective_batch",
    "leap_xie_exponent",
    "leap_xie_escape_time",
    "sgd_stationary_variance",
    "langevin_stationary_variance",
    "ou_stationary_variance",
    "leap_stationary_variance",
    "stationary_covariance",
    "gd_stability_threshold",
    "leap_mean_square_threshold",
    "leap_lyapunov_exponent",
    "leap_almost_sure_threshold",
    "leap_abs_moment",
    "kesten_tail_index",
    "hill_estimator",
    "escape_indicator",
    "escape_indicator_isotropic",
    "ou_loss_increase",
    "discrete_loss_increase",
    "em_boundary_shift",
    "discrete_transition_matrix_1d",
    "discrete_mfpt_1d",
    "discrete_stationary_1d",
    "mfpt_sqra_grid",
]

ArrayLike = Union[float, np.ndarray]
Func = Callable[[np.ndarray], np.ndarray]

#: Gobet–Menozzi / Broadie–Glasserman–Kou boundary-shift constant β = −ζ(1/2)/√(2π) ≈ 0.5826
#: (theory notes §2.3, V for the value 0.5826, R for the ζ form).
GOBET_MENOZZI_BETA = float(-special.zeta(0.5) / math.sqrt(2.0 * math.pi))

#: Step-size perturbation laws understood by the LEAP functions, each a function of one standard
#: normal z: ``"gaussian"`` η̃ = η + σz; ``"clipped"`` η̃ = max(η + σz, 0);
#: ``"lognormal"`` η̃ = η·exp(σz − σ²/2), σ the log-scale standard deviation (always relative;
#: E η̃ = η, Var η̃ = η²(e^{σ²} − 1)). Same definitions as :class:`leap_sde.LEAP`.
STEP_VARIANTS = ("gaussian", "clipped", "lognormal")

_LOG2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------------------------
def _scalar(name: str, value) -> float:
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def _positive(name: str, value) -> float:
    v = _scalar(name, value)
    if v <= 0.0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return v


def _nonneg(name: str, value) -> float:
    v = _scalar(name, value)
    if v < 0.0:
        raise ValueError(f"{name} must be >= 0, got {v!r}")
    return v


def _unit_interval(name: str, value) -> float:
    v = _scalar(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
    return v


def _sym_matrix(name: str, value, dim: int | None = None) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {a.shape}")
    if dim is not None and a.shape[0] != dim:
        raise ValueError(f"{name} must be {dim}x{dim}, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must have finite entries")
    if not np.allclose(a, a.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(a).max()))):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (a + a.T)


def _variant(variant: str) -> str:
    if variant not in STEP_VARIANTS:
        raise ValueError(f"variant must be one of {STEP_VARIANTS}, got {variant!r}")
    return variant


def _sigma_abs(eta: float, sigma: float, relative: bool) -> float:
    return sigma * eta if relative else sigma


def _step_scale(eta: float, sigma, relative: bool, variant: str) -> float:
    """σ as used by :func:`_step_of_z`: absolute for gaussian/clipped, log-scale for lognormal."""
    sig = _nonneg("sigma", sigma)
    if _variant(variant) == "lognormal":
        return sig
    return _sigma_abs(eta, sig, relative)


def _eval(f, x: np.ndarray, name: str) -> np.ndarray:
    """Evaluate a user callable on a grid, vectorised if possible."""
    try:
        y = np.asarray(f(x), dtype=np.float64)
    except Exception:  # noqa: BLE001 - fall back to a scalar loop for non-vectorised callables
        y = None
    if y is None or y.shape != x.shape:
        y = np.array([float(f(float(xi))) for xi in x], dtype=np.float64)
    if not np.all(np.isfinite(y)):
        bad = x[~np.isfinite(y)][0]
        raise ValueError(f"{name} is not finite at x = {bad!r}")
    return y


def _finish(logv: float, log: bool) -> float:
    return float(logv) if log else float(np.exp(logv))


# --------------------------------------------------------------------------------------------
# exact 1-D mean first-passage time
# --------------------------------------------------------------------------------------------
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

    Source: theory notes §1.2 (D; standard, Gardiner §5.2.7, R); the Itô form and its N check
    (EM vs quadrature to ~1%) are also §1.2.
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
    time: absorbing at the saddle itself gives about half of it (theory notes §1.1 pitfall).

    Source: theory notes §1.2 (D; standard, Gardiner §5.2.7, R; Itô form D + N).
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


# --------------------------------------------------------------------------------------------
# spectral gap of the 1-D Fokker–Planck generator (SQRA)
# --------------------------------------------------------------------------------------------
def spectral_gap_1d_grid(x, U, D) -> float:
    r"""Spectral gap ``λ₁`` of the square-root-approximation generator on a uniform grid.

    SQRA rates between neighbouring cells of width ``h``:

    .. math:: Q_{i\to i\pm1} = \frac{D}{h^2}\exp\!\Big(-\frac{U_{i\pm1}-U_i}{2D}\Big),
              \qquad Q_{ii} = -\sum_{j\ne i} Q_{ij},

    reflecting at both ends. ``Q`` is reversible with respect to ``e^{-U/D}``; writing
    ``-Π^{1/2} Q Π^{-1/2} = BᵀB`` with ``B`` the (n−1)×n weighted difference matrix, the non-zero
    spectrum of ``-Q`` is that of the positive-definite tridiagonal ``B Bᵀ``, whose smallest
    eigenvalue is ``λ₁`` (``scipy.linalg.eigh_tridiagonal``; the zero mode is removed exactly).

    Parameters
    ----------
    x : array_like, shape (n,)
        Uniform increasing grid, ``n >= 3``.
    U : array_like, shape (n,)
        Potential on the grid.
    D : float
        Constant diffusion coefficient (> 0).

    Returns
    -------
    float
        ``λ₁ > 0``. For a double well, ``λ₁ ≈ k_{a→b} + k_{b→a}`` (``= 2/T`` in a symmetric well,
        ``T`` the MFPT to the other minimum).

    Notes
    -----
    Converges to the generator ``L = D∂² − U'∂`` as ``h → 0`` (O(h²)). The eigen-solve has an
    *absolute* error ~ 1e-16·‖BBᵀ‖ ≈ 1e-16·D/h² (times the steepest Boltzmann ratio), so ``λ₁``
    loses relative accuracy when it falls below ~1e-10·D/h²; a ``RuntimeWarning`` is issued then.
    Use :func:`mfpt_1d` for high barriers. At ``ΔU/D ≈ 3`` ``λ₁T/2`` differs from 1 by ~7% for lack
    of time-scale separation, not from grid error.

    Source: theory notes §6.3 item 2 (SQRA concept V, Donati–Weber–Keller; 1-D form D; N).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 3 or not np.all(np.isfinite(x)):
        raise ValueError("x must be a finite 1-D grid with at least 3 points")
    dx = np.diff(x)
    h = float(dx.mean())
    if h <= 0 or not np.allclose(dx, h, rtol=1e-8, atol=0.0):
        raise ValueError("x must be uniform and increasing")
    U = np.asarray(U, dtype=np.float64)
    if U.shape != x.shape or not np.all(np.isfinite(U)):
        raise ValueError(f"U must be finite with the shape of x {x.shape}")
    D = _positive("D", D)
    dUe = np.diff(U) / (4.0 * D)
    if np.abs(dUe).max() > 300.0:
        raise ValueError("U: neighbouring grid values differ by > 1200 D; refine the grid")
    s = math.sqrt(D) / h
    a = s * np.exp(-dUe)  # sqrt(W_e/π_e)
    b = s * np.exp(dUe)  # sqrt(W_e/π_{e+1})
    diag = a * a + b * b
    off = -b[:-1] * a[1:]
    lam = linalg.eigh_tridiagonal(diag, off, eigvals_only=True, select="i", select_range=(0, 0))
    lam1 = float(lam[0])
    scale = float(diag.max())
    if lam1 < 1e-10 * scale:
        import warnings

        warnings.warn(
            f"spectral gap {lam1:.3e} is below 1e-10 of the matrix scale {scale:.3e}; "
            "its relative accuracy is poor (use mfpt_1d)",
            RuntimeWarning,
            stacklevel=2,
        )
    return lam1


def spectral_gap_1d(U, D, x_l, x_r, *, n: int = 1200) -> float:
    r"""Spectral gap of the 1-D Fokker–Planck generator ``L = D∂² − U'∂`` on ``[x_l, x_r]``.

    Evaluates ``U`` on ``n`` uniform points and calls :func:`spectral_gap_1d_grid` (SQRA rates
    ``Q_{i→i±1} = (D/h²) exp(−(U_{i±1} − U_i)/(2D))``, reflecting ends). See there for the
    formula, accuracy and source (theory notes §6.3, D + N).

    Parameters
    ----------
    U : callable
        Potential, vectorised or scalar.
    D : float
        Constant diffusion coefficient (> 0).
    x_l, x_r : float
        Domain, ``x_l < x_r``; choose the ends where ``U − min U ≫ D``.
    n : int
        Grid points (``>= 3``).

    Returns
    -------
    float
        ``λ₁``; ``≈ 2/T`` in a symmetric double well (``T`` the MFPT to the other minimum).
    """
    x_l = _scalar("x_l", x_l)
    x_r = _scalar("x_r", x_r)
    if not x_r > x_l:
        raise ValueError(f"x_r must be > x_l, got x_l={x_l}, x_r={x_r}")
    if not callable(U):
        raise ValueError("U must be callable (use spectral_gap_1d_grid for grid values)")
    n = int(n)
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    xs = np.linspace(x_l, x_r, n)
    return spectral_gap_1d_grid(xs, _eval(U, xs, "U"), D)


# --------------------------------------------------------------------------------------------
# Kramers / Eyring–Kramers
# --------------------------------------------------------------------------------------------
def kramers_time(barrier, curv_min, curv_saddle, D, *, log: bool = False) -> float:
    r"""Kramers' mean escape time in 1-D.

    .. math:: E_a[τ] = \frac{2π}{\sqrt{U''(a)\,|U''(b)|}}\, e^{ΔU/D}\,[1 + o(1)]

    Parameters
    ----------
    barrier : float
        ``ΔU = U(b) − U(a) > 0``.
    curv_min : float
        ``U''(a) > 0`` at the minimum.
    curv_saddle : float
        ``U''(b)`` at the saddle (maximum); either sign accepted, its magnitude is used; ≠ 0.
    D : float
        Diffusion coefficient (> 0), our convention ``dX = −U' dt + sqrt(2D) dW``.
    log : bool
        Return ``log E[τ]``.

    Returns
    -------
    float
        Continuous-time escape time (iterations: divide by the step).

    Notes
    -----
    Asymptotic for ``ΔU/D → ∞``: at ``ΔU/D = 3–8`` it is 6–19% below the exact MFPT to the other
    minimum of ``(x²−1)²`` (relative correction ≈ 1 + (0.4–0.6)·D/ΔU); fails when a curvature
    vanishes. ``τ`` is the time to reach the other minimum (about twice the time to hit the saddle).
    Constant scalar ``D``, gradient dynamics, start inside the basin.

    Source: theory notes §1.1 (V Berglund–Gentz / popular form; R Berglund review).
    """
    barrier = _positive("barrier", barrier)
    curv_min = _positive("curv_min", curv_min)
    cs = _scalar("curv_saddle", curv_saddle)
    if cs == 0.0:
        raise ValueError("curv_saddle must be non-zero (a degenerate saddle breaks Kramers' law)")
    D = _positive("D", D)
    logt = math.log(2 * math.pi) - 0.5 * (math.log(curv_min) + math.log(abs(cs))) + barrier / D
    return _finish(logt, log)


def _saddle_data(hess_min, hess_saddle):
    Hm = _sym_matrix("hess_min", hess_min)
    Hs = _sym_matrix("hess_saddle", hess_saddle, Hm.shape[0])
    wm = np.linalg.eigvalsh(Hm)
    if wm[0] <= 0:
        raise ValueError(f"hess_min must be positive definite, smallest eigenvalue {wm[0]!r}")
    ws, vs = np.linalg.eigh(Hs)
    if not (ws[0] < 0 and (ws.size == 1 or ws[1] > 0)):
        raise ValueError(f"hess_saddle must have exactly one negative and no zero eigenvalue, got {ws}")
    return Hm, Hs, wm, ws, vs


def eyring_kramers_time(barrier, hess_min, hess_saddle, D, *, log: bool = False) -> float:
    r"""Eyring–Kramers mean escape time in d dimensions.

    .. math:: E_{x^*}[τ] = \frac{2π}{|λ_1(z^*)|}
              \sqrt{\frac{|\det ∇^2U(z^*)|}{\det ∇^2U(x^*)}}\, e^{[U(z^*)-U(x^*)]/D}
              \,[1 + O(D^{1/2}|\log D|^{3/2})]

    Parameters
    ----------
    barrier : float
        ``U(z*) − U(x*) > 0``.
    hess_min : array_like, shape (d, d) or scalar
        Hessian at the minimum (positive definite).
    hess_saddle : array_like, shape (d, d) or scalar
        Hessian at the saddle: exactly one negative eigenvalue ``λ₁``, no zero eigenvalue.
    D : float
        Isotropic constant diffusion coefficient (> 0).
    log : bool
        Return the log.

    Returns
    -------
    float
        Continuous-time escape time to the neighbourhood of the next minimum.

    Notes
    -----
    Valid for ``ΔU/D ≫ 1``, non-degenerate minimum and saddle, a single dominant saddle (several
    at the same height: rates add), isotropic constant ``D``, reversible (gradient) dynamics.
    Anisotropic noise (e.g. SGD's ``D ∝ H``) makes the dynamics non-reversible and the prefactor
    no longer applies. In 1-D it reduces to :func:`kramers_time`.

    Source: theory notes §1.3 (V/R Berglund slides, BEGK; error term R).
    """
    barrier = _positive("barrier", barrier)
    D = _positive("D", D)
    _, _, wm, ws, _ = _saddle_data(hess_min, hess_saddle)
    logt = (
        math.log(2 * math.pi)
        - math.log(-ws[0])
        + 0.5 * (float(np.sum(np.log(np.abs(ws)))) - float(np.sum(np.log(wm))))
        + barrier / D
    )
    return _finish(logt, log)


# --------------------------------------------------------------------------------------------
# Xie, Sato & Sugiyama (ICLR 2021)
# --------------------------------------------------------------------------------------------
def _xie_dirs(hess_min, hess_saddle, direction):
    Hm, Hs, wm, ws, vs = _saddle_data(hess_min, hess_saddle)
    if direction is None:
        e = vs[:, 0]
    else:
        e = np.asarray(direction, dtype=np.float64).reshape(-1)
        if e.shape != (Hm.shape[0],) or not np.all(np.isfinite(e)) or not np.any(e):
            raise ValueError(f"direction must be a non-zero vector of length {Hm.shape[0]}")
        e = e / np.linalg.norm(e)
    h_ae = float(e @ Hm @ e)
    h_be = float(ws[0])
    log_pref = (
        math.log(2 * math.pi)
        + 0.5 * (float(np.sum(np.log(np.abs(ws)))) - float(np.sum(np.log(wm))))
        - math.log(abs(h_be))
    )
    return Hm, Hs, e, h_ae, h_be, log_pref


def xie_sgd_log_slope(barrier, curv_min, curv_saddle, s) -> float:
    r"""Slope of ``log τ`` against ``B/η`` in the Xie–Sato–Sugiyama SGD escape law.

    .. math:: \frac{d\log τ}{d(B/η)} = 2ΔL\Big(\frac{s}{H_a} + \frac{1-s}{|H_b|}\Big)

    Parameters
    ----------
    barrier : float
        ``ΔL > 0``.
    curv_min : float
        ``H_a > 0`` (curvature along the escape direction at the minimum).
    curv_saddle : float
        ``H_b`` at the saddle (magnitude used, ≠ 0).
    s : float
        Path parameter in ``[0, 1]``: the fraction of the barrier climbed where ``D ≈ (η/2B)H_a``.

    Returns
    -------
    float
        The slope.

    Notes
    -----
    For a C¹ piecewise-quadratic double well (curvature ``H_a`` up to the junction, ``H_b``
    beyond) with ``D = (η/2B)|U''|`` piecewise, the exponent is exact with
    ``s = |H_b|/(H_a + |H_b|)`` (derived in this project, theory notes §4 "What s means").

    Source: theory notes §4 (R, Xie et al. ICLR 2021 Thm; exponent reading D).
    """
    barrier = _positive("barrier", barrier)
    ha = _positive("curv_min", curv_min)
    hb = abs(_scalar("curv_saddle", curv_saddle))
    if hb == 0:
        raise ValueError("curv_saddle must be non-zero")
    s = _unit_interval("s", s)
    return 2.0 * barrier * (s / ha + (1.0 - s) / hb)


def xie_sgd_exponent(barrier, curv_min, curv_saddle, *, batch_size, eta, s) -> float:
    r"""Exponent of the Xie–Sato–Sugiyama SGD escape law, ``(2BΔL/η)(s/H_a + (1−s)/|H_b|)``.

    Parameters
    ----------
    barrier, curv_min, curv_saddle, s
        As in :func:`xie_sgd_log_slope`.
    batch_size : float
        ``B >= 1`` (noise covariance ``H/B``).
    eta : float
        Learning rate ``η > 0``.

    Returns
    -------
    float
        ``log τ − log prefactor``.

    Source: theory notes §4 (R).
    """
    B = _scalar("batch_size", batch_size)
    if B < 1:
        raise ValueError(f"batch_size must be >= 1, got {B!r}")
    eta = _positive("eta", eta)
    return (B / eta) * xie_sgd_log_slope(barrier, curv_min, curv_saddle, s)


def xie_sgd_escape_time(
    barrier, hess_min, hess_saddle, *, batch_size, eta, s, direction=None, log: bool = False
) -> float:
    r"""Xie–Sato–Sugiyama escape time of SGD (noise covariance ``H/B``).

    .. math:: τ = 2π\sqrt{\frac{-\det H_b}{\det H_a}}\frac{1}{|H_{be}|}
              \exp\Big[\frac{2BΔL}{η}\Big(\frac{s}{H_{ae}} + \frac{1-s}{|H_{be}|}\Big)\Big]

    1-D: ``τ = 2π/sqrt(H_a|H_b|) · exp[(2BΔL/η)(s/H_a + (1−s)/|H_b|)]``.

    Parameters
    ----------
    barrier : float
        ``ΔL = L(b) − L(a) > 0``.
    hess_min, hess_saddle : array_like (d, d) or scalar
        Hessians ``H_a`` (positive definite) and ``H_b`` (one negative eigenvalue).
    batch_size : float
        ``B >= 1``.
    eta : float
        ``η > 0``.
    s : float
        Path parameter in ``[0, 1]`` (see :func:`xie_sgd_log_slope`).
    direction : array_like, shape (d,), optional
        Escape direction ``e``; default the eigenvector of ``H_b``'s negative eigenvalue.
        ``H_be`` is that eigenvalue and ``H_ae = eᵀ H_a e``.
    log : bool
        Return the log.

    Returns
    -------
    float
        Escape time in continuous time ``t = kη`` (iterations: ``τ/η``).

    Notes
    -----
    Conditions: ``D(θ) = (η/2B)H(θ)`` near the critical points, small ``η/B`` (exponent ≫ 1).
    The prefactor depends on conventions: the exact Itô Laplace asymptotics with ``D ∝ |H|`` give
    ``(2π/H_a)e^{ΔΦ}`` in 1-D, so test the prefactor only to a factor ~2 and the exponent (slope
    of ``log τ`` vs ``B/η``) sharply against :func:`mfpt_1d` with the simulator's ``D(θ)``. In
    d > 1 the anisotropic noise is non-reversible and the formula is an approximation.

    Source: theory notes §4 (R, Xie et al. 2021, body not retrieved; verify against the PDF).
    """
    barrier = _positive("barrier", barrier)
    B = _scalar("batch_size", batch_size)
    if B < 1:
        raise ValueError(f"batch_size must be >= 1, got {B!r}")
    eta = _positive("eta", eta)
    s = _unit_interval("s", s)
    _, _, _, h_ae, h_be, log_pref = _xie_dirs(hess_min, hess_saddle, direction)
    if h_ae <= 0:
        raise ValueError("direction: H_a must have positive curvature along the escape direction")
    expo = (2.0 * B * barrier / eta) * (s / h_ae + (1.0 - s) / abs(h_be))
    return _finish(log_pref + expo, log)


def xie_white_noise_escape_time(barrier, hess_min, hess_saddle, D, *, log: bool = False) -> float:
    r"""Xie et al.'s white-noise law: ``τ = 2π sqrt(−det H_b/det H_a)/|H_be| · exp(ΔL/D)``.

    Identical to :func:`eyring_kramers_time` (constant isotropic ``D``): the Hessians enter only the
    prefactor, so the flat/sharp escape-time ratio is polynomial in the curvatures
    (``τ_sharp/τ_flat = sqrt(H_flat/H_sharp)`` when only ``H_a`` differs).

    Parameters
    ----------
    barrier, hess_min, hess_saddle, D, log
        As in :func:`eyring_kramers_time`.

    Returns
    -------
    float
        Continuous-time escape time.

    Source: theory notes §4 (R, Xie et al. 2021) = §1.3.
    """
    return eyring_kramers_time(barrier, hess_min, hess_saddle, D, log=log)


# --------------------------------------------------------------------------------------------
# LEAP effective diffusion (derived in this project, theory notes §8)
# --------------------------------------------------------------------------------------------
_MODES = ("per-coordinate", "scalar")


def _mode(mode: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


def leap_diffusion(grad, noise_cov, eta, sigma, *, mode: str = "per-coordinate", relative: bool = False):
    r"""Effective diffusion matrix of SGD + LEAP, ``θ − (η + ε)⊙(∇L + ξ)``.

    With ``Cov ξ = C``, ``ε ~ N(0, σ²)`` independent of ``ξ`` and time ``t = kη``
    (``2Dη = Cov Δθ``):

    - per-coordinate ε:  ``D = (η/2) C + (σ²/2η) Diag(∇L∇Lᵀ + C)``,
    - scalar ε:          ``D = ((η² + σ²)/2η) C + (σ²/2η) ∇L∇Lᵀ``.

    The drift stays ``−∇L`` (ε has mean zero). In 1-D both modes give
    ``D = ((η² + σ²) C + σ² L'²)/(2η)``.

    Parameters
    ----------
    grad : float or array_like, shape (d,)
        ``∇L(θ)``.
    noise_cov : float or array_like, shape (d, d)
        Gradient-noise covariance ``C(θ)`` (symmetric PSD); a scalar in 1-D.
    eta : float
        Learning rate ``η > 0``.
    sigma : float
        Perturbation scale ``σ >= 0`` (absolute, or relative to ``η`` if ``relative``).
    mode : {"per-coordinate", "scalar"}
        Independent ε per coordinate, or one shared ε per step.
    relative : bool
        ``ε = σ η z`` instead of ``σ z``.

    Returns
    -------
    float or ndarray, shape (d, d)
        ``D`` (a float when ``grad`` is a scalar).

    Notes
    -----
    A diffusion approximation: it matches the first two moments of one step and is valid when the
    per-step displacement is small (``η`` and ``σ|∇L|`` small on the scale of the landscape). With
    ``C = H/B`` and scalar ε this is SGD with effective batch ``B η²/(η² + σ²)``; per-coordinate ε
    adds ``(σ²/2ηB)Diag(H)``, proportional to ``H`` only if ``H`` is diagonal. The ``σ²∇L∇Lᵀ`` term
    vanishes at critical points but grows along the escape path, so use :func:`leap_mfpt_1d`
    (Itô quadrature) rather than a constant-D law. The Gaussian ε sometimes gives negative steps
    (probability ``Φ(−η/σ)``); they are part of the dynamics.

    Source: derived in this project (theory notes §8, D); LEAP rule R (common reading of
    arXiv 2208.11873).
    """
    eta = _positive("eta", eta)
    sig = _sigma_abs(eta, _nonneg("sigma", sigma), relative)
    _mode(mode)
    if np.ndim(grad) == 0:
        g = _scalar("grad", grad)
        c = _nonneg("noise_cov", noise_cov)
        return ((eta**2 + sig**2) * c + sig**2 * g * g) / (2.0 * eta)
    g = np.asarray(grad, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(g)):
        raise ValueError("grad must be finite")
    C = _sym_matrix("noise_cov", noise_cov, g.size)
    G = np.outer(g, g)
    if mode == "per-coordinate":
        return (eta / 2.0) * C + (sig**2 / (2.0 * eta)) * np.diag(np.diag(G + C))
    return ((eta**2 + sig**2) / (2.0 * eta)) * C + (sig**2 / (2.0 * eta)) * G


def leap_diffusion_1d(dU, noise_var, eta, sigma, *, relative: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    r"""The 1-D LEAP diffusion profile ``D(θ) = ((η² + σ²) C(θ) + σ² U'(θ)²)/(2η)`` as a callable.

    Parameters
    ----------
    dU : callable
        ``U'(θ)``, vectorised.
    noise_var : float or callable
        Gradient-noise variance ``C(θ)`` (constant ``> 0`` or a callable ``> 0``).
    eta, sigma, relative
        As in :func:`leap_diffusion`.

    Returns
    -------
    callable
        ``D(θ)`` (vectorised).

    Source: derived in this project (theory notes §8, D).
    """
    eta = _positive("eta", eta)
    sig = _sigma_abs(eta, _nonneg("sigma", sigma), relative)
    if not callable(dU):
        raise ValueError("dU must be callable")
    if callable(noise_var):
        Cf = noise_var
    else:
        c = _positive("noise_var", noise_var)

        def Cf(x):
            return np.full(np.shape(x), c)

    a = (eta**2 + sig**2) / (2.0 * eta)
    b = sig**2 / (2.0 * eta)

    def D(x):
        x = np.asarray(x, dtype=np.float64)
        g = np.asarray(dU(x), dtype=np.float64)
        return a * np.asarray(Cf(x), dtype=np.float64) + b * g * g

    return D


def leap_mfpt_1d(
    U, dU, x0, x_c, x_l, *, eta, sigma, noise_var, relative: bool = False, n: int = 200_001, log: bool = False
) -> float:
    r"""Mean escape time implied by the LEAP diffusion model in 1-D (Itô quadrature).

    :func:`mfpt_1d` with ``D(θ) = ((η² + σ²) C(θ) + σ² U'(θ)²)/(2η)`` and drift ``−U'``:

    .. math:: T = \int_{x_0}^{x_c} dy\, e^{Φ(y)}\int_{x_l}^{y} \frac{e^{-Φ(z)}}{D(z)}dz,
              \quad Φ = \int \frac{U'}{D}.

    Parameters
    ----------
    U, dU : callable
        Loss and its derivative.
    x0, x_c, x_l
        Start, absorbing point, reflecting end (see :func:`mfpt_1d`).
    eta : float
        Learning rate (> 0). Also the time unit: iterations = ``T/η``.
    sigma : float
        LEAP scale (>= 0; absolute, or relative to ``η``).
    noise_var : float or callable
        Gradient-noise variance ``C(θ) > 0`` (e.g. white noise ``std²``, SGD-like ``|U''|/B`` with a
        floor). Must be positive: with ``C = 0`` (full-batch GD + LEAP) ``D`` vanishes at critical
        points and the diffusion model predicts no escape — that case is a stability question,
        see :func:`leap_lyapunov_exponent`.
    relative, n, log
        As in :func:`leap_diffusion` / :func:`mfpt_1d`.

    Returns
    -------
    float
        Continuous-time mean escape time (or its log).

    Notes
    -----
    Valid when the diffusion approximation of one LEAP step is (small ``η``, ``σ|U'|``, and a
    mean-square stable well, ``h(η² + σ²) < 2η``); the discrete chain adds O(η) corrections
    (it escapes faster, cf. theory notes §2.2).

    Source: derived in this project (theory notes §8 + §1.2, D).
    """
    Df = leap_diffusion_1d(dU, noise_var, eta, sigma, relative=relative)
    return mfpt_1d(U, Df, x0, x_c, x_l, dU=dU, n=n, log=log)


def leap_effective_batch(batch_size, eta, sigma, *, relative: bool = False) -> float:
    r"""Effective batch size of scalar-ε LEAP with SGD noise ``H/B``: ``B_eff = B η²/(η² + σ²)``.

    Source: derived in this project (theory notes §8, D). Ignores the ``σ²∇L∇Lᵀ`` term (zero at
    critical points).
    """
    B = _scalar("batch_size", batch_size)
    if B < 1:
        raise ValueError(f"batch_size must be >= 1, got {B!r}")
    eta = _positive("eta", eta)
    sig = _sigma_abs(eta, _nonneg("sigma", sigma), relative)
    return B * eta**2 / (eta**2 + sig**2)


def _abs_matrix(H: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(H)
    return (v * np.abs(w)) @ v.T


def leap_xie_exponent(
    barrier, hess_min, hess_saddle, *, batch_size, eta, sigma, s,
    mode: str = "per-coordinate", relative: bool = False, direction=None,
) -> float:
    r"""Exponent of the escape time of SGD + LEAP in the Xie et al. form.

    .. math:: \log τ - \log(\text{prefactor}) = ΔL\Big(\frac{s}{D_a} + \frac{1-s}{D_b}\Big),
              \qquad D_x = e^ᵀ D(x) e,

    with ``D(x)`` from :func:`leap_diffusion` at the critical point (``∇L = 0``) and noise
    covariance ``C = |H|/B`` (matrix absolute value). Scalar ε:
    ``D_a = ((η² + σ²)/2ηB) H_ae``, i.e. Xie's exponent with ``B → B η²/(η² + σ²)``; per-coordinate
    ε: ``D_a = (η/2B) H_ae + (σ²/2ηB) Σ_i e_i² |H|_ii``. With ``σ = 0`` it is
    :func:`xie_sgd_exponent`.

    Parameters
    ----------
    barrier, hess_min, hess_saddle, batch_size, eta, s, direction
        As in :func:`xie_sgd_escape_time`.
    sigma, mode, relative
        As in :func:`leap_diffusion`.

    Returns
    -------
    float
        The exponent.

    Notes
    -----
    Neglects the ``σ²∇L∇Lᵀ`` term along the path (it only adds diffusion, so this exponent is an
    *upper bound* on the true one); the 1-D Itô quadrature :func:`leap_mfpt_1d` includes it.
    Same validity as :func:`xie_sgd_escape_time`.

    Source: derived in this project (theory notes §8 + §4, D).
    """
    barrier = _positive("barrier", barrier)
    B = _scalar("batch_size", batch_size)
    if B < 1:
        raise ValueError(f"batch_size must be >= 1, got {B!r}")
    eta = _positive("eta", eta)
    s = _unit_interval("s", s)
    Hm, Hs, e, _, _, _ = _xie_dirs(hess_min, hess_saddle, direction)
    d = Hm.shape[0]
    zero = np.zeros(d)
    Da = float(e @ leap_diffusion(zero, _abs_matrix(Hm) / B, eta, sigma, mode=mode, relative=relative) @ e)
    Db = float(e @ leap_diffusion(zero, _abs_matrix(Hs) / B, eta, sigma, mode=mode, relative=relative) @ e)
    return barrier * (s / Da + (1.0 - s) / Db)


def leap_xie_escape_time(
    barrier, hess_min, hess_saddle, *, batch_size, eta, sigma, s,
    mode: str = "per-coordinate", relative: bool = False, direction=None, log: bool = False,
) -> float:
    r"""Escape time of SGD + LEAP in the Xie form: Xie's prefactor × ``exp(`` :func:`leap_xie_exponent` ``)``.

    ``τ = 2π sqrt(−det H_b/det H_a)/|H_be| · exp[ΔL(s/D_a + (1−s)/D_b)]`` in continuous time.
    Same parameters, validity and caveats as :func:`leap_xie_exponent` and
    :func:`xie_sgd_escape_time` (the prefactor only to a factor ~2).

    Source: derived in this project (theory notes §8 + §4, D).
    """
    expo = leap_xie_exponent(
        barrier, hess_min, hess_saddle, batch_size=batch_size, eta=eta, sigma=sigma, s=s,
        mode=mode, relative=relative, direction=direction,
    )
    *_, log_pref = _xie_dirs(hess_min, hess_saddle, direction)
    return _finish(log_pref + expo, log)


# --------------------------------------------------------------------------------------------
# discrete-time quadratics
# --------------------------------------------------------------------------------------------
def sgd_stationary_variance(h, eta, noise_var) -> float:
    r"""Stationary variance of SGD / GD + gradient noise on ``L = h x²/2``.

    .. math:: x_{k+1} = x_k - η(h x_k + ξ_k),\quad \mathrm{Var}\,ξ = σ^2:\qquad
              \mathrm{Var}_∞ = \frac{η^2σ^2}{1-(1-ηh)^2} = \frac{ησ^2}{h(2-ηh)}.

    Parameters
    ----------
    h : float
        Curvature.
    eta : float
        Step ``η > 0``.
    noise_var : float
        ``σ² >= 0``.

    Returns
    -------
    float
        ``Var_∞``; ``inf`` unless ``0 < ηh < 2`` (no stationary law).

    Notes
    -----
    Exact for any i.i.d. zero-mean noise. Larger than the OU value ``ησ²/(2h)`` by
    ``1/(1 − ηh/2)``; the SDE approximation fails as ``ηh → 2``.

    Source: theory notes §2.2 (D + N; claim V Liu–Ziyin–Ueda).
    """
    h = _scalar("h", h)
    eta = _positive("eta", eta)
    s2 = _nonneg("noise_var", noise_var)
    if not 0.0 < eta * h < 2.0:
        return math.inf
    return eta * s2 / (h * (2.0 - eta * h))


def langevin_stationary_variance(h, eta, D) -> float:
    r"""Stationary variance of Langevin-GD ``x_{k+1} = x_k − ηh x_k + sqrt(2Dη) z_k`` on ``h x²/2``.

    .. math:: \mathrm{Var}_∞ = \frac{2Dη}{1-(1-ηh)^2} = \frac{D}{h(1-ηh/2)}

    i.e. an in-well temperature ``D/(1 − ηh/2)``. Returns ``inf`` unless ``0 < ηh < 2``.

    Parameters
    ----------
    h : float
        Curvature.
    eta : float
        Step (> 0).
    D : float
        Temperature (>= 0).

    Returns
    -------
    float

    Source: theory notes §2.2 (D).
    """
    h = _scalar("h", h)
    eta = _positive("eta", eta)
    D = _nonneg("D", D)
    if not 0.0 < eta * h < 2.0:
        return math.inf
    return D / (h * (1.0 - eta * h / 2.0))


def ou_stationary_variance(h, D) -> float:
    r"""Stationary variance ``D/h`` of the OU process ``dX = −hX dt + sqrt(2D) dW`` (``h > 0``).

    For SGD read as an SDE (``D = ησ²/2``) this is ``ησ²/(2h)``. Source: theory notes §2.2 (D).
    """
    h = _positive("h", h)
    D = _nonneg("D", D)
    return D / h


def leap_stationary_variance(h, eta, sigma, noise_var, *, relative: bool = False, variant: str = "gaussian") -> float:
    r"""Stationary variance of SGD with a random step ``η̃_k`` on ``L = h x²/2`` (1-D LEAP).

    .. math:: x_{k+1} = (1-η̃_k h)x_k - η̃_k ξ_k:\qquad
              \mathrm{Var}_∞ = \frac{E[η̃^2]\,σ_ξ^2}{1 - E(1-η̃h)^2}
              \overset{\text{gauss}}{=} \frac{(η^2+σ^2)σ_ξ^2}{h[2η - h(η^2+σ^2)]}

    Parameters
    ----------
    h : float
        Curvature.
    eta : float
        Mean step ``η > 0``.
    sigma : float
        Perturbation scale ``σ >= 0`` (absolute or relative).
    noise_var : float
        Gradient-noise variance ``σ_ξ² >= 0``.
    relative : bool
        ``σ`` relative to ``η``.
    variant : {"gaussian", "clipped", "lognormal"}
        Step law (see :data:`STEP_VARIANTS`); non-Gaussian moments by quadrature.

    Returns
    -------
    float
        ``Var_∞``; ``inf`` when the mean-square condition ``E(1 − η̃h)² < 1`` fails
        (Gaussian: ``h(η² + σ²) < 2η``).

    Notes
    -----
    Exact (Kesten recursion, ξ independent of η̃, both i.i.d.). Finite variance does not mean
    light tails: the stationary law has a power tail with index :func:`kesten_tail_index` (> 2
    here). Per-coordinate LEAP in 1-D is the same.

    Source: theory notes §3.3 (D + N: η̄ = 0.5, s = 0.3, h = σ = 1 → 0.5152).
    """
    h = _scalar("h", h)
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    s2 = _nonneg("noise_var", noise_var)
    _variant(variant)
    if variant == "gaussian":
        m2 = eta**2 + sig**2
        denom = h * (2.0 * eta - h * m2)
    else:
        m1, m2 = _step_moments(eta, sig, variant)
        denom = 2.0 * h * m1 - h * h * m2
    if not denom > 0.0:
        return math.inf
    return m2 * s2 / denom


def _step_moments(eta: float, sig: float, variant: str):
    """E η̃ and E η̃² for the step laws of :data:`STEP_VARIANTS`."""
    if variant == "gaussian" or sig == 0.0:
        return eta, eta**2 + sig**2
    if variant == "lognormal":
        return eta, eta**2 * math.exp(sig**2)
    # clipped: η̃ = max(η + σz, 0); a = η/σ
    a = eta / sig
    Phi, phi = special.ndtr(a), math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    m1 = eta * Phi + sig * phi
    m2 = (eta**2 + sig**2) * Phi + eta * sig * phi
    return m1, m2


def stationary_covariance(
    hessian, eta, *, grad_noise_cov=None, additive_noise_cov=None, sigma=0.0,
    mode: str = "per-coordinate", relative: bool = False,
) -> np.ndarray:
    r"""Exact stationary covariance of GD/SGD/LEAP on a quadratic ``L = θᵀHθ/2`` (any dimension).

    Recursion ``θ_{k+1} = A_k θ_k − diag(η̃_k) ξ_k + ζ_k`` with ``A_k = I − diag(η̃_k) H``,
    ``Cov ξ = Σ_g`` (gradient noise, scaled by the step), ``Cov ζ = Σ_a`` (additive, e.g.
    Langevin ``2Dη I``), all independent across steps. The fixed point ``C = E[A C Aᵀ] + Q``:

    - no LEAP / scalar ε (``η̃ = η + ε``):
      ``C = K C K + σ² H C H + (η² + σ²) Σ_g + Σ_a``, ``K = I − ηH``;
    - per-coordinate ε (``E[ε_i ε_j] = σ² δ_ij``):
      ``C = K C K + σ² Diag(H C H) + η² Σ_g + σ² Diag(Σ_g) + Σ_a``,

    solved exactly as a linear system in ``vec C`` (size d²).

    Parameters
    ----------
    hessian : array_like, shape (d, d) or scalar
        Symmetric ``H``.
    eta : float
        Mean step (> 0).
    grad_noise_cov : array_like (d, d), optional
        ``Σ_g`` (default 0).
    additive_noise_cov : array_like (d, d), optional
        ``Σ_a`` (default 0).
    sigma : float
        LEAP scale ``σ >= 0`` (Gaussian ε; 0 = plain GD/SGD).
    mode : {"per-coordinate", "scalar"}
        LEAP mode.
    relative : bool
        ``σ`` relative to ``η``.

    Returns
    -------
    ndarray, shape (d, d)
        ``C``; all entries ``inf`` when the recursion is not mean-square stable (spectral radius of
        ``C ↦ E[A C Aᵀ]`` ≥ 1, e.g. ``ηλ_max(H) ≥ 2`` without LEAP).

    Notes
    -----
    Exact for any i.i.d. noise with these covariances (only second moments enter). The d-D LEAP
    forms with the random diagonal step are derived in this project; the SGD form
    ``C − (I−ηH)C(I−ηH) = η²Σ`` is theory notes §2.2 (D). Discrete-time ``E L = ½Tr(HC)``.

    Source: theory notes §2.2, §3.1 (D); LEAP forms derived in this project.
    """
    H = _sym_matrix("hessian", hessian)
    d = H.shape[0]
    eta = _positive("eta", eta)
    sig = _sigma_abs(eta, _nonneg("sigma", sigma), relative)
    _mode(mode)
    Sg = np.zeros((d, d)) if grad_noise_cov is None else _sym_matrix("grad_noise_cov", grad_noise_cov, d)
    Sa = np.zeros((d, d)) if additive_noise_cov is None else _sym_matrix("additive_noise_cov", additive_noise_cov, d)
    K = np.eye(d) - eta * H
    HH = np.kron(H, H)
    if mode == "per-coordinate":
        mask = np.eye(d).reshape(-1)
        M = np.kron(K, K) + sig**2 * (mask[:, None] * HH)
        Q = eta**2 * Sg + sig**2 * np.diag(np.diag(Sg)) + Sa
    else:
        M = np.kron(K, K) + sig**2 * HH
        Q = (eta**2 + sig**2) * Sg + Sa
    rho = float(np.max(np.abs(np.linalg.eigvals(M))))
    if rho >= 1.0:
        return np.full((d, d), np.inf)
    c = np.linalg.solve(np.eye(d * d) - M, Q.reshape(-1))
    C = c.reshape(d, d)
    return 0.5 * (C + C.T)


def gd_stability_threshold(eta) -> float:
    r"""GD stability threshold on a quadratic: converges iff ``0 < ηh < 2``, i.e. ``h < 2/η``.

    In d dims: ``η λ_max(H) < 2``. Source: theory notes §2.1 (D).
    """
    return 2.0 / _positive("eta", eta)


def leap_mean_square_threshold(eta, sigma, *, relative: bool = False, variant: str = "gaussian") -> float:
    r"""Largest curvature for which GD + LEAP is mean-square stable: ``h < 2η/(η² + σ²)``.

    From ``E(1 − η̃h)² < 1 ⟺ h E[η̃²] < 2 E[η̃]`` (Gaussian: ``h(η² + σ²) < 2η``). Reduces to
    ``2/η`` at ``σ = 0``: the random step shrinks the mean-square-stable range.

    Parameters
    ----------
    eta : float
        Mean step (> 0).
    sigma : float
        LEAP scale (>= 0).
    relative : bool
        ``σ`` relative to ``η``.
    variant : str
        Step law (:data:`STEP_VARIANTS`).

    Returns
    -------
    float
        ``h_ms = 2 E η̃ / E η̃²``.

    Source: theory notes §3.3 and §8 (D).
    """
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    m1, m2 = _step_moments(eta, sig, _variant(variant))
    return 2.0 * m1 / m2


def _step_of_z(z, eta: float, sig: float, variant: str):
    if variant == "gaussian":
        return eta + sig * z
    if variant == "clipped":
        return np.maximum(eta + sig * z, 0.0)
    return eta * np.exp(sig * z - 0.5 * sig * sig)


def _z_of_step(step: float, eta: float, sig: float, variant: str):
    """z at which the step equals ``step`` (None if never)."""
    if sig == 0.0:
        return None
    if variant == "lognormal":
        if step <= 0:
            return None
        return (math.log(step / eta) + 0.5 * sig * sig) / sig
    if variant == "clipped" and step <= 0:
        return None
    return (step - eta) / sig


def _log_abs_A(z: float, h: float, eta: float, sig: float, variant: str) -> float:
    """log|1 − η̃(z) h|, overflow-safe for the log-normal law (−inf where A = 0)."""
    if variant == "lognormal":
        lh = math.log(eta * h) + sig * z - 0.5 * sig * sig  # log(η̃ h)
        if lh > 30.0:
            return lh
        a = abs(-math.expm1(lh))
    else:
        a = abs(1.0 - float(_step_of_z(z, eta, sig, variant)) * h)
    return math.log(a) if a > 0.0 else -math.inf


def _normal_expect(f, breaks, *, logspace: bool = False) -> float:
    """E f(z) for z ~ N(0,1) by adaptive quadrature, split at the given breakpoints.

    With ``logspace`` the callable returns ``log f(z)`` and the integrand is
    ``exp(log f(z) − z²/2)/√(2π)`` (no overflow of ``f`` far in the tails).
    """
    # Finite range: beyond ±40 (further out around a far integrand peak) the Gaussian weight is
    # below e^-800 relative. Infinite-range maps would miss the bulk when a breakpoint is far out.
    finite = [float(b) for b in breaks if b is not None and math.isfinite(b)]
    lo_end = min([-40.0] + [b - 40.0 for b in finite if b < 0 and abs(b) < 1e3])
    hi_end = max([40.0] + [b + 40.0 for b in finite if b > 0 and abs(b) < 1e3])
    pts = {b for b in finite if lo_end < b < hi_end} | {0.0}
    edges = [lo_end] + sorted(pts) + [hi_end]
    total = 0.0
    c = 0.5 * math.log(2.0 * math.pi)

    if logspace:
        def g(z):
            lv = f(z) - 0.5 * z * z - c
            return math.exp(lv) if lv > -745.0 else 0.0
    else:
        def g(z):
            return f(z) * math.exp(-0.5 * z * z - c)

    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        # full_output silences IntegrationWarning; the error estimate is checked below instead
        val, abserr, *_ = integrate.quad(g, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-11, full_output=1)
        total += val
        err += abserr
    if err > 1e-8 * max(1.0, abs(total)):
        import warnings

        warnings.warn(f"quadrature error estimate {err:.2e} for a value {total:.6g}", RuntimeWarning, stacklevel=3)
    return total


def leap_lyapunov_exponent(h, eta, sigma, *, relative: bool = False, variant: str = "gaussian") -> float:
    r"""Lyapunov exponent of full-batch GD + LEAP at a minimum of curvature ``h``.

    .. math:: λ(h) = E\log|1 - η̃ h|, \qquad η̃ = η + σ z \ (\text{gaussian})

    ``x_{k+1} = (1 − η̃_k h)x_k`` converges to the minimum almost surely iff ``λ < 0`` and leaves
    every neighbourhood iff ``λ > 0`` (strong law for ``log|x_k|``). Computed by adaptive
    quadrature over ``z``, split at the integrable log singularity ``η̃ h = 1``.

    Parameters
    ----------
    h : float
        Curvature (> 0).
    eta : float
        Mean step (> 0).
    sigma : float
        LEAP scale (>= 0).
    relative : bool
        ``σ`` relative to ``η`` (gaussian and clipped laws).
    variant : str
        Step law (:data:`STEP_VARIANTS`); for ``"lognormal"`` σ is the log-scale standard
        deviation and ``relative`` is ignored, as in :class:`leap_sde.LEAP`.

    Returns
    -------
    float
        ``λ(h)``; ``-inf`` if ``σ = 0`` and ``ηh = 1``.

    Notes
    -----
    Without additive noise this is a stability statement, not a Kramers-type rate. Jensen gives
    ``λ ≤ ½ log E(1 − η̃h)²``, so the almost-sure range contains the mean-square range.

    Source: derived in this project (theory notes §8, D).
    """
    h = _positive("h", h)
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    _variant(variant)
    if sig == 0.0:
        a = abs(1.0 - eta * h)
        return -math.inf if a == 0.0 else math.log(a)
    z0 = _z_of_step(1.0 / h, eta, sig, variant)
    breaks = [z0]
    if variant == "clipped":
        breaks.append(-eta / sig)

    def f(z):
        la = _log_abs_A(z, h, eta, sig, variant)
        return la if la > -math.inf else 0.0  # measure-zero point

    return _normal_expect(f, breaks)


def leap_almost_sure_threshold(eta, sigma, *, relative: bool = False, variant: str = "gaussian", h_max=None) -> float:
    r"""Smallest curvature ``h* > 0`` with ``λ(h*) = E log|1 − η̃h*| = 0`` (almost-sure threshold).

    Minima with ``h < h*`` attract GD + LEAP almost surely; those with ``h > h*`` repel it
    (``λ > 0``). Root of :func:`leap_lyapunov_exponent` by scanning a log grid from ``h = 0`` (where
    ``λ ≈ −ηh < 0``) and ``brentq``.

    Parameters
    ----------
    eta, sigma, relative, variant
        As in :func:`leap_lyapunov_exponent`.
    h_max : float, optional
        Upper end of the search (default ``100/η``).

    Returns
    -------
    float
        ``h*``; ``2/η`` when ``σ = 0``; ``inf`` if no sign change below ``h_max``.

    Notes
    -----
    ``h* >=`` :func:`leap_mean_square_threshold` always (Jensen). Whether ``h*`` lies below GD's
    ``2/η`` — i.e. whether LEAP leaves minima that GD keeps — depends on ``σ``: near ``ηh = 2``,
    ``λ = E log|1 + σhz|``, negative for small ``σh``, so small perturbations *stabilise*
    ``h`` slightly above ``2/η`` (derived in this project).

    Source: derived in this project (theory notes §8, D).
    """
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    _variant(variant)
    if sig == 0.0:
        return 2.0 / eta
    hmax = 100.0 / eta if h_max is None else _positive("h_max", h_max)

    def lam(h):
        return leap_lyapunov_exponent(h, eta, sig, variant=variant)

    hs = np.geomspace(1e-3 / eta, hmax, 200)
    prev = hs[0]
    if lam(prev) >= 0:
        raise ValueError("sigma: λ(h) >= 0 already at h = 1e-3/η; no almost-sure stable range")
    for hh in hs[1:]:
        if lam(hh) > 0:
            return float(optimize.brentq(lam, prev, hh, xtol=1e-13, rtol=1e-12))
        prev = hh
    return math.inf


# --------------------------------------------------------------------------------------------
# heavy tails (Kesten)
# --------------------------------------------------------------------------------------------
def _log_abs_moment_gauss(p: float, mu: float, v: float) -> float:
    """log E|N(μ, v)|^p via the absolute moments of a normal (Kummer function)."""
    x = -mu * mu / (2.0 * v)
    val = special.hyp1f1(-0.5 * p, 0.5, x)
    if not (math.isfinite(val) and val > 0):
        return math.nan
    return 0.5 * p * math.log(2.0 * v) + special.gammaln(0.5 * (p + 1.0)) - 0.5 * math.log(math.pi) + math.log(val)


def leap_abs_moment(p, h, eta, sigma, *, relative: bool = False, variant: str = "gaussian") -> float:
    r"""``E|1 − η̃ h|^p``, the moment function of the Kesten recursion.

    Gaussian ``η̃ ~ N(η, σ²)``: ``A = 1 − η̃h ~ N(μ, v)`` with ``μ = 1 − ηh``, ``v = h²σ²`` and

    .. math:: E|A|^p = (2v)^{p/2}\,\frac{Γ(\tfrac{p+1}{2})}{\sqrt{π}}\,
              {}_1F_1\!\big(-\tfrac p2;\tfrac12;-\tfrac{μ^2}{2v}\big),

    falling back to quadrature if the Kummer function is not representable; other step laws by
    quadrature over ``z``.

    Parameters
    ----------
    p : float
        Order (> −1).
    h : float
        Curvature (> 0).
    eta, sigma, relative, variant
        As in :func:`leap_lyapunov_exponent`.

    Returns
    -------
    float

    Source: theory notes §3.3 (D + N; normal absolute moments, standard).
    """
    p = _scalar("p", p)
    if p <= -1:
        raise ValueError(f"p must be > -1, got {p!r}")
    h = _positive("h", h)
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    _variant(variant)
    if sig == 0.0:
        return abs(1.0 - eta * h) ** p
    if variant == "gaussian":
        lv = _log_abs_moment_gauss(p, 1.0 - eta * h, (h * sig) ** 2)
        if math.isfinite(lv):
            return math.exp(lv)
    return _quad_abs_moment(p, h, eta, sig, variant)


def _quad_abs_moment(p, h, eta, sig, variant):
    z0 = _z_of_step(1.0 / h, eta, sig, variant)
    breaks = [z0]
    if variant == "clipped":
        breaks.append(-eta / sig)

    if variant == "lognormal":
        breaks.append(p * sig)  # peak of the integrand
    else:
        breaks += [math.sqrt(max(p, 0.0)), -math.sqrt(max(p, 0.0))]

    def f(z):
        return p * _log_abs_A(z, h, eta, sig, variant)

    return _normal_expect(f, breaks, logspace=True)


def kesten_tail_index(h, eta, sigma, *, relative: bool = False, variant: str = "gaussian") -> float:
    r"""Tail index ``α`` of the stationary law of ``x_{k+1} = (1 − η̃_k h)x_k + B_k``.

    ``α > 0`` solves

    .. math:: E|1 - η̃ h|^{α} = 1

    (Kesten–Goldie: ``P(|x| > t) ∼ c t^{−α}``), found with ``brentq`` on ``log E|A|^p``, which is
    convex in ``p``, zero at ``p = 0`` with slope ``E log|A|``. For ``ηh = 1`` (``μ = 0``) it is
    closed form, ``(hσ)^α 2^{α/2} Γ((α+1)/2)/√π = 1``; ``hσ = 1`` gives ``α = 2`` exactly.

    Parameters
    ----------
    h : float
        Curvature (> 0).
    eta, sigma, relative, variant
        As in :func:`leap_lyapunov_exponent`; ``sigma > 0``.

    Returns
    -------
    float
        ``α``; ``nan`` when ``E log|A| >= 0`` (no stationary law: the recursion diverges);
        ``inf`` when ``|A| <= 1`` almost surely (no power tail, e.g. clipped steps with ``h ≤ 1/η_max``
        impossible for Gaussian laws).

    Notes
    -----
    Needs ``E log|A| < 0``, ``P(|A| > 1) > 0`` (always for a Gaussian step), a non-arithmetic
    ``log|A|`` and ``E|B|^α < ∞`` (additive noise ``B`` with all moments, e.g. Gaussian). Finite
    variance ⟺ ``α > 2`` ⟺ mean-square stability. Moments ``E|x|^p`` are finite iff ``p < α``.

    Source: theory notes §3.2 (V Kevei for A >= 0; R Goldie 1991 for real A) and §3.3 (D + N:
    η̄ = 1, h = 1, s = 0.9 → α = 2.642).
    """
    h = _positive("h", h)
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    _variant(variant)
    if sig == 0.0:
        raise ValueError("sigma must be > 0 for a Kesten tail (a deterministic step gives no power tail)")
    if leap_lyapunov_exponent(h, eta, sig, variant=variant) >= 0.0:
        return math.nan

    def f(p):
        return math.log(leap_abs_moment(p, h, eta, sig, variant=variant))

    lo, hi = 1.0, 1.0
    if f(1.0) >= 0.0:
        while f(lo) >= 0.0:
            lo *= 0.5
            if lo < 1e-12:
                return math.nan
        hi = 2 * lo
    else:
        while True:
            hi *= 2.0
            try:
                val = f(hi)
            except (OverflowError, ValueError):
                val = math.inf
            if val > 0.0:
                break
            lo = hi
            if hi > 1e4:
                return math.inf
    return float(optimize.brentq(f, lo, hi, xtol=1e-13, rtol=1e-12))


def hill_estimator(samples, k):
    r"""Hill estimator of the tail index from the ``k`` largest ``|samples|``.

    .. math:: \hat α_k = \Big[\frac1k\sum_{i=1}^{k}\log\frac{X_{(i)}}{X_{(k+1)}}\Big]^{-1},
              \qquad X_{(1)} \ge X_{(2)} \ge \dots

    Parameters
    ----------
    samples : array_like
        Samples (absolute values are used; non-finite values rejected; zeros allowed).
    k : int or array_like of int
        Number of order statistics, ``1 <= k < number of non-zero samples``.

    Returns
    -------
    float or ndarray
        ``α̂_k`` for each ``k``.

    Notes
    -----
    Consistent for regularly varying tails as ``k → ∞``, ``k/n → 0``. For i.i.d. exact-Pareto
    samples ``α̂_k`` has standard error ``≈ α/√k``; stationary Kesten chains are correlated and
    only asymptotically Pareto, so use a wider tolerance (theory notes §3.3: ±0.3 on 2·10⁵ samples).

    Source: Hill (1975), standard; theory notes §3.3.
    """
    x = np.abs(np.asarray(samples, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    x = np.sort(x[x > 0])[::-1]
    ks = np.asarray(k)
    if not np.issubdtype(ks.dtype, np.integer):
        raise ValueError(f"k must be an integer or integer array, got {k!r}")
    if np.any(ks < 1) or np.any(ks >= x.size):
        raise ValueError(f"k must satisfy 1 <= k < {x.size} (number of non-zero samples)")
    lx = np.log(x)
    csum = np.cumsum(lx)
    kk = ks.astype(np.int64)
    alpha = 1.0 / (csum[kk - 1] / kk - lx[kk])
    return float(alpha) if alpha.ndim == 0 else alpha


# --------------------------------------------------------------------------------------------
# Zhu et al.: escaping-efficiency indicator
# --------------------------------------------------------------------------------------------
def escape_indicator(hessian, noise_cov) -> float:
    r"""Zhu et al.'s escape-efficiency indicator ``Tr(H Σ)``.

    Rate of loss increase of ``dθ = −Hθ dt + Σ^{1/2} dW`` started at the minimum at small times:
    ``E L(θ_t) − L(θ_0) = (t/2) Tr(HΣ) + O(t²)``.

    Parameters
    ----------
    hessian : array_like (d, d)
        Symmetric ``H``.
    noise_cov : array_like (d, d)
        Symmetric ``Σ``.

    Returns
    -------
    float

    Notes
    -----
    Only valid for ``t ≪ 1/λ_max(H)``; see :func:`ou_loss_increase` for all ``t``.

    Source: theory notes §4.1 (V Zhu et al. ICML 2019).
    """
    H = _sym_matrix("hessian", hessian)
    S = _sym_matrix("noise_cov", noise_cov, H.shape[0])
    return float(np.trace(H @ S))


def escape_indicator_isotropic(hessian, noise_cov) -> float:
    r"""``Tr(H Σ_iso) = Tr(H) Tr(Σ)/d`` for isotropic noise of the same total variance.

    Anisotropic noise is "better" at escaping iff ``Tr(HΣ) >`` this value.
    Source: theory notes §4.1 (D).
    """
    H = _sym_matrix("hessian", hessian)
    S = _sym_matrix("noise_cov", noise_cov, H.shape[0])
    return float(np.trace(H) * np.trace(S) / H.shape[0])


def ou_loss_increase(hessian, noise_cov, t) -> float:
    r"""Exact expected loss increase of an OU process started at the minimum.

    For ``dθ = −Hθ dt + Σ^{1/2} dW``, ``θ_0 = 0``, ``L = θᵀHθ/2`` and symmetric ``H``:

    .. math:: E[L(θ_t)] - L(θ_0) = \tfrac14 \mathrm{Tr}\big((I - e^{-2Ht})Σ\big)
              = \tfrac t2 \mathrm{Tr}(HΣ) + O(t^2).

    Parameters
    ----------
    hessian : array_like (d, d)
        Symmetric ``H`` (any signs).
    noise_cov : array_like (d, d)
        Symmetric PSD ``Σ``.
    t : float
        Time (>= 0).

    Returns
    -------
    float

    Notes
    -----
    In our convention ``Σ = 2D``. Computed from the eigendecomposition of ``H`` with ``expm1``.

    Source: theory notes §4.1 (D + N).
    """
    H = _sym_matrix("hessian", hessian)
    S = _sym_matrix("noise_cov", noise_cov, H.shape[0])
    t = _nonneg("t", t)
    w, V = np.linalg.eigh(H)
    F = (V * (-np.expm1(-2.0 * w * t))) @ V.T
    return 0.25 * float(np.trace(F @ S))


def discrete_loss_increase(hessian, noise_cov, eta, k) -> float:
    r"""Expected loss after ``k`` steps of SGD on ``L = θᵀHθ/2`` from the minimum.

    ``C_{j+1} = (I − ηH) C_j (I − ηH) + η² Σ``, ``C_0 = 0``; returns ``½ Tr(H C_k)``. For ``ηk = t``
    and ``η → 0`` it tends to :func:`ou_loss_increase` with noise covariance ``ηΣ``
    (``D = ηΣ/2``).

    Parameters
    ----------
    hessian : array_like (d, d)
        Symmetric ``H``.
    noise_cov : array_like (d, d)
        Gradient-noise covariance ``Σ``.
    eta : float
        Step (> 0).
    k : int
        Number of steps (>= 0).

    Returns
    -------
    float

    Source: theory notes §4.1 (D, "discrete-time version").
    """
    H = _sym_matrix("hessian", hessian)
    S = _sym_matrix("noise_cov", noise_cov, H.shape[0])
    eta = _positive("eta", eta)
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    K = np.eye(H.shape[0]) - eta * H
    C = np.zeros_like(H)
    Q = eta**2 * S
    for _ in range(int(k)):
        C = K @ C @ K + Q
    return 0.5 * float(np.trace(H @ C))


def em_boundary_shift(D, dt) -> float:
    r"""Inward boundary shift correcting discrete monitoring of an absorbing boundary.

    ``δ = β sqrt(2 D Δt)`` with ``β = −ζ(1/2)/√(2π) ≈ 0.5826`` (noise ``σ = sqrt(2D)`` normal to the
    boundary): move the absorbing point by ``δ`` towards the start to remove the O(√Δt) bias of
    Euler–Maruyama exit times.

    Parameters
    ----------
    D : float
        Diffusion coefficient at the boundary (> 0).
    dt : float
        Step (> 0).

    Returns
    -------
    float

    Source: theory notes §2.3 (V Gobet–Menozzi 2010; V Broadie–Glasserman–Kou β ≈ 0.5826;
    R the ζ form).
    """
    D = _positive("D", D)
    dt = _positive("dt", dt)
    return GOBET_MENOZZI_BETA * math.sqrt(2.0 * D * dt)


# --------------------------------------------------------------------------------------------
# exact references for the *discrete-time* chain (1-D) and for d-D diffusions on a grid
# --------------------------------------------------------------------------------------------
def _step_nodes(eta: float, sig: float, variant: str, n_nodes: int):
    """Quadrature nodes (steps η̃_k, weights w_k) for the step law, split where η̃ = 0."""
    if sig == 0.0:
        return np.array([eta]), np.array([1.0])
    L = 9.0
    gx, gw = np.polynomial.legendre.leggauss(n_nodes)
    z0 = _z_of_step(0.0, eta, sig, variant) if variant != "lognormal" else None
    segs = [(-L, L)] if z0 is None or not -L < z0 < L else [(-L, z0), (z0, L)]
    zs, ws = [], []
    for a, b in segs:
        z = 0.5 * (b - a) * gx + 0.5 * (a + b)
        zs.append(z)
        ws.append(0.5 * (b - a) * gw * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    z, w = np.concatenate(zs), np.concatenate(ws)
    steps = _step_of_z(z, eta, sig, variant)
    if variant == "clipped" and z0 is not None and z0 > -L:
        keep = z > z0
        steps, w = np.concatenate((steps[keep], [0.0])), np.concatenate((w[keep], [special.ndtr(z0)]))
    return np.asarray(steps, dtype=np.float64), w / w.sum()


def _as_profile(v, name: str):
    if callable(v):
        return v
    c = _nonneg(name, v)
    return lambda x: np.full(np.shape(x), c)


def discrete_transition_matrix_1d(
    dU, x_lo, x_hi, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, absorb: str = "high",
):
    r"""Cell-discretised transition matrix of the 1-D discrete-time (LEAP-)SGD / Langevin chain.

    One step of the chain is

    .. math:: x' = x - η̃\,\big(U'(x) + \sqrt{C(x)}\,Z_1\big) + \sqrt{A(x)}\,Z_2,

    ``Z_1, Z_2 ~ N(0, 1)`` independent, ``η̃`` the (perturbed) step from :data:`STEP_VARIANTS`
    (``η̃ = η`` when ``sigma = 0``). Given ``η̃`` the next state is ``N(x − η̃U', η̃²C + A)``; the
    step law is integrated with Gauss–Legendre nodes split at ``η̃ = 0``. Covers the simulator's
    discrete mode (``C`` = gradient-noise variance, ``A = 0``) and its SDE mode
    (``C = 0``, ``A = 2D(x)η``, ``σ = 0``).

    ``[x_lo, x_hi]`` is cut into ``n_cells`` equal cells represented by their centres;
    ``P_ij = Σ_k w_k P(x' ∈ cell j | x = c_i, η̃_k)`` by exact normal CDFs. Mass leaving through the
    absorbing end (``absorb="high"``: ``x' >= x_hi``; ``"low"``: ``x' <= x_lo``) is killed, mass
    leaving through the other end is returned to the end cell (a reflecting end, to be placed
    where the chain essentially never goes).

    Parameters
    ----------
    dU : callable
        ``U'(x)``, vectorised.
    x_lo, x_hi : float
        Domain.
    eta : float
        Mean step ``η > 0``.
    noise_var : float or callable
        Gradient-noise variance ``C(x) >= 0``.
    sigma, variant, relative
        Step perturbation (see :func:`leap_lyapunov_exponent`); 1-D, so per-coordinate and scalar
        LEAP coincide.
    additive_var : float or callable
        Variance ``A(x) >= 0`` added independently of the step.
    n_cells : int
        Cells (>= 10). The cell width must be well below the smallest relevant kernel width
        ``min |η̃| sqrt(C) or sqrt(A)``.
    n_nodes : int
        Gauss–Legendre nodes per segment of the step law.
    absorb : {"high", "low"}
        Which end absorbs.

    Returns
    -------
    centers : ndarray, shape (n,)
    P : ndarray, shape (n, n)
        Sub-stochastic; ``1 − P.sum(1)`` is the one-step absorption probability.

    Notes
    -----
    Exact for the chain up to the cell discretisation (O(h²) for smooth expectations when the cell
    width ``h`` resolves the kernels) and the step-law quadrature. Source: derived in this project
    (standard Ulam/Nyström discretisation of a Markov kernel).
    """
    if not callable(dU):
        raise ValueError("dU must be callable")
    x_lo = _scalar("x_lo", x_lo)
    x_hi = _scalar("x_hi", x_hi)
    if not x_hi > x_lo:
        raise ValueError(f"x_hi must be > x_lo, got {x_lo}, {x_hi}")
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    n = int(n_cells)
    if n < 10:
        raise ValueError(f"n_cells must be >= 10, got {n_cells}")
    if absorb not in ("high", "low"):
        raise ValueError(f"absorb must be 'high' or 'low', got {absorb!r}")
    Cf, Af = _as_profile(noise_var, "noise_var"), _as_profile(additive_var, "additive_var")
    edges = np.linspace(x_lo, x_hi, n + 1)
    c = 0.5 * (edges[1:] + edges[:-1])
    g = _eval(dU, c, "dU")
    Cv, Av = _eval(Cf, c, "noise_var"), _eval(Af, c, "additive_var")
    if np.any(Cv < 0) or np.any(Av < 0):
        raise ValueError("noise_var and additive_var must be >= 0")
    steps, w = _step_nodes(eta, sig, variant, int(n_nodes))
    h = (x_hi - x_lo) / n
    P = np.zeros((n, n + 1))  # last column: sink for clipped (zero-mass) band entries
    for st, wk in zip(steps, w):
        mu = c - st * g
        s = np.sqrt(st * st * Cv + Av)
        pos = s > 0
        if np.any(pos):
            # banded: only the edges within ±10 s of the mean are evaluated
            r = np.nonzero(pos)[0]
            m_, s_ = mu[r], s[r]
            jlo = np.clip(np.floor((m_ - 10.0 * s_ - x_lo) / h).astype(np.int64), 0, n)
            W = int(min(n, math.ceil(20.0 * float(s_.max()) / h) + 3))
            J = np.minimum(jlo[:, None] + np.arange(W + 1)[None, :], n)  # edge indices, (r, W+1)
            cdf = special.ndtr((x_lo + J * h - m_[:, None]) / s_[:, None])
            if absorb == "high":
                cdf[J == 0] = 0.0  # mass below x_lo returns to cell 0 (reflecting end)
            else:
                cdf[J == n] = 1.0  # mass above x_hi returns to the last cell; below x_lo is killed
            mass = np.diff(cdf, axis=1)
            cols = np.where(J[:, :-1] < n, J[:, :-1], n)  # unique per row; clipped entries -> sink
            P[r[:, None], cols] += wk * mass
        if np.any(~pos):
            r = np.nonzero(~pos)[0]
            j = np.floor((mu[r] - x_lo) / h).astype(np.int64)
            if absorb == "high":
                j = np.where(j >= n, n, np.maximum(j, 0))  # >= x_hi: killed (sink)
            else:
                j = np.where(j < 0, n, np.minimum(j, n - 1))  # < x_lo: killed (sink)
            P[r, j] += wk
    P = P[:, :n]
    return c, P


def discrete_mfpt_1d(
    dU, x0, x_c, x_l, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, second_moment: bool = False,
):
    r"""Exact mean number of *steps* for the 1-D discrete-time chain to reach ``x_c`` (or beyond).

    Solves ``(I − P) T = 1`` for the transition matrix of :func:`discrete_transition_matrix_1d`
    (chain ``x' = x − η̃(U' + sqrt(C) Z₁) + sqrt(A) Z₂``, exit the first step with
    ``x' >= x_c`` — or ``<= x_c`` when ``x_c < x0`` — as the simulator's :class:`~leap_sde.Threshold`
    checks it after every step). With ``second_moment`` also ``E[τ²]`` from
    ``(I − P) M₂ = 1 + 2 P T``.

    This is the O(η)-exact counterpart of :func:`mfpt_1d`: it contains the discretisation bias of
    the chain (the in-well temperature ``D/(1 − ηU''/2)``, the discrete monitoring of the exit) and,
    with ``sigma > 0``, the non-Gaussian random step of LEAP; it makes no diffusion approximation.

    Parameters
    ----------
    dU, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes
        As in :func:`discrete_transition_matrix_1d`.
    x0 : float
        Start (the grid is shifted so that ``x0`` is a cell centre).
    x_c : float
        Absorbing threshold.
    x_l : float
        Far (reflecting) end, where the chain essentially never goes.
    second_moment : bool
        Also return ``E[τ²]``.

    Returns
    -------
    float or (float, float)
        ``E[τ]`` in steps (times ``η`` for continuous time), and ``E[τ²]`` if requested; ``nan`` (with a
        ``RuntimeWarning``) when the escape is too rare for a float64 solve (``E τ ≳ 10¹²`` steps).

    Source: derived in this project (first-step analysis of the discretised chain).
    """
    x0 = _scalar("x0", x0)
    x_c = _scalar("x_c", x_c)
    x_l = _scalar("x_l", x_l)
    if not (x_l < x0 < x_c or x_c < x0 < x_l):
        raise ValueError(f"x0 must lie strictly between x_l and x_c (x_l={x_l}, x0={x0}, x_c={x_c})")
    n = int(n_cells)
    if n < 10:
        raise ValueError(f"n_cells must be >= 10, got {n_cells}")
    # cells of width h2 with x0 at a cell centre and x_c exactly on the absorbing edge
    h = abs(x_c - x_l) / n
    k = max(0, int(round(abs(x_c - x0) / h - 0.5)))
    h2 = abs(x_c - x0) / (k + 0.5)
    m = int(math.floor(abs(x0 - x_l) / h2))
    n_eff = m + 1 + k
    kw = dict(eta=eta, noise_var=noise_var, sigma=sigma, variant=variant, relative=relative,
              additive_var=additive_var, n_cells=n_eff, n_nodes=n_nodes)
    if x_c > x0:
        c, P = discrete_transition_matrix_1d(dU, x_c - n_eff * h2, x_c, absorb="high", **kw)
    else:
        c, P = discrete_transition_matrix_1d(dU, x_c, x_c + n_eff * h2, absorb="low", **kw)
    A = np.eye(c.size) - P
    lu = linalg.lu_factor(A)
    T = linalg.lu_solve(lu, np.ones(c.size))
    t0 = float(np.interp(x0, c, T))
    resid = float(np.max(np.abs(A @ T - 1.0)))
    if not (np.all(np.isfinite(T)) and T.min() > 0 and resid < 1e-6):
        import warnings

        warnings.warn(f"discrete_mfpt_1d: the escape is too rare for a float64 linear solve (E τ ≳ 1e12 steps; "
                      f"residual {resid:.1e}); returning nan", RuntimeWarning, stacklevel=2)
        return (math.nan, math.nan) if second_moment else math.nan
    if not second_moment:
        return t0
    M2 = linalg.lu_solve(lu, 1.0 + 2.0 * (P @ T))
    return t0, float(np.interp(x0, c, M2))


def discrete_stationary_1d(
    dU, x_lo, x_hi, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, absorb: str | None = None, tol: float = 1e-12,
):
    r"""(Quasi-)stationary distribution of the 1-D discrete-time chain on ``[x_lo, x_hi]``.

    Left Perron vector ``π P = ρ π`` of :func:`discrete_transition_matrix_1d` by power iteration.
    With ``absorb=None`` both ends reflect (mass leaving is returned to the end cells) and ``ρ = 1``:
    the stationary law of the chain confined to the interval. With ``absorb="high"``/``"low"``
    it is the quasi-stationary distribution of the basin and ``1 − ρ`` the per-step escape rate.

    Parameters
    ----------
    dU, x_lo, x_hi, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes
        As in :func:`discrete_transition_matrix_1d`.
    absorb : {None, "high", "low"}
        Absorbing end, or ``None`` for a closed interval.
    tol : float
        Convergence tolerance of the power iteration (L1 change of ``π``).

    Returns
    -------
    centers : ndarray (n,)
    weights : ndarray (n,)
        Probabilities of the cells (sum 1); ``E f ≈ Σ f(centers)·weights``.
    rho : float
        Perron eigenvalue (1 for a closed interval).

    Source: derived in this project.
    """
    c, P = discrete_transition_matrix_1d(
        dU, x_lo, x_hi, eta=eta, noise_var=noise_var, sigma=sigma, variant=variant, relative=relative,
        additive_var=additive_var, n_cells=n_cells, n_nodes=n_nodes,
        absorb="high" if absorb is None else absorb)
    if absorb is None:  # close the absorbing end too
        lost = 1.0 - P.sum(axis=1)
        P[:, -1] += lost
    pi = np.full(c.size, 1.0 / c.size)
    rho = 1.0
    for _ in range(200_000):
        new = pi @ P
        rho = float(new.sum())
        new /= rho
        if np.abs(new - pi).sum() < tol:
            pi = new
            break
        pi = new
    return c, pi, rho


def mfpt_sqra_grid(U, D, spacing, absorbing, *, reflecting: bool = True) -> np.ndarray:
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
    reflecting : bool
        Must be True (reflecting box; kept explicit for clarity).

    Returns
    -------
    ndarray, shape of ``U``
        ``T`` at every cell (0 on absorbing cells).

    Notes
    -----
    Converges to the generator ``L = DΔ − ∇U·∇`` as ``h → 0`` (O(h²)); no small-noise assumption,
    so it is the exact reference for Eyring–Kramers' finite-``D`` corrections (theory notes §6.3
    item 3, D). Choose the box where ``U − min U ≫ D``.

    Source: theory notes §6.3 (SQRA V Donati–Weber–Keller; d-D form D).
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
    if not reflecting:
        raise ValueError("reflecting must be True")
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
