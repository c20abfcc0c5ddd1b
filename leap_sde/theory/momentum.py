r"""SGD with (Nesterov) momentum on a quadratic, with and without LEAP: exact second moments and stability.

Derived in this project (docs/theory.md §9). One coordinate of ``L = h θ²/2`` with gradient noise
``ξ ~ (0, s²)`` and LEAP rate ``η̃ = η + ε``, ``Var ε = σ²`` (independent of everything else), under
``torch.optim.SGD``'s rule with momentum μ and dampening τ (c = 1 − τ), from step 1 on::

    b' = μ b + c g,      g = h θ + ξ
    θ' = θ − η̃ b'                (heavy ball)      θ' = θ − η̃ (g + μ b')   (Nesterov)

The state ``s = (θ, b)`` follows the random affine recursion ``s' = (M₀ + ε M₁) s + (n₀ + ε n₁) ξ``, so its
second moments ``S = E[s sᵀ]`` obey the linear (generalised discrete Lyapunov) equation

    S = M₀ S M₀ᵀ + σ² M₁ S M₁ᵀ + s² (n₀ n₀ᵀ + σ² n₁ n₁ᵀ),

solved exactly by vectorisation, ``vec S = (I − M₀⊗M₀ − σ² M₁⊗M₁)⁻¹ vec Q``.  The second moments are
finite (mean-square stability) iff the spectral radius of ``M₀⊗M₀ + σ² M₁⊗M₁`` is below 1; without LEAP the
deterministic map is stable iff ``0 < η c h < 2(1 + μ)`` (heavy ball).  μ = 0, c = 1 gives plain SGD (+ LEAP)
and ``η s²/(h(2 − ηh))`` at σ = 0.
"""
from __future__ import annotations

import numpy as np

from ._common import _positive

__all__ = ["momentum_transfer", "momentum_stationary_moments", "momentum_mean_square_radius",
           "heavy_ball_stability_threshold", "momentum_lyapunov_exponent"]


def momentum_transfer(h, eta, momentum, *, dampening=0.0, nesterov=False):
    """``(M₀, M₁, n₀, n₁)`` of the recursion ``s' = (M₀ + ε M₁) s + (n₀ + ε n₁) ξ`` for ``s = (θ, b)``."""
    mu, c = float(momentum), 1.0 - float(dampening)
    if nesterov:
        a, q = 1.0 + mu * c, mu * mu  # direction u = a·g + q·b
    else:
        a, q = c, mu
    M0 = np.array([[1.0 - eta * a * h, -eta * q], [c * h, mu]])
    M1 = np.array([[-a * h, -q], [0.0, 0.0]])
    n0 = np.array([-eta * a, c])
    n1 = np.array([-a, 0.0])
    return M0, M1, n0, n1


def momentum_stationary_moments(h, eta, momentum, noise_var, sigma=0.0, *, dampening=0.0, nesterov=False,
                                relative=False):
    """Stationary ``(E θ², E θ b, E b²)`` of SGD with momentum (+ LEAP) on one coordinate of ``h θ²/2``.

    ``noise_var`` = s² (gradient-noise variance), ``sigma`` the LEAP scale (absolute, or relative to η).
    Raises ValueError when the second moments diverge (mean-square unstable).  Derived in this project
    (docs/theory.md §9)."""
    eta = _positive("eta", eta)
    var_eps = (float(sigma) * (eta if relative else 1.0)) ** 2
    M0, M1, n0, n1 = momentum_transfer(h, eta, momentum, dampening=dampening, nesterov=nesterov)
    T = np.kron(M0, M0) + var_eps * np.kron(M1, M1)
    if max(abs(np.linalg.eigvals(T))) >= 1.0:
        raise ValueError(f"second moments diverge (mean-square unstable) at h={h}, eta={eta}, "
                         f"momentum={momentum}, sigma={sigma}")
    Q = noise_var * (np.outer(n0, n0) + var_eps * np.outer(n1, n1))
    S = np.linalg.solve(np.eye(4) - T, Q.ravel()).reshape(2, 2)
    return float(S[0, 0]), float(S[0, 1]), float(S[1, 1])


def momentum_mean_square_radius(h, eta, momentum, sigma=0.0, *, dampening=0.0, nesterov=False, relative=False):
    """Spectral radius of ``M₀⊗M₀ + σ² M₁⊗M₁``: the second moments converge iff it is < 1."""
    var_eps = (float(sigma) * (eta if relative else 1.0)) ** 2
    M0, M1, _, _ = momentum_transfer(h, eta, momentum, dampening=dampening, nesterov=nesterov)
    return float(max(abs(np.linalg.eigvals(np.kron(M0, M0) + var_eps * np.kron(M1, M1)))))


def heavy_ball_stability_threshold(eta, momentum, *, dampening=0.0):
    """Largest stable curvature of the deterministic heavy ball: ``h < 2(1 + μ)/(η c)`` (eigenvalues of
    ``M₀`` inside the unit circle; Polyak 1964)."""
    eta = _positive("eta", eta)
    return 2.0 * (1.0 + momentum) / (eta * (1.0 - dampening))


def momentum_lyapunov_exponent(h, eta, momentum, sigma, *, dampening=0.0, nesterov=False, relative=False,
                               n_steps: int = 200_000, n_batches: int = 20, seed=0):
    """Top Lyapunov exponent ``λ = lim (1/n) log‖A_n ⋯ A_1‖`` of the random transfer matrices
    ``A_k = M₀ + ε_k M₁`` (``ε_k ~ N(0, σ²)``, σ·η if relative) and its standard error.

    Without gradient noise the linearised iterates converge to the minimum almost surely iff λ < 0 (Furstenberg
    & Kesten 1960), also where the second moments diverge (mean-square radius ≥ 1).  Estimated by the product of
    ``n_steps`` random matrices applied to a vector, renormalised every step (an independent Monte-Carlo method,
    not the simulator; SE from ``n_batches`` batch means).  σ = 0 gives ``log ρ(M₀)``.  Derived in this project
    (docs/theory.md §9.1)."""
    M0, M1, _, _ = momentum_transfer(h, eta, momentum, dampening=dampening, nesterov=nesterov)
    s = float(sigma) * (eta if relative else 1.0)
    if s == 0.0:
        return float(np.log(max(abs(np.linalg.eigvals(M0))))), 0.0
    eps = np.random.default_rng(seed).normal(0.0, s, size=n_steps)
    logs = _log_growth(M0, M1, eps)
    burn = n_steps // n_batches
    batches = logs[burn:].reshape(n_batches - 1, -1).mean(axis=1)
    return float(batches.mean()), float(batches.std(ddof=1) / np.sqrt(batches.size))


def _log_growth(M0, M1, eps):
    v = np.array([1.0, 0.0])
    out = np.empty(eps.size)
    for k, e in enumerate(eps):  # 2 x 2: plain Python is fast enough for reference values
        v = (M0 + e * M1) @ v
        n = float(np.hypot(v[0], v[1]))
        out[k] = np.log(n)
        v /= n
    return out
