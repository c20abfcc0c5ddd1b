"""Learning-rate schedules ``η_k`` (k = 0, 1, ... counts optimizer steps).

Each schedule is a frozen dataclass whose formula is one compiled function ``eta(p, eta0, k)`` below, with
``p = lower()``; the kernels call it and ``values(eta, n)`` evaluates it through the same compiled code.  Names and parameters follow
``torch.optim.lr_scheduler`` (StepLR, ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts,
CyclicLR, and LinearLR warm-up followed by another schedule as in SequentialLR; plus the Robbins–Monro
InverseTimeLR), and the values equal
torch's when its scheduler is stepped once per optimizer step (tested where torch is installed).
``eta`` is the base learning rate (torch's ``lr`` / CyclicLR's ``base_lr``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np

from ._checks import check_finite, check_int, check_nonnegative, check_positive

__all__ = ["Schedule", "Constant", "StepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "InverseTimeLR", "Warmup"]

class StepParams(NamedTuple):
    step_size: float
    gamma: float


class CosineParams(NamedTuple):
    T_max: float
    eta_min: float


class WarmRestartParams(NamedTuple):
    T_0: float
    T_mult: float
    eta_min: float


class CyclicParams(NamedTuple):
    max_lr: float
    step_size_up: float
    step_size_down: float
    mode: int
    gamma: float


class InverseTimeParams(NamedTuple):
    gamma: float
    power: float


_TRI, _TRI2, _EXPR = 0, 1, 2


@nb.njit(cache=True)
def constant_eta(p, eta, k):
    return eta


@nb.njit(cache=True)
def step_eta(p, eta, k):
    return eta * p.gamma ** (k // np.int64(p.step_size))


@nb.njit(cache=True)
def exponential_eta(p, eta, k):
    return eta * p[0] ** k


@nb.njit(cache=True)
def cosine_eta(p, eta, k):
    return p.eta_min + (eta - p.eta_min) * (1.0 + math.cos(math.pi * k / p.T_max)) / 2.0


@nb.njit(cache=True)
def warm_restarts_eta(p, eta, k):
    t0 = np.int64(p.T_0)
    tm = np.int64(p.T_mult)
    if tm == 1:
        tcur = k % t0
        ti = t0
    else:
        n = np.int64(math.log(k / t0 * (tm - 1) + 1.0) / math.log(tm)) if k >= t0 else 0
        tcur = k - t0 * (tm ** n - 1) // (tm - 1)
        ti = t0 * tm ** n
        if tcur >= ti:  # guard against rounding in the logarithm
            tcur -= ti
            ti *= tm
        elif tcur < 0:
            ti //= tm
            tcur += ti
    return p.eta_min + (eta - p.eta_min) * (1.0 + math.cos(math.pi * tcur / ti)) / 2.0


@nb.njit(cache=True)
def inverse_time_eta(p, eta, k):
    return eta * (1.0 + p.gamma * k) ** (-p.power)


@nb.njit(cache=True)
def cyclic_eta(p, eta, k):
    """torch CyclicLR; an unknown ``mode`` code gives NaN (the particle is then reported diverged)."""
    up = p.step_size_up
    total = p.step_size_up + p.step_size_down
    ratio = up / total
    cycle = math.floor(1.0 + k / total)
    x = 1.0 + k / total - cycle
    if x <= ratio:
        scale = x / ratio
    else:
        scale = (x - 1.0) / (ratio - 1.0)
    if p.mode == _TRI:
        amp = 1.0
    elif p.mode == _TRI2:
        amp = 1.0 / (2.0 ** (cycle - 1.0))
    elif p.mode == _EXPR:
        amp = p.gamma ** k
    else:
        return np.nan
    return eta + (p.max_lr - eta) * scale * amp


class Schedule:
    """Abstract schedule ``η_k``.

    Kernel contract: ``kernel_function`` is the compiled ``eta(p, eta0, k)`` of the schedule and
    :meth:`lower` returns its parameter argument ``p``."""

    kernel_function = staticmethod(constant_eta)

    @property
    def key(self) -> str:
        return type(self).__name__

    def lower(self):
        return (0.0,)

    def _kernel_source(self) -> list:
        """Lines defining ``S_eta(sp, eta0, k)`` in a generated kernel module."""
        return [f"from {self.kernel_function.__module__} import {self.kernel_function.__name__} as S_eta"]

    def values(self, eta: float, n: int) -> np.ndarray:
        """``η_k`` for k = 0..n−1, shape (n,), through the compiled code the kernels use."""
        from ._codegen import schedule_values

        check_positive("eta", eta)
        out = np.empty(check_int("n", n, 0))
        schedule_values(self)(self.lower(), float(eta), out)
        return out


@dataclass(frozen=True)
class Constant(Schedule):
    """``η_k = η``."""


@dataclass(frozen=True)
class StepLR(Schedule):
    """``η_k = η·gamma^⌊k/step_size⌋`` (torch StepLR)."""

    step_size: int
    gamma: float = 0.1
    kernel_function = staticmethod(step_eta)

    def __post_init__(self):
        check_int("step_size", self.step_size, 1)
        check_positive("gamma", self.gamma)

    def lower(self):
        return StepParams(float(self.step_size), float(self.gamma))


@dataclass(frozen=True)
class ExponentialLR(Schedule):
    """``η_k = η·gamma^k`` (torch ExponentialLR)."""

    gamma: float
    kernel_function = staticmethod(exponential_eta)

    def __post_init__(self):
        check_positive("gamma", self.gamma)

    def lower(self):
        return (float(self.gamma),)


@dataclass(frozen=True)
class CosineAnnealingLR(Schedule):
    """``η_k = η_min + (η − η_min)(1 + cos(πk/T_max))/2`` (torch CosineAnnealingLR, closed form)."""

    T_max: int
    eta_min: float = 0.0
    kernel_function = staticmethod(cosine_eta)

    def __post_init__(self):
        check_int("T_max", self.T_max, 1)
        check_nonnegative("eta_min", self.eta_min)

    def lower(self):
        return CosineParams(float(self.T_max), float(self.eta_min))


@dataclass(frozen=True)
class CosineAnnealingWarmRestarts(Schedule):
    """SGDR (Loshchilov & Hutter 2017; torch CosineAnnealingWarmRestarts): cosine over periods
    ``T_0, T_0·T_mult, T_0·T_mult², ...``, restarting at ``η`` each time."""

    T_0: int
    T_mult: int = 1
    eta_min: float = 0.0
    kernel_function = staticmethod(warm_restarts_eta)

    def __post_init__(self):
        check_int("T_0", self.T_0, 1)
        check_int("T_mult", self.T_mult, 1)
        check_nonnegative("eta_min", self.eta_min)

    def lower(self):
        return WarmRestartParams(float(self.T_0), float(self.T_mult), float(self.eta_min))


@dataclass(frozen=True)
class CyclicLR(Schedule):
    """Cyclical learning rate (Smith 2017; torch CyclicLR with ``base_lr = η``): a triangle between ``η``
    and ``max_lr`` rising over ``step_size_up`` steps and falling over ``step_size_down`` (default: the
    same); ``mode`` 'triangular', 'triangular2' (amplitude halves each cycle) or 'exp_range'
    (amplitude ×``gamma^k``)."""

    max_lr: float
    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    kernel_function = staticmethod(cyclic_eta)

    def __post_init__(self):
        check_positive("max_lr", self.max_lr)
        check_int("step_size_up", self.step_size_up, 1)
        if self.step_size_down is not None:
            check_int("step_size_down", self.step_size_down, 1)
        if self.mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range', got {self.mode!r}")
        check_positive("gamma", self.gamma)

    def lower(self):
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        mode = {"triangular": _TRI, "triangular2": _TRI2, "exp_range": _EXPR}[self.mode]
        return CyclicParams(float(self.max_lr), float(self.step_size_up), float(down), mode, float(self.gamma))


@dataclass(frozen=True)
class InverseTimeLR(Schedule):
    """``η_k = η·(1 + gamma·k)^(−power)``: Robbins–Monro decay (Σ η_k = ∞ and Σ η_k² < ∞ for
    ``0.5 < power ≤ 1``).  torch has no named equivalent (``LambdaLR(lambda k: (1 + gamma*k)**-power)``)."""

    gamma: float
    power: float = 1.0
    kernel_function = staticmethod(inverse_time_eta)

    def __post_init__(self):
        check_positive("gamma", self.gamma)
        check_positive("power", self.power)

    def lower(self):
        return InverseTimeParams(float(self.gamma), float(self.power))


@dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warm-up over ``warmup_steps`` from ``start_factor·η`` to ``η``, then ``main`` restarted at 0
    (torch ``SequentialLR([LinearLR(start_factor, 1.0, warmup_steps), main], [warmup_steps])``)."""

    main: Schedule
    warmup_steps: int
    start_factor: float = 1.0 / 3.0

    def __post_init__(self):
        if not isinstance(self.main, Schedule) or isinstance(self.main, Warmup):
            raise ValueError("main must be a schedule other than Warmup")
        check_int("warmup_steps", self.warmup_steps, 1)
        check_finite("start_factor", self.start_factor)
        if not 0 < self.start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {self.start_factor}")

    @property
    def key(self):
        return f"Warmup-{self.main.key}"

    def lower(self):
        return (np.int64(self.warmup_steps), float(self.start_factor), self.main.lower())

    def _kernel_source(self):
        """``η_k = η·(f + (1 − f)·k/w)`` for k < w (torch LinearLR to factor 1), then ``main`` at k − w."""
        fn = self.main.kernel_function
        return [f"from {fn.__module__} import {fn.__name__} as S_main", "",
                "@nb.njit(inline='always')", "def S_eta(sp, eta0, k):",
                "    w = sp[0]", "    if k < w:", "        return eta0 * (sp[1] + (1.0 - sp[1]) * k / w)",
                "    return S_main(sp[2], eta0, k - w)"]
