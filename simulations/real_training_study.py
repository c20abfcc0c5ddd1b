"""A paired real-training study of LEAP that can detect an effect, with its power, and the simulator beside it.

**Design.**  Tasks: MNIST-1D (Greydanus 2020; generated locally by the ``mnist1d`` package, 4 000 train /
1 000 test sequences of length 40) with an MLP 40-64-64-10 (ReLU); a teacher–student classification
task of tunable size (inputs x ~ N(0, I_d), labels = argmax of a fixed random tanh teacher network,
a fraction of the training labels replaced by uniform random classes, test error on clean teacher
labels) with a tanh student of the same or larger width; and, for the scalar-mode lead only, the
original setting of ``real_training.py`` part 1 (digits, MLP 64-64-64-10 tanh, batch 32, 12 epochs,
SGD+momentum).
Optimizers: SGD + momentum 0.9 and AdamW, each wrapped in ``leap_sde.torch.LEAP``; schedules constant,
step (÷10 every third of the run) and cosine to 0 (``real_training.make_schedule``, stepped per
iteration); LEAP σ ∈ {0.5, 1, 2}·lr (relative, Gaussian) in the per-coordinate and the scalar mode,
against σ = 0.  **Paired**: for each seed s, every LEAP setting starts from the same initial weights
(``torch.manual_seed(s)``), sees the same minibatch order (one ``torch.Generator`` seeded from s) and
uses the same LEAP seed, so only the perturbation differs; λ_max and the trace are measured with the
same Lanczos start vector and the same Hutchinson probes (common random numbers).

**Metrics** (after training, eval mode, full training loss): test error, λ_max (Lanczos on HVPs,
``leap_sde.torch.hessian_eigenvalues``), Hessian trace (Hutchinson, ``leap_sde.torch.hessian_trace``),
and Σ_i u_i⁴ of the top eigenvector u (its participation, used by the simulator comparison).

**Statistics.**  Effect of one LEAP setting = paired difference against σ = 0 of the same seed and
schedule: Δ = ln(x_LEAP/x_0) for λ_max and the trace (relative effect e^Δ − 1), Δ = err_LEAP − err_0
(percentage points) for test error.  *Primary comparisons* pool the schedules: per seed, the mean of Δ
over the three schedules, so the n = #seeds values are independent; 95 % t-interval
d̄ ± t_{0.975, n−1} s_d/√n and the two-sided paired t-test p-value.  Holm's step-down correction at
family-wise α = 0.05 within each metric's family (task × optimizer × mode × σ).  The scalar-mode lead
(λ_max under SGD + momentum) is tested as its own pre-specified family (one comparison per task and σ).
Per-schedule cells are reported too, with Holm over all cells of a metric.
**Power**: the minimal detectable effect (MDE) at 80 % power is the δ solving
P(|T| > t_{1−α*/2, n−1}) = 0.8 with T ~ noncentral t(n − 1, δ√n/s_d) (exact, ``scipy.stats.nct``;
≈ (t_{1−α*/2, n−1} + t_{0.8, n−1}) s_d/√n), at α* = α/m, the most stringent Holm level of the family
(m comparisons), with s_d the observed SD of the paired differences.
**Verdicts** per comparison: *confirmed* (Holm-significant in the claimed direction), *refuted*
(Holm-significant in the opposite direction), *undetectable* (neither; the MDE says which effect size
the design would have seen).

**Simulator beside it (item 5).**  ``leap_sde.simulate`` on a ``SharpFlatWell`` (h_sharp/h_flat = 4,
equal barriers) under SGD-like noise (``HessianNoise``, Cov = |H|/B) with the optimizer actually used
(``ls.SGD(momentum=0.9)`` / ``ls.AdamW``), σ/lr matched, per-coordinate and scalar LEAP: the change of
the flat-minimum preference ln(τ_flat/τ_sharp) caused by LEAP, with its standard error.  In 1-D the two
modes are the same process; on a delocalised sharp direction u of a network, per-coordinate LEAP puts
only σ²Σu_i⁴ of its variance along u (for a step along u), so the study also simulates per-coordinate
LEAP as 1-D LEAP with σ_eff = σ·(Σu_i⁴)^{1/2}, Σu_i⁴ measured on the trained networks.

**Checks of the mechanism.**  ``--control``: σ = 0 runs at lr·(1 + σ²) (the E η̃² of scalar LEAP), SGD +
momentum, constant rate; and always: the heavy ball's mean-square and almost-sure stability thresholds under
LEAP (``leap_sde.theory``) next to the λ_max reached at the constant rate.

    python simulations/real_training_study.py --control  # the committed run (1 110 runs: ≈ 12 min of an idle
                                                         # core, 31 min summed on the shared 2-core machine)
    python simulations/real_training_study.py --quick    # seconds (CI)
    python simulations/real_training_study.py --reanalyse [--control]  # statistics again from OUT/runs.csv
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_training as rt  # noqa: E402  (reused: make_schedule, load_digits_split, write_csv)

import leap_sde.torch as lt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "real_training" / "study"
TASKS = ("mnist1d", "teacher", "digits")
OPTIMIZERS = ("momentum", "adamw")
SCHEDULES = ("constant", "step", "cosine")
MODES = ("per-coordinate", "scalar")
METRICS = ("test_error", "lambda_max", "trace")
CLAIM_SIGN = {"test_error": -1, "lambda_max": -1, "trace": -1}  # the claims: LEAP lowers all three


@dataclass(frozen=True)
class StudyConfig:
    tasks: tuple = TASKS
    optimizers: tuple = OPTIMIZERS
    lead_task_optimizers: tuple = ("momentum",)  # the digits task only replays the lead's optimizer
    schedules: tuple = SCHEDULES
    sigmas: tuple = (0.5, 1.0, 2.0)
    modes: tuple = MODES
    seeds: tuple = tuple(range(10))
    epochs: dict | None = None  # per task; None = the defaults below
    batch: int = 64  # digits: 32, as in real_training.py part 1 where the lead was seen
    hutchinson: int = 16
    hessian_subset: int = 2000  # training points in the loss whose Hessian is measured
    lanczos_tol: float = 1e-3
    # teacher–student task
    ts_dim: int = 20
    ts_teacher_width: int = 32
    ts_student_width: int = 64
    ts_classes: int = 5
    ts_train: int = 2000
    ts_test: int = 4000
    ts_label_noise: float = 0.1
    ts_seed: int = 12345
    alpha: float = 0.05
    # simulator (item 5)
    sim_particles: int = 10_000
    sim_budget: int = 400_000
    sim_seed: int = 2026
    lyapunov_steps: int = 50_000  # random matrices per Lyapunov-exponent estimate (stability thresholds)

    def epochs_for(self, task: str) -> int:
        return (self.epochs or {"mnist1d": 20, "teacher": 15, "digits": 12})[task]

    def batch_for(self, task: str) -> int:
        return 32 if task == "digits" else self.batch


# ---------------------------------------------------------------------------------------------------
# tasks
def load_task(task: str, cfg: StudyConfig):
    """(Xtr, ytr, Xte, yte, model factory) in float32 on the CPU."""
    f32 = torch.float32
    if task == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        state = np.random.get_state()  # make_dataset seeds numpy's global generator (args.seed = 42)
        try:
            d = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(state)
        t = lambda a, dt: torch.as_tensor(np.asarray(a), dtype=dt)  # noqa: E731
        data = (t(d["x"], f32), t(d["y"], torch.long), t(d["x_test"], f32), t(d["y_test"], torch.long))
        make = lambda: nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),  # noqa: E731
                                     nn.Linear(64, 10))
        return (*data, make)
    if task == "teacher":
        g = torch.Generator().manual_seed(cfg.ts_seed)
        d, w, c = cfg.ts_dim, cfg.ts_teacher_width, cfg.ts_classes
        W1 = torch.randn(w, d, generator=g) / math.sqrt(d)
        W2 = torch.randn(c, w, generator=g) * (3.0 / math.sqrt(w))
        teacher = lambda x: torch.tanh(x @ W1.T * 2.0) @ W2.T  # noqa: E731
        Xtr = torch.randn(cfg.ts_train, d, generator=g)
        Xte = torch.randn(cfg.ts_test, d, generator=g)
        ytr, yte = teacher(Xtr).argmax(1), teacher(Xte).argmax(1)
        flip = torch.rand(cfg.ts_train, generator=g) < cfg.ts_label_noise
        ytr = torch.where(flip, torch.randint(0, c, (cfg.ts_train,), generator=g), ytr)
        sw = cfg.ts_student_width
        make = lambda: nn.Sequential(nn.Linear(d, sw), nn.Tanh(), nn.Linear(sw, sw), nn.Tanh(),  # noqa: E731
                                     nn.Linear(sw, c))
        return Xtr, ytr, Xte, yte, make
    if task == "digits":
        Xtr, ytr, Xte, yte = rt.load_digits_split("cpu")
        return Xtr, ytr, Xte, yte, lambda: rt.make_model("mlp")
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def make_inner(name: str, params, lr_factor: float = 1.0):
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.05 * lr_factor, momentum=0.9)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=2e-3 * lr_factor, weight_decay=1e-2)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def train_one(task, data, opt_name, sched, sigma, mode, seed, cfg: StudyConfig, lr_factor: float = 1.0) -> dict:
    """One training run; σ = 0 is the unperturbed baseline of the pair (mode is then irrelevant).
    ``lr_factor`` scales the optimizer's lr (the learning-rate control only)."""
    Xtr, ytr, Xte, yte, make = data
    torch.manual_seed(seed)  # same init for every LEAP setting of this seed
    model = make()
    inner = make_inner(opt_name, model.parameters(), lr_factor)
    opt = lt.LEAP(inner, sigma=sigma, mode=mode, relative=True, seed=7919 * seed + 1) if sigma > 0 else inner
    n, epochs, batch = len(Xtr), cfg.epochs_for(task), cfg.batch_for(task)
    spe = n // batch
    total = spe * epochs
    schedule = rt.make_schedule(sched, opt, total)
    gen = torch.Generator().manual_seed(10_000 + seed)  # same batch order for every LEAP setting
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(spe):
            idx = perm[b * batch:(b + 1) * batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
            schedule.step()
    t_train = time.perf_counter() - t0
    Xh, yh = Xtr[:cfg.hessian_subset], ytr[:cfg.hessian_subset]
    closure = lambda: nn.functional.cross_entropy(model(Xh), yh)  # noqa: E731
    model.eval()
    with torch.no_grad():
        test_err = float((model(Xte).argmax(1) != yte).float().mean())
        train_err = float((model(Xtr).argmax(1) != ytr).float().mean())
        train_loss = float(nn.functional.cross_entropy(model(Xtr), ytr))
    finite = math.isfinite(train_loss) and all(bool(torch.isfinite(p).all()) for p in model.parameters())
    lam = trace = trace_se = u4 = float("nan")
    if finite:  # a diverged run (non-finite weights) has no Hessian: recorded as diverged, λ and trace NaN
        try:
            eig = lt.hessian_eigenvalues(model, closure, k=1, tol=cfg.lanczos_tol, seed=seed)
        except Exception:  # ARPACK failure: power iteration instead (same start seed)
            eig = lt.hessian_eigenvalues(model, closure, k=1, method="power", tol=cfg.lanczos_tol, maxiter=500,
                                         seed=seed)
        tr = lt.hessian_trace(model, closure, n_samples=cfg.hutchinson, seed=seed)
        lam, trace, trace_se = float(eig.eigenvalues[0]), tr.trace, tr.stderr
        u4 = float((eig.eigenvectors[0].double() ** 4).sum())
    return {"task": task, "optimizer": opt_name, "schedule": sched, "sigma_rel": sigma,
            "mode": mode if sigma > 0 else "none", "seed": seed, "diverged": int(not finite), "test_error": test_err,
            "train_error": train_err, "train_loss": train_loss, "lambda_max": lam, "trace": trace,
            "trace_stderr": trace_se, "u4": u4, "n_params": sum(p.numel() for p in model.parameters()),
            "steps": total, "train_s": t_train, "total_s": time.perf_counter() - t0}


def settings(cfg: StudyConfig):
    """(σ, mode) of one pair's members: the baseline first."""
    return [(0.0, "per-coordinate")] + [(s, m) for m in cfg.modes for s in cfg.sigmas]


def plan(cfg: StudyConfig):
    for task in cfg.tasks:
        opts = cfg.lead_task_optimizers if task == "digits" else cfg.optimizers
        for o in opts:
            for sc in cfg.schedules:
                for seed in cfg.seeds:
                    for sigma, mode in settings(cfg):
                        yield task, o, sc, sigma, mode, seed


# ---------------------------------------------------------------------------------------------------
# statistics
def holm(pvals) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: p_(i) ← max_{j ≤ i} min(1, (m − j + 1) p_(j))."""
    p = np.asarray(pvals, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def mde(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """Smallest |δ| with P(|T| > t_{1−α/2, n−1}) = power, T ~ nct(n − 1, δ√n/sd) (two-sided paired t-test)."""
    from scipy import optimize, stats

    if not (sd > 0) or n < 2:
        return float("nan")
    df, tc = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
    f = lambda d: (stats.nct.sf(tc, df, d * math.sqrt(n) / sd) + stats.nct.cdf(-tc, df, d * math.sqrt(n) / sd)  # noqa
                   - power)
    approx = (tc + stats.t.ppf(power, df)) * sd / math.sqrt(n)  # the usual closed-form approximation
    lo, hi = 0.2 * approx, 3.0 * approx
    try:
        if f(lo) < 0 < f(hi):
            return float(optimize.brentq(f, lo, hi, xtol=1e-6 * approx))
    except (ValueError, FloatingPointError):
        pass
    return float(approx)  # nct not resolvable numerically (tiny df and α): the approximation


def paired(d: np.ndarray, alpha: float = 0.05) -> dict:
    """Mean, SD, 95 % t-interval and two-sided p-value of the paired differences ``d``."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    n = len(d)
    m, sd = float(d.mean()), float(d.std(ddof=1)) if n > 1 else float("nan")
    if n < 2 or not np.isfinite(sd):
        return {"n": n, "mean": m, "sd": sd, "ci_lo": float("nan"), "ci_hi": float("nan"), "p": float("nan")}
    se = sd / math.sqrt(n)
    h = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
    p = float(2 * stats.t.sf(abs(m) / se, n - 1)) if se > 0 else (0.0 if m != 0 else 1.0)
    return {"n": n, "mean": m, "sd": sd, "ci_lo": m - h, "ci_hi": m + h, "p": p}


def _delta(metric, x, x0):
    if metric == "test_error":
        return 100.0 * (x - x0)  # percentage points
    return math.log(x / x0) if x > 0 and x0 > 0 else float("nan")


def analyse(rows: list[dict], cfg: StudyConfig) -> dict:
    """Paired differences vs σ = 0: per-schedule cells and schedule-pooled primary comparisons."""
    base = {(r["task"], r["optimizer"], r["schedule"], r["seed"]): r for r in rows if r["sigma_rel"] == 0}
    groups = sorted({(r["task"], r["optimizer"], r["mode"], r["sigma_rel"]) for r in rows if r["sigma_rel"] > 0},
                    key=lambda k: (TASKS.index(k[0]), OPTIMIZERS.index(k[1]), MODES.index(k[2]), k[3]))
    cells, pooled = [], []
    for metric in METRICS:
        for (task, o, mode, s) in groups:
            per_seed = {}
            for sc in cfg.schedules:
                ds = []
                for r in rows:
                    if (r["task"], r["optimizer"], r["mode"], r["sigma_rel"], r["schedule"]) != (task, o, mode, s, sc):
                        continue
                    b = base.get((task, o, sc, r["seed"]))
                    if b is not None:
                        dv = _delta(metric, r[metric], b[metric])
                        if not math.isfinite(dv):  # a diverged run has no Hessian: the pair is dropped
                            continue
                        ds.append(dv)
                        per_seed.setdefault(r["seed"], []).append(dv)
                if not ds:
                    continue
                b0 = np.array([base[(task, o, sc, sd)][metric] for sd in cfg.seeds if (task, o, sc, sd) in base])
                cells.append({"metric": metric, "task": task, "optimizer": o, "mode": mode, "sigma_rel": s,
                              "schedule": sc, "baseline_mean": float(np.nanmean(b0)), **paired(np.array(ds))})
            # a seed enters the pooled comparison only with all its schedules (none diverged)
            pooled_d = np.array([np.mean(v) for v in per_seed.values() if len(v) == len(cfg.schedules)])
            n_div = sum(r["diverged"] for r in rows if (r["task"], r["optimizer"], r["mode"], r["sigma_rel"])
                        == (task, o, mode, s))
            b0 = np.array([r[metric] for r in rows if r["sigma_rel"] == 0 and r["task"] == task and r["optimizer"] == o])
            pooled.append({"metric": metric, "task": task, "optimizer": o, "mode": mode, "sigma_rel": s,
                           "schedule": "pooled", "baseline_mean": float(np.nanmean(b0)), "n_diverged": n_div,
                           **paired(pooled_d)})
    for table in (cells, pooled):
        for metric in METRICS:
            fam = [c for c in table if c["metric"] == metric]
            ok = [c for c in fam if np.isfinite(c["p"])]
            adj = holm([c["p"] for c in ok]) if ok else []
            for c, a in zip(ok, adj):
                c["p_holm"] = float(a)
            for c in fam:
                c.setdefault("p_holm", float("nan"))
                c["family_size"] = len(ok)
                c["mde"] = mde(c["sd"], c["n"], cfg.alpha / max(len(ok), 1))
                _verdict(c, cfg.alpha)
    # the lead: scalar LEAP lowers λ_max under SGD + momentum, its own family
    lead = [dict(c) for c in pooled if c["metric"] == "lambda_max" and c["optimizer"] == "momentum"
            and c["mode"] == "scalar"]
    ok = [c for c in lead if np.isfinite(c["p"])]
    for c, a in zip(ok, holm([c["p"] for c in ok]) if ok else []):
        c["p_holm"] = float(a)
    for c in lead:
        c["family_size"] = len(ok)
        c["mde"] = mde(c["sd"], c["n"], cfg.alpha / max(len(ok), 1))
        _verdict(c, cfg.alpha)
    return {"cells": cells, "pooled": pooled, "lead": lead}


def _verdict(c: dict, alpha: float) -> None:
    sign = CLAIM_SIGN[c["metric"]]
    if not np.isfinite(c.get("p_holm", float("nan"))) or c["p_holm"] >= alpha:
        c["verdict"] = "undetectable"
    else:
        c["verdict"] = "confirmed" if np.sign(c["mean"]) == sign else "refuted"
    c["relative"] = (math.expm1(c["mean"]) if c["metric"] != "test_error"
                     else c["mean"] / (100.0 * c["baseline_mean"]) if c["baseline_mean"] > 0 else float("nan"))
    c["mde_relative"] = (math.expm1(c["mde"]) if c["metric"] != "test_error"
                         else c["mde"] / (100.0 * c["baseline_mean"]) if c["baseline_mean"] > 0 else float("nan"))


def claim_verdicts(res: dict) -> dict:
    """One line per claim, from the primary (schedule-pooled) comparisons."""
    out = {}

    def summarise(cs):
        k = {v: sum(c["verdict"] == v for c in cs) for v in ("confirmed", "refuted", "undetectable")}
        if k["confirmed"] and not k["refuted"]:
            word = "confirmed"
        elif k["refuted"] and not k["confirmed"]:
            word = "refuted"
        elif k["refuted"] and k["confirmed"]:
            word = "mixed"
        else:
            word = "undetectable"
        return {"verdict": word, **{f"n_{v}": n for v, n in k.items()}, "n_comparisons": len(cs),
                "where_confirmed": [_label(c) for c in cs if c["verdict"] == "confirmed"],
                "where_refuted": [_label(c) for c in cs if c["verdict"] == "refuted"],
                "median_mde_relative": float(np.nanmedian([c["mde_relative"] for c in cs])) if cs else float("nan")}

    P = res["pooled"]
    out["LEAP lowers lambda_max"] = summarise([c for c in P if c["metric"] == "lambda_max"])
    out["LEAP lowers the Hessian trace"] = summarise([c for c in P if c["metric"] == "trace"])
    out["LEAP improves (lowers) test error"] = summarise([c for c in P if c["metric"] == "test_error"])
    out["scalar LEAP lowers lambda_max under SGD+momentum (the lead)"] = summarise(res["lead"])
    return out


def _label(c):
    return f"{c['task']}/{c['optimizer']}/{c['mode']}/σ={c['sigma_rel']:g}"


# ---------------------------------------------------------------------------------------------------
# simulator (item 5)
def simulate_preference(cfg: StudyConfig, optimizers, u4: dict, quick=False) -> list[dict]:
    """ln(τ_flat/τ_sharp) on a SharpFlatWell under SGD-like noise, with the optimizers of the study.

    Momentum: η = 0.01, μ = 0.9 (effective step η/(1−μ) = 0.1); AdamW: η = 0.1 with the decoupled decay
    matched per step to training's (η·λ_wd = 2e-3·1e-2 = 2e-5, so λ_wd = 2e-4).  LEAP σ relative to η.
    ``u4``: per optimizer, the median Σu_i⁴ of the trained networks' top eigenvectors (per-coordinate LEAP
    seen along a delocalised u has σ_eff = σ·(Σu_i⁴)^{1/2}).
    """
    import leap_sde as ls

    land = ls.SharpFlatWell(curv_flat=1.0, curv_sharp=4.0, barrier_flat=0.25, barrier_sharp=0.25, curv_saddle=2.0)
    noise = ls.HessianNoise(1.0, floor=1e-3)
    setups = {"momentum": (0.01, ls.SGD(momentum=0.9)), "adamw": (0.1, ls.AdamW(weight_decay=2e-4))}
    n = 200 if quick else cfg.sim_particles
    budget = 20_000 if quick else cfg.sim_budget
    ss = np.random.SeedSequence(cfg.sim_seed)
    out = []

    def log_ratio(eta, opt, leap, seeds):
        vals = []
        for side, sd in zip((0, 1), seeds):
            x0 = land.minima[side].x
            res = ls.simulate(land, x0, eta=eta, noise=noise, leap=leap, optimizer=opt,
                              exit=ls.Threshold(0.0, direction=1 if side == 0 else -1), n_particles=n,
                              max_steps=budget, seed=sd)
            r = res.rate()
            vals.append((math.log(r.mean), 1.0 / math.sqrt(max(res.n_escaped, 1)), res.n_escaped))
        (lf, sf, ef), (lsh, ssh, esh) = vals
        return lf - lsh, math.hypot(sf, ssh), min(ef, esh)

    for o in optimizers:
        eta, opt = setups[o]
        seeds = ss.spawn(2)  # common random numbers: every variant of this optimizer uses the same streams
        variants = [("none", 0.0, 0.0)]
        for s in cfg.sigmas:
            variants += [("per-coordinate", s, s), ("scalar", s, s),
                         ("per-coordinate, delocalised u", s, s * math.sqrt(u4.get(o, 1.0)))]
        base = None
        for mode, s, s_eff in variants:
            leap = None if s_eff == 0 else ls.LEAP(s_eff, mode="scalar" if mode == "scalar" else "per-coordinate",
                                                    relative=True)
            lr, se, n_esc = log_ratio(eta, opt, leap, seeds)
            row = {"optimizer": o, "sim_eta": eta, "mode": mode, "sigma_rel": s, "sigma_eff": s_eff,
                   "log_ratio": lr, "log_ratio_se": se, "min_escaped": n_esc, "particles": n}
            if base is None:
                base = row
            row["change_vs_no_leap"] = lr - base["log_ratio"]
            row["change_se"] = math.hypot(se, base["log_ratio_se"]) if row is not base else 0.0
            out.append(row)
    return out


def _bisect_log(f, lo, hi, iters=40):
    """Root of an increasing f on [lo, hi] by bisection in log h (nan if no sign change)."""
    if not (f(lo) < 0 < f(hi)):
        return float("nan")
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return math.sqrt(lo * hi)


def momentum_thresholds(rows: list[dict], cfg: StudyConfig, eta=0.05, mu=0.9) -> list[dict]:
    """Largest stable curvature of the heavy ball (η = 0.05, μ = 0.9, training's) under scalar LEAP, next to the
    λ_max that training reached at the constant rate.

    Linearised along a Hessian eigendirection of curvature h, heavy ball + LEAP is the random recursion
    (θ, b) ← (M₀ + ε M₁)(θ, b) (docs/theory.md §9.1).  Mean-square threshold h_ms: spectral radius of
    E[A⊗A] = 1 (``theory.momentum_mean_square_radius``); almost-sure threshold h_as: top Lyapunov exponent = 0
    (``theory.momentum_lyapunov_exponent``, Monte Carlo, ``cfg.lyapunov_steps`` steps, bisection in log h).
    Per-coordinate LEAP along a delocalised eigenvector acts like σ_eff = σ (Σu_i⁴)^{1/2}.
    """
    from leap_sde import theory as th

    out, cache = [], {}
    for task in cfg.tasks:
        if "momentum" not in (cfg.lead_task_optimizers if task == "digits" else cfg.optimizers):
            continue
        sel = [r for r in rows if r["task"] == task and r["optimizer"] == "momentum" and r["schedule"] == "constant"]
        if not sel:
            continue
        base = np.array([r["lambda_max"] for r in sel if r["sigma_rel"] == 0])
        for mode in cfg.modes:
            for sg in cfg.sigmas:
                rs = [r for r in sel if r["sigma_rel"] == sg and r["mode"] == mode]
                lam = np.array([r["lambda_max"] for r in rs], dtype=float)
                u4 = float(np.nanmedian([r["u4"] for r in rs])) if rs else float("nan")
                s_eff = sg if mode == "scalar" else sg * math.sqrt(u4)
                h_ms = _bisect_log(lambda h: th.momentum_mean_square_radius(h, eta, mu, s_eff, relative=True) - 1,
                                   1e-3, 1e4)
                if s_eff not in cache:
                    cache[s_eff] = _bisect_log(
                        lambda h: th.momentum_lyapunov_exponent(h, eta, mu, s_eff, relative=True,
                                                                n_steps=cfg.lyapunov_steps, seed=5)[0],
                        1e-2, 1e4, iters=16 if cfg.lyapunov_steps >= 20_000 else 6)
                h_as = cache[s_eff]
                fin = lam[np.isfinite(lam)]
                out.append({"task": task, "mode": mode, "sigma_rel": sg, "sigma_eff": s_eff,
                            "lambda_max_no_leap_mean": float(np.nanmean(base)),
                            "lambda_max_mean": float(fin.mean()) if fin.size else float("nan"),
                            "lambda_max_min": float(fin.min()) if fin.size else float("nan"),
                            "lambda_max_max": float(fin.max()) if fin.size else float("nan"),
                            "n": int(fin.size), "n_diverged": int(sum(r["diverged"] for r in rs)),
                            "h_mean_square": h_ms, "h_almost_sure": h_as,
                            "h_no_leap": th.heavy_ball_stability_threshold(eta, mu)})
    return out


def lr_control(rows: list[dict], cfg: StudyConfig) -> list[dict]:
    """Is scalar LEAP just a larger learning rate?  σ = 0 runs at lr·(1 + σ²) (the same E η̃² as scalar LEAP at
    σ·lr: η̃ = η(1 + σz)), SGD + momentum, constant rate, same seeds, inits and batch orders; paired Δ vs the
    baseline next to scalar LEAP's Δ (constant schedule only)."""
    out = []
    base = {(r["task"], r["seed"]): r for r in rows if r["optimizer"] == "momentum" and r["schedule"] == "constant"
            and r["sigma_rel"] == 0}
    for task in cfg.tasks:
        data = load_task(task, cfg)
        for sg in cfg.sigmas:
            f = 1.0 + sg * sg
            runs = [train_one(task, data, "momentum", "constant", 0.0, "per-coordinate", seed, cfg, lr_factor=f)
                    for seed in cfg.seeds]
            leap = {r["seed"]: r for r in rows if (r["task"], r["optimizer"], r["schedule"], r["mode"], r["sigma_rel"])
                    == (task, "momentum", "constant", "scalar", sg)}
            row = {"task": task, "sigma_rel": sg, "lr_factor": f, "n_diverged": sum(r["diverged"] for r in runs)}
            for metric in ("lambda_max", "test_error"):
                dc = [_delta(metric, r[metric], base[(task, r["seed"])][metric]) for r in runs]
                dl = [_delta(metric, leap[sd][metric], base[(task, sd)][metric]) for sd in cfg.seeds if sd in leap]
                dc, dl = np.array([v for v in dc if math.isfinite(v)]), np.array([v for v in dl if math.isfinite(v)])
                for tag, d in (("lr_control", dc), ("scalar_leap", dl)):
                    pr = paired(d) if len(d) else {"mean": float("nan"), "ci_lo": float("nan"), "ci_hi": float("nan")}
                    row.update({f"{tag}_{metric}_{k}": pr[k] for k in ("mean", "ci_lo", "ci_hi")})
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------------------
# output
def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    rt.write_csv(tmp, rows)
    os.replace(tmp, path)


def _fmt_ci(c, scale=1.0, pct=False):
    if pct:  # relative effect from a log-ratio
        f = lambda v: 100.0 * math.expm1(v)  # noqa: E731
        return f"{f(c['mean']):+.1f} % [{f(c['ci_lo']):+.1f}, {f(c['ci_hi']):+.1f}]"
    return f"{c['mean'] * scale:+.2f} [{c['ci_lo'] * scale:+.2f}, {c['ci_hi'] * scale:+.2f}]"


def report_markdown(res: dict, verdicts: dict, sim: list[dict], cfg: StudyConfig, thresholds=(), control=()) -> str:
    """The tables of the README's study section (pooled comparisons, the lead, claims, simulator)."""
    L = []
    n = len(cfg.seeds)
    P = res["pooled"]
    groups = [(c["task"], c["optimizer"], c["mode"], c["sigma_rel"]) for c in P if c["metric"] == "lambda_max"]
    get = {(c["metric"], c["task"], c["optimizer"], c["mode"], c["sigma_rel"]): c for c in P}
    L.append(f"Primary comparisons (paired Δ vs σ = 0, per-seed mean over the {len(cfg.schedules)} schedules, "
             f"n = {n} seeds; 95 % t-CI; p after Holm within the metric's family of {len(groups)}; MDE = smallest "
             f"effect detected with 80 % power at α/{len(groups)}):")
    L.append("")
    L.append("| task | optimizer | mode | σ/lr | Δ test error (pp) | p_Holm | MDE (pp) | Δ λ_max | p_Holm | MDE | "
             "Δ trace | p_Holm | MDE |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for g in groups:
        e, lm, tr = (get[(m, *g)] for m in METRICS)
        L.append(f"| {g[0]} | {g[1]} | {g[2]} | {g[3]:g} | {_fmt_ci(e)} | {e['p_holm']:.3g} | {e['mde']:.2f} | "
                 f"{_fmt_ci(lm, pct=True)} | {lm['p_holm']:.3g} | {100 * math.expm1(lm['mde']):.1f} % | "
                 f"{_fmt_ci(tr, pct=True)} | {tr['p_holm']:.3g} | {100 * math.expm1(tr['mde']):.1f} % |")
    L.append("")
    L.append(f"The scalar-mode lead (λ_max, SGD + momentum; its own Holm family of {len(res['lead'])}):")
    L.append("")
    L.append("| task | σ/lr | Δ λ_max [95 % CI] | p (raw) | p_Holm | MDE | verdict |")
    L.append("|---|---|---|---|---|---|---|")
    for c in res["lead"]:
        L.append(f"| {c['task']} | {c['sigma_rel']:g} | {_fmt_ci(c, pct=True)} | {c['p']:.2g} | {c['p_holm']:.2g} | "
                 f"{100 * math.expm1(c['mde']):.1f} % | {c['verdict']} |")
    L.append("")
    L.append("| claim | verdict | confirmed / refuted / undetectable | median MDE (relative) |")
    L.append("|---|---|---|---|")
    for claim, v in verdicts.items():
        L.append(f"| {claim} | **{v['verdict']}** | {v['n_confirmed']} / {v['n_refuted']} / {v['n_undetectable']} | "
                 f"{100 * v['median_mde_relative']:.1f} % |")
    if sim:
        L.append("")
        L.append("Simulator (SharpFlatWell, h_sharp/h_flat = 4, SGD-like noise) next to training: change of "
                 "ln(τ_flat/τ_sharp) with LEAP (> 0: stronger flat preference), ± SE; training: pooled Δ λ_max "
                 "[95 % CI] per task (< 0: flatter).")
        L.append("")
        tasks = sorted({c["task"] for c in P}, key=TASKS.index)
        L.append("| optimizer | mode | σ/lr | σ_eff (sim) | sim Δ ln(τ_f/τ_s) | " + " | ".join(
            f"training Δ λ_max, {t}" for t in tasks) + " |")
        L.append("|---|---|---|---|---|" + "---|" * len(tasks))
        for r in sim:
            if r["mode"] == "none":
                L.append(f"| {r['optimizer']} | no LEAP | 0 | 0 | ln(τ_f/τ_s) = {r['log_ratio']:.2f} ± "
                         f"{r['log_ratio_se']:.2f} |" + " |" * len(tasks))
                continue
            tmode = "scalar" if r["mode"] == "scalar" else "per-coordinate"
            cols = []
            for t in tasks:
                c = get.get(("lambda_max", t, r["optimizer"], tmode, r["sigma_rel"]))
                cols.append(_fmt_ci(c, pct=True) if c else "–")
            L.append(f"| {r['optimizer']} | {r['mode']} | {r['sigma_rel']:g} | {r['sigma_eff']:.3g} | "
                     f"{r['change_vs_no_leap']:+.2f} ± {r['change_se']:.2f} | " + " | ".join(cols) + " |")
    if thresholds:
        L.append("")
        L.append("Heavy ball (η = 0.05, μ = 0.9) at the constant rate: λ_max reached by training (mean [min, max] over "
                 "seeds) against the largest stable curvature with LEAP — mean-square h_ms and almost-sure h_as "
                 f"(no LEAP: {thresholds[0]['h_no_leap']:.0f}); per-coordinate LEAP with σ_eff = σ(Σu_i⁴)^(1/2).")
        L.append("")
        L.append("| task | mode | σ/lr | σ_eff | λ_max no LEAP | λ_max with LEAP | h_ms | h_as | diverged |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for t in thresholds:
            L.append(f"| {t['task']} | {t['mode']} | {t['sigma_rel']:g} | {t['sigma_eff']:.3g} | "
                     f"{t['lambda_max_no_leap_mean']:.2f} | {t['lambda_max_mean']:.2f} [{t['lambda_max_min']:.2f}, "
                     f"{t['lambda_max_max']:.2f}] | {t['h_mean_square']:.3g} | {t['h_almost_sure']:.3g} | "
                     f"{t['n_diverged']} |")
    if control:
        L.append("")
        L.append("Learning-rate control (SGD + momentum, constant rate, paired with the same baseline runs): σ = 0 at "
                 "lr·(1 + σ²), the same E η̃² as scalar LEAP at σ·lr, against scalar LEAP itself.")
        L.append("")
        L.append("| task | σ/lr | lr factor | Δ λ_max, lr control | Δ λ_max, scalar LEAP | Δ test error (pp), lr control | "
                 "Δ test error (pp), scalar LEAP | control runs diverged |")
        L.append("|---|---|---|---|---|---|---|---|")
        for c in control:
            g = lambda tag, m: {k: c[f"{tag}_{m}_{k}"] for k in ("mean", "ci_lo", "ci_hi")}  # noqa: E731
            L.append(f"| {c['task']} | {c['sigma_rel']:g} | {c['lr_factor']:g} | "
                     f"{_fmt_ci(g('lr_control', 'lambda_max'), pct=True)} | {_fmt_ci(g('scalar_leap', 'lambda_max'), pct=True)} | "
                     f"{_fmt_ci(g('lr_control', 'test_error'))} | {_fmt_ci(g('scalar_leap', 'test_error'))} | "
                     f"{c['n_diverged']} |")
    return "\n".join(L) + "\n"


def read_runs(path: Path) -> list[dict]:
    import csv

    def conv(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    with open(path, newline="") as f:
        return [{k: conv(v) for k, v in r.items()} for r in csv.DictReader(f)]


def plot(res: dict, out: Path, cfg: StudyConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    P = res["pooled"]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5.2 * len(METRICS), 0.32 * len(P) / len(METRICS) + 1.8))
    for ax, metric in zip(axes, METRICS):
        cs = [c for c in P if c["metric"] == metric]
        y = np.arange(len(cs))[::-1]
        for yi, c in zip(y, cs):
            col = {"confirmed": "C2", "refuted": "C3", "undetectable": "0.3"}[c["verdict"]]
            ax.errorbar(c["mean"], yi, xerr=[[c["mean"] - c["ci_lo"]], [c["ci_hi"] - c["mean"]]], fmt="o",
                        color=col, ms=3, capsize=2)
            ax.plot([-c["mde"], c["mde"]], [yi, yi], "|", color="C1", ms=6)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(y, [_label(c) for c in cs], fontsize=6)
        ax.set_xlabel("Δ test error (pp)" if metric == "test_error" else f"ln({metric}_LEAP / {metric}_0)")
        ax.set_title(f"{metric}: paired Δ vs σ=0, 95% t-CI; orange ticks ±MDE", fontsize=8)
    fig.suptitle(f"LEAP effect pooled over schedules, n = {len(cfg.seeds)} seeds (green confirmed, red refuted at "
                 f"Holm α={cfg.alpha})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "study_effects.png", dpi=120)
    plt.close(fig)


def _json_safe(o):
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny design (seconds; used by the tests)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10)")
    ap.add_argument("--skip-sim", action="store_true", help="skip the simulator comparison")
    ap.add_argument("--control", action="store_true",
                    help="also run the learning-rate control (σ = 0 at lr·(1 + σ²), momentum, constant rate)")
    ap.add_argument("--reanalyse", action="store_true",
                    help="read OUT/runs.csv (from an earlier run of the same design) instead of training")
    ap.add_argument("--threads", type=int, default=1, help="torch/numba threads (default 1: shared machine)")
    args = ap.parse_args(argv)
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    cfg = StudyConfig()
    if args.quick:
        cfg = StudyConfig(tasks=("mnist1d", "teacher"), schedules=("constant",), sigmas=(1.0,), seeds=(0, 1, 2),
                          epochs={"mnist1d": 1, "teacher": 1, "digits": 1}, hutchinson=4, hessian_subset=300,
                          ts_train=400, ts_test=400, lanczos_tol=1e-2, lyapunov_steps=2000)
    if args.seeds:
        cfg = replace(cfg, seeds=tuple(range(args.seeds)))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.reanalyse:
        rows = read_runs(args.out / "runs.csv")
        t_train = float("nan")
    else:
        jobs = list(plan(cfg))
        data = {}
        from tqdm.auto import tqdm

        # finished runs are appended to a journal, so an interrupted study resumes where it stopped
        journal = args.out / "runs.partial.jsonl"
        done = {}
        if journal.exists() and not args.quick:
            for line in journal.read_text().splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption
                done[(r["task"], r["optimizer"], r["schedule"], r["sigma_rel"], r["mode_asked"], r["seed"])] = r
        rows = []
        with open(journal, "a" if not args.quick else "w") as jf:
            for job in tqdm(jobs, desc="study runs", unit="run", mininterval=10):
                task, o, sc, sigma, mode, seed = job
                if job in done:
                    rows.append(done[job])
                    continue
                if task not in data:
                    data[task] = load_task(task, cfg)
                r = {**train_one(task, data[task], o, sc, sigma, mode, seed, cfg), "mode_asked": mode}
                jf.write(json.dumps(r) + "\n")
                jf.flush()
                rows.append(r)
        rows = [{k: v for k, v in r.items() if k != "mode_asked"} for r in rows]
        t_train = time.time() - t0
        _atomic_csv(args.out / "runs.csv", rows)
        journal.unlink()
    res = analyse(rows, cfg)
    verdicts = claim_verdicts(res)
    sim = []
    if not args.skip_sim:
        u4 = {o: float(np.nanmedian([r["u4"] for r in rows if r["optimizer"] == o])) for o in cfg.optimizers}
        sim = simulate_preference(cfg, cfg.optimizers, u4, quick=args.quick)
        _atomic_csv(args.out / "simulator.csv", sim)
    control = lr_control(rows, cfg) if args.control else []
    if control:
        _atomic_csv(args.out / "lr_control.csv", control)
    thresholds = momentum_thresholds(rows, cfg)
    if thresholds:
        _atomic_csv(args.out / "stability.csv", thresholds)
    _atomic_csv(args.out / "pooled.csv", res["pooled"])
    _atomic_csv(args.out / "cells.csv", res["cells"])
    summary = {"config": asdict(cfg), "n_runs": len(rows), "train_wall_s": t_train, "wall_s": time.time() - t0,
               "run_seconds_sum": float(sum(r["total_s"] for r in rows)),  # training + Hessian, per run, summed
               "n_diverged": int(sum(r["diverged"] for r in rows)),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "statistics": "paired differences vs σ=0 (same seed and schedule); primary = per-seed mean over "
                             "schedules, two-sided t-interval/t-test, Holm within each metric's family; MDE at "
                             "80% power at α/m by the noncentral t",
               "verdicts": verdicts, "lead": res["lead"], "pooled": res["pooled"], "simulator": sim,
               "stability": thresholds, "lr_control": control}
    _atomic_write(args.out / "summary.json", json.dumps(_json_safe(summary), indent=2))
    plot(res, args.out, cfg)
    _atomic_write(args.out / "report.md", report_markdown(res, verdicts, sim, cfg, thresholds, control))
    print_report(res, verdicts, sim)
    print(f"{len(rows)} runs, {summary['wall_s']:.0f} s; results in {args.out}")
    return summary


def print_report(res, verdicts, sim):
    print(f"{'comparison (pooled over schedules)':44s} {'metric':10s} {'Δ mean':>8s} {'95% CI':>20s} {'p_Holm':>7s} "
          f"{'MDE':>7s}  verdict")
    for c in res["pooled"]:
        print(f"{_label(c):44s} {c['metric']:10s} {c['mean']:+8.4f} [{c['ci_lo']:+8.4f}, {c['ci_hi']:+8.4f}] "
              f"{c['p_holm']:7.3f} {c['mde']:7.4f}  {c['verdict']}")
    for claim, v in verdicts.items():
        print(f"{claim}: {v['verdict']} ({v['n_confirmed']} confirmed, {v['n_refuted']} refuted, "
              f"{v['n_undetectable']} undetectable of {v['n_comparisons']})")
    for r in sim:
        print(f"sim {r['optimizer']:8s} {r['mode']:30s} σ={r['sigma_rel']:g}: ln(τf/τs) {r['log_ratio']:+.3f} ± "
              f"{r['log_ratio_se']:.3f}, change {r['change_vs_no_leap']:+.3f} ± {r['change_se']:.3f}")


if __name__ == "__main__":
    main()
