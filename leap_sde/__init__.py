"""leap_sde: escape dynamics of SGD/Langevin with LEAP learning-rate perturbation, compiled with Numba.

One flat namespace: landscapes, dynamics parts, schedules, :func:`simulate` and the escape statistics.
"""
from .dynamics import LEAP, HessianNoise, LeaveBall, MinibatchNoise, NoExit, NoNoise, ReachBall, Threshold, WhiteNoise
from .estimates import (ArrheniusFit, RateEstimate, SurvivalCurve, arrhenius_fit, exponential_rate, kaplan_meier,
                        ks_exponential)
from .landscapes import (CriticalPoint, CustomLandscape, DoubleWell, EntropicWell, FiniteSum, Landscape, Polynomial,
                         PiecewiseQuadraticWell, Quadratic, SharpFlatWell, StyblinskiTang,
                         ThreeHoleWell)
from .optimizers import SGD, Adam, AdamW
from .schedules import (Constant, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, ExponentialLR,
                        InverseTimeLR, Schedule, StepLR, Warmup)
from .ams import AMSResult, ams, ams_probability
from .reduced import EscapePrediction, KMTable, ReducedModel, fit_reduced_chain, km_table
from .simulate import EscapeResult, StabilityWarning, Status, normalize_seed, simulate
from .runs import (RateComparison, RunComparison, RunMeta, SavedRun, SavedSweep, compare_results, compare_runs,
                   load_run, load_sweep)

__version__ = "0.2.0"

import logging as _logging

# library code logs to the "leap_sde.*" loggers and prints nothing; the command line (or the user) adds handlers
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

from .experiment import resolve_config, run_experiment  # noqa: E402  (needs __version__)


def __getattr__(name):  # the sweep package is imported on first use (it pulls in the executors)
    if name == "run_sweep":
        from .sweep import run_sweep

        return run_sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LEAP", "HessianNoise", "LeaveBall", "MinibatchNoise", "NoExit", "NoNoise", "ReachBall", "Threshold", "WhiteNoise",
    "ArrheniusFit", "RateEstimate", "SurvivalCurve", "arrhenius_fit", "exponential_rate", "kaplan_meier",
    "ks_exponential", "ams", "ams_probability", "AMSResult",
    "EscapePrediction", "KMTable", "ReducedModel", "fit_reduced_chain", "km_table",
    "CriticalPoint", "CustomLandscape", "DoubleWell", "EntropicWell", "FiniteSum", "Landscape", "Polynomial",
    "PiecewiseQuadraticWell", "Quadratic", "SharpFlatWell", "StyblinskiTang", "ThreeHoleWell",
    "Constant", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "ExponentialLR", "InverseTimeLR",
    "Schedule",
    "StepLR", "Warmup",
    "SGD", "Adam", "AdamW",
    "EscapeResult", "StabilityWarning", "Status", "normalize_seed", "simulate",
    "resolve_config", "run_experiment", "run_sweep",
    "load_run", "load_sweep", "compare_runs", "compare_results", "SavedRun", "SavedSweep", "RunMeta", "RunComparison",
    "RateComparison",
]
