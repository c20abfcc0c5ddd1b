"""PyTorch bridge of leap_sde (optional: ``pip install leap_sde[torch]``).

- :class:`LEAP` — the learning-rate perturbation as a wrapper around any ``torch.optim`` optimizer,
  composing with every ``torch.optim.lr_scheduler``;
- :class:`SharpFlatWell`, :class:`EntropicWell` — the simulator's landscapes as torch modules holding
  many independent particles in one parameter tensor (cross-check of plug-in vs simulator);
- flatness and noise measurement: :func:`hessian_eigenvalues`, :func:`hessian_trace`,
  :func:`epsilon_sharpness`, :func:`gradient_noise_along`, :func:`loss_along_direction`,
  :func:`interpolation_barrier`;
- :func:`fit_reduced_model` — reduced 1-D escape model (binned Kramers–Moyal drift and variance along an
  escape coordinate) fitted from pre-escape replica runs of real training, with escape-time predictions.

``import leap_sde`` never imports torch; only ``import leap_sde.torch`` does.
"""
try:
    import torch as _torch  # noqa: F401  (absolute import: the real torch, not this package)
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "leap_sde.torch needs PyTorch, which is an optional extra: pip install leap_sde[torch]"
    ) from exc

from .._counter_rng import counter_normal as counter_normal, stream_key as stream_key
from ._flatness import (
    EpsSharpness as EpsSharpness,
    HessianEigen as HessianEigen,
    InterpolationProfile as InterpolationProfile,
    TraceEstimate as TraceEstimate,
    NoiseAlong as NoiseAlong,
    epsilon_sharpness as epsilon_sharpness,
    flat_params as flat_params,
    gradient_noise_along as gradient_noise_along,
    hessian_eigenvalues as hessian_eigenvalues,
    hessian_trace as hessian_trace,
    hvp as hvp,
    interpolation_barrier as interpolation_barrier,
    loss_along_direction as loss_along_direction,
)
from ._reduced import ReducedFit as ReducedFit, fit_reduced_model as fit_reduced_model
from ._landscapes import EntropicWell as EntropicWell, SharpFlatWell as SharpFlatWell
from ._optim import (
    DISTRIBUTED as DISTRIBUTED,
    LEAP as LEAP,
    MODES as MODES,
    NOT_PROPORTIONAL_TO_LR as NOT_PROPORTIONAL_TO_LR,
    VARIANTS as VARIANTS,
)

__all__ = [
    "LEAP", "MODES", "VARIANTS", "DISTRIBUTED", "NOT_PROPORTIONAL_TO_LR", "SharpFlatWell", "EntropicWell",
    "hvp", "hessian_eigenvalues", "hessian_trace", "epsilon_sharpness", "gradient_noise_along",
    "loss_along_direction", "interpolation_barrier", "flat_params",
    "fit_reduced_model", "ReducedFit",
    "HessianEigen", "TraceEstimate", "NoiseAlong", "EpsSharpness", "InterpolationProfile", "counter_normal", "stream_key",
]
