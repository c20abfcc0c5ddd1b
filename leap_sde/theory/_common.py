"""Argument checks, evaluation helpers and the step-size laws shared by the theory modules."""
from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np
from scipy import integrate, special

__all__ = ["STEP_VARIANTS"]


ArrayLike = Union[float, np.ndarray]

Func = Callable[[np.ndarray], np.ndarray]

#: Step-size perturbation laws understood by the LEAP functions, each a function of one standard
#: normal z: ``"gaussian"`` η̃ = η + σz; ``"clipped"`` η̃ = max(η + σz, 0);
#: ``"lognormal"`` η̃ = η·exp(σz − σ²/2), σ the log-scale standard deviation (always relative;
#: E η̃ = η, Var η̃ = η²(e^{σ²} − 1)). Same definitions as :class:`leap_sde.LEAP`.
STEP_VARIANTS = ("gaussian", "clipped", "lognormal")

_LOG2 = math.log(2.0)


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


def _renamed(name: str, value, old: str, old_value):
    """The value of a keyword argument renamed from ``old`` (the old name still works, with a warning)."""
    if old_value is None:
        if value is None:
            raise TypeError(f"missing required argument {name!r}")
        return value
    if value is not None:
        raise TypeError(f"give {name!r} or its deprecated name {old!r}, not both")
    import warnings

    warnings.warn(f"the argument {old!r} is deprecated; use {name!r}", DeprecationWarning, stacklevel=3)
    return old_value


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


_MODES = ("per-coordinate", "scalar")


def _mode(mode: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return mode


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
