"""The simulator's synthetic landscapes as torch modules (for the plug-in ↔ simulator cross-check).

Each module holds ``n`` independent particles in one parameter tensor ``x`` and ``forward()`` returns
the per-particle loss, shape ``(n,)``.  ``forward().sum().backward()`` therefore puts each particle's
own gradient in ``x.grad`` (the particles do not interact), and a per-element LEAP on ``x`` is the
simulator's per-coordinate LEAP applied to every particle.  float64 by default, as the simulator.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SharpFlatWell", "EntropicWell"]


def _positive(name: str, v) -> float:
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v}")
    return v


def _side(h: float, du: float, hb: float) -> tuple[float, float]:
    xb = math.sqrt(2.0 * du * h / (hb * (h + hb)))
    return xb, xb * (1.0 + hb / h)


class SharpFlatWell(nn.Module):
    r"""1-D asymmetric C1 piecewise-quadratic double well (same formula as ``leap_sde.SharpFlatWell``).

    For one side with minimum curvature h, barrier ΔU and saddle curvature h_b::

        x_b = sqrt(2 ΔU h / (h_b (h + h_b))),   x_m = x_b (1 + h_b / h)
        U(x) = U_top − h_b x² / 2                 for |x| ≤ x_b on that side
        U(x) = U_top − ΔU + h (|x| − x_m)² / 2      beyond,

    flat side x < 0 (``curv_flat``, ``barrier_flat``), sharp side x > 0, saddle at 0,
    ``U_top = barrier_flat`` (flat minimum at −x_m with loss 0).

    Parameters: ``x`` of shape ``(n,)`` (``n`` particles), initialised to ``x0``.
    """

    def __init__(self, curv_flat: float = 1.0, curv_sharp: float = 4.0, barrier_flat: float = 1.0,
                 barrier_sharp: float = 1.0, curv_saddle: float = 1.0, *, n: int = 1, x0: float = 0.0,
                 dtype: torch.dtype = torch.float64, device=None) -> None:
        super().__init__()
        self.curv_flat = _positive("curv_flat", curv_flat)
        self.curv_sharp = _positive("curv_sharp", curv_sharp)
        self.barrier_flat = _positive("barrier_flat", barrier_flat)
        self.barrier_sharp = _positive("barrier_sharp", barrier_sharp)
        self.curv_saddle = _positive("curv_saddle", curv_saddle)
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.xb_flat, self.xm_flat = _side(self.curv_flat, self.barrier_flat, self.curv_saddle)
        self.xb_sharp, self.xm_sharp = _side(self.curv_sharp, self.barrier_sharp, self.curv_saddle)
        self.x = nn.Parameter(torch.full((int(n),), float(x0), dtype=dtype, device=device))

    @property
    def minima(self) -> tuple[float, float]:
        """(flat minimum, sharp minimum) positions."""
        return (-self.xm_flat, self.xm_sharp)

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) elementwise, any shape."""
        left = x < 0
        xb = torch.where(left, torch.full_like(x, self.xb_flat), torch.full_like(x, self.xb_sharp))
        xm = torch.where(left, torch.full_like(x, self.xm_flat), torch.full_like(x, self.xm_sharp))
        h = torch.where(left, torch.full_like(x, self.curv_flat), torch.full_like(x, self.curv_sharp))
        du = torch.where(left, torch.full_like(x, self.barrier_flat), torch.full_like(x, self.barrier_sharp))
        top = self.barrier_flat
        inner = top - 0.5 * self.curv_saddle * x * x
        outer = top - du + 0.5 * h * (x.abs() - xm) ** 2
        return torch.where(x.abs() <= xb, inner, outer)

    def forward(self) -> torch.Tensor:
        """Per-particle loss, shape ``(n,)``."""
        return self.potential(self.x)


class EntropicWell(nn.Module):
    r"""2-D ``L(x, y) = (x² − 1)² + κ/2·y² + c·x²·y²`` (same formula as ``leap_sde.EntropicWell``).

    Minima (±1, 0) with Hessian diag(8, κ + 2c), saddle (0, 0) with Hessian diag(−4, κ).
    Parameters: ``x`` of shape ``(n, 2)`` (``n`` particles), initialised to ``x0``.
    """

    def __init__(self, kappa: float = 1.0, c: float = 0.0, *, n: int = 1, x0=(-1.0, 0.0),
                 dtype: torch.dtype = torch.float64, device=None) -> None:
        super().__init__()
        self.kappa = _positive("kappa", kappa)
        self.c = float(c)
        if not math.isfinite(self.c) or self.c < 0:
            raise ValueError(f"c must be a finite number >= 0, got {c}")
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        start = torch.as_tensor(x0, dtype=dtype, device=device).reshape(1, 2)
        self.x = nn.Parameter(start.repeat(int(n), 1))  # (n, 2)

    def potential(self, xy: torch.Tensor) -> torch.Tensor:
        """L at points ``xy`` of shape ``(..., 2)``; returns shape ``(...)``."""
        x, y = xy[..., 0], xy[..., 1]
        return (x * x - 1.0) ** 2 + 0.5 * self.kappa * y * y + self.c * x * x * y * y

    def forward(self) -> torch.Tensor:
        """Per-particle loss, shape ``(n,)``."""
        return self.potential(self.x)
