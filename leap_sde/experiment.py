"""Build the objects of a resolved config (:class:`Experiment`), run it (one simulation per LEAP σ),
summarise it and write the result folder.

Result folder: ``config.toml`` (the fully resolved config: rerunning it repeats the run exactly),
``result.json``, ``escape_times.npz`` and PNG plots, all written atomically.  Every σ uses the same seed
(common random numbers: differences between σ values are less noisy than independent runs would give).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import __version__
from . import dynamics as dyn
from . import landscapes as lands
from . import schedules as sch
from ._io import atomic_savefig, atomic_savez, atomic_write_json, atomic_write_text
from .config import LANDSCAPE_KINDS, ConfigError
from .dynamics import NoExit
from .landscapes import SharpFlatWell
from .simulate import EscapeResult, simulate

__all__ = ["Experiment", "build", "RunOutput", "ExperimentOutput", "run_experiment", "write_outputs",
           "escape_summary", "format_table"]


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

    def leap(self, sigma):
        return dyn.LEAP(sigma, **self.leap_kwargs) if sigma > 0 else None

    def simulate_kwargs(self, sigma) -> dict:
        r = self.run
        return dict(eta=self.eta, noise=self.noise, leap=self.leap(sigma), schedule=self.schedule, mode=self.mode,
                    exit=self.exit, n_particles=r["particles"], max_steps=r["max_steps"],
                    threads=r["threads"] or None, basins=r["basins"] and bool(self.landscape.saddles))

    @classmethod
    def from_config(cls, cfg) -> "Experiment":
        try:
            return cls._build(cfg)
        except ConfigError:
            raise
        except (ValueError, TypeError) as e:
            raise ConfigError(str(e)) from None

    @classmethod
    def _build(cls, cfg):
        L, D, P, S, I, E, R = (cfg[k] for k in ("landscape", "dynamics", "leap", "schedule", "init", "exit", "run"))
        land = _landscape(L)
        mins = land.minima
        x0 = I["x0"]
        if x0 == "minimum":
            if I["minimum"] >= len(mins):
                raise ConfigError(f"init.minimum: must be < {len(mins)} (the landscape has {len(mins)} known "
                                  f"minima), got {I['minimum']}")
            x0 = mins[I["minimum"]].x
        x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
        if x0.shape != (land.dim,):
            raise ConfigError(f"init.x0: expected {land.dim} coordinate(s), got {x0.tolist()}")
        noise = {"none": lambda: dyn.NoNoise(), "white": lambda: dyn.WhiteNoise(D["noise_std"]),
                 "sgd-hessian": lambda: dyn.HessianNoise(D["batch_size"], floor=D["hessian_floor"]),
                 "minibatch": lambda: _minibatch(D["batch_size"], L)}[D["noise"]]()
        leap_kwargs = dict(mode=P["mode"], relative=P["relative"] or None, variant=P["variant"])
        if P["variant"] == "lognormal" and not P["relative"]:
            leap_kwargs["relative"] = None
        sigmas = tuple(P["sigma"]) if isinstance(P["sigma"], list) else (P["sigma"],)
        for s in sigmas:
            dyn.LEAP(s, **leap_kwargs)
        ext = _exit(E, land, x0)
        if R["threads"]:
            import numba

            if R["threads"] > numba.config.NUMBA_NUM_THREADS:
                raise ConfigError(f"run.threads: must be in [0, {numba.config.NUMBA_NUM_THREADS}], got {R['threads']}")
        exp = cls(land, x0, D["eta"], D["mode"], noise, _schedule(S), ext, sigmas, leap_kwargs, dict(R))
        from .simulate import check_setup

        with warnings.catch_warnings():  # stability warnings are emitted by the run itself
            warnings.simplefilter("ignore")
            for s in sigmas:
                check_setup(land, x0, ext, exp.eta, noise, exp.leap(s), exp.mode, exp.schedule)
        return exp


def _landscape(L):
    kind = L["kind"]
    if kind == "double-well":
        land = lands.DoubleWell(barrier=L["barrier"], curv_min=L["curv_min"], curv_saddle=L["curv_saddle"])
    elif kind == "sharp-flat":
        land = lands.SharpFlatWell(**{k: L[k] for k in LANDSCAPE_KINDS[kind]})
    elif kind == "polynomial":
        land = lands.Polynomial(tuple(np.atleast_1d(L["coeffs"])))
    elif kind == "quadratic":
        H = np.asarray(L["hessian"], dtype=np.float64)
        H = np.diag(H) if H.ndim == 1 else H
        land = lands.Quadratic(H, center=L["center"])
    elif kind == "entropic":
        land = lands.EntropicWell(kappa=L["kappa"], c=L["c"])
    else:
        land = lands.StyblinskiTang(dim=L["dim"], sharpness=L["sharpness"])
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


def _exit(E, land, x0):
    kind = E["kind"]
    if kind == "none":
        return dyn.NoExit()
    if kind == "threshold":
        thr = E["threshold"]
        if thr == "minimum":
            mins = land.minima
            if E["target_minimum"] >= len(mins):
                raise ConfigError(f"exit.target_minimum: must be < {len(mins)}, got {E['target_minimum']}")
            thr = float(mins[E["target_minimum"]].x[E["coord"]] if E["coord"] < land.dim else np.nan)
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
    """One σ: the escape run and, if requested, the occupation run (no exit)."""

    sigma: float
    escape: EscapeResult
    occupation: Optional[EscapeResult] = None


@dataclass
class ExperimentOutput:
    config: dict
    runs: list = field(default_factory=list)
    wall_time: float = 0.0
    interrupted: bool = False


def escape_summary(res: EscapeResult) -> dict:
    """The ``escape`` block of result.json (steps and continuous time)."""
    steps = res.rate(unit="steps")
    t = res.rate(unit="time")
    return {
        "rate_per_step": steps.rate, "rate_ci": list(steps.rate_ci), "rate_stderr": steps.stderr,
        "mean_steps": steps.mean, "mean_steps_ci": list(steps.mean_ci),
        "rate_per_time": t.rate, "rate_per_time_ci": list(t.rate_ci),
        "mean_time": t.mean, "mean_time_ci": list(t.mean_ci),
        "n_particles": res.n_particles, "n_escaped": steps.n_escaped, "n_censored": steps.n_censored,
        "n_diverged": steps.n_diverged, "ks_pvalue": res.ks_pvalue() if res.n_escaped >= 5 else None,
        "exposure_steps": steps.exposure, "max_steps": res.max_steps, "confidence": steps.confidence,
        "interrupted": res.interrupted,
    }


def _occupation_summary(exp: Experiment, res: Optional[EscapeResult]) -> Optional[dict]:
    if res is None or res.basin_steps is None:
        return None
    frac = res.basin_fractions()
    out = {"basin_edges": res.basin_edges.tolist(), "basin_fractions": frac.tolist(), "steps": res.max_steps,
           "n_diverged": res.n_diverged}
    if isinstance(exp.landscape, SharpFlatWell):
        out["flat_fraction"] = float(frac[0])  # the flat minimum lies at x < 0
    return out


def run_experiment(cfg: dict, *, progress=False, interrupt: str = "raise") -> ExperimentOutput:
    """Simulate ``cfg`` (resolved) for every σ in ``leap.sigma``; with ``interrupt="return"`` a Ctrl-C keeps
    what was simulated (the interrupted run's unfinished particles are censored) and skips the rest."""
    exp = build(cfg)
    out = ExperimentOutput(config=cfg)
    t0 = time.perf_counter()
    seed = cfg["run"]["seed"]
    for sigma in exp.sigmas:
        kw = exp.simulate_kwargs(sigma)
        res = simulate(exp.landscape, exp.x0, seed=seed, progress=progress, interrupt=interrupt, **kw)
        run = RunOutput(sigma, res)
        out.runs.append(run)
        if res.interrupted:
            out.interrupted = True
            break
        n_occ = cfg["run"]["occupation_steps"]
        if n_occ > 0 and exp.landscape.saddles:
            snaps = cfg["run"]["snapshots"]
            kw.update(exit=NoExit(), max_steps=n_occ, basins=True,
                      snapshot_every=max(1, n_occ // snaps) if snaps else 0)
            run.occupation = simulate(exp.landscape, exp.x0, seed=np.random.SeedSequence(seed, spawn_key=(1,)),
                                      progress=progress, interrupt=interrupt, **kw)
            if run.occupation.interrupted:
                out.interrupted = True
                break
    out.wall_time = time.perf_counter() - t0
    return out


def result_dict(out: ExperimentOutput) -> dict:
    """result.json: for one σ the ``escape``/``occupation`` blocks at the top level, for several a ``runs``
    list holding one such pair per σ."""
    exp = build(out.config)
    runs = [{"leap.sigma": r.sigma, "escape": escape_summary(r.escape),
             "occupation": _occupation_summary(exp, r.occupation)} for r in out.runs]
    d = {"version": __version__, "seed": out.config["run"]["seed"], "wall_time_s": out.wall_time,
         "interrupted": out.interrupted}
    if len(runs) == 1 and len(exp.sigmas) == 1:
        d.update(runs[0])
    else:
        d["runs"] = runs
    return d


def format_table(out: ExperimentOutput) -> str:
    """Plain-text table: one row per σ."""
    exp = build(out.config)
    head = f"{'sigma':>7} {'rate/step [95% CI]':>34} {'mean steps [95% CI]':>32} {'flat frac':>9} " \
           f"{'escaped':>7} {'censored':>8} {'diverged':>8} {'KS p':>6}"
    lines = [head, "-" * len(head)]
    for r in out.runs:
        e = escape_summary(r.escape)
        occ = _occupation_summary(exp, r.occupation) or {}
        ci = f"{e['rate_per_step']:.3e} [{e['rate_ci'][0]:.3e}, {e['rate_ci'][1]:.3e}]"
        mci = f"{e['mean_steps']:.4g} [{e['mean_steps_ci'][0]:.4g}, {e['mean_steps_ci'][1]:.4g}]"
        flat = f"{occ['flat_fraction']:.3f}" if "flat_fraction" in occ else "-"
        ks = f"{e['ks_pvalue']:.3f}" if e["ks_pvalue"] is not None else "-"
        lines.append(f"{r.sigma:>7.4g} {ci:>34} {mci:>32} {flat:>9} {e['n_escaped']:>7} {e['n_censored']:>8} "
                     f"{e['n_diverged']:>8} {ks:>6}")
    return "\n".join(lines)


def write_outputs(out_dir, out: ExperimentOutput, *, plots: bool = True) -> Path:
    """Write config.toml, result.json, escape_times.npz and the plots into ``out_dir`` (atomically)."""
    import tomli_w

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.toml", tomli_w.dumps(_toml_ready(out.config)))
    arrays = {}
    for i, r in enumerate(out.runs):
        arrays[f"steps_{i}"] = r.escape.steps
        arrays[f"times_{i}"] = r.escape.times
        arrays[f"status_{i}"] = r.escape.status
        arrays[f"exit_points_{i}"] = r.escape.positions
    arrays["sigma"] = np.array([r.sigma for r in out.runs])
    atomic_savez(out_dir / "escape_times.npz", **arrays)
    atomic_write_json(out_dir / "result.json", result_dict(out))
    if plots and out.runs:
        from .plots import plot_experiment

        plot_experiment(out, out_dir, save=atomic_savefig)
    return out_dir


def _toml_ready(cfg):
    return {s: {k: v for k, v in sec.items() if v is not None} for s, sec in cfg.items()}
