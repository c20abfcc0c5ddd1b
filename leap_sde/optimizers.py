"""Optimizers of the simulated dynamics, with ``torch.optim``'s update rules, parameter names and defaults.

With the gradient estimate ``g_k = ∇L(θ_k) + ξ_k`` (step k = 0, 1, …) each optimizer turns ``g_k`` into a
step direction ``u_k`` using its per-particle state, and the step is taken with the (LEAP-perturbed) rate::

    θ_{k+1} = θ_k − η̃_k ⊙ u_k,        η̃_k = η_k + ε_k  (per coordinate or scalar; ε never enters the state)

which is exactly "the optimizer's step with learning rate η̃ per element", the rule of the PyTorch plug-in
(:class:`leap_sde.torch.LEAP`): torch's displacement is η_k·u_k for all three optimizers below, so rescaling
it by η̃/η gives η̃·u.

* :class:`SGD` (``torch.optim.SGD``): ``g ← g + λθ``; with momentum μ the buffer ``b_0 = g_0``,
  ``b_k = μ b_{k−1} + (1 − τ) g_k`` (τ = dampening), and ``u = g + μ b`` (Nesterov) or ``u = b``.
* :class:`Adam` (``torch.optim.Adam``, L2 weight decay ``g ← g + λθ``): ``m_k = β₁m + (1−β₁)g``,
  ``v_k = β₂v + (1−β₂)g²`` from zero, ``u = (m_k / (√v_k / √(1−β₂^{k+1}) + eps)) / (1 − β₁^{k+1})``.
* :class:`AdamW` (``torch.optim.AdamW``): Adam without the L2 term and with the decoupled decay in the
  direction, ``u = λθ + (Adam's u)`` (torch multiplies θ by 1 − ηλ before the step: the same displacement).

``SGD()`` (the default of :func:`leap_sde.simulate`) is the plain update ``u = g``, bit for bit.  Momentum
and Adam have no SDE model here (``mode="discrete"`` only); docs/theory.md §"Optimizers" gives the linearised
theory used by :mod:`leap_sde.theory`.

Kernel contract (as for the other components, :mod:`leap_sde.dynamics`): ``key`` names the code,
``state_names`` the per-coordinate state (scalars ``b0, b1`` in register layout, arrays ``b`` in array
layout), ``lower()`` the parameter argument ``op``, ``_kernel_direction(lay)`` the lines that turn ``g`` into
``u`` in place (``k`` is the particle's step count).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import check_finite, check_nonnegative

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _per_coord(lay, lines):
    """``lines`` (with ``{j}`` for the coordinate) written out per coordinate (register) or as a loop."""
    if lay.reg:
        return [line.format(j=j, x=f"x{j}", g=f"g{j}", s="{j}") for j in range(lay.d) for line in lines]
    return ["for j in range(d):"] + ["    " + line.format(j="[j]", x="x[j]", g="g[j]") for line in lines]


class Optimizer:
    """Abstract optimizer (see the module docstring for the kernel contract)."""

    state_names: tuple = ()

    @property
    def key(self) -> str:
        return type(self).__name__

    @property
    def is_plain(self) -> bool:
        """True for the plain step ``u = g`` (the only one with an SDE model)."""
        return False

    def lower(self):
        raise NotImplementedError

    def _kernel_direction(self, lay) -> list:
        raise NotImplementedError


def _check_unit(name, value, upper_open=True):
    check_finite(name, value)
    if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1{')' if upper_open else ']'}, got {value!r}")


class SGDParams(NamedTuple):
    momentum: float
    dampening: float
    weight_decay: float


@dataclass(frozen=True)
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, as
    ``torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov)``."""

    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        _check_unit("momentum", self.momentum)
        _check_unit("dampening", self.dampening, upper_open=False)
        check_nonnegative("weight_decay", self.weight_decay)
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 (as torch.optim.SGD)")

    @property
    def state_names(self):
        return ("b",) if self.momentum > 0 else ()

    @property
    def is_plain(self):
        return self.momentum == 0 and self.weight_decay == 0

    @property
    def key(self):
        return (f"SGD{'-momentum' if self.momentum > 0 else ''}{'-nesterov' if self.nesterov else ''}"
                f"{'-wd' if self.weight_decay > 0 else ''}")

    def lower(self):
        return SGDParams(float(self.momentum), float(self.dampening), float(self.weight_decay))

    def _kernel_direction(self, lay):
        lines = []
        if self.weight_decay > 0:
            lines.append("{g} += op.weight_decay * {x}")
        if self.momentum > 0:
            lines.append("b{j} = {g} if k == 0 else op.momentum * b{j} + (1.0 - op.dampening) * {g}")
            lines.append("{g} = {g} + op.momentum * b{j}" if self.nesterov else "{g} = b{j}")
        return _per_coord(lay, lines) if lines else []


class AdamParams(NamedTuple):
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    settle1: int   # from this step count on 1 − β₁^{k+1} rounds to 1.0 exactly (β^{k+1} < 2⁻⁵⁴)
    settle2: int


def _settle(beta: float) -> int:
    """Smallest k with ``1 − β^{k+1} == 1.0`` in float64 (so the bias correction needs no power after it)."""
    if beta == 0.0:
        return 0
    k = max(0, int(math.ceil(-54 * math.log(2) / math.log(beta))) - 1)
    while k > 0 and 1.0 - beta ** k == 1.0:
        k -= 1
    while 1.0 - beta ** (k + 1) != 1.0:
        k += 1
    return k


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba, ICLR 2015) with L2 weight decay, as ``torch.optim.Adam(lr, betas, eps,
    weight_decay)`` (amsgrad not supported)."""

    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    state_names = ("m", "v")
    _decoupled = False

    def __post_init__(self):
        if len(tuple(self.betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        _check_unit("betas[0]", self.betas[0])
        _check_unit("betas[1]", self.betas[1])
        check_finite("eps", self.eps)
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {self.eps!r}")
        check_nonnegative("weight_decay", self.weight_decay)

    @property
    def key(self):
        return f"{type(self).__name__}{'-wd' if self.weight_decay > 0 else ''}"

    def lower(self):
        b1, b2 = self.betas
        return AdamParams(b1, b2, float(self.eps), float(self.weight_decay), np.int64(_settle(b1)),
                          np.int64(_settle(b2)))

    def _kernel_direction(self, lay):
        lines = []
        if self.weight_decay > 0 and not self._decoupled:
            lines.append("{g} += op.weight_decay * {x}")
        lines += ["m{j} = m{j} + (1.0 - op.beta1) * ({g} - m{j})",
                  "v{j} = v{j} * op.beta2 + (1.0 - op.beta2) * {g} * {g}"]
        step = "(m{j} / (math.sqrt(v{j}) / bc2 + op.eps)) / bc1"
        lines.append("{g} = op.weight_decay * {x} + " + step if self._decoupled and self.weight_decay > 0
                     else "{g} = " + step)
        # torch's bias corrections; exactly 1.0 once β^{k+1} < 2⁻⁵⁴, where no power is needed
        head = ["bc1 = 1.0 - op.beta1 ** (k + 1) if k < op.settle1 else 1.0",
                "bc2 = math.sqrt(1.0 - op.beta2 ** (k + 1)) if k < op.settle2 else 1.0"]
        return head + _per_coord(lay, lines)


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, ICLR 2019): Adam with decoupled weight decay, as
    ``torch.optim.AdamW(lr, betas, eps, weight_decay=0.01)``."""

    weight_decay: float = 1e-2
    _decoupled = True
