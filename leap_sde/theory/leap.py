"""LEAP's effective diffusion and the escape laws built on it (derived in this project)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._common import _finish, _mode, _nonneg, _positive, _scalar, _sigma_abs, _sym_matrix, _unit_interval
from .mfpt import mfpt_1d
from .sgd import _xie_dirs

__all__ = [
    "leap_diffusion",
    "leap_diffusion_1d",
    "leap_mfpt_1d",
    "leap_effective_batch",
    "leap_xie_exponent",
    "leap_xie_escape_time",
]


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

    Source: derived in this project, docs/theory.md §8.2; the LEAP rule is the common reading of
    Liu et al. (CIKM 2022, arXiv 2208.11873), docs/theory.md §8.1.
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

    Source: derived in this project, docs/theory.md §8.2.
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
    (it escapes faster, cf. docs/theory.md §2.2).

    Source: derived in this project, docs/theory.md §8.2 with §1.3.
    """
    Df = leap_diffusion_1d(dU, noise_var, eta, sigma, relative=relative)
    return mfpt_1d(U, Df, x0, x_c, x_l, dU=dU, n=n, log=log)


def leap_effective_batch(batch_size, eta, sigma, *, relative: bool = False) -> float:
    r"""Effective batch size of scalar-ε LEAP with SGD noise ``H/B``: ``B_eff = B η²/(η² + σ²)``.

    Source: derived in this project, docs/theory.md §8.3. Ignores the ``σ²∇L∇Lᵀ`` term (zero at
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

    Source: derived in this project, docs/theory.md §8.4.
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

    Source: derived in this project, docs/theory.md §8.4 (prefactor: §4.1).
    """
    expo = leap_xie_exponent(
        barrier, hess_min, hess_saddle, batch_size=batch_size, eta=eta, sigma=sigma, s=s,
        mode=mode, relative=relative, direction=direction,
    )
    *_, log_pref = _xie_dirs(hess_min, hess_saddle, direction)
    return _finish(log_pref + expo, log)
