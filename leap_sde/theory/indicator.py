"""Zhu et al.'s escape-efficiency indicator and the exact loss increase of OU / SGD on a quadratic."""
from __future__ import annotations

import numpy as np

from ._common import _nonneg, _positive, _sym_matrix

__all__ = ["escape_indicator", "escape_indicator_isotropic", "ou_loss_increase", "discrete_loss_increase"]


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

    Source: Zhu, Wu, Yu, Wu & Ma (ICML 2019); docs/theory.md §5.
    """
    H = _sym_matrix("hessian", hessian)
    S = _sym_matrix("noise_cov", noise_cov, H.shape[0])
    return float(np.trace(H @ S))


def escape_indicator_isotropic(hessian, noise_cov) -> float:
    r"""``Tr(H Σ_iso) = Tr(H) Tr(Σ)/d`` for isotropic noise of the same total variance.

    Anisotropic noise is "better" at escaping iff ``Tr(HΣ) >`` this value.
    Source: docs/theory.md §5.
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

    Source: derived in this project and checked by Monte Carlo, docs/theory.md §5.
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

    Source: docs/theory.md §5 (discrete time).
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
