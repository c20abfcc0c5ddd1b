"""The parts of one simulated optimizer: gradient noise, the LEAP learning-rate perturbation and the exit rule.

Discrete optimizer (``mode="discrete"``)::

    θ_{k+1} = θ_k − η̃_k ⊙ (∇L(θ_k) + ξ_k)

with ``η̃_k`` the scheduled rate ``η_k`` perturbed by :class:`LEAP` and ``ξ_k`` the gradient noise.

Continuous model (``mode="sde"``), integrated by Euler–Maruyama with step ``Δt_k = η_k``::

    dθ = −∇L(θ) dt + √(2 D(θ)) dW,     D(θ) = η·Cov(ξ)/2  (+ LEAP's effective diffusion)

so continuous time is ``t = Σ_k η_k`` (``t = kη`` for a constant rate), the mapping of Xie et al. (ICLR 2021)
and of docs/theory.md §0.2.  With LEAP (ε zero-mean, independent of ξ, Cov ξ = C, g = ∇L; derived in this
project, docs/theory.md §8.2)::

    per-coordinate ε:  D = (η/2)·C + (σ²/2η)·Diag(g gᵀ + C)
    scalar ε:          D = ((η² + σ²)/2η)·C + (σ²/2η)·g gᵀ

Each part is defined once: its parameters as dataclass fields and its kernel code as the ``_kernel_*``
methods below, which write the lines of the compiled step for the generator (:mod:`leap_sde._kernels`; the names
they may use are listed in :class:`leap_sde._codegen.Layout`); the scalar formulas they call are the compiled functions of this module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_finite, check_int, check_nonnegative, check_positive

__all__ = ["NoNoise", "WhiteNoise", "HessianNoise", "MinibatchNoise", "LEAP",
           "Threshold", "LeaveBall", "ReachBall", "NoExit"]


def _draw(var="z"):
    return f"{var}, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)"


class Noise:
    """Abstract gradient-noise model ξ.

    Kernel contract: ``key`` names the kernel code; ``lower(landscape)`` returns the parameter argument
    ``nz``; ``_kernel_discrete(lay)`` returns the lines that add ξ to the gradient ``g`` (or, with
    ``replaces_gradient``, compute the noisy gradient itself); ``_kernel_cov(lay)`` the lines that write
    Cov ξ into ``C`` (d, d) for ``mode="sde"``, and ``_kernel_var(lay)`` an expression for its diagonal
    entry when Cov ξ is diagonal by construction (else None).
    """

    replaces_gradient = False

    @property
    def key(self) -> str:
        return type(self).__name__

    def lower(self, landscape):
        return (0.0,)

    def _kernel_discrete(self, lay) -> list:
        raise NotImplementedError

    def _kernel_cov(self, lay) -> list:
        raise NotImplementedError

    def _kernel_var(self, lay):
        return None


@dataclass(frozen=True)
class NoNoise(Noise):
    """``ξ = 0``: plain gradient descent (with LEAP: multiplicative noise only)."""

    def _kernel_discrete(self, lay):
        return []

    def _kernel_cov(self, lay):
        return ["C[:, :] = 0.0"]

    def _kernel_var(self, lay):
        return "0.0"


@dataclass(frozen=True)
class WhiteNoise(Noise):
    """Isotropic ``ξ ~ N(0, std²·I)``.  Langevin dynamics at temperature D: ``std = sqrt(2D/η)``."""

    std: float

    def __post_init__(self):
        check_nonnegative("std", self.std)

    def lower(self, landscape):
        return (float(self.std),)

    def _kernel_discrete(self, lay):
        if lay.reg:
            return [line for j in range(lay.d) for line in (_draw(), f"g{j} += nz[0] * z")]
        return ["for j in range(d):", "    " + _draw(), "    g[j] += nz[0] * z"]

    def _kernel_cov(self, lay):
        return ["C[:, :] = 0.0", "for j in range(d):", "    C[j, j] = nz[0] * nz[0]"]

    def _kernel_var(self, lay):
        return "nz[0] * nz[0]"

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
    (at inflection points the covariance ``H/B`` vanishes and the SDE could never cross; docs/theory.md §4.3).
    """

    batch_size: float
    floor: float = 1e-2

    def __post_init__(self):
        check_finite("batch_size", self.batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_positive("floor", self.floor)

    def _constant(self, landscape):
        return landscape.constant_hessian and landscape.dim > 2

    @property
    def key(self):
        return "HessianNoise"

    def lower(self, landscape):
        """``(batch, floor, V, r)``: for a constant Hessian H = V·diag(λ)·Vᵀ (d > 2) the factor of
        ξ = V·(r ⊙ z), ``r = sqrt(max(|λ|, floor)/B)``, computed once here; otherwise empty arrays (the kernel
        factors H(θ) every step)."""
        d = landscape.dim
        if self._constant(landscape):
            lam, V = np.linalg.eigh(landscape.hessian(np.zeros(d)))
            r = np.sqrt(np.maximum(np.abs(lam), self.floor) * (1.0 / self.batch_size))
            return (float(self.batch_size), float(self.floor), np.ascontiguousarray(V), r)
        return (float(self.batch_size), float(self.floor), np.zeros((0, 0)), np.zeros(0))

    def _kernel_discrete(self, lay):
        if lay.reg and lay.d == 1:
            return [_draw(), "g0 += math.sqrt(max(abs(L_hess(x0, lp)), nz[1]) * (1.0 / nz[0])) * z"]
        if lay.reg:  # closed-form symmetric root of |H|_f / B for 2 x 2
            return ["h00, h01, h11 = L_hess(x0, x1, lp)",
                    "r00, r01, r11 = abs_floor_root_2x2(h00, h01, h11, nz[1], 1.0 / nz[0])",
                    _draw("z0"), _draw("z1"),
                    "g0 += r00 * z0 + r01 * z1", "g1 += r01 * z0 + r11 * z1"]
        if lay.constant_hessian and lay.d > 2:  # ξ = V (r ⊙ z), the factor computed once
            return ["V = nz[2]", "r = nz[3]", "for j in range(d):", "    " + _draw(), "    gt[j] = r[j] * z",
                    "for a in range(d):", "    v = 0.0", "    for b in range(d):", "        v += V[a, b] * gt[b]",
                    "    g[a] += v"]
        return ["HESS(x, lp, C)",
                "if d == 1:", "    " + _draw(), "    g[0] += math.sqrt(max(abs(C[0, 0]), nz[1]) * (1.0 / nz[0])) * z",
                "else:", "    lam, V = np.linalg.eigh(C)",
                "    for j in range(d):", "        " + _draw(),
                "        gt[j] = math.sqrt(max(abs(lam[j]), nz[1]) * (1.0 / nz[0])) * z",
                "    for a in range(d):", "        v = 0.0", "        for b in range(d):",
                "            v += V[a, b] * gt[b]", "        g[a] += v"]

    def _kernel_cov(self, lay):
        return ["HESS(x, lp, C)",
                "if d == 1:", "    C[0, 0] = max(abs(C[0, 0]), nz[1]) / nz[0]",
                "else:", "    lam, V = np.linalg.eigh(C)", "    for j in range(d):",
                "        lam[j] = max(abs(lam[j]), nz[1]) / nz[0]", "    C[:, :] = (V * lam) @ V.T"]


@dataclass(frozen=True)
class MinibatchNoise(Noise):
    """True minibatch noise on a :class:`~leap_sde.FiniteSum`: each step averages the per-sample gradients
    of ``batch_size`` indices drawn uniformly with replacement (no Gaussian approximation).  Its covariance is
    ``C(θ)/B`` with ``C`` the per-sample gradient covariance; in ``mode="sde"`` the Gaussian model with
    that covariance (recomputed from all samples each step) is integrated instead."""

    batch_size: int
    replaces_gradient = True

    def __post_init__(self):
        check_int("batch_size", self.batch_size, 1)

    def lower(self, landscape):
        return (np.int64(self.batch_size),)

    def _kernel_discrete(self, lay):
        if lay.reg:
            gs = ", ".join(f"a{j}" for j in range(lay.d))
            xs = ", ".join(f"x{j} - off[i, {j}]" for j in range(lay.d))
            lines = [f"g{j} = 0.0" for j in range(lay.d)]
            lines += ["for _ in range(nz[0]):", "    i, s0, s1, s2, s3 = uniform_int_t(s0, s1, s2, s3, off.shape[0])",
                      f"    {gs} = {lay.grad_call(xs)}"]
            lines += [f"    g{j} += a{j}" for j in range(lay.d)]
            return lines + [f"g{j} /= nz[0]" for j in range(lay.d)]
        return ["g[:] = 0.0", "for _ in range(nz[0]):",
                "    i, s0, s1, s2, s3 = uniform_int_t(s0, s1, s2, s3, off.shape[0])",
                "    for j in range(d):", "        xt[j] = x[j] - off[i, j]",
                "    GRAD(xt, lp, gt)", "    for j in range(d):", "        g[j] += gt[j]", "g /= nz[0]"]

    def _kernel_cov(self, lay):
        return ["C[:, :] = 0.0", "n_off = off.shape[0]", "mean[:] = 0.0",
                "for i in range(n_off):", "    for j in range(d):", "        xt[j] = x[j] - off[i, j]",
                "    GRAD(xt, lp, gt)", "    for j in range(d):", "        G[i, j] = gt[j]",
                "        mean[j] += gt[j] / n_off",
                "for i in range(n_off):", "    for a in range(d):", "        for b in range(d):",
                "            C[a, b] += (G[i, a] - mean[a]) * (G[i, b] - mean[b]) / (n_off * nz[0])"]


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

    Notes
    -----
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

    @property
    def key(self) -> str:
        return f"LEAP-{self.mode}-{self.variant}-{'rel' if self.is_relative else 'abs'}"

    def lower(self):
        return (float(self.sigma),)

    def _rate_fn(self):
        """The compiled η̃(σ, η_k, z) of this variant."""
        if self.variant == "lognormal":
            return rate_lognormal
        if self.variant == "clipped":
            return rate_clipped_rel if self.is_relative else rate_clipped_abs
        return rate_gaussian_rel if self.is_relative else rate_gaussian_abs

    def _var_fn(self):
        """The compiled Var(η̃)(σ, η_k) of this variant (SDE mode; the clipped variant has none)."""
        if self.variant == "lognormal":
            return var_lognormal
        return var_rel if self.is_relative else var_abs

    def _kernel_discrete(self, lay):
        """θ ← θ − η̃ ⊙ g with fresh η̃ per coordinate (``per-coordinate``) or one per step (``scalar``)."""
        if self.mode == "per-coordinate":
            if lay.reg:
                return [line for j in range(lay.d) for line in (_draw(), f"x{j} -= RATE(lv[0], eta_k, z) * g{j}")]
            return ["for j in range(d):", "    " + _draw(), "    x[j] -= RATE(lv[0], eta_k, z) * g[j]"]
        lines = [_draw(), "e = RATE(lv[0], eta_k, z)"]
        if lay.reg:
            return lines + [f"x{j} -= e * g{j}" for j in range(lay.d)]
        return lines + ["for j in range(d):", "    x[j] -= e * g[j]"]


# η̃ for one standard normal z, per LEAP variant (σ absolute or relative to η_k)
@nb.njit(cache=True)
def rate_gaussian_abs(sigma, eta_k, z):
    return eta_k + sigma * z


@nb.njit(cache=True)
def rate_gaussian_rel(sigma, eta_k, z):
    return eta_k + (sigma * eta_k) * z


@nb.njit(cache=True)
def rate_clipped_abs(sigma, eta_k, z):
    e = eta_k + sigma * z
    return 0.0 if e < 0.0 else e


@nb.njit(cache=True)
def rate_clipped_rel(sigma, eta_k, z):
    e = eta_k + (sigma * eta_k) * z
    return 0.0 if e < 0.0 else e


@nb.njit(cache=True)
def rate_lognormal(sigma, eta_k, z):
    return eta_k * math.exp(sigma * z - 0.5 * sigma * sigma)


@nb.njit(cache=True)
def var_abs(sigma, eta_k):
    return sigma ** 2


@nb.njit(cache=True)
def var_rel(sigma, eta_k):
    return (sigma * eta_k) ** 2


@nb.njit(cache=True)
def var_lognormal(sigma, eta_k):
    return eta_k * eta_k * math.expm1(sigma * sigma)


@nb.njit(cache=True)
def abs_floor_root_2x2(h00, h01, h11, floor, scale):
    """Symmetric square root ``R = V·diag(sqrt(max(|λ|, floor)·scale))·Vᵀ`` of ``|H|_f·scale`` for the 2 x 2
    symmetric ``H = [[h00, h01], [h01, h11]]`` in closed form, returned as ``(R00, R01, R11)``.

    With λ± = m ± q (m = (h00 + h11)/2, q = hypot((h00 − h11)/2, h01)) and f± the root's eigenvalues,
    ``R = f₋·I + (f₊ − f₋)/(2q)·(H − λ₋·I)`` (the matrix function by interpolation on the spectrum);
    for ``q ≤ 1e-12·(|m| + q)`` the eigenvalues coincide and ``R = f·I``."""
    m = 0.5 * (h00 + h11)
    q = math.hypot(0.5 * (h00 - h11), h01)
    lo, hi = m - q, m + q
    f_lo = math.sqrt(max(abs(lo), floor) * scale)
    if q <= 1e-12 * (abs(m) + q):
        return f_lo, 0.0, f_lo
    f_hi = math.sqrt(max(abs(hi), floor) * scale)
    c = (f_hi - f_lo) / (2.0 * q)
    return f_lo + c * (h00 - lo), c * h01, f_lo + c * (h11 - lo)


class Exit:
    """Abstract exit rule.

    Kernel contract: ``key`` names the kernel code, ``lower(dim)`` returns the parameter argument ``ep`` and
    ``_kernel_test(lay)`` the lines that set the boolean ``hit`` from the position."""

    @property
    def key(self) -> str:
        return type(self).__name__

    def lower(self, dim):
        return (0.0,)

    def satisfied(self, x) -> bool:
        return False

    def _kernel_test(self, lay) -> list:
        raise NotImplementedError


@dataclass(frozen=True)
class NoExit(Exit):
    """Never exit: every particle runs ``max_steps`` (occupation experiments)."""

    def _kernel_test(self, lay):
        return ["hit = False"]


@dataclass(frozen=True)
class Threshold(Exit):
    """Exit when ``direction·(x[coord] − value) ≥ 0`` (``direction`` = +1 or −1)."""

    value: float
    coord: int = 0
    direction: int = 1

    def __post_init__(self):
        check_finite("value", self.value)
        check_int("coord", self.coord, 0)
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {self.direction!r}")

    def lower(self, dim):
        if self.coord >= dim:
            raise ValueError(f"coord must be in [0, {dim - 1}] for a {dim}-D landscape, got {self.coord}")
        return ThresholdParams(float(self.value), float(self.direction))

    @property
    def key(self):
        return f"Threshold-{self.coord}"

    def satisfied(self, x) -> bool:
        return bool(self.direction * (np.asarray(x)[self.coord] - self.value) >= 0)

    def _kernel_test(self, lay):
        x = f"x{self.coord}" if lay.reg else f"x[{self.coord}]"
        return [f"hit = ep.direction * ({x} - ep.value) >= 0.0"]


class ThresholdParams(NamedTuple):
    value: float
    direction: float


class BallParams(NamedTuple):
    radius: float
    center: np.ndarray


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
        return BallParams(float(self.radius), self.center)

    def _inside(self, x):
        return float(np.linalg.norm(np.asarray(x, dtype=np.float64) - self.center)) < self.radius

    def _kernel_test(self, lay):
        test = ">=" if isinstance(self, LeaveBall) else "<"
        if lay.reg:
            r2 = " + ".join(f"(x{j} - ep.center[{j}]) ** 2" for j in range(lay.d))
            return [f"hit = {r2} {test} ep.radius * ep.radius"]
        return ["r2 = 0.0", "for j in range(d):", "    r2 += (x[j] - ep.center[j]) ** 2",
                f"hit = r2 {test} ep.radius * ep.radius"]


@dataclass(frozen=True)
class LeaveBall(_Ball):
    """Exit when ``‖x − center‖ ≥ radius``."""

    def satisfied(self, x) -> bool:
        return not self._inside(x)


@dataclass(frozen=True)
class ReachBall(_Ball):
    """Exit when ``‖x − center‖ < radius`` (e.g. the neighbourhood of a target minimum)."""

    def satisfied(self, x) -> bool:
        return self._inside(x)
