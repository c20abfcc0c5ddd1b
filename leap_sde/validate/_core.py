"""Result structure, verdict rule and shared helpers of the validation suite.

Every row of the report is a :class:`Case`: one claim, its source, the parameters, the theoretical value,
the simulated estimate with its standard error and 95% CI, the stated model tolerance and a verdict.

Verdict rule (the same for every row, never tuned per case)::

    agree  ⟺  |estimate − theory| ≤ model_tol + 3·SE        (one-sided variants for bounds;
                                                             "greater": estimate > theory + model_tol + 3·SE)

and, by the kind of statement tested:

    kind="exact"       a result that must hold (exact reference, theorem)  agree → PASS,  else FAIL
    kind="asymptotic"  an asymptotic / approximate law at finite parameters agree → PASS,  else OUTSIDE
                       (the formula is applied outside the regime where it holds; shown for context)
    kind="claim"       a claim under test (e.g. one of LEAP's)              agree → PASS,  else REFUTED
    kind="context"     a formula deliberately applied outside its validity  always OUTSIDE

Significance claims (``sided="greater"``, e.g. "c > 0"): PASS if the estimate exceeds the theory value by more
than model_tol + 3·SE, REFUTED (FAIL for kind="exact") if estimate + 3·SE ≤ theory, and INCONCLUSIVE
otherwise — too few samples to decide, reported as such rather than as a refutation.

``model_tol`` is the stated model error: a computed numerical error of the reference (grid, quadrature),
a computed discretisation bias, or for asymptotic laws a nominal tolerance fixed before any simulation
(:data:`ASYMPTOTIC_TOL`).  ``SE`` is the Monte Carlo standard error of the estimate.
"""
from __future__ import annotations

import enum
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

__all__ = ["Verdict", "Case", "Config", "Validation", "judge", "make_case", "ASYMPTOTIC_TOL", "figure", "sim",
           "mean_time", "log_mean_time"]

#: Nominal relative tolerance of an asymptotic law applied at finite parameters (fixed a priori).
ASYMPTOTIC_TOL = 0.10


class Verdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    REFUTED = "REFUTED"
    OUTSIDE = "OUTSIDE"
    INCONCLUSIVE = "INCONCLUSIVE"  #: a significance claim neither confirmed nor contradicted at this sample size


KINDS = ("exact", "asymptotic", "claim", "context")


@dataclass
class Case:
    """One row of the validation report."""

    case: str                 #: case id, e.g. "1 kramers"
    name: str                 #: short label of the check
    claim: str                #: the statement tested
    source: str               #: where it comes from (docs/theory.md section, paper)
    kind: str                 #: exact | asymptotic | claim | context
    theory: float             #: theoretical value
    estimate: float           #: simulated estimate
    se: float                 #: standard error of the estimate
    ci: tuple                 #: 95% CI of the estimate
    model_tol: float          #: stated model error (absolute, in the units of ``theory``)
    tol_note: str             #: what the model tolerance is
    verdict: Verdict
    params: dict = field(default_factory=dict)
    figure: Optional[str] = None
    note: str = ""
    sided: str = "two"        #: "two"; "upper"/"lower": estimate ≤/≥ theory (within the slack);
    #: "greater"/"less": estimate significantly above/below theory (beyond the slack)

    def row(self) -> list:
        return [self.case, self.name, _fmt(self.theory), _fmt_est(self), _fmt(self.model_tol),
                self.verdict.value]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if v == 0:
        return "0"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.3e}"
    return f"{v:.4g}"


def _fmt_est(c: Case) -> str:
    if c.se is None or not np.isfinite(c.se):
        return _fmt(c.estimate)
    return f"{_fmt(c.estimate)} ± {_fmt(c.se)}"


def judge(theory: float, estimate: float, se: float, model_tol: float, kind: str, sided: str = "two") -> Verdict:
    """Apply the verdict rule of the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "context":
        return Verdict.OUTSIDE
    se = 0.0 if se is None or not np.isfinite(se) else float(se)
    slack = float(model_tol) + 3.0 * se
    if not np.isfinite(estimate):
        agree = False
    elif sided == "upper":
        agree = estimate <= theory + slack
    elif sided == "lower":
        agree = estimate >= theory - slack
    elif sided in ("greater", "less"):
        # significance claims: confirmed beyond model_tol + 3 SE, contradicted if the 3-SE bound lies on
        # the wrong side of the theory value, inconclusive in between (not a failure, not a confirmation)
        sign = 1.0 if sided == "greater" else -1.0
        if sign * (estimate - theory) > slack:
            return Verdict.PASS
        if sign * (estimate - theory) + 3.0 * se <= 0.0:
            return {"exact": Verdict.FAIL, "asymptotic": Verdict.OUTSIDE, "claim": Verdict.REFUTED}[kind]
        return Verdict.INCONCLUSIVE
    else:
        agree = abs(estimate - theory) <= slack if np.isfinite(theory) else False
    if agree:
        return Verdict.PASS
    return {"exact": Verdict.FAIL, "asymptotic": Verdict.OUTSIDE, "claim": Verdict.REFUTED}[kind]


def make_case(case: str, name: str, *, claim: str, source: str, kind: str, theory: float, estimate: float,
              se: float, model_tol: float, tol_note: str, params: Optional[dict] = None,
              figure: Optional[str] = None, note: str = "", sided: str = "two", ci=None) -> Case:
    theory, estimate = float(theory), float(estimate)
    se = float(se) if se is not None else float("nan")
    if ci is None:
        ci = (estimate - 1.96 * se, estimate + 1.96 * se) if np.isfinite(se) else (float("nan"), float("nan"))
    v = judge(theory, estimate, se, model_tol, kind, sided)
    return Case(case=case, name=name, claim=claim, source=source, kind=kind, theory=theory, estimate=estimate,
                se=se, ci=tuple(float(c) for c in ci), model_tol=float(model_tol), tol_note=tol_note, verdict=v,
                params=dict(params or {}), figure=figure, note=note, sided=sided)


@dataclass(frozen=True)
class Config:
    """Run configuration: ``quick`` (CI: every case in a few seconds to ~30 s) or full.

    ``seed``: None keeps every case's own fixed seed (the committed reports); an integer N reseeds every
    random draw of every case: a case seed ``s`` becomes ``SeedSequence([N, *entropy(s)])`` (see
    :meth:`reseed`), so a rerun with another N checks that the verdicts do not hinge on one draw.  The
    landscapes' own random data (the offsets of finite-sum landscapes) are part of the problem and stay fixed.
    """

    quick: bool
    out: Path
    threads: Optional[int] = None
    seed: Optional[int] = None

    def pick(self, quick, full):
        return quick if self.quick else full

    def reseed(self, seed):
        """The seed a case uses in place of its fixed ``seed`` (an int or a SeedSequence)."""
        if self.seed is None or seed is None:
            return seed
        if isinstance(seed, np.random.SeedSequence):
            ent = seed.entropy
            words = list(ent) if isinstance(ent, (list, tuple)) else [int(ent)]
            words += list(seed.spawn_key)
        else:
            words = [int(seed)]
        return np.random.SeedSequence([int(self.seed), *words])


@dataclass(frozen=True)
class Validation:
    """A case of the suite: ``run(cfg) -> list[Case]``."""

    number: int
    name: str
    title: str
    run: Callable


def figure(cfg: Config, name: str, draw: Callable) -> Optional[str]:
    """Draw a figure with ``draw(fig)`` and save it as ``<out>/<name>.png`` (and .pdf, .svg next to it, like every
    figure of the package: :func:`leap_sde.plots.save_figure`); returns the PNG's relative path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        return None
    fig = Figure(figsize=(9, 3.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    draw(fig)
    os.makedirs(cfg.out, exist_ok=True)
    from ..plots import save_figure

    path = save_figure(fig, Path(cfg.out) / name, dpi=110)[0]
    return path.name


def mean_time(res, unit: str = "time"):
    """Mean escape time and its SE from an :class:`~leap_sde.EscapeResult` (censored exponential MLE;
    with no censoring this is the sample mean, SE = sample std/√N)."""
    t = res.times if unit == "time" else res.steps.astype(float)
    esc = res.escaped
    if esc.all():
        m = float(t.mean())
        return m, float(t.std(ddof=1) / math.sqrt(t.size))
    r = res.rate(unit=unit)
    return float(r.mean), float(r.mean / math.sqrt(max(r.n_escaped, 1)))


def log_mean_time(res, unit: str = "time"):
    """``log`` of :func:`mean_time` and its SE (delta method)."""
    m, se = mean_time(res, unit)
    return math.log(m), se / m


_SIM_CACHE: dict = {}


def sim(cfg: Config, key: str, landscape, x0, **kwargs):
    """:func:`leap_sde.simulate` with the suite's thread setting, memoised by ``key`` within one process
    (cases that need the same run, with the same seed, share it)."""
    import leap_sde as ls

    if key in _SIM_CACHE:
        return _SIM_CACHE[key]
    with warnings.catch_warnings():
        # unstable minima and infinite-variance LEAP regimes are simulated on purpose here
        warnings.simplefilter("ignore", ls.StabilityWarning)
        if "seed" in kwargs:
            kwargs = dict(kwargs, seed=cfg.reseed(kwargs["seed"]))
        res = ls.simulate(landscape, x0, threads=cfg.threads, **kwargs)
    _SIM_CACHE[key] = res
    return res


def clear_cache():
    _SIM_CACHE.clear()
