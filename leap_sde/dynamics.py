"""The parts of one simulated optimizer: gradient noise, the LEAP learning-rate perturbation and the exit rule.

Discrete optimizer (``mode="discrete"``)::

    θ_{k+1} = θ_k − η̃_k ⊙ (∇L(θ_k) + ξ_k)

with ``η̃_k`` the scheduled rate ``η_k`` perturbed by :class:`LEAP` and ``ξ_k`` the gradient noise.

Continuous model (``mode="sde"``), integrated by Euler–Maruyama with step ``Δt_k = η_k``::

    dθ = −∇L(θ) dt + √(2 D(θ)) dW,     D(θ) = η·Cov(ξ)/2  (+ LEAP's effective diffusion)

so continuous time is ``t = Σ_k η_k`` (``t = kη`` for a constant rate), the mapping of Xie et al. (ICLR 2021)
and of theory-notes §0.  With LEAP (ε zero-mean, independent of ξ, Cov ξ = C, g = ∇L; derived in this
project, theory-notes §8)::

    per-coordinate ε:  D = (η/2)·C + (σ²/2η)·Diag(g gᵀ + C)
    scalar ε:          D = ((η² + σ²)/2η)·C + (σ²/2η)·g gᵀ
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_finite, check_int, check_nonnegative, check_positive

__all__ = ["NoNoise", "WhiteNoise", "HessianNoise", "MinibatchNoise", "LEAP",
           "Threshold", "LeaveBall", "ReachBall", "NoExit"]

N_NONE, N_WHITE, N_HESS, N_MINIBATCH = 0, 1, 2, 3
L_GAUSS, L_CLIP, L_LOGN = 0, 1, 2
E_NONE, E_THRESHOLD, E_LEAVE, E_REACH = 0, 1, 2, 3


class Noise:
    """Abstract gradient-noise model; lowers to ``(code, params)``."""

    code = N_NONE

    def lower(self):
        return self.code, np.zeros(2)


@dataclass(frozen=True)
class NoNoise(Noise):
    """``ξ = 0``: plain gradient descent (with LEAP: multiplicative noise only)."""


@dataclass(frozen=True)
class WhiteNoise(Noise):
    """Isotropic ``ξ ~ N(0, std²·I)``.  Langevin dynamics at temperature D: ``std = sqrt(2D/η)``."""

    std: float
    code = N_WHITE

    def __post_init__(self):
        check_nonnegative("std", self.std)

    def lower(self):
        return self.code, np.array([self.std, 0.0])

    @classmethod
    def langevin(cls, temperature: float, eta: float) -> "WhiteNoise":
        """Noise whose SDE limit has diffusion ``D = temperature`` at learning rate ``eta``."""
        check_positive("temperature", temperature)
        check_positive("eta", eta)
        return cls(float(np.sqrt(2.0 * temperature / eta)))


@dataclass(frozen=True)
class HessianNoise(Noise):
    """SGD-like noise ``ξ ~ N(0, |H(θ)|_f / B)`` (Xie, Sato & Sugiyama, ICLR 2021: Cov ≈ H/B near minima).

    ``|H|_f = V·diag(max(|λ_i|, floor))·Vᵀ`` for ``H = V·diag(λ)·Vᵀ``: absolute values keep the covariance
    positive semi-definite at saddles, and the positive ``floor`` keeps it positive where ``H`` is singular
    (at inflection points the covariance ``H/B`` vanishes and the SDE could never cross; theory-notes §4).
    """

    batch_size: float
    floor: float = 1e-2
    code = N_HESS

    def __post_init__(self):
        check_finite("batch_size", self.batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_positive("floor", self.floor)

    def lower(self):
        return self.code, np.array([self.batch_size, self.floor])


@dataclass(frozen=True)
class MinibatchNoise(Noise):
    """True minibatch noise on a :class:`~leap_sde.FiniteSum`: each step averages the per-sample gradients
    of ``batch_size`` indices drawn uniformly with replacement (no Gaussian approximation).  Its covariance is
    ``C(θ)/B`` with ``C`` the per-sample gradient covariance; in ``mode="sde"`` the Gaussian model with
    that covariance (recomputed from all samples each step) is integrated instead."""

    batch_size: int
    code = N_MINIBATCH

    def __post_init__(self):
        check_int("batch_size", self.batch_size, 1)

    def lower(self):
        return self.code, np.array([float(self.batch_size), 0.0])


@dataclass(frozen=True)
class LEAP:
    """LEAP learning-rate perturbation ``η̃_k = η_k + ε_k``, resampled every step.

    Parameters
    ----------
    sigma : perturbation scale σ ≥ 0.
    mode : ``"per-coordinate"`` (default: every parameter's rate has its own ``ε_k,i ~ N(0, σ²)``) or
        ``"scalar"`` (one ``ε_k`` shared by all coordinates).
    relative : if True, ``ε = σ·η_k·z`` (σ relative to the scheduled rate); else ``ε = σ·z``.
    variant : ``"gaussian"`` (default, no clipping: a negative rate, probability ``Φ(−η/σ)``, is an ascent
        step and part of the dynamics), ``"clipped"`` (``max(η_k + ε, 0)``) or ``"lognormal"``
        (``η̃ = η_k·exp(σz − σ²/2)``: positive, mean ``η_k``, variance ``η_k²(e^{σ²} − 1)``; σ is then the
        log-scale standard deviation and ``relative`` must not be False).

    The rule follows the common reading of LEAP (Liu et al., CIKM 2022, arXiv 2208.11873); the paper's exact
    perturbation law could not be checked, hence the variants.
    """

    sigma: float
    mode: str = "per-coordinate"
    relative: bool | None = None
    variant: str = "gaussian"

    def __post_init__(self):
        check_nonnegative("sigma", self.sigma)
        if self.mode not in ("per-coordinate", "scalar"):
            raise ValueError(f"mode must be 'per-coordinate' or 'scalar', got {self.mode!r}")
        if self.variant not in ("gaussian", "clipped", "lognormal"):
            raise ValueError(f"variant must be 'gaussian', 'clipped' or 'lognormal', got {self.variant!r}")
        if self.variant == "lognormal" and self.relative is False:
            raise ValueError("relative must be True or None for variant='lognormal' (σ is a log-scale std)")

    @property
    def is_relative(self) -> bool:
        return self.variant == "lognormal" or bool(self.relative)

    def lower(self):
        """``[sigma, per_coordinate, relative, variant]``."""
        variant = {"gaussian": L_GAUSS, "clipped": L_CLIP, "lognormal": L_LOGN}[self.variant]
        return np.array([self.sigma, float(self.mode == "per-coordinate"), float(self.is_relative), variant],
                        dtype=np.float64)


class Exit:
    """Abstract exit rule; lowers to ``(code, params)``."""

    code = E_NONE

    def lower(self, dim):
        return self.code, np.zeros(1)

    def satisfied(self, x) -> bool:
        return False


@dataclass(frozen=True)
class NoExit(Exit):
    """Never exit: every particle runs ``max_steps`` (occupation experiments)."""


@dataclass(frozen=True)
class Threshold(Exit):
    """Exit when ``direction·(x[coord] − value) ≥ 0`` (``direction`` = +1 or −1)."""

    value: float
    coord: int = 0
    direction: int = 1
    code = E_THRESHOLD

    def __post_init__(self):
        check_finite("value", self.value)
        check_int("coord", self.coord, 0)
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {self.direction!r}")

    def lower(self, dim):
        if self.coord >= dim:
            raise ValueError(f"coord must be in [0, {dim - 1}] for a {dim}-D landscape, got {self.coord}")
        return self.code, np.array([self.coord, self.value, self.direction], dtype=np.float64)

    def satisfied(self, x) -> bool:
        return bool(self.direction * (np.asarray(x)[self.coord] - self.value) >= 0)


@dataclass(frozen=True)
class _Ball(Exit):
    center: np.ndarray
    radius: float

    def __post_init__(self):
        c = np.atleast_1d(np.asarray(self.center, dtype=np.float64))
        check_finite("center", c)
        check_positive("radius", self.radius)
        object.__setattr__(self, "center", c)

    def lower(self, dim):
        if self.center.shape != (dim,):
            raise ValueError(f"center must have shape ({dim},), got {self.center.shape}")
        return self.code, np.concatenate([[self.radius], self.center])

    def _inside(self, x):
        return float(np.linalg.norm(np.asarray(x, dtype=np.float64) - self.center)) < self.radius


@dataclass(frozen=True)
class LeaveBall(_Ball):
    """Exit when ``‖x − center‖ ≥ radius``."""

    code = E_LEAVE

    def satisfied(self, x) -> bool:
        return not self._inside(x)


@dataclass(frozen=True)
class ReachBall(_Ball):
    """Exit when ``‖x − center‖ < radius`` (e.g. the neighbourhood of a target minimum)."""

    code = E_REACH

    def satisfied(self, x) -> bool:
        return self._inside(x)
