"""Spectral gap of the 1-D Fokker–Planck generator (square-root approximation)."""
from __future__ import annotations

import math

import numpy as np
from scipy import linalg

from ._common import _eval, _positive, _renamed, _scalar

__all__ = ["spectral_gap_1d_grid", "spectral_gap_1d"]


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

    Source: SQRA (Lie, Fackeldey & Weber 2013; Donati, Weber & Keller); 1-D form and checks:
    docs/theory.md §6.2.
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


def spectral_gap_1d(U, D, x_lo=None, x_hi=None, *, n: int = 1200, x_l=None, x_r=None) -> float:
    r"""Spectral gap of the 1-D Fokker–Planck generator ``L = D∂² − U'∂`` on ``[x_lo, x_hi]``.

    Evaluates ``U`` on ``n`` uniform points and calls :func:`spectral_gap_1d_grid` (SQRA rates
    ``Q_{i→i±1} = (D/h²) exp(−(U_{i±1} − U_i)/(2D))``, reflecting ends). See there for the
    formula, accuracy and source (docs/theory.md §6.2).

    Parameters
    ----------
    U : callable
        Potential, vectorised or scalar.
    D : float
        Constant diffusion coefficient (> 0).
    x_lo, x_hi : float
        Domain, ``x_lo < x_hi``; choose the ends where ``U − min U ≫ D``.
    n : int
        Grid points (``>= 3``).
    x_l, x_r : float
        Deprecated keyword names of ``x_lo``, ``x_hi``.

    Returns
    -------
    float
        ``λ₁``; ``≈ 2/T`` in a symmetric double well (``T`` the MFPT to the other minimum).
    """
    x_lo = _renamed("x_lo", x_lo, "x_l", x_l)
    x_hi = _renamed("x_hi", x_hi, "x_r", x_r)
    x_lo = _scalar("x_lo", x_lo)
    x_hi = _scalar("x_hi", x_hi)
    if not x_hi > x_lo:
        raise ValueError(f"x_hi must be > x_lo, got x_lo={x_lo}, x_hi={x_hi}")
    if not callable(U):
        raise ValueError("U must be callable (use spectral_gap_1d_grid for grid values)")
    n = int(n)
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    xs = np.linspace(x_lo, x_hi, n)
    return spectral_gap_1d_grid(xs, _eval(U, xs, "U"), D)
