"""Learning-rate schedules ``η_k`` (k = 0, 1, ... counts optimizer steps).

Each schedule is a frozen dataclass that lowers to ``(code, params)`` for the compiled :func:`eta_at`;
``values(eta, n)`` evaluates it through the same compiled code.  Names and parameters follow
``torch.optim.lr_scheduler`` (StepLR, ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts,
CyclicLR, and LinearLR warm-up followed by another schedule as in SequentialLR; plus the Robbins–Monro
InverseTimeLR), and the values equal
torch's when its scheduler is stepped once per optimizer step (tested where torch is installed).
``eta`` is the base learning rate (torch's ``lr`` / CyclicLR's ``base_lr``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ._checks import check_finite, check_int, check_nonnegative, check_positive

__all__ = ["Schedule", "Constant", "StepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "InverseTimeLR", "Warmup"]

CONST, STEP, EXP, COS, COSWR, CYCLIC, INVT = 0, 1, 2, 3, 4, 5, 6
_TRI, _TRI2, _EXPR = 0, 1, 2


@nb.njit(cache=True)
def _main_eta(code, p, eta, k):
    if code == CONST:
        return eta
    if code == STEP:  # p = [step_size, gamma]
        return eta * p[1] ** (k // np.int64(p[0]))
    if code == EXP:  # p = [gamma]
        return eta * p[0] ** k
    if code == COS:  # p = [T_max, eta_min]
        return p[1] + (eta - p[1]) * (1.0 + math.cos(math.pi * k / p[0])) / 2.0
    if code == COSWR:  # p = [T_0, T_mult, eta_min]
        t0 = np.int64(p[0])
        tm = np.int64(p[1])
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
        return p[2] + (eta - p[2]) * (1.0 + math.cos(math.pi * tcur / ti)) / 2.0
    if code == INVT:  # p = [gamma, power]
        return eta * (1.0 + p[0] * k) ** (-p[1])
    # CYCLIC: p = [max_lr, step_size_up, step_size_down, mode, gamma]
    up = p[1]
    total = p[1] + p[2]
    ratio = up / total
    cycle = math.floor(1.0 + k / total)
    x = 1.0 + k / total - cycle
    if x <= ratio:
        scale = x / ratio
    else:
        scale = (x - 1.0) / (ratio - 1.0)
    mode = np.int64(p[3])
    if mode == _TRI:
        amp = 1.0
    elif mode == _TRI2:
        amp = 1.0 / (2.0 ** (cycle - 1.0))
    else:
        amp = p[4] ** k
    return eta + (p[0] - eta) * scale * amp


@nb.njit(cache=True)
def eta_at(code, p, eta, k):
    """Scheduled learning rate at step ``k``.

    ``p`` = ``[warmup_steps, start_factor, *main_params]``: for ``k < warmup_steps`` the rate is
    ``eta·(f + (1 − f)·k/warmup_steps)`` (torch LinearLR with end_factor 1), afterwards the main
    schedule restarted at ``k − warmup_steps`` (torch SequentialLR).
    """
    w = np.int64(p[0])
    if k < w:
        return eta * (p[1] + (1.0 - p[1]) * k / w)
    return _main_eta(code, p[2:], eta, k - w)


@nb.njit(cache=True)
def _values(code, p, eta, out):
    for k in range(out.shape[0]):
        out[k] = eta_at(code, p, eta, k)


class Schedule:
    """Abstract schedule; concrete classes define ``_code`` and ``_params()``."""

    _code = CONST

    def _params(self):
        return ()

    def lower(self):
        """``(code, params)`` for :func:`eta_at` (params start with the warm-up fields)."""
        return self._code, np.array([0.0, 1.0, *self._params()], dtype=np.float64)

    def values(self, eta: float, n: int) -> np.ndarray:
        """``η_k`` for k = 0..n−1, shape (n,)."""
        check_positive("eta", eta)
        code, p = self.lower()
        out = np.empty(check_int("n", n, 0))
        _values(code, p, float(eta), out)
        return out


@dataclass(frozen=True)
class Constant(Schedule):
    """``η_k = η``."""


@dataclass(frozen=True)
class StepLR(Schedule):
    """``η_k = η·gamma^⌊k/step_size⌋`` (torch StepLR)."""

    step_size: int
    gamma: float = 0.1
    _code = STEP

    def __post_init__(self):
        check_int("step_size", self.step_size, 1)
        check_positive("gamma", self.gamma)

    def _params(self):
        return (self.step_size, self.gamma)


@dataclass(frozen=True)
class ExponentialLR(Schedule):
    """``η_k = η·gamma^k`` (torch ExponentialLR)."""

    gamma: float
    _code = EXP

    def __post_init__(self):
        check_positive("gamma", self.gamma)

    def _params(self):
        return (self.gamma,)


@dataclass(frozen=True)
class CosineAnnealingLR(Schedule):
    """``η_k = η_min + (η − η_min)(1 + cos(πk/T_max))/2`` (torch CosineAnnealingLR, closed form)."""

    T_max: int
    eta_min: float = 0.0
    _code = COS

    def __post_init__(self):
        check_int("T_max", self.T_max, 1)
        check_nonnegative("eta_min", self.eta_min)

    def _params(self):
        return (self.T_max, self.eta_min)


@dataclass(frozen=True)
class CosineAnnealingWarmRestarts(Schedule):
    """SGDR (Loshchilov & Hutter 2017; torch CosineAnnealingWarmRestarts): cosine over periods
    ``T_0, T_0·T_mult, T_0·T_mult², ...``, restarting at ``η`` each time."""

    T_0: int
    T_mult: int = 1
    eta_min: float = 0.0
    _code = COSWR

    def __post_init__(self):
        check_int("T_0", self.T_0, 1)
        check_int("T_mult", self.T_mult, 1)
        check_nonnegative("eta_min", self.eta_min)

    def _params(self):
        return (self.T_0, self.T_mult, self.eta_min)


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
    _code = CYCLIC

    def __post_init__(self):
        check_positive("max_lr", self.max_lr)
        check_int("step_size_up", self.step_size_up, 1)
        if self.step_size_down is not None:
            check_int("step_size_down", self.step_size_down, 1)
        if self.mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range', got {self.mode!r}")
        check_positive("gamma", self.gamma)

    def _params(self):
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        mode = {"triangular": _TRI, "triangular2": _TRI2, "exp_range": _EXPR}[self.mode]
        return (self.max_lr, self.step_size_up, down, mode, self.gamma)


@dataclass(frozen=True)
class InverseTimeLR(Schedule):
    """``η_k = η·(1 + gamma·k)^(−power)``: Robbins–Monro decay (Σ η_k = ∞ and Σ η_k² < ∞ for
    ``0.5 < power ≤ 1``).  torch has no named equivalent (``LambdaLR(lambda k: (1 + gamma*k)**-power)``)."""

    gamma: float
    power: float = 1.0
    _code = INVT

    def __post_init__(self):
        check_positive("gamma", self.gamma)
        check_positive("power", self.power)

    def _params(self):
        return (self.gamma, self.power)


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

    def lower(self):
        code, p = self.main.lower()
        p = p.copy()
        p[0], p[1] = self.warmup_steps, self.start_factor
        return code, p
