"""Exact stationary variances and covariances of GD / SGD / Langevin / LEAP on quadratics."""
from __future__ import annotations

import math

import numpy as np

from ._common import _mode, _nonneg, _positive, _scalar, _sigma_abs, _step_moments, _step_scale, _sym_matrix, _variant

__all__ = [
    "sgd_stationary_variance",
    "langevin_stationary_variance",
    "ou_stationary_variance",
    "leap_stationary_variance",
    "stationary_covariance",
]


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

    Source: derived in this project and checked by Monte Carlo, docs/theory.md §2.2 (cf. Liu, Ziyin &
    Ueda, ICML 2021).
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

    Source: docs/theory.md §2.2.
    """
    h = _scalar("h", h)
    eta = _positive("eta", eta)
    D = _nonneg("D", D)
    if not 0.0 < eta * h < 2.0:
        return math.inf
    return D / (h * (1.0 - eta * h / 2.0))


def ou_stationary_variance(h, D) -> float:
    r"""Stationary variance ``D/h`` of the OU process ``dX = −hX dt + sqrt(2D) dW`` (``h > 0``).

    For SGD read as an SDE (``D = ησ²/2``) this is ``ησ²/(2h)``. Source: docs/theory.md §2.2.
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

    Source: docs/theory.md §3.3 (checked: η = 0.5, σ = 0.3, h = 1, noise_var = 1 → 0.5152) and
    §3.4 for the other step laws.
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
    ``C − (I−ηH)C(I−ηH) = η²Σ`` is docs/theory.md §2.2. Discrete-time ``E L = ½Tr(HC)``.

    Source: docs/theory.md §2.2; LEAP forms derived in this project, docs/theory.md §8.6.
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
