"""Stability of GD and GD + LEAP at a minimum: linear, mean-square and almost-sure thresholds."""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from ._common import _log_abs_A, _normal_expect, _positive, _step_moments, _step_scale, _variant, _z_of_step

__all__ = [
    "gd_stability_threshold",
    "leap_mean_square_threshold",
    "leap_lyapunov_exponent",
    "leap_almost_sure_threshold",
]


def gd_stability_threshold(eta) -> float:
    r"""GD stability threshold on a quadratic: converges iff ``0 < ηh < 2``, i.e. ``h < 2/η``.

    In d dims: ``η λ_max(H) < 2``. Source: standard, docs/theory.md §2.1.
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

    Source: derived in this project, docs/theory.md §3.3 and §8.5.
    """
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    m1, m2 = _step_moments(eta, sig, _variant(variant))
    return 2.0 * m1 / m2


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

    Source: derived in this project, docs/theory.md §8.5.
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

    Source: derived in this project, docs/theory.md §8.5.
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
