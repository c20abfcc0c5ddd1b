"""Build the objects of a resolved config (:class:`Experiment`), run it (one simulation per LEAP σ),
summarise it and write the result folder.

Result folder: ``config.toml`` (the fully resolved config: rerunning it repeats the run exactly),
``result.json``, ``escape_times.npz`` and PNG plots, all written atomically.  Every σ uses the same seed
(common random numbers: differences between σ values are less noisy than independent runs would give).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from . import __version__
from . import dynamics as dyn
from . import landscapes as lands
from . import schedules as sch
from ._io import atomic_savez, atomic_write_json, atomic_write_text
from .config import LANDSCAPE_KINDS, ConfigError
from .dynamics import NoExit
from .landscapes import SharpFlatWell
from .optimizers import SGD, Adam, AdamW, Optimizer
from .ams import AMSResult
from .simulate import EscapeResult, StabilityWarning, Status, simulate

__all__ = ["Experiment", "build", "RunOutput", "ExperimentOutput", "resolve_config", "run_experiment", "write_outputs",
           "escape_summary", "preference_summary", "format_table", "result_rows", "result_dict", "run_warnings"]


@dataclass(frozen=True)
class Experiment:
    """The objects of one resolved config (``sigmas`` lists the LEAP σ values to compare)."""

    landscape: lands.Landscape
    x0: np.ndarray
    eta: float
    mode: str
    noise: dyn.Noise
    schedule: sch.Schedule
    exit: dyn.Exit
    sigmas: tuple
    leap_kwargs: dict
    run: dict
    require_barrier: bool = True
    #: for ``run.preference``: the start point and exit of the escape back (target minimum → start minimum)
    reverse_x0: Optional[np.ndarray] = None
    reverse_exit: Optional[dyn.Exit] = None
    #: names of the start and target minima in tables ("sharp"/"flat" for a SharpFlatWell)
    names: tuple = ("start", "target")
    optimizer: Optimizer = SGD()
    #: index of the target minimum of an ``exit.threshold = "minimum"`` exit (None for other exits)
    target_minimum: Optional[int] = None

    def leap(self, sigma):
        return dyn.LEAP(sigma, **self.leap_kwargs) if sigma > 0 else None

    def simulate_kwargs(self, sigma) -> dict:
        r = self.run
        return dict(eta=self.eta, noise=self.noise, leap=self.leap(sigma), schedule=self.schedule, mode=self.mode,
                    optimizer=self.optimizer,
                    exit=self.exit, n_particles=r["particles"], max_steps=r["max_steps"],
                    threads=r["threads"] or None, basins=r["basins"] and bool(self.landscape.saddles),
                    require_barrier=self.require_barrier)

    def ams_kwargs(self, sigma) -> dict:
        """:func:`leap_sde.ams` arguments for ``run.method = "ams"``."""
        r = self.run
        return dict(eta=self.eta, noise=self.noise, leap=self.leap(sigma), schedule=self.schedule, mode=self.mode,
                    optimizer=self.optimizer, exit=self.exit, n_replicas=r["replicas"], n_runs=r["ams_runs"],
                    threads=r["threads"] or None, require_barrier=self.require_barrier)

    def occupation_plan(self):
        """((steps of the burn-in half, of the third quarter, of the fourth quarter), snapshot_every) of the
        occupation run, or None.  Segment lengths are multiples of snapshot_every (snapshots line up)."""
        n_occ = self.run["occupation_steps"]
        if n_occ <= 0 or not self.landscape.saddles:
            return None
        snaps = self.run["snapshots"]
        every = max(1, n_occ // snaps) if snaps else 0
        unit = every or 1
        q = max(1, n_occ // 4 // unit) * unit
        return (max(1, n_occ - 2 * q), q, q), every
    def memory_bytes(self) -> int:
        """Estimated bytes of all runs kept in memory (every σ: escape, escape back, occupation halves)."""
        from .simulate import estimate_memory

        r = self.run
        one = estimate_memory(self.landscape, r["particles"], r["max_steps"],
                              basins=r["basins"] and bool(self.landscape.saddles))
        per_sigma = one * (2 if self.reverse_exit is not None else 1)
        plan = self.occupation_plan()
        if plan is not None:
            for n_steps in plan[0]:
                per_sigma += estimate_memory(self.landscape, r["particles"], n_steps, basins=True,
                                             snapshot_every=plan[1])
        return per_sigma * len(self.sigmas)

    @classmethod
    def from_config(cls, cfg) -> "Experiment":
        try:
            with np.errstate(all="ignore"):
                return cls._build(cfg)
        except ConfigError:
            raise
        except ArithmeticError as e:
            raise ConfigError(f"values of extreme magnitude make the setup ill-defined ({e}); use moderate "
                              "values") from None
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None

    @classmethod
    def _build(cls, cfg):
        L, D, P, S, I, E, R = (cfg[k] for k in ("landscape", "dynamics", "leap", "schedule", "init", "exit", "run"))
        land = _keyed("landscape", _LANDSCAPE_NAMES, lambda: _landscape(L))
        # the critical points are computed on first use: their errors also belong to [landscape]
        mins, _ = _keyed("landscape", _LANDSCAPE_NAMES, lambda: (land.minima, land.saddles))
        x0 = I["x0"]
        if x0 == "minimum":
            if not mins:
                raise ConfigError("init.x0: the landscape has no known minimum to start from; give init.x0 as a "
                                  "number or a list of numbers")
            if I["minimum"] >= len(mins):
                raise ConfigError(f"init.minimum: must be in [0, {len(mins) - 1}] (the landscape has {len(mins)} "
                                  f"known minima), got {I['minimum']}")
            x0 = mins[I["minimum"]].x
        x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
        if x0.shape != (land.dim,):
            raise ConfigError(f"init.x0: expected {land.dim} coordinate(s), got {x0.tolist()}")
        noise = _keyed("dynamics", {"std": "noise_std", "batch_size": "batch_size", "floor": "hessian_floor",
                                    "temperature": "temperature", "eta": "eta"},
                       lambda: {"none": lambda: dyn.NoNoise(), "white": lambda: _white(D),
                                "sgd-hessian": lambda: dyn.HessianNoise(D["batch_size"], floor=D["hessian_floor"]),
                                "minibatch": lambda: _minibatch(D["batch_size"], L)}[D["noise"]]())
        leap_kwargs = dict(mode=P["mode"], relative=P["relative"] or None, variant=P["variant"])
        if P["variant"] == "lognormal" and not P["relative"]:
            leap_kwargs["relative"] = None
        sigmas = tuple(P["sigma"]) if isinstance(P["sigma"], list) else (P["sigma"],)
        for s in sigmas:
            _keyed("leap", {"sigma": "sigma", "relative": "relative", "mode": "mode", "variant": "variant"},
                   lambda: dyn.LEAP(s, **leap_kwargs))
        target = _target_minimum(E, I, mins, x0)
        ext = _keyed("exit", {"value": "threshold", "coord": "coord", "direction": "direction", "center": "center",
                              "radius": "radius"}, lambda: _exit(E, land, x0, target))
        if R["threads"]:
            import numba

            if R["threads"] > numba.config.NUMBA_NUM_THREADS:
                raise ConfigError(f"run.threads: must be in [0, {numba.config.NUMBA_NUM_THREADS}], got {R['threads']}")
        schedule = _keyed("schedule", {}, lambda: _schedule(S))
        rev_x0 = rev_exit = None
        names = ("start", "target")
        if R["preference"]:
            if I["x0"] != "minimum" or E["kind"] != "threshold" or E["threshold"] != "minimum":
                raise ConfigError("run.preference: needs an escape between two minima (init.x0 = 'minimum', "
                                  "exit.kind = 'threshold', exit.threshold = 'minimum'); set run.preference = false")
            rev_x0 = mins[target].x.copy()
            rev_exit = dyn.Threshold(float(x0[E["coord"]]), coord=E["coord"], direction=-ext.direction)
        if isinstance(land, lands.PiecewiseQuadraticWell) and I["x0"] == "minimum" and len(mins) == 2:
            h0, h1 = (float(m.hessian[0, 0]) for m in mins)  # minima[0] is the x < 0 side
            side = ("flat", "sharp") if h0 < h1 else ("sharp", "flat") if h0 > h1 else ("left", "right")
            names = (side[I["minimum"]], side[1 - I["minimum"]])
        optimizer = _keyed("dynamics", {"momentum": "momentum", "dampening": "dampening", "nesterov": "nesterov",
                                        "betas": "betas", "betas[0]": "betas", "betas[1]": "betas", "eps": "eps",
                                        "weight_decay": "weight_decay", "optimizer": "optimizer"},
                           lambda: _optimizer(D))
        if R["method"] == "ams":
            if R["occupation_steps"] > 0:
                raise ConfigError("run.occupation_steps: the occupation run has no AMS version; set it to 0 with "
                                  "run.method = 'ams'")
            if not isinstance(schedule, sch.Constant):
                raise ConfigError("schedule.kind: run.method = 'ams' needs a constant schedule (a stationary "
                                  "escape rate)")
            if R["replicas"] < 2 or R["ams_runs"] < 2:
                raise ConfigError("run.replicas and run.ams_runs: must be >= 2 with run.method = 'ams'")
        exp = cls(land, x0, D["eta"], D["mode"], noise, schedule, ext, sigmas, leap_kwargs, dict(R),
                  require_barrier=E["require_barrier"], reverse_x0=rev_x0, reverse_exit=rev_exit, names=names,
                  optimizer=optimizer, target_minimum=target)
        from .simulate import check_memory, check_setup

        with warnings.catch_warnings():  # stability warnings are emitted by the run itself
            warnings.simplefilter("ignore")
            for s in sigmas:
                for start, e in ((x0, ext), (rev_x0, rev_exit)):
                    if start is None:
                        continue
                    _keyed("", _SETUP_NAMES, lambda: check_setup(
                        land, start, e, exp.eta, noise, exp.leap(s), exp.mode, exp.schedule,
                        require_barrier=exp.require_barrier, max_steps=R["max_steps"], optimizer=exp.optimizer))
        _keyed("run", {"n_particles": "particles"}, lambda: check_memory(exp.memory_bytes(), "this experiment"))
        return exp


#: argument names of the landscape classes → config keys
_LANDSCAPE_NAMES = {"hessian_matrix": "hessian", "center": "center", "coeffs": "coeffs", "kappa": "kappa", "c": "c",
                    "dim": "dim", "sharpness": "sharpness", "barrier": "barrier", "curv_min": "curv_min",
                    "curv_saddle": "curv_saddle", "curv_flat": "curv_flat", "curv_sharp": "curv_sharp",
                    "barrier_flat": "barrier_flat", "barrier_sharp": "barrier_sharp", "n": "finite_sum_n",
                    "scale": "finite_sum_scale", "seed": "finite_sum_seed"}
#: prefixes of check_setup's errors → config keys
_SETUP_NAMES = {"exit": "exit.kind", "noise": "dynamics.noise", "leap": "leap.variant"}


def _keyed(section, names, fn):
    """Run ``fn()``; a ValueError/TypeError becomes a ConfigError whose message starts with the config key
    (``section.key``) instead of the Python argument name."""
    try:
        return fn()
    except ConfigError:
        raise
    except ArithmeticError as e:  # overflow / division by zero from extreme magnitudes
        where = f"[{section}]" if section else "the configuration"
        raise ConfigError(f"{where}: values of extreme magnitude make the setup ill-defined ({e}); use moderate "
                          "values") from None
    except (ValueError, TypeError) as e:
        msg = str(e)
        head = msg.split(" ", 1)[0].rstrip(":")
        if head in names:
            key = names[head] if not section else f"{section}.{names[head]}"
            rest = msg[len(head):].lstrip(":").strip()
            raise ConfigError(f"{key}: {rest}") from None
        raise ConfigError(f"[{section}] {msg}" if section else msg) from None


def _optimizer(D):
    wd = {} if D["weight_decay"] < 0 else {"weight_decay": D["weight_decay"]}
    if D["optimizer"] == "sgd":
        opt = SGD(momentum=D["momentum"], dampening=D["dampening"], nesterov=D["nesterov"], **wd)
    else:
        betas = D["betas"] if isinstance(D["betas"], list) else [D["betas"]]
        opt = (Adam if D["optimizer"] == "adam" else AdamW)(betas=tuple(betas), eps=D["eps"], **wd)
    if D["mode"] == "sde" and not opt.is_plain:
        raise ValueError(f"optimizer: {D['optimizer']} with momentum or weight decay has no SDE model; use "
                         "dynamics.mode = 'discrete'")
    return opt


def _landscape(L):
    kind = L["kind"]
    if kind == "double-well":
        land = lands.DoubleWell(barrier=L["barrier"], curv_min=L["curv_min"], curv_saddle=L["curv_saddle"])
    elif kind == "sharp-flat":
        land = lands.SharpFlatWell(**{k: L[k] for k in LANDSCAPE_KINDS[kind]})
    elif kind == "polynomial":
        land = lands.Polynomial(tuple(float(c) for c in np.atleast_1d(L["coeffs"])))
    elif kind == "quadratic":
        H = np.asarray(L["hessian"], dtype=np.float64)
        H = np.diag(H) if H.ndim == 1 else H
        land = lands.Quadratic(H, center=L["center"])
    elif kind == "entropic":
        land = lands.EntropicWell(kappa=L["kappa"], c=L["c"])
    else:
        sh = L["sharpness"]
        if isinstance(sh, list) and len(sh) not in (1, L["dim"]):
            raise ConfigError(f"landscape.sharpness: expected one number or {L['dim']} (landscape.dim), got {sh!r}")
        land = lands.StyblinskiTang(dim=L["dim"], sharpness=sh)
    if L["finite_sum_n"] > 0:
        land = lands.FiniteSum.gaussian(land, L["finite_sum_n"], L["finite_sum_scale"], seed=L["finite_sum_seed"])
    return land


def _minibatch(batch, L):
    if L["finite_sum_n"] < 1:
        raise ConfigError("dynamics.noise: 'minibatch' needs a finite-sum landscape: set landscape.finite_sum_n "
                          ">= 1 (number of samples)")
    if not float(batch).is_integer():
        raise ConfigError(f"dynamics.batch_size: must be an integer for minibatch noise, got {batch}")
    return dyn.MinibatchNoise(int(batch))


def _schedule(S):
    kind = S["kind"]
    main = {
        "constant": lambda: sch.Constant(),
        "step": lambda: sch.StepLR(S["step_size"], S["gamma"]),
        "exponential": lambda: sch.ExponentialLR(S["gamma"]),
        "cosine": lambda: sch.CosineAnnealingLR(S["T_max"], S["eta_min"]),
        "cosine-restarts": lambda: sch.CosineAnnealingWarmRestarts(S["T_0"], S["T_mult"], S["eta_min"]),
        "cyclic": lambda: sch.CyclicLR(S["max_lr"], S["step_size_up"], S["step_size_down"] or None,
                                       S["cyclic_mode"], S["gamma"]),
        "inverse-time": lambda: sch.InverseTimeLR(S["gamma"], S["power"]),
    }[kind]()
    if S["warmup_steps"] > 0:
        return sch.Warmup(main, S["warmup_steps"], S["warmup_start_factor"])
    return main


def _white(D):
    """White noise of ``dynamics.noise_std``, or of ``dynamics.temperature`` T: s = sqrt(2T/eta), D = T."""
    if D.get("temperature") is not None:
        return dyn.WhiteNoise.langevin(D["temperature"], D["eta"])
    return dyn.WhiteNoise(D["noise_std"])


def _target_minimum(E, I, mins, x0):
    """The index of the target minimum of an ``exit.threshold = "minimum"`` exit (None for other exits):
    ``exit.target_minimum`` if set, else the known minimum nearest to x0 other than the one x0 starts in
    (``init.minimum``, or the minimum nearest to x0 for an explicit x0)."""
    if E["kind"] != "threshold" or E["threshold"] != "minimum":
        return None
    t = E["target_minimum"]
    if t is not None:
        if t >= len(mins):
            raise ConfigError(f"exit.target_minimum: must be < {len(mins)} (the landscape has {len(mins)} known "
                              f"minima), got {t}")
        return t
    if len(mins) < 2:
        raise ConfigError(f"exit: the default exit is a threshold at another minimum (exit.threshold = "
                          f"'minimum'), but the landscape has {len(mins)} known minimum; choose an exit, e.g. "
                          "exit.kind = 'leave-ball' with exit.radius, or exit.threshold = <number>")
    d = [float(np.linalg.norm(m.x - x0)) for m in mins]
    start = I["minimum"] if I["x0"] == "minimum" else int(np.argmin(d))
    return min((i for i in range(len(mins)) if i != start), key=lambda i: (d[i], i))


def _exit(E, land, x0, target=None):
    kind = E["kind"]
    if kind == "none":
        return dyn.NoExit()
    if kind == "threshold":
        thr = E["threshold"]
        if thr == "minimum":
            mins = land.minima
            thr = float(mins[target].x[E["coord"]] if E["coord"] < land.dim else np.nan)
        if isinstance(thr, list):
            raise ConfigError(f"exit.threshold: expected a number or 'minimum', got {thr!r}")
        if E["coord"] >= land.dim:
            raise ConfigError(f"exit.coord: must be in [0, {land.dim - 1}], got {E['coord']}")
        direction = E["direction"] or (1 if thr > x0[E["coord"]] else -1)
        if direction not in (1, -1):
            raise ConfigError(f"exit.direction: must be +1, -1 or 0, got {direction}")
        return dyn.Threshold(thr, coord=E["coord"], direction=direction)
    center = E["center"] if E["center"] is not None else x0
    ball = dyn.LeaveBall if kind == "leave-ball" else dyn.ReachBall
    return ball(np.atleast_1d(np.asarray(center, dtype=np.float64)), E["radius"])


def build(cfg) -> Experiment:
    """The :class:`Experiment` of a resolved config."""
    return Experiment.from_config(cfg)


@dataclass
class RunOutput:
    """One σ: the escape run, the escape back (``run.preference``) and the occupation run (no exit; the
    basin counts of its burn-in half and of its last two quarters are kept in ``occupation_segments``)."""

    sigma: float
    escape: EscapeResult
    occupation: Optional[EscapeResult] = None
    reverse: Optional[EscapeResult] = None
    occupation_segments: Optional[tuple] = None  #: basin_steps (N, b) of the burn-in half, 3rd and 4th quarter


@dataclass
class ExperimentOutput:
    config: dict
    runs: list = field(default_factory=list)
    wall_time: float = 0.0
    interrupted: bool = False


#: escapes needed (each way) before a long-run preference is reported
MIN_ESCAPES = 10
#: KS p-value below which the exponential law, and with it the censored mean, is rejected
KS_REJECT = 0.01


def _mean_steps(res: EscapeResult):
    """Mean escape time in steps with its SE and how it was estimated.

    No censoring: the sample mean, SE = s/√N (no model).  Censoring: the censored exponential MLE ``T/d``,
    SE = mean/√d, valid only under the exponential exit law (checked by the caller with the KS test).
    """
    if isinstance(res, AMSResult):
        return res.mean_steps, res.mean_steps_se, "AMS"
    t = res.steps.astype(np.float64)
    if res.n_diverged == 0 and res.n_censored == 0:
        se = float(t.std(ddof=1) / np.sqrt(t.size)) if t.size > 1 else float("nan")
        return float(t.mean()), se, "sample mean"
    if res.n_escaped == 0:
        return float("inf"), float("nan"), "no escape"
    e = res.rate(unit="steps")
    return float(e.mean), float(e.mean / np.sqrt(e.n_escaped)), "censored exponential MLE"


def escape_summary(res: EscapeResult) -> dict:
    """The ``escape`` block of result.json (steps and continuous time).

    ``rate_*``/``ks_pvalue`` are the censored exponential MLE and the KS test of the exponential exit law;
    for a first passage without a barrier (``exponential_law`` false) they are None and the mean is the
    sample mean (None if any particle was censored).  ``n_unstable`` counts the escapes that happened while
    GD's step was linearly unstable at the start minimum (part of ``n_escaped``).  For an
    :class:`~leap_sde.AMSResult` (``run.method = "ams"``) the mean, its CI and the rate come from AMS, the
    per-particle counts are None and ``ams`` holds its diagnostics."""
    if isinstance(res, AMSResult):
        r_lo, r_hi = res.rate_ci
        return {
            "method": "ams", "mean_steps": res.mean_steps, "mean_steps_ci": list(res.mean_steps_ci),
            "mean_steps_se": res.mean_steps_se, "mean_time": res.mean_time, "mean_time_ci": list(res.mean_time_ci),
            "rate_per_step": 1.0 / res.mean_steps, "rate_ci": [r_lo * res.eta, r_hi * res.eta],
            "rate_per_time": res.rate, "rate_per_time_ci": [r_lo, r_hi], "rate_stderr": None,
            "n_particles": None, "n_escaped": None, "n_censored": None, "n_diverged": None, "n_unstable": None,
            "ks_pvalue": None, "exposure_steps": None, "max_steps": None, "confidence": 0.95,
            "exponential_law": True, "interrupted": False,
            "ams": {"probability": res.probability, "probability_ci": list(res.probability_ci),
                    "work_steps": res.work_steps, "iterations": res.iterations, "runs": len(res.runs),
                    "replicas": res.n_replicas, "levels": list(res.levels),
                    "per_run_mean_steps": [r.mean_steps for r in res.runs],
                    "per_run": [dict(r.__dict__) for r in res.runs]},
        }
    steps = res.rate(unit="steps")
    t = res.rate(unit="time")
    ks = res.ks_pvalue() if res.n_escaped >= 5 else None
    out = {
        "rate_per_step": steps.rate, "rate_ci": list(steps.rate_ci), "rate_stderr": steps.rate_se,
        "mean_steps": steps.mean, "mean_steps_ci": list(steps.mean_ci),
        "rate_per_time": t.rate, "rate_per_time_ci": list(t.rate_ci),
        "mean_time": t.mean, "mean_time_ci": list(t.mean_ci),
        "n_particles": res.n_particles, "n_escaped": steps.n_escaped, "n_censored": steps.n_censored,
        "n_diverged": steps.n_diverged, "n_unstable": res.n_unstable,
        "ks_pvalue": None if ks is None or not np.isfinite(ks) else float(ks),
        "exposure_steps": steps.exposure, "max_steps": res.max_steps, "confidence": steps.confidence,
        "exponential_law": res.exponential_law, "interrupted": res.interrupted,
    }
    if not res.exponential_law:
        for k in ("rate_per_step", "rate_ci", "rate_stderr", "rate_per_time", "rate_per_time_ci", "ks_pvalue"):
            out[k] = None
        if res.n_censored or res.n_diverged or res.n_escaped < 2:
            out.update(mean_steps=None, mean_steps_ci=None, mean_time=None, mean_time_ci=None, mean_steps_se=None)
        else:
            for unit, key in (("steps", "mean_steps"), ("time", "mean_time")):
                x = res.steps.astype(np.float64) if unit == "steps" else res.times
                m, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
                out[key], out[key + "_ci"] = m, [m - 1.96 * se, m + 1.96 * se]
                out[key + "_se"] = se
        return out
    m, se, how = _mean_steps(res)
    out["mean_steps_se"] = se if np.isfinite(se) else None
    return out


def preference_summary(exp: Experiment, out_res: EscapeResult, back: EscapeResult) -> dict:
    """Long-run preference between the start minimum A and the target minimum B from the two escapes.

    The dynamics alternates between sojourns "last visited A" (from reaching A until reaching B) and "last
    visited B"; by the renewal-reward theorem the long-run share of time whose last-visited minimum is B is
    ``π_B = τ_BA/(τ_AB + τ_BA)`` with τ_AB, τ_BA the mean first-passage times A → B and B → A (no exponential
    law needed; it is the basin occupation up to the short transits between the basins).  Reported with the
    ratio ``τ_BA/τ_AB`` and 95% CIs from ``SE(log ratio) = √((SE_AB/τ_AB)² + (SE_BA/τ_BA)²)``.

    ``settled`` is False, and no number is reported, when fewer than ``MIN_ESCAPES`` particles escaped either
    way, particles diverged or escaped through instability, or a censored mean rests on an exponential law
    that the KS test rejects (p < ``KS_REJECT``): the run is then too short or the quantity undefined.
    """
    a, b = exp.names
    d = {"definition": f"long-run share of time whose last-visited minimum is the {b} one = "
                       f"tau_{b}/(tau_{a} + tau_{b}), tau_X the mean steps to escape from X to the other minimum",
         "start": a, "target": b, "settled": False, "note": None,
         f"tau_{a}_steps": None, f"tau_{b}_steps": None, "tau_ratio": None, "tau_ratio_ci": None,
         f"{b}_share": None, f"{b}_share_ci": None, "log_ratio": None, "log_ratio_se": None}
    problems = []
    stats = []
    for name, r in ((a, out_res), (b, back)):
        m, se, how = _mean_steps(r)
        stats.append((m, se))
        d[f"tau_{name}_steps"] = m if np.isfinite(m) else None
        if how == "AMS":
            if not (np.isfinite(m) and np.isfinite(se)):
                problems.append(f"AMS found no escape from the {name} minimum")
            continue
        if r.n_escaped < MIN_ESCAPES:
            problems.append(f"only {r.n_escaped} escapes from the {name} minimum (need {MIN_ESCAPES}): run longer")
        if r.n_diverged:
            problems.append(f"{r.n_diverged} particles diverged from the {name} minimum")
        if r.n_unstable:
            problems.append(f"{r.n_unstable} escapes from the {name} minimum were linear instability")
        if how == "censored exponential MLE" and r.n_escaped >= 5:
            p = r.ks_pvalue()
            if np.isfinite(p) and p < KS_REJECT:
                problems.append(f"{r.n_censored} runs from the {name} minimum censored and the exponential law "
                                f"that the censored mean needs is rejected (KS p = {p:.3g}): raise run.max_steps")
    if problems:
        d["note"] = "; ".join(problems)
        return d
    (ma, sa), (mb, sb) = stats
    lr = float(np.log(mb / ma))
    se = float(np.hypot(sa / ma, sb / mb))
    lo, hi = lr - 1.96 * se, lr + 1.96 * se
    d.update(settled=True, log_ratio=lr, log_ratio_se=se, tau_ratio=float(np.exp(lr)),
             tau_ratio_ci=[float(np.exp(lo)), float(np.exp(hi))])
    d[f"{b}_share"] = float(1 / (1 + np.exp(-lr)))
    d[f"{b}_share_ci"] = [float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))]
    return d


def _occupation_summary(exp: Experiment, run: RunOutput) -> Optional[dict]:
    """Basin occupation of the run without exit: the first half is burn-in, the second half gives the
    estimate, and its two quarters are compared.

    Each particle's fraction of a segment spent in each basin gives a mean and an SE across particles.  The
    second-half fractions are reported (``basin_fractions``; ``flat_fraction`` for a SharpFlatWell) only if
    the run has settled: the two last quarters agree within 3 SE in every basin and at least 30 particles
    changed basin during the second half (else the quarters could agree only because nothing moved).
    Otherwise they are None, the raw segments are kept and ``note`` says why."""
    res = run.occupation
    if res is None or res.basin_steps is None or run.occupation_segments is None:
        return None
    c0, c3, c4 = (np.asarray(c, dtype=np.float64) for c in run.occupation_segments)

    def frac(c):
        return c / np.maximum(c.sum(axis=1, keepdims=True), 1)

    f0, f3, f4, f2 = frac(c0), frac(c3), frac(c4), frac(c3 + c4)
    n = f3.shape[0]
    se = np.sqrt(f3.var(axis=0, ddof=1) / n + f4.var(axis=0, ddof=1) / n) if n > 1 else np.full(f3.shape[1], np.inf)
    diff = np.abs(f4.mean(axis=0) - f3.mean(axis=0))
    moved = int(np.count_nonzero(np.count_nonzero(c3 + c4, axis=1) >= 2))
    drift = bool(np.any(diff > 3 * se))
    settled = not drift and moved >= 30 and res.n_diverged == 0
    note = None
    if not settled:
        why = []
        if drift:
            z = diff / np.where(se > 0, se, np.inf)
            why.append(f"its last two quarters differ (by {float(diff.max()):.3g}, "
                       f"{float(z[np.isfinite(z)].max()) if np.any(np.isfinite(z)) else float('inf'):.1f} SE)")
        if moved < 30:
            why.append(f"only {moved} particles changed basin in the second half")
        if res.n_diverged:
            why.append(f"{res.n_diverged} particles diverged")
        note = "not settled: " + " and ".join(why) + "; raise run.occupation_steps"
    m2 = f2.mean(axis=0)
    out = {"basin_edges": res.basin_edges.tolist(), "steps": res.max_steps, "n_diverged": res.n_diverged,
           "settled": settled, "note": note, "particles_changed_basin": moved,
           "first_half_fractions": f0.mean(axis=0).tolist(), "second_half_fractions": m2.tolist(),
           "quarter_fractions": [f3.mean(axis=0).tolist(), f4.mean(axis=0).tolist()],
           "quarter_difference_se": se.tolist(),
           "second_half_se": (f2.std(axis=0, ddof=1) / np.sqrt(n)).tolist() if n > 1 else None,
           "basin_fractions": m2.tolist() if settled else None}
    if isinstance(exp.landscape, SharpFlatWell):
        h0, h1 = (float(m.hessian[0, 0]) for m in exp.landscape.minima)
        if h0 < h1:  # the flat minimum lies at x < 0
            out["flat_fraction"] = float(m2[0]) if settled else None
    return out


def _run_occupation(exp: Experiment, kw: dict, seed, segment, interrupt):
    """The run without exit in three segments (burn-in half, two quarters), continued from each other's
    final positions with independent streams; returns the combined result and the segments' basin counts.
    ``segment(offset)`` gives the ``progress`` argument of the segment starting at step ``offset``."""
    lengths, every = exp.occupation_plan()
    kw = dict(kw, exit=NoExit(), basins=True, snapshot_every=every, require_barrier=True)
    parts, x = [], exp.x0
    for j, n_steps in enumerate(lengths):
        r = simulate(exp.landscape, x, seed=np.random.SeedSequence(seed, spawn_key=(1, j)),
                     progress=segment(sum(lengths[:j])), interrupt=interrupt, **dict(kw, max_steps=n_steps))
        parts.append(r)
        if r.interrupted:
            break
        x = r.positions.copy()
    snaps = None
    if every and all(p.snapshots is not None and p.snapshots.shape[0] == n // every + 1
                     for p, n in zip(parts, lengths)):
        snaps = np.concatenate([parts[0].snapshots] + [p.snapshots[1:] for p in parts[1:]])
    status = parts[-1].status.copy()
    for p in parts:
        status[p.status == Status.DIVERGED] = Status.DIVERGED  # diverged in any segment
    both = replace(parts[-1], status=status, steps=sum(p.steps for p in parts), times=sum(p.times for p in parts),
                   max_steps=sum(lengths[:len(parts)]), basin_steps=sum(p.basin_steps for p in parts),
                   snapshots=snaps, interrupted=any(p.interrupted for p in parts),
                   warnings=tuple(dict.fromkeys(w for p in parts for w in p.warnings)),
                   wall_time=sum(p.wall_time for p in parts))
    segments = tuple(p.basin_steps for p in parts) if len(parts) == 3 else None
    return both, segments


def resolve_config(config=None, overrides=()) -> dict:
    """The resolved config of ``config``: None (the built-in default experiment), a dict of sections
    (``{"landscape": {...}, "dynamics": {...}}``; keys not given take the schema defaults; a resolved config
    comes back unchanged) or the path of a TOML file; ``overrides`` are ``"section.key=value"`` strings.
    Raises :class:`~leap_sde.config.ConfigError` naming the key."""
    from .config import load_toml, resolve

    if isinstance(config, (str, Path)):
        config = load_toml(config)
    elif config is not None and not isinstance(config, dict):
        raise ConfigError(f"config: expected None, a dict of sections or the path of a TOML file, got "
                          f"{type(config).__name__}")
    if not overrides and _is_resolved(config):
        return config  # e.g. a sweep point's config, whose derived seed may exceed what a user may write
    return resolve(config, list(overrides))


def _is_resolved(cfg) -> bool:
    """Whether ``cfg`` has the shape :func:`~leap_sde.config.resolve` returns (every section, every key)."""
    from .config import _COMMON_LANDSCAPE, SCHEMA

    if not isinstance(cfg, dict) or set(cfg) != set(SCHEMA) or not all(isinstance(v, dict) for v in cfg.values()):
        return False
    kind = cfg["landscape"].get("kind")
    if kind not in LANDSCAPE_KINDS or set(cfg["landscape"]) != set(LANDSCAPE_KINDS[kind]) | set(_COMMON_LANDSCAPE):
        return False
    return all(set(cfg[s]) == set(SCHEMA[s]) for s in SCHEMA if s != "landscape")


def run_experiment(config=None, *, overrides=(), out=None, force: bool = False, plots: bool = True,
                   progress=False, interrupt: str = "raise") -> ExperimentOutput:
    """Simulate a config for every σ in ``leap.sigma``: the escape run, with ``run.preference`` the escape
    back, with ``run.occupation_steps`` the occupation run (burn-in half and two quarters).

    ``config``: None (the built-in default experiment), a dict of sections or the path of a TOML file (see
    :func:`resolve_config`; ``overrides`` as ``"section.key=value"`` strings).  ``out``: also write the result
    folder there (:func:`write_outputs`; a non-empty folder only with ``force=True``, checked before anything
    is simulated; ``plots=False`` skips the PNGs).  ``progress``: False (default) draws nothing; True one
    labelled tqdm bar per phase on a terminal or in a notebook ("σ=0.05 [2/4] escape", "... escape back",
    "... occupation", "AMS"), whose total is the phase's step budget; a callable ``f(steps_done, max_steps,
    n_escaped, N)`` is passed to every simulate call.  Nothing is printed: the runs' warnings are issued once
    each with :mod:`warnings`, labelled with σ and run.  With ``interrupt="return"`` a Ctrl-C (or SIGTERM,
    which the CLI turns into one) keeps what was simulated (the interrupted run's unfinished particles are
    censored) and skips the rest."""
    cfg = resolve_config(config, overrides)
    if interrupt not in ("raise", "return"):
        raise ValueError(f"interrupt must be 'raise' or 'return', got {interrupt!r}")
    if out is not None:
        from .cli import check_out_dir

        problem = check_out_dir(Path(out), force=force)
        if problem:
            raise ValueError(problem.replace("--out", "out", 1).replace("--force", "force=True"))
    exp = build(cfg)
    res = ExperimentOutput(config=cfg)
    t0 = time.perf_counter()
    seed = cfg["run"]["seed"]
    try:
        _run_all(exp, res, seed, progress, interrupt)
    except KeyboardInterrupt:  # between two simulations: keep the finished ones
        if interrupt == "raise" or not res.runs:
            raise
        res.interrupted = True
    res.wall_time = time.perf_counter() - t0
    for msg in run_warnings(res):  # once each, labelled with σ and run (the runs' own ones were held back)
        warnings.warn(msg, UserWarning if "require_barrier" in msg else StabilityWarning, stacklevel=2)
    if out is not None:
        write_outputs(out, res, plots=plots)
    return res


def _run_all(exp, out, seed, progress, interrupt):
    from ._progress import RunBars

    bars = RunBars(progress, len(exp.sigmas))
    if exp.run["method"] == "ams":
        from .ams import ams

        n_est = len(exp.sigmas) * (2 if exp.reverse_exit is not None else 1)
        bar = None
        if bars.shown:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_est, desc="AMS", unit="estimate", dynamic_ncols=True, leave=False)
        try:
            for i, sigma in enumerate(exp.sigmas):
                kw = exp.ams_kwargs(sigma)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", StabilityWarning)
                    if bar is not None:
                        bar.set_postfix_str(bars.label(i, sigma, "escape"))
                    run = RunOutput(sigma, ams(exp.landscape, exp.x0, seed=seed, **kw))
                    if bar is not None:
                        bar.update(1)
                    if exp.reverse_exit is not None:
                        if bar is not None:
                            bar.set_postfix_str(bars.label(i, sigma, "escape back"))
                        run.reverse = ams(exp.landscape, exp.reverse_x0,
                                          seed=np.random.SeedSequence(seed, spawn_key=(3,)),
                                          **dict(kw, exit=exp.reverse_exit))
                        if bar is not None:
                            bar.update(1)
                out.runs.append(run)
        finally:
            if bar is not None:
                bar.close()
        return
    n_max = exp.run["max_steps"]
    for i, sigma in enumerate(exp.sigmas):
        kw = exp.simulate_kwargs(sigma)
        with warnings.catch_warnings():  # the result carries its warnings (result.json, CLI)
            warnings.simplefilter("ignore", StabilityWarning)
            with bars.phase(bars.label(i, sigma, "escape"), n_max) as seg:
                res = simulate(exp.landscape, exp.x0, seed=seed, progress=seg(), interrupt=interrupt, **kw)
            run = RunOutput(sigma, res)
            out.runs.append(run)
            if res.interrupted:
                out.interrupted = True
                return
            if exp.reverse_exit is not None:
                with bars.phase(bars.label(i, sigma, "escape back"), n_max) as seg:
                    run.reverse = simulate(exp.landscape, exp.reverse_x0,
                                           seed=np.random.SeedSequence(seed, spawn_key=(3,)), progress=seg(),
                                           interrupt=interrupt, **dict(kw, exit=exp.reverse_exit))
                if run.reverse.interrupted:
                    out.interrupted = True
                    return
            plan = exp.occupation_plan()
            if plan is not None:
                with bars.phase(bars.label(i, sigma, "occupation"), sum(plan[0]), escapes=False) as seg:
                    run.occupation, run.occupation_segments = _run_occupation(exp, kw, seed, seg, interrupt)
                if run.occupation.interrupted:
                    out.interrupted = True
                    return


def run_warnings(out: ExperimentOutput) -> list:
    """The runs' warnings, each once, prefixed with the σ and the run they come from."""
    msgs = []
    for r in out.runs:
        for label, res in (("escape", r.escape), ("escape back", r.reverse), ("occupation", r.occupation)):
            if res is not None:
                msgs.extend(f"σ = {r.sigma:g}, {label}: {w}" for w in res.warnings)
    return list(dict.fromkeys(msgs))


def result_dict(out: ExperimentOutput) -> dict:
    """result.json: for one σ the ``escape``/``escape_back``/``preference``/``occupation`` blocks at the top
    level, for several a ``runs`` list holding one such set per σ; ``warnings`` lists every warning; then
    ``schema_version``, ``config``, ``provenance`` and ``timings_s`` (docs/results-format.md)."""
    exp = build(out.config)
    runs = []
    for r in out.runs:
        d = {"leap.sigma": r.sigma, "escape": escape_summary(r.escape)}
        if r.reverse is not None:
            d["escape_back"] = escape_summary(r.reverse)
            d["preference"] = preference_summary(exp, r.escape, r.reverse)
        d["occupation"] = _occupation_summary(exp, r)
        runs.append(d)
    d = {"version": __version__, "seed": out.config["run"]["seed"], "wall_time_s": out.wall_time,
         "interrupted": out.interrupted, "warnings": run_warnings(out)}
    if len(runs) == 1 and len(exp.sigmas) == 1:
        d.update(runs[0])
    else:
        d["runs"] = runs
    from .runs import result_provenance

    d.update(result_provenance(out))  # schema version, resolved config, versions, git, command, timings
    return d


def format_table(out: ExperimentOutput) -> str:
    """Plain-text tables, at most 80 columns (:func:`leap_sde._tables.format_table`)."""
    from ._tables import format_table as f

    return f(out)


def result_rows(out: ExperimentOutput) -> list:
    """One flat dict per σ and direction, what ``simulate --format csv`` prints
    (:func:`leap_sde._tables.result_rows`)."""
    from ._tables import result_rows as f

    return f(out)


def write_outputs(out_dir, out: ExperimentOutput, *, plots: bool = True, formats=("png", "pdf", "svg"),
                  chain="auto") -> Path:
    """Write config.toml, result.json, escape_times.npz and the plots (survival, histogram, occupation, each
    in every one of ``formats``; :func:`leap_sde.plots.plot_experiment`, ``chain``: also the exact discrete-chain
    theory curve, ~1 s per σ; "auto": for runs of ≥ 10⁶ particle-steps) into ``out_dir`` (atomically)."""
    import tomli_w

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.toml", tomli_w.dumps(_toml_ready(out.config)))
    from .runs import escape_arrays

    arrays = escape_arrays(out)  # key names and status codes: docs/results-format.md
    atomic_savez(out_dir / "escape_times.npz", **arrays)
    atomic_write_json(out_dir / "result.json", result_dict(out))
    if plots and out.runs and not any(isinstance(r.escape, AMSResult) for r in out.runs):
        from .plots import plot_experiment

        plot_experiment(out, out_dir, formats=formats, chain=chain)
    return out_dir


def _toml_ready(cfg):
    out = {s: {k: v for k, v in sec.items() if v is not None} for s, sec in cfg.items()}
    if cfg.get("dynamics", {}).get("temperature") is not None:
        out["dynamics"].pop("noise_std", None)  # derived from the temperature (the two keys exclude each other)
    return out
