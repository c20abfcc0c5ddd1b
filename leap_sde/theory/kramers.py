"""Kramers and Eyring–Kramers escape-time laws for constant isotropic diffusion."""
from __future__ import annotations

import math

import numpy as np

from ._common import _finish, _positive, _scalar, _sym_matrix

__all__ = ["kramers_time", "eyring_kramers_time"]


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

    Source: Kramers (1940); validity: Berglund (2013, arXiv 1106.5799) and docs/theory.md §1.1.
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

    Source: Eyring (1935), Kramers (1940); proof and error term: Bovier, Eckhoff, Gayrard & Klein
    (JEMS 2004). docs/theory.md §1.4.
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
