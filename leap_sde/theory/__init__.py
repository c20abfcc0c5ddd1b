r"""Closed forms and exact (non-Monte-Carlo) references for escape dynamics.

Pure NumPy/SciPy, float64 throughout, no dependence on the simulator. Every function states its
formula first, then the conditions under which it holds and its source; ``docs/theory.md`` has
every formula with its derivation or reference (sections cited as ``docs/theory.md §N.M``).
Results marked *derived in this project* are ours, not the cited papers'.

Conventions (docs/theory.md §0). The SDE is ``dX = -U'(X) dt + sqrt(2 D) dW`` (Itô), with invariant
density ``∝ exp(-U/D)``; there is no friction constant. A discrete optimiser
``θ_{k+1} = θ_k - η (∇L + ξ_k)`` with ``Cov ξ = C`` is read as this SDE with time ``t = k η`` and
``D = η C / 2``; escape times in *iterations* are ``τ / η``. All escape times returned here are in
continuous time ``t`` unless stated otherwise.

Contents (one submodule per concept; every name is re-exported here)
--------
``mfpt`` — exact mean first-passage times
    :func:`mfpt_1d`, :func:`mfpt_1d_grid` (1-D quadrature, constant or Itô state-dependent D, log
    space), :func:`mfpt_sqra_grid` (d-D grid, square-root approximation).
``spectral`` — spectral gap of the 1-D Fokker–Planck generator
    :func:`spectral_gap_1d`, :func:`spectral_gap_1d_grid`.
``kramers`` — Kramers / Eyring–Kramers
    :func:`kramers_time`, :func:`eyring_kramers_time`.
``sgd`` — Xie et al.'s SGD escape laws
    :func:`xie_sgd_escape_time`, :func:`xie_sgd_exponent`, :func:`xie_sgd_log_slope`,
    :func:`xie_white_noise_escape_time`.
``leap`` — LEAP's effective diffusion (derived in this project, docs/theory.md §8)
    :func:`leap_diffusion`, :func:`leap_diffusion_1d`, :func:`leap_mfpt_1d`,
    :func:`leap_effective_batch`, :func:`leap_xie_exponent`, :func:`leap_xie_escape_time`.
``stationary`` — discrete-time quadratics
    :func:`sgd_stationary_variance`, :func:`langevin_stationary_variance`,
    :func:`ou_stationary_variance`, :func:`leap_stationary_variance`, :func:`stationary_covariance`.
``stability`` — stability thresholds
    :func:`gd_stability_threshold`, :func:`leap_mean_square_threshold`,
    :func:`leap_lyapunov_exponent`, :func:`leap_almost_sure_threshold`.
``momentum`` — SGD with (Nesterov) momentum + LEAP on a quadratic (derived in this project, §9)
    :func:`momentum_stationary_moments`, :func:`momentum_mean_square_radius`, :func:`momentum_transfer`,
    :func:`heavy_ball_stability_threshold`, :func:`momentum_lyapunov_exponent`.
``tails`` — heavy tails
    :func:`leap_abs_moment`, :func:`kesten_tail_index`, :func:`hill_estimator`.
``indicator`` — escape-efficiency indicator (Zhu et al.)
    :func:`escape_indicator`, :func:`escape_indicator_isotropic`, :func:`ou_loss_increase`,
    :func:`discrete_loss_increase`.
``discrete`` — the discrete-time chain
    :func:`discrete_transition_matrix_1d`, :func:`discrete_mfpt_1d`, :func:`discrete_stationary_1d`,
    :func:`em_boundary_shift`.
"""
from __future__ import annotations

# Submodules by concept; every public name (and the step-law helpers the tests use) is re-exported here.
from ._common import STEP_VARIANTS, _step_moments, _step_of_z, _z_of_step, _log_abs_A, _normal_expect
from .mfpt import mfpt_1d_grid, mfpt_1d, mfpt_sqra_grid
from .spectral import spectral_gap_1d_grid, spectral_gap_1d
from .kramers import kramers_time, eyring_kramers_time
from .sgd import xie_sgd_log_slope, xie_sgd_exponent, xie_sgd_escape_time, xie_white_noise_escape_time
from .leap import (
    leap_diffusion,
    leap_diffusion_1d,
    leap_mfpt_1d,
    leap_effective_batch,
    leap_xie_exponent,
    leap_xie_escape_time,
)
from .stationary import (
    sgd_stationary_variance,
    langevin_stationary_variance,
    ou_stationary_variance,
    leap_stationary_variance,
    stationary_covariance,
)
from .stability import (
    gd_stability_threshold,
    leap_mean_square_threshold,
    leap_lyapunov_exponent,
    leap_almost_sure_threshold,
)
from .momentum import (
    momentum_transfer,
    momentum_stationary_moments,
    momentum_mean_square_radius,
    heavy_ball_stability_threshold,
    momentum_lyapunov_exponent,
)
from .tails import leap_abs_moment, kesten_tail_index, hill_estimator, _quad_abs_moment
from .indicator import escape_indicator, escape_indicator_isotropic, ou_loss_increase, discrete_loss_increase
from .discrete import (
    GOBET_MENOZZI_BETA,
    em_boundary_shift,
    discrete_transition_matrix_1d,
    discrete_mfpt_1d,
    discrete_stationary_1d,
)

__all__ = [
    "momentum_transfer", "momentum_stationary_moments", "momentum_mean_square_radius",
    "heavy_ball_stability_threshold", "momentum_lyapunov_exponent",
    "GOBET_MENOZZI_BETA",
    "STEP_VARIANTS",
    "mfpt_1d",
    "mfpt_1d_grid",
    "spectral_gap_1d",
    "spectral_gap_1d_grid",
    "kramers_time",
    "eyring_kramers_time",
    "xie_sgd_exponent",
    "xie_sgd_log_slope",
    "xie_sgd_escape_time",
    "xie_white_noise_escape_time",
    "leap_diffusion",
    "leap_diffusion_1d",
    "leap_mfpt_1d",
    "leap_effective_batch",
    "leap_xie_exponent",
    "leap_xie_escape_time",
    "sgd_stationary_variance",
    "langevin_stationary_variance",
    "ou_stationary_variance",
    "leap_stationary_variance",
    "stationary_covariance",
    "gd_stability_threshold",
    "leap_mean_square_threshold",
    "leap_lyapunov_exponent",
    "leap_almost_sure_threshold",
    "leap_abs_moment",
    "kesten_tail_index",
    "hill_estimator",
    "escape_indicator",
    "escape_indicator_isotropic",
    "ou_loss_increase",
    "discrete_loss_increase",
    "em_boundary_shift",
    "discrete_transition_matrix_1d",
    "discrete_mfpt_1d",
    "discrete_stationary_1d",
    "mfpt_sqra_grid",
]
