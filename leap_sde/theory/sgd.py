"""Xie, Sato & Sugiyama's escape laws for SGD (noise covariance H/B) and for white noise."""
from __future__ import annotations

import math

import numpy as np

from ._common import _finish, _positive, _scalar, _unit_interval
from .kramers import _saddle_data, eyring_kramers_time

__all__ = ["xie_sgd_log_slope", "xie_sgd_exponent", "xie_sgd_escape_time", "xie_white_noise_escape_time"]


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
    ``s = |H_b|/(H_a + |H_b|)`` (derived in this project, docs/theory.md §4.2).

    Source: Xie, Sato & Sugiyama (ICLR 2021), docs/theory.md §4.1; the exponent reading is
    derived in this project, §4.2.
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

    Source: Xie, Sato & Sugiyama (ICLR 2021), docs/theory.md §4.1.
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

    Source: Xie, Sato & Sugiyama (ICLR 2021), docs/theory.md §4.1 (what is tested: §4.3).
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

    Source: Xie, Sato & Sugiyama (ICLR 2021); the same law as docs/theory.md §1.4 (see §4.1).
    """
    return eyring_kramers_time(barrier, hess_min, hess_saddle, D, log=log)
