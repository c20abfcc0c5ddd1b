"""Heavy tails of the Kesten recursion: absolute moments, tail index, Hill estimator."""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from ._common import _log_abs_A, _normal_expect, _positive, _scalar, _step_scale, _variant, _z_of_step
from .stability import leap_lyapunov_exponent

__all__ = ["leap_abs_moment", "kesten_tail_index", "hill_estimator"]


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

    Source: docs/theory.md §3.3 (absolute moments of a normal, standard; other laws §3.4).
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

    Source: Kesten (1973), Goldie (1991) for real A; docs/theory.md §3.2, and §3.3 for the
    Gaussian closed forms (η = 1, h = 1, σ = 0.9 → α = 2.642).
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
    only asymptotically Pareto, so use a wider tolerance (docs/theory.md §3.3: ±0.3 on 2·10⁵ samples).

    Source: Hill (1975); docs/theory.md §3.4.
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
