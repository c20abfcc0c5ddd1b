"""Real training with the LEAP plug-in on scikit-learn's bundled digits, and escape on a real network.

Part 1 — grid.  An MLP (64-64-64-10, tanh) and a small CNN (two 3×3 conv + max-pool blocks, 1.9 k
parameters) trained on the 8×8 digits (1 797 images shipped inside scikit-learn: no download; fixed
stratified 1 297 / 500 split) with SGD, SGD+momentum and Adam × {constant, step, cosine, cosine with
warm restarts} × {no LEAP, per-coordinate LEAP with σ relative to the scheduled lr} × seeds.  After
training: test error, full-training-set loss, top Hessian eigenvalue (Lanczos on HVPs) and Hessian
trace (Hutchinson, with its standard error), all in eval mode.  Written: ``grid_runs.csv`` (one row per
run), ``grid_summary.csv/.json`` (mean ± std over seeds), ``grid_test_error.png``, ``grid_sharpness.png``.

Part 2 — escape on a real network (float64, MLP 64-32-10 tanh, cross-entropy + L2 1e-3).
1. Sharp minimum θ*: full-batch GD with a small learning rate, polished with L-BFGS (‖∇L‖ ≲ 1e-6).
2. Local quantities at θ*: top Hessian eigenpair (λ, u); per-sample gradient variance along u (JVP), so
   the minibatch (size B, drawn with replacement) noise variance along u is s_B² = Var_i(u·∇ℓ_i)/B; the
   loss profile P(α) = L(θ* + α u) − L(θ*); m = E_B[Σ_i u_i² g_{B,i}²] (the variance per unit σ² of
   the per-coordinate LEAP displacement projected on u, divided by η²).
3. **Exit criterion (documented):** the run has left the sharp basin when its projection
   α_k = ⟨θ_k − θ*, u⟩ leaves [−α_L, α_R], where α_L, α_R are where P first reaches ΔU on each side;
   ΔU = ``--escape-level`` × T_eff, with T_eff = λ·η s_B²/(λ(2 − ηλ)) the stationary loss-scale
   fluctuation of the discrete OU process along u.  If P has a maximum (a true barrier) before ΔU, the
   barrier's location is used instead and reported.
4. Observed: R independent SGD runs (plain SGD, batch B, lr η) from θ*, with and without LEAP, held
   as replicas in one batched parameter tensor (so one ``LEAP`` call perturbs every element of every
   replica independently), steps until the criterion fires.
5. Predicted: ``leap_sde.simulate`` of the 1-D projected dynamics α_{k+1} = α_k − η (P'(α_k) + ξ_k),
   ξ ~ N(0, s_B² + σ_rel² m) (LEAP's projected displacement noise), with (a) the quadratic P = λα²/2
   and (b) a polynomial fit of the measured profile, exit at the same [−α_L, α_R].

    python simulations/real_training.py                # the committed run (≲ 15 min on 2 cores)
    python simulations/real_training.py --quick        # seconds (used by the tests)
    python simulations/real_training.py --device cuda
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import leap_sde.torch as lt

RESULTS = Path(__file__).resolve().parent / "results" / "real_training"
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "step", "cosine", "warm_restarts")
MODELS = ("mlp", "cnn")


# ---------------------------------------------------------------------------------------------------
# data and models
def load_digits_split(device, dtype=torch.float32, n_test=500, seed=0):
    """Digits scaled to [0, 1]; stratified split with a fixed seed. Returns Xtr, ytr, Xte, yte."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=n_test, random_state=seed,
                                          stratify=d.target)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    return t(Xtr, dtype), t(ytr, torch.long), t(Xte, dtype), t(yte, torch.long)


class CNN(nn.Module):
    """1×8×8 → conv3(8) → ReLU → pool → conv3(16) → ReLU → pool → linear(64 → 10)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):  # x (B, 64)
        x = x.view(-1, 1, 8, 8)
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)  # (B, 8, 4, 4)
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)  # (B, 16, 2, 2)
        return self.fc(x.flatten(1))


def make_model(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    if kind == "cnn":
        return CNN()
    raise ValueError(f"model must be one of {MODELS}, got {kind!r}")


def make_optimizer(name: str, params):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=2e-3)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_schedule(name: str, opt, total: int):
    """Stepped once per iteration; ``total`` iterations in all."""
    S = torch.optim.lr_scheduler
    if name == "constant":
        return S.LambdaLR(opt, lambda k: 1.0)
    if name == "step":
        return S.StepLR(opt, step_size=max(1, total // 3), gamma=0.1)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=total)
    if name == "warm_restarts":
        return S.CosineAnnealingWarmRestarts(opt, T_0=max(1, total // 4))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")


# ---------------------------------------------------------------------------------------------------
# part 1: grid
@dataclass(frozen=True)
class GridConfig:
    models: tuple = MODELS
    optimizers: tuple = OPTIMIZERS
    schedules: tuple = SCHEDULES
    sigmas: tuple = (0.0, 1.0, 3.0)  # relative σ (× current lr), per-coordinate; 0 = no LEAP
    seeds: tuple = (0, 1, 2)
    epochs: int = 12
    batch: int = 32
    hutchinson: int = 20


def train_one(model_kind, opt_name, sched_name, sigma, seed, data, cfg: GridConfig, device) -> dict:
    Xtr, ytr, Xte, yte = data
    torch.manual_seed(seed)  # weight init of this run
    model = make_model(model_kind).to(device)
    inner = make_optimizer(opt_name, model.parameters())
    opt = lt.LEAP(inner, sigma=sigma, relative=True, seed=seed) if sigma > 0 else inner
    n = len(Xtr)
    steps_per_epoch = n // cfg.batch
    total = steps_per_epoch * cfg.epochs
    sched = make_schedule(sched_name, opt, total)
    gen = torch.Generator(device="cpu").manual_seed(10_000 + seed)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch:(b + 1) * cfg.batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
    closure = lambda: nn.functional.cross_entropy(model(Xtr), ytr)  # noqa: E731
    with torch.no_grad():
        model.eval()
        test_err = float((model(Xte).argmax(1) != yte).float().mean())
        train_err = float((model(Xtr).argmax(1) != ytr).float().mean())
        train_loss = float(closure())
    eig = lt.hessian_eigenvalues(model, closure, k=1, tol=1e-3, seed=seed)
    tr = lt.hessian_trace(model, closure, n_samples=cfg.hutchinson, seed=seed)
    return {"model": model_kind, "optimizer": opt_name, "schedule": sched_name, "sigma_rel": sigma, "seed": seed,
            "test_error": test_err, "train_error": train_err, "train_loss": train_loss,
            "lambda_max": float(eig.eigenvalues[0]), "trace": tr.trace, "trace_stderr": tr.stderr,
            "n_params": sum(p.numel() for p in model.parameters()), "steps": total}


def summarise(rows: list[dict]) -> list[dict]:
    keys = sorted({(r["model"], r["optimizer"], r["schedule"], r["sigma_rel"]) for r in rows},
                  key=lambda k: (MODELS.index(k[0]), OPTIMIZERS.index(k[1]), SCHEDULES.index(k[2]), k[3]))
    out = []
    for k in keys:
        rs = [r for r in rows if (r["model"], r["optimizer"], r["schedule"], r["sigma_rel"]) == k]
        s = {"model": k[0], "optimizer": k[1], "schedule": k[2], "sigma_rel": k[3], "n_seeds": len(rs)}
        for m in ("test_error", "train_loss", "lambda_max", "trace"):
            v = np.array([r[m] for r in rs])
            s[f"{m}_mean"] = float(v.mean())
            s[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        # paired with the no-LEAP run of the same seed (same init, same batch order): LEAP's own effect
        base = {r["seed"]: r for r in rows if (r["model"], r["optimizer"], r["schedule"], r["sigma_rel"])
                == (k[0], k[1], k[2], 0.0)}
        for m in ("test_error", "lambda_max"):
            d = np.array([r[m] - base[r["seed"]][m] for r in rs if r["seed"] in base])
            s[f"{m}_paired_diff"] = float(d.mean()) if len(d) else float("nan")
            s[f"{m}_paired_sem"] = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        out.append(s)
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def plot_grid(summary: list[dict], out: Path, cfg: GridConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for metric, fname, label in (("test_error", "grid_test_error.png", "test error"),
                                 ("lambda_max", "grid_sharpness.png", "top Hessian eigenvalue λ_max"),
                                 ("trace", "grid_trace.png", "Hessian trace (Hutchinson)")):
        fig, axes = plt.subplots(len(cfg.models), len(cfg.optimizers),
                                 figsize=(4.2 * len(cfg.optimizers), 3.2 * len(cfg.models)), squeeze=False)
        width = 0.8 / len(cfg.sigmas)
        for i, mk in enumerate(cfg.models):
            for j, on in enumerate(cfg.optimizers):
                ax = axes[i, j]
                for si, s in enumerate(cfg.sigmas):
                    vals = [next((r for r in summary if (r["model"], r["optimizer"], r["schedule"], r["sigma_rel"])
                                  == (mk, on, sc, s)), None) for sc in cfg.schedules]
                    x = np.arange(len(cfg.schedules)) + (si - (len(cfg.sigmas) - 1) / 2) * width
                    ax.bar(x, [v[f"{metric}_mean"] if v else np.nan for v in vals], width,
                           yerr=[v[f"{metric}_std"] if v else 0 for v in vals], capsize=2,
                           label="no LEAP" if s == 0 else f"LEAP σ={s:g}·lr")
                ax.set_xticks(np.arange(len(cfg.schedules)))
                ax.set_xticklabels(cfg.schedules, fontsize=8)
                ax.set_title(f"{mk} / {on}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(label)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"digits: {label}, mean ± std over {len(cfg.seeds)} seeds")
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)


def run_grid(cfg: GridConfig, device, out: Path) -> list[dict]:
    data = load_digits_split(device)
    combos = [(m, o, s, sg, seed) for m in cfg.models for o in cfg.optimizers for s in cfg.schedules
              for sg in cfg.sigmas for seed in cfg.seeds]
    rows = []
    for c in tqdm(combos, desc="grid runs", unit="run"):
        rows.append(train_one(*c, data, cfg, device))
    summary = summarise(rows)
    write_csv(out / "grid_runs.csv", rows)
    write_csv(out / "grid_summary.csv", summary)
    (out / "grid_summary.json").write_text(json.dumps({"config": asdict(cfg), "summary": summary}, indent=2))
    plot_grid(summary, out, cfg)
    return summary


# ---------------------------------------------------------------------------------------------------
# part 2: escape on a real network
@dataclass(frozen=True)
class EscapeConfig:
    hidden: int = 32
    weight_decay: float = 1e-3
    gd_lr: float = 0.1
    gd_steps: int = 1500
    lbfgs_rounds: int = 10
    eta: float = 0.6  # SGD learning rate of the escape runs
    batch: int = 32
    sigmas: tuple = (0.0, 1.0, 2.0)  # relative σ of the per-coordinate LEAP
    replicas: int = 512
    max_steps: int = 3000
    escape_level: float = 8.0  # ΔU / T_eff
    calib_steps: int = 200
    calib_burn_in: int = 20
    n_noise_batches: int = 400
    sim_particles: int = 5000
    seed: int = 0


class BatchedMLP(nn.Module):
    """R independent copies of Linear(d, h) → tanh → Linear(h, 10), parameters stacked on dim 0.

    Parameter layout per replica = ``nn.Sequential(Linear, Tanh, Linear)``'s (weight1 (h, d), bias1 (h,),
    weight2 (10, h), bias2 (10,)), so a flat direction of the single model applies to each replica.
    """

    def __init__(self, template: nn.Sequential, R: int):
        super().__init__()
        self.ps = nn.ParameterList([nn.Parameter(p.detach().unsqueeze(0).repeat(R, *([1] * p.dim())).clone())
                                    for p in template.parameters()])

    def forward(self, x):  # x (R, B, d) -> logits (R, B, 10)
        w1, b1, w2, b2 = self.ps
        h = torch.tanh(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
        return torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2))


def _l2(params):
    return sum((p * p).sum() for p in params)


def find_sharp_minimum(cfg: EscapeConfig, Xtr, ytr):
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(nn.Linear(64, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, 10)).double()
    params = list(model.parameters())
    loss_fn = lambda: nn.functional.cross_entropy(model(Xtr), ytr) + 0.5 * cfg.weight_decay * _l2(params)  # noqa
    gd = torch.optim.SGD(params, lr=cfg.gd_lr)
    for _ in tqdm(range(cfg.gd_steps), desc="full-batch GD", unit="step", leave=False):
        gd.zero_grad()
        loss_fn().backward()
        gd.step()
    lb = torch.optim.LBFGS(params, lr=1.0, max_iter=100, tolerance_grad=1e-11, tolerance_change=1e-15,
                           history_size=30, line_search_fn="strong_wolfe")

    def closure():
        lb.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    def grad_norm():
        g = torch.autograd.grad(loss_fn(), params)
        return float(torch.cat([x.reshape(-1) for x in g]).norm())

    for _ in range(cfg.lbfgs_rounds):  # polish to a critical point: ‖∇L‖ ≤ 1e-7 or the budget
        if grad_norm() < 1e-7:
            break
        lb.step(closure)
    return model, loss_fn, grad_norm()


def _first_crossing(alphas, P, level):
    """First α > 0 on the grid where P reaches ``level`` or has a local maximum (barrier)."""
    for j in range(1, len(alphas)):
        if P[j] >= level:
            a0, a1, p0, p1 = alphas[j - 1], alphas[j], P[j - 1], P[j]
            return a0 + (level - p0) * (a1 - a0) / (p1 - p0), False
        if j + 1 < len(alphas) and P[j] > P[j - 1] and P[j] > P[j + 1]:
            return alphas[j], True
    return alphas[-1], False


def measure_local(cfg: EscapeConfig, model, loss_fn, Xtr, ytr) -> dict:
    params = list(model.parameters())
    eig = lt.hessian_eigenvalues(model, loss_fn, k=2, tol=1e-10, seed=cfg.seed)
    lam, u = float(eig.eigenvalues[0]), eig.eigenvectors[0]
    tr = lt.hessian_trace(model, loss_fn, n_samples=100, seed=cfg.seed)
    wd = cfg.weight_decay

    def per_sample(out, t):  # per-sample loss incl. the L2 term (its gradient is the same for every sample)
        return nn.functional.cross_entropy(out, t, reduction="none")

    nz = lt.gradient_noise_along(model, per_sample, Xtr, ytr, u, batch_size=cfg.batch)
    s2_sample = float(nz.per_sample_var[0])  # the L2 term adds no variance
    s2_B = s2_sample / cfg.batch  # minibatches drawn with replacement
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    m_vals = []
    for _ in range(cfg.n_noise_batches):
        idx = torch.randint(0, len(Xtr), (cfg.batch,), generator=gen)
        loss = nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]) + 0.5 * wd * _l2(params)
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)])
        m_vals.append(float((u * u * g * g).sum()))
    m = float(np.mean(m_vals))
    var_u = cfg.eta * s2_B / (lam * (2.0 - cfg.eta * lam))
    T_eff = lam * var_u
    level = cfg.escape_level * T_eff
    alphas_r = np.linspace(0.0, 10.0 * math.sqrt(2 * level / lam), 401)
    P_r = lt.loss_along_direction(model, loss_fn, u, alphas_r)
    P_l = lt.loss_along_direction(model, loss_fn, u, -alphas_r)
    L0 = P_r[0]
    a_R, bar_R = _first_crossing(alphas_r, P_r - L0, level)
    a_L, bar_L = _first_crossing(alphas_r, P_l - L0, level)
    prof_a = np.linspace(-1.5 * a_L, 1.5 * a_R, 121)
    prof = lt.loss_along_direction(model, loss_fn, u, prof_a) - L0
    return {"lambda_max": lam, "lambda_2": float(eig.eigenvalues[1]), "trace": tr.trace, "trace_stderr": tr.stderr,
            "loss": float(L0), "grad_norm": eig.grad_norm, "per_sample_var_u": s2_sample, "batch_var_u": s2_B,
            "leap_m": m, "participation_sum_u4": float((u ** 4).sum()), "T_eff": T_eff, "delta_U": level,
            "alpha_L": float(a_L), "alpha_R": float(a_R), "barrier_L": bar_L, "barrier_R": bar_R,
            "profile_alpha": prof_a.tolist(), "profile_loss": prof.tolist(), "u": u}


def _replica_runs(cfg: EscapeConfig, template, loc, Xtr, ytr, sigma, device, *, n_steps, seed_offset,
                  exit_on=True):
    """Run R replicas of SGD (± LEAP) from θ*; yields (k, α_{k−1}, α_k, alive) after every step k."""
    R = cfg.replicas
    bm = BatchedMLP(template, R).to(device)
    star = [p.detach().clone() for p in bm.ps]
    u_parts = [q.to(device) for q in torch.split(loc["u"], [p.numel() for p in template.parameters()])]
    u_parts = [q.view_as(p) for q, p in zip(u_parts, template.parameters())]
    inner = torch.optim.SGD(bm.parameters(), lr=cfg.eta)
    opt = lt.LEAP(inner, sigma=sigma, relative=True, seed=cfg.seed + 7 + seed_offset) if sigma > 0 else inner
    X, y = Xtr.to(device), ytr.to(device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 100 + int(100 * sigma) + seed_offset)
    alpha_prev = torch.zeros(R, dtype=X.dtype, device=device)
    for k in range(1, n_steps + 1):
        idx = torch.randint(0, len(X), (R, cfg.batch), generator=gen).to(device)
        logits = bm(X[idx])  # (R, B, 10)
        ce = nn.functional.cross_entropy(logits.reshape(-1, 10), y[idx].reshape(-1), reduction="none")
        loss = ce.view(R, cfg.batch).mean(1).sum() + 0.5 * cfg.weight_decay * _l2(bm.ps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            alpha = sum(((p - s) * q).flatten(1).sum(1) for p, s, q in zip(bm.ps, star, u_parts))  # (R,)
        yield k, alpha_prev, alpha
        alpha_prev = alpha


def observe_escapes(cfg: EscapeConfig, template, loc, Xtr, ytr, sigma, device) -> np.ndarray:
    """Steps until α_k = ⟨θ_k − θ*, u⟩ leaves [−α_L, α_R] for R replicas (max_steps + 1 = censored)."""
    steps = np.full(cfg.replicas, cfg.max_steps + 1, dtype=np.int64)
    alive = torch.ones(cfg.replicas, dtype=torch.bool, device=device)
    for k, _, alpha in _replica_runs(cfg, template, loc, Xtr, ytr, sigma, device, n_steps=cfg.max_steps,
                                     seed_offset=0):
        out = alive & ((alpha >= loc["alpha_R"]) | (alpha <= -loc["alpha_L"]))
        if bool(out.any()):
            steps[out.cpu().numpy()] = k
            alive &= ~out
            if not bool(alive.any()):
                break
    return steps


def calibrate_along_u(cfg: EscapeConfig, template, loc, Xtr, ytr, sigma, device) -> dict:
    """Effective 1-D dynamics along u felt by running SGD (± LEAP), without exit.

    Regress −Δα_k/η on α_{k−1} over replicas and steps k > burn-in: slope = λ_eff (restoring
    curvature), residual variance = s_eff² (all noise entering the α update, LEAP's included)."""
    A, D = [], []
    for k, a0, a1 in _replica_runs(cfg, template, loc, Xtr, ytr, sigma, device, n_steps=cfg.calib_steps,
                                   seed_offset=1_000_003):
        if k > cfg.calib_burn_in:
            A.append(a0.cpu().numpy())
            D.append((-(a1 - a0) / cfg.eta).cpu().numpy())
    A, D = np.concatenate(A), np.concatenate(D)
    slope, icpt = np.polyfit(A, D, 1)
    resid = D - (slope * A + icpt)
    return {"lambda_eff": float(slope), "drift_offset": float(icpt), "noise_var_eff": float(resid.var()),
            "var_alpha": float(A.var())}


def predict_escapes(cfg: EscapeConfig, loc, sigma, kind: str, calib: dict | None = None):
    """Simulator prediction of the exit steps: ``kind`` "quadratic" (λ_max) or "profile" (polynomial
    fit of the measured profile) with the noise at θ*, or "calibrated" (λ_eff, s_eff from ``calib``)."""
    import leap_sde as ls

    std = math.sqrt(loc["batch_var_u"] + sigma ** 2 * loc["leap_m"])
    a_L, a_R = loc["alpha_L"], loc["alpha_R"]
    if kind == "calibrated":
        std = math.sqrt(calib["noise_var_eff"])
        land = ls.Quadratic(np.array([[calib["lambda_eff"]]]))
    elif kind == "quadratic":
        land = ls.Quadratic(np.array([[loc["lambda_max"]]]))
    else:
        a = np.asarray(loc["profile_alpha"])
        P = np.asarray(loc["profile_loss"])
        c = np.polynomial.polynomial.polyfit(a, P, 6)
        c[0] = 0.0
        # a small positive x^8 term keeps the polynomial bounded below outside the fitted range
        scale = max(a_L, a_R) * 1.5
        c = np.concatenate([c, [0.0, 1e-3 * loc["delta_U"] / scale ** 8]])
        land = ls.Polynomial(tuple(float(v) for v in c))
    res = ls.simulate(land, [0.0], eta=cfg.eta, noise=ls.WhiteNoise(std),
                      exit=ls.LeaveBall(center=[(a_R - a_L) / 2], radius=(a_R + a_L) / 2),
                      n_particles=cfg.sim_particles, max_steps=cfg.max_steps, seed=cfg.seed)
    return res


def _mean_ci(steps: np.ndarray, max_steps: int):
    """Mean steps ± 95 % CI when nothing is censored; else the censored exponential MLE."""
    esc = steps <= max_steps
    if esc.all():
        m = float(steps.mean())
        h = 1.96 * float(steps.std(ddof=1)) / math.sqrt(len(steps))
        return m, (m - h, m + h), 0, "empirical"
    from leap_sde import exponential_rate

    r = exponential_rate(np.minimum(steps, max_steps), esc)
    return r.mean, tuple(r.mean_ci), int((~esc).sum()), "exponential MLE (censored)"


def run_escape(cfg: EscapeConfig, device, out: Path) -> dict:
    from scipy import stats

    Xtr, ytr, _, _ = load_digits_split("cpu", dtype=torch.float64)
    t0 = time.time()
    template, loss_fn, gnorm = find_sharp_minimum(cfg, Xtr, ytr)
    loc = measure_local(cfg, template, loss_fn, Xtr, ytr)
    loc["grad_norm_after_lbfgs"] = gnorm
    rows = []
    curves = {}
    for sigma in tqdm(cfg.sigmas, desc="escape runs", unit="config"):
        obs = observe_escapes(cfg, template.to(device), loc, Xtr, ytr, sigma, device)
        m_obs, ci_obs, cens_obs, how_obs = _mean_ci(obs, cfg.max_steps)
        row = {"sigma_rel": sigma, "observed_mean": m_obs, "observed_ci": ci_obs, "observed_censored": cens_obs,
               "observed_estimator": how_obs, "replicas": cfg.replicas}
        curves[sigma] = {"observed": obs}
        calib = calibrate_along_u(cfg, template.to(device), loc, Xtr, ytr, sigma, device)
        row.update({f"calib_{k}": v for k, v in calib.items()})
        for kind in ("quadratic", "profile", "calibrated"):
            res = predict_escapes(cfg, loc, sigma, kind, calib)
            st = np.where(res.escaped, res.steps, cfg.max_steps + 1)
            m_p, ci_p, cens_p, _ = _mean_ci(st, cfg.max_steps)
            row[f"pred_{kind}_mean"] = m_p
            row[f"pred_{kind}_ci"] = ci_p
            row[f"pred_{kind}_censored"] = cens_p
            row[f"ratio_obs_over_{kind}"] = m_obs / m_p
            row[f"ks_p_{kind}"] = float(stats.ks_2samp(obs[obs <= cfg.max_steps], st[st <= cfg.max_steps]).pvalue)
            curves[sigma][kind] = st
        rows.append(row)
    loc_out = {k: v for k, v in loc.items() if k != "u"}
    result = {"config": asdict(cfg), "local": loc_out, "table": rows, "wall_s": time.time() - t0}
    (out / "escape.json").write_text(json.dumps(result, indent=2))
    flat = []
    for r in rows:
        fr = {}
        for k, v in r.items():
            if isinstance(v, tuple):
                fr[k + "_lo"], fr[k + "_hi"] = v
            else:
                fr[k] = v
        flat.append(fr)
    write_csv(out / "escape_table.csv", flat)
    np.savez_compressed(out / "escape_steps.npz", **{f"sigma{s:g}_{k}": v for s, c in curves.items()
                                                      for k, v in c.items()})  # max_steps + 1 = censored
    plot_escape(curves, loc_out, cfg, out)
    return result


def plot_escape(curves, loc, cfg: EscapeConfig, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for i, (sigma, c) in enumerate(curves.items()):
        col = f"C{i}"
        for kind, ls_, lab in (("observed", "-", "observed"), ("quadratic", ":", "sim. quadratic"),
                               ("profile", "--", "sim. profile"), ("calibrated", "-.", "sim. calibrated")):
            grid = np.arange(cfg.max_steps + 1)
            surv = 1.0 - np.searchsorted(np.sort(c[kind]), grid, side="right") / len(c[kind])  # P(T > t)
            ax.step(grid, surv, ls_, color=col, where="post",  # censored runs: curve ends at max_steps
                    label=f"{'no LEAP' if sigma == 0 else f'LEAP σ={sigma:g}·lr'}: {lab}")
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1)
    ax.set_xlabel("SGD steps")
    ax.set_ylabel("P(still inside)")
    ax.set_title("escape from the sharp direction: observed vs simulator")
    ax.legend(fontsize=6)
    ax = axes[1]
    a, P = np.asarray(loc["profile_alpha"]), np.asarray(loc["profile_loss"])
    ax.plot(a, P, label="measured L(θ*+αu) − L(θ*)")
    ax.plot(a, 0.5 * loc["lambda_max"] * a ** 2, ":", label="λ_max α²/2")
    ax.axhline(loc["delta_U"], color="k", lw=0.5)
    ax.axvline(-loc["alpha_L"], color="k", lw=0.5, ls="--")
    ax.axvline(loc["alpha_R"], color="k", lw=0.5, ls="--", label="exit [−α_L, α_R]")
    ax.set_xlabel("α")
    ax.legend(fontsize=7)
    ax.set_title(f"profile along the top eigenvector (λ_max = {loc['lambda_max']:.3g})")
    fig.tight_layout()
    fig.savefig(out / "escape_survival.png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny grid and escape run (seconds)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds of the grid")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--sigmas", type=float, nargs="+", default=None, help="relative σ grid (0 = no LEAP)")
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument("--skip-escape", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/numba CPU threads (default 1: these models are tiny, intra-op threads cost more "
                         "than they gain, and the machine is shared)")
    args = ap.parse_args(argv)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    args.out.mkdir(parents=True, exist_ok=True)
    gcfg = GridConfig()
    ecfg = EscapeConfig()
    if args.quick:
        gcfg = GridConfig(optimizers=("sgd",), schedules=("constant", "cosine"), sigmas=(0.0, 1.0), seeds=(0,),
                          epochs=1, hutchinson=4)
        ecfg = EscapeConfig(gd_steps=50, lbfgs_rounds=2, replicas=32, max_steps=300, calib_steps=40, calib_burn_in=10, sim_particles=500, n_noise_batches=20,
                            escape_level=2.0, sigmas=(0.0, 1.0))
    over = {}
    if args.seeds:
        over["seeds"] = tuple(range(args.seeds))
    if args.epochs:
        over["epochs"] = args.epochs
    if args.sigmas:
        over["sigmas"] = tuple(args.sigmas)
    if over:
        gcfg = GridConfig(**{**asdict(gcfg), **over})
    t0 = time.time()
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    info_path = args.out / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update({k: report[k] for k in ("device", "torch", "threads")})
    if not args.skip_grid:
        t1 = time.time()
        report["grid"] = run_grid(gcfg, device, args.out)
        info["grid_wall_s"] = time.time() - t1
        print_grid(report["grid"])
    if not args.skip_escape:
        t1 = time.time()
        report["escape"] = run_escape(ecfg, device, args.out)
        info["escape_wall_s"] = time.time() - t1
        print_escape(report["escape"])
    report["wall_s"] = time.time() - t0
    info_path.write_text(json.dumps(info, indent=2))
    print(f"total {report['wall_s']:.0f} s; results in {args.out}")
    return report


def print_grid(summary):
    print(f"{'model':5s} {'optimizer':9s} {'schedule':14s} {'σ/lr':>5s} {'test error':>15s} {'λ_max':>15s} {'trace':>15s} "
          f"{'Δerr vs σ=0 (paired)':>22s}")
    for s in summary:
        print(f"{s['model']:5s} {s['optimizer']:9s} {s['schedule']:14s} {s['sigma_rel']:5.2f} "
              f"{s['test_error_mean']:7.4f}±{s['test_error_std']:.4f} {s['lambda_max_mean']:8.3f}±{s['lambda_max_std']:.3f} "
              f"{s['trace_mean']:8.2f}±{s['trace_std']:.2f} "
              f"{s['test_error_paired_diff']:+9.4f}±{s['test_error_paired_sem']:.4f}")


def print_escape(res):
    loc = res["local"]
    print(f"sharp minimum: loss {loc['loss']:.4f}, |grad| {loc['grad_norm_after_lbfgs']:.1e}, λ_max {loc['lambda_max']:.4f}, "
          f"λ_2 {loc['lambda_2']:.4f}, trace {loc['trace']:.2f}±{loc['trace_stderr']:.2f}")
    print(f"noise along u: per-sample var {loc['per_sample_var_u']:.4g}, batch var {loc['batch_var_u']:.4g}, "
          f"LEAP m {loc['leap_m']:.3g}; ΔU {loc['delta_U']:.4g} (= level × T_eff {loc['T_eff']:.3g}); "
          f"exit α ∈ [−{loc['alpha_L']:.4f}, {loc['alpha_R']:.4f}] (barrier L/R: {loc['barrier_L']}/{loc['barrier_R']})")
    print(f"{'σ/lr':>5s} {'observed mean [95% CI]':>28s} {'sim quadratic':>28s} {'sim profile':>28s} "
          f"{'sim calibrated':>28s} {'obs/quad':>8s} {'obs/prof':>8s} {'obs/cal':>8s}  λ_eff  s_eff²")
    for r in res["table"]:
        f = lambda m, ci: f"{m:8.1f} [{ci[0]:7.1f}, {ci[1]:7.1f}]"  # noqa: E731
        print(f"{r['sigma_rel']:5.2f} {f(r['observed_mean'], r['observed_ci']):>28s} "
              f"{f(r['pred_quadratic_mean'], r['pred_quadratic_ci']):>28s} {f(r['pred_profile_mean'], r['pred_profile_ci']):>28s} "
              f"{f(r['pred_calibrated_mean'], r['pred_calibrated_ci']):>28s} "
              f"{r['ratio_obs_over_quadratic']:8.3f} {r['ratio_obs_over_profile']:8.3f} {r['ratio_obs_over_calibrated']:8.3f}"
              f"  {r['calib_lambda_eff']:.3f}  {r['calib_noise_var_eff']:.4g}")


if __name__ == "__main__":
    main()
