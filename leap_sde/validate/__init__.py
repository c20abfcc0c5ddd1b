"""The numerical validation suite: each case checks a theorem or a claim about escape dynamics against
simulations of :mod:`leap_sde` (see ``validation/README.md``).

Run it with ``leap-sde validate [--quick | --full] [--only NAME ...] [--out DIR]`` or
``python -m leap_sde.validate``; :func:`run_suite` is the programmatic entry point.
"""
from ._core import ASYMPTOTIC_TOL, Case, Config, Validation, Verdict, judge, make_case
from .runner import all_cases, main, run_suite

__all__ = ["ASYMPTOTIC_TOL", "Case", "Config", "Validation", "Verdict", "judge", "make_case", "all_cases", "main",
           "run_suite"]
