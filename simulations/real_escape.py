"""Predicted vs observed escape on real networks, up to high barriers (issue 16, item 3).

For each model (tanh MLP, ReLU MLP, small CNN) × data set (scikit-learn's digits, MNIST-1D generated locally by
the ``mnist1d`` package) × σ/lr (per-coordinate LEAP, σ relative to the learning rate):

1. **Minimum θ*** of the full training loss (cross-entropy + L2, float64): full-batch GD, then L-BFGS.
   At θ*: top Hessian eigenpair (λ, u) by Lanczos on HVPs; the per-sample gradient variance along u, so the
   OU scale of α = ⟨θ − θ*, u⟩ under SGD (batch B with replacement, lr η = ``eta_lambda``/λ) is
   s_OU² = η s_B²/(λ(2 − ηλ)).  The sign of u is chosen so that the loss rises more slowly along +u.
2. **Start point θ₀**: plain SGD (± LEAP) runs ``burn_in`` steps from θ* (the flat directions relax); of
   ``burn_replicas`` such runs the one whose α is closest to 0 is θ₀ (a typical state of the basin).
   Every run below starts at θ₀ with a fresh optimizer.
3. **Escape coordinate and exits**: q = α; exit when q ≥ a_j, a_j = c_j·s_OU for the ``levels`` c_j.
4. **Observed**: brute force (``leap_sde.torch.brute_force_escape``: independent replicas, mean and 95% CI of
   the steps; censored replicas → exponential MLE) at the lowest level; generalized AMS through the plug-in
   (``leap_sde.torch.ams_escape``: replicas of the network cloned on selection, mean steps by the
   transition-time decomposition, jackknife CI over independent runs) at every level, so the lowest level
   cross-checks AMS against brute force.
5. **Predicted**: the reduced 1-D chain of ``leap_sde.torch.fit_reduced_model`` (binned Kramers–Moyal drift
   and variance of the one-step increments of q, polynomial fits, exact discrete-chain mean exit time) from
   pre-escape replica runs only: ``fit_replicas`` runs of ``fit_steps`` steps from θ₀; for exit level a_j each
   run's record is cut at its first q ≥ a_j (exactly the run stopped at a_j), so no measurement comes from
   beyond the exit being predicted.

Written to ``simulations/results/real_training/``: ``escape_prediction.json`` (one row per model × data set ×
σ/lr × exit level: observed mean steps with CI and method, predicted mean steps with CI, the reduced model's
own diagnostics), ``escape_prediction.png`` (observed vs predicted, log-log, identity and factor-2 band),
``escape_prediction_info.json`` (config, local quantities per setting, wall times).

    python simulations/real_escape.py            # the committed run (≲ 25 min of one core)
    python simulations/real_escape.py --quick    # seconds-scale variant (run by the tests)

Checks of the committed run (each recomputes θ*, θ₀ and the fit runs with the same seeds):
``--bf-check C --models M --datasets D --sigmas S`` brute force at exit C·s_OU (``escape_bf_check.json``);
``--predict-only --fit-steps N`` the predictions from longer pre-escape runs (``escape_prediction_long_fit.json``);
``--predict-only --empirical`` the predictions with the empirical-residual kernel (pooled, and one law per side
of θ*) next to the Gaussian ones (``escape_prediction_empirical.json``; ``--empirical`` on a full run adds the fields to every row);
``--diagnose [--fit-steps N]`` the Markov and noise-shape checks of q (``escape_markov_check*.json``);
``--replot`` redraws the figure from the JSON files.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

import leap_sde.torch as lt

RESULTS = Path(__file__).resolve().parent / "results" / "real_training"
MODELS = ("tanh_mlp", "relu_mlp", "cnn")
DATASETS = ("digits", "mnist1d")


@dataclass(frozen=True)
class Config:
    models: tuple = MODELS
    datasets: tuple = DATASETS
    sigmas: tuple = (0.0, 1.0)          # σ/lr of the per-coordinate LEAP (0: plain SGD)
    levels: tuple = (2.0, 3.0, 4.0)     # exit levels a_j = c_j · s_OU
    hidden: int = 32
    weight_decay: float = 5e-3
    batch: int = 32
    eta_lambda: float = 0.25            # η·λ_max of the SGD runs
    n_mnist1d: int = 4000               # MNIST-1D training samples generated
    gd_steps: int = 300
    lbfgs_iter: int = 400
    burn_in: int = 300
    burn_replicas: int = 4
    bf_replicas: int = 100
    bf_max_steps: int = 20_000
    ams_replicas: int = 40
    ams_runs: int = 4
    ams_loops: int = 5
    ams_kill: int = 1
    z_a: float = 0.5                    # AMS set A = {q ≤ z_a·s_OU}, level Σ = {q = z_sigma·s_OU}
    z_sigma: float = 1.0
    fit_replicas: int = 20
    fit_steps: int = 500
    fit_burn_in: int = 20
    fit_bins: int = 16
    min_count: int = 20
    drift_order: int = 1                # reduced chain: linear drift, log-linear variance (the least-
    var_order: int = 1                  # parametric extrapolation beyond the visited range); (3, 2) reported too
    settings: tuple = ()                # (model, dataset) pairs instead of the full product (quick run)
    empirical: bool = False             # also predict with the empirical-residual kernel (--empirical)
    seed: int = 0


QUICK = Config(settings=(("tanh_mlp", "digits"), ("cnn", "mnist1d")), sigmas=(1.0,), levels=(1.5, 2.5),
               hidden=8, n_mnist1d=400, gd_steps=20, lbfgs_iter=30, burn_in=10, burn_replicas=2, bf_replicas=10,
               bf_max_steps=1000, ams_replicas=6, ams_runs=2, ams_loops=2, ams_kill=1, fit_replicas=4, fit_steps=50,
               fit_burn_in=5, fit_bins=5, min_count=5)


# ------------------------------------------------------------------------------------------------------------------
# data and models
def load_data(name: str, cfg: Config):
    """(X, y) training tensors, float64 features standardised per feature (digits: /16)."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        X, _, y, _ = train_test_split(d.data / 16.0, d.target, test_size=500, random_state=0, stratify=d.target)
    elif name == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = int(cfg.n_mnist1d * 5 / 4)  # the package keeps 4/5 for training
        args.seed = 42
        d = make_dataset(args)
        X, y = d["x"], d["y"]
        X = (X - X.mean(0)) / X.std(0)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    return torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.long)


class CNN(nn.Module):
    """digits: 1×8×8 → conv3×3(4) → ReLU → maxpool 2 → linear(64 → 10);
    MNIST-1D: 1×40 → conv5(4) → ReLU → maxpool 4 → linear(40 → 10)."""

    def __init__(self, d_in: int):
        super().__init__()
        self.two_d = d_in == 64
        if self.two_d:
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 4 * 4, 10)
        else:
            self.conv = nn.Conv1d(1, 4, 5, padding=2)
            self.fc = nn.Linear(4 * (d_in // 4), 10)
        self.d_in = d_in

    def forward(self, x):
        if self.two_d:
            h = nn.functional.max_pool2d(torch.relu(self.conv(x.view(-1, 1, 8, 8))), 2)
        else:
            h = nn.functional.max_pool1d(torch.relu(self.conv(x.view(-1, 1, self.d_in))), 4)
        return self.fc(h.flatten(1))


def make_model(kind: str, d_in: int, cfg: Config, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "tanh_mlp":
        m = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, 10))
    elif kind == "relu_mlp":
        m = nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 10))
    elif kind == "cnn":
        m = CNN(d_in)
    else:
        raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
    return m.double()


def _l2(model):
    return sum((p * p).sum() for p in model.parameters())


def make_loss(cfg: Config):
    """``(minibatch loss, full loss)``: the training objective is cross-entropy + (wd/2)‖θ‖²; the minibatch loss
    is the cross-entropy alone because the SGD runs apply the L2 term as ``weight_decay`` (the same gradient)."""
    wd = cfg.weight_decay

    def loss_fn(model, batch):
        xb, yb = batch
        return nn.functional.cross_entropy(model(xb), yb)

    def full_loss(model, batch):
        return loss_fn(model, batch) + 0.5 * wd * _l2(model)

    return loss_fn, full_loss


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ------------------------------------------------------------------------------------------------------------------
# the minimum and the local quantities
def find_minimum(model, loss_fn, X, y, cfg: Config) -> dict:
    params = list(model.parameters())
    full = lambda: loss_fn(model, (X, y))  # noqa: E731
    gd = torch.optim.SGD(params, lr=0.5)
    for _ in range(cfg.gd_steps):
        gd.zero_grad()
        full().backward()
        gd.step()
    lb = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.lbfgs_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                           history_size=30, line_search_fn="strong_wolfe")

    def closure():
        lb.zero_grad()
        v = full()
        v.backward()
        return v

    lb.step(closure)
    g = torch.autograd.grad(full(), params)
    return {"loss": float(full()), "grad_norm": float(torch.cat([v.reshape(-1) for v in g]).norm())}


def local_quantities(model, loss_fn, X, y, cfg: Config) -> dict:
    eig = lt.hessian_eigenvalues(model, lambda: loss_fn(model, (X, y)), k=1, tol=1e-9, seed=cfg.seed)
    lam, u = float(eig.eigenvalues[0]), eig.eigenvectors[0].detach().clone()
    # orientation: +u is the side where the loss rises more slowly at 3 OU scales (checked after s_OU is known)
    nz = lt.gradient_noise_along(model, lambda out, t: nn.functional.cross_entropy(out, t, reduction="none"),
                                 X, y, u, batch_size=cfg.batch)
    s2_sample = float(nz.per_sample_var[0])
    eta = cfg.eta_lambda / lam
    s2_b = s2_sample / cfg.batch
    s_ou = math.sqrt(eta * s2_b / (lam * (2.0 - eta * lam)))
    theta = _flat(model)
    prof = lt.loss_along_direction(model, lambda: loss_fn(model, (X, y)), u, np.array([-3 * s_ou, 0.0, 3 * s_ou]))
    if prof[0] < prof[2]:  # the loss rises more slowly along −u: flip
        u = -u
    return {"lambda_max": lam, "eta": eta, "per_sample_var_u": s2_sample, "s_ou": s_ou, "theta_star": theta, "u": u,
            "profile_pm3": [float(prof[0]), float(prof[1]), float(prof[2])]}


# ------------------------------------------------------------------------------------------------------------------
# dynamics
def _factory(eta: float, sigma: float, wd: float):
    def f(params):
        inner = torch.optim.SGD(params, lr=eta, weight_decay=wd)
        return lt.LEAP(inner, sigma=sigma, relative=True, seed=0) if sigma > 0 else inner

    return f


def _coordinate(theta_star, u):
    def q(model):
        return float(torch.dot(u, _flat(model) - theta_star))

    return q


def start_point(model, loss_fn, sample, loc, sigma, cfg: Config, seed: int) -> dict:
    """θ₀: of ``burn_replicas`` SGD runs of ``burn_in`` steps from θ* (no exit), the one with |α| smallest."""
    q = _coordinate(loc["theta_star"], loc["u"])
    fac = _factory(loc["eta"], sigma, cfg.weight_decay)
    best = None
    gen = torch.Generator()
    for r in range(cfg.burn_replicas):
        m = _clone(model)
        opt = fac(list(m.parameters()))
        if isinstance(opt, lt.LEAP):
            opt = lt.LEAP(opt.optimizer, sigma=sigma, relative=True, seed=seed * 1000 + r)
        gen.manual_seed(seed * 1000 + r)
        for _ in range(cfg.burn_in):
            opt.zero_grad()
            loss_fn(m, sample(gen)).backward()
            opt.step()
        a = q(m)
        if best is None or abs(a) < abs(best[0]):
            best = (a, m)
    return {"model": best[1], "alpha0": best[0], "dist_from_star": float((_flat(best[1]) - loc["theta_star"]).norm())}


def _clone(model):
    import copy

    return copy.deepcopy(model)


def _mean_ci(steps: np.ndarray, escaped: np.ndarray, cap: int):
    """Mean with normal 95% CI; with censoring, the exponential MLE (total time / escapes) and its CI."""
    n, k = steps.size, int(escaped.sum())
    if k == n:
        m, se = float(steps.mean()), float(steps.std(ddof=1) / math.sqrt(n))
        return m, (m - 1.96 * se, m + 1.96 * se), "brute force"
    if k == 0:
        return math.inf, (float(steps.sum()), math.inf), "brute force (no escape)"
    m = float(steps.sum()) / k
    return m, (m / (1 + 1.96 / math.sqrt(k)), m / max(1 - 1.96 / math.sqrt(k), 1e-9)), "brute force (censored MLE)"


def _setting(model_kind: str, data_name: str, data, cfg: Config):
    """What every mode of the study starts from, with the setting's seed: the model at its minimum θ* and the
    local quantities there. Returns ``(X, y, loss_fn, sample, seed, model, minimum_info, loc)``."""
    X, y = data
    loss_fn, full_loss = make_loss(cfg)
    sample = lt.minibatch_sampler(X, y, cfg.batch)
    seed = cfg.seed + 17 * MODELS.index(model_kind) + 101 * DATASETS.index(data_name)
    model = make_model(model_kind, X.shape[1], cfg, seed)
    mn = find_minimum(model, full_loss, X, y, cfg)
    loc = local_quantities(model, full_loss, X, y, cfg)
    return X, y, loss_fn, sample, seed, model, mn, loc


def _fit(m0, loss_fn, sample, n, loc, sigma, cfg: Config, seed: int):
    """The reduced model from pre-escape runs started at θ₀ = ``m0`` (window up to the highest exit level)."""
    return lt.fit_reduced_model(m0, loss_fn, lambda g: _epoch(sample, g, n, cfg.batch),
                                _coordinate(loc["theta_star"], loc["u"]),
                                optimizer_factory=lambda p: torch.optim.SGD(p, lr=loc["eta"],
                                                                            weight_decay=cfg.weight_decay),
                                leap={"sigma": sigma, "relative": True} if sigma > 0 else None,
                                n_replicas=cfg.fit_replicas, n_steps=cfg.fit_steps,
                                window=(-math.inf, max(cfg.levels) * loc["s_ou"]), seed=seed + 5, burn_in=0,
                                bins=cfg.fit_bins, drift_order=cfg.drift_order, var_order=cfg.var_order,
                                min_count=cfg.min_count)


def one_setting(model_kind: str, data_name: str, data, cfg: Config, out_rows: list, info: list) -> None:
    t0 = time.time()
    X, y, loss_fn, sample, seed, model, mn, loc = _setting(model_kind, data_name, data, cfg)
    n_params = sum(p.numel() for p in model.parameters())
    base = {"model": model_kind, "dataset": data_name, "n_params": n_params}
    for sigma in cfg.sigmas:
        t1 = time.time()
        st = start_point(model, loss_fn, sample, loc, sigma, cfg, seed)
        m0 = st["model"]
        q = _coordinate(loc["theta_star"], loc["u"])
        fac = _factory(loc["eta"], sigma, cfg.weight_decay)
        s = loc["s_ou"]
        a_levels = [c * s for c in cfg.levels]
        ex = dict(optimizer_factory=fac, score=q)
        # predicted: reduced chain from pre-escape runs (cut at each exit level)
        fit = _fit(m0, loss_fn, sample, len(X), loc, sigma, cfg, seed)
        t_fit = time.time() - t1
        bf = lt.brute_force_escape(m0, loss_fn, sample, exit_level=a_levels[0], n_replicas=cfg.bf_replicas,
                                   max_steps=cfg.bf_max_steps, seed=seed + 1, **ex)
        bf_mean, bf_ci, bf_method = _mean_ci(bf.steps, bf.escaped, cfg.bf_max_steps)
        t_bf = time.time() - t1 - t_fit
        for j, (c, a) in enumerate(zip(cfg.levels, a_levels)):
            t2 = time.time()
            pred = _predict(fit, a, cfg)
            res = lt.ams_escape(m0, loss_fn, sample, exit_level=a, levels=(cfg.z_a * s, cfg.z_sigma * s),
                                n_replicas=cfg.ams_replicas, n_runs=cfg.ams_runs, loops=cfg.ams_loops, kill=cfg.ams_kill,
                                seed=seed + 11 + j, **ex)
            row = dict(base, sigma_over_lr=sigma, exit_level=a, exit_level_over_s_ou=c,
                       observed_mean_steps=res.mean_steps, observed_ci=list(res.mean_steps_ci),
                       observed_method="AMS", ams_probability=res.probability, ams_work_steps=res.work_steps,
                       predicted_mean_steps=pred["mean_steps"], predicted_ci=pred["ci"],
                       predicted_model_error=pred["model_error"], predicted_status=pred["status"],
                       predicted_extrapolation=pred["extrapolation"], fit_pairs=pred["n_pairs"],
                       increment_excess_kurtosis=pred["kurtosis"],
                       predicted_mean_steps_cubic_drift=pred["mean_steps_cubic"],
                       **({"predicted_mean_steps_empirical": pred["mean_steps_empirical"],
                           "predicted_ci_empirical": pred["ci_empirical"],
                           "predicted_mean_steps_empirical_split": pred["mean_steps_empirical_split"],
                           "predicted_ci_empirical_split": pred["ci_empirical_split"]} if cfg.empirical else {}),
                       ratio_observed_over_predicted=res.mean_steps / pred["mean_steps"],
                       wall_s=time.time() - t2)
            out_rows.append(row)
            if j == 0:
                out_rows.append(dict(row, observed_mean_steps=bf_mean, observed_ci=list(bf_ci),
                                     observed_method=bf_method, ams_probability=None, ams_work_steps=None,
                                     bf_escaped=int(bf.escaped.sum()), bf_replicas=int(bf.escaped.size),
                                     ratio_observed_over_predicted=bf_mean / pred["mean_steps"], wall_s=t_bf))
            print(f"{model_kind:9s} {data_name:8s} σ/lr={sigma:g} a={c:g}·s: AMS {res.mean_steps:10.4g} "
                  f"[{res.mean_steps_ci[0]:.4g}, {res.mean_steps_ci[1]:.4g}]"
                  + (f"  BF {bf_mean:.4g} [{bf_ci[0]:.4g}, {bf_ci[1]:.4g}]" if j == 0 else "")
                  + f"  predicted {pred['mean_steps']:.4g} [{pred['ci'][0]:.4g}, {pred['ci'][1]:.4g}]"
                  f"  ratio {res.mean_steps / pred['mean_steps']:.3g}", flush=True)
        info.append(dict(base, sigma_over_lr=sigma, **{k: v for k, v in mn.items()},
                         **{k: v for k, v in loc.items() if k not in ("theta_star", "u")},
                         alpha0=st["alpha0"], dist_theta0_theta_star=st["dist_from_star"],
                         fit_stopped=int(fit.stopped.sum()), fit_wall_s=t_fit, wall_s=time.time() - t1))
    print(f"  ({model_kind}, {data_name}: {time.time() - t0:.0f} s)", flush=True)


def bf_check(model_kind: str, data_name: str, data, cfg: Config, c: float, sigma: float) -> dict:
    """Brute force at exit level c·s_OU for one setting, from the same θ₀ as :func:`one_setting` (same seeds),
    with its own replica streams: the check of AMS above the lowest level where brute force is affordable."""
    X, y, loss_fn, sample, seed, model, _, loc = _setting(model_kind, data_name, data, cfg)
    st = start_point(model, loss_fn, sample, loc, sigma, cfg, seed)
    t0 = time.time()
    bf = lt.brute_force_escape(st["model"], loss_fn, sample, optimizer_factory=_factory(loc["eta"], sigma,
                               cfg.weight_decay), score=_coordinate(loc["theta_star"], loc["u"]),
                               exit_level=c * loc["s_ou"], n_replicas=cfg.bf_replicas, max_steps=cfg.bf_max_steps,
                               seed=seed + 2)
    m, ci, method = _mean_ci(bf.steps, bf.escaped, cfg.bf_max_steps)
    print(f"{model_kind} {data_name} σ/lr={sigma:g} a={c:g}·s: {method} {m:.4g} [{ci[0]:.4g}, {ci[1]:.4g}] "
          f"({int(bf.escaped.sum())}/{bf.escaped.size} escaped)", flush=True)
    return {"model": model_kind, "dataset": data_name, "sigma_over_lr": sigma, "exit_level": c * loc["s_ou"],
            "exit_level_over_s_ou": c, "observed_mean_steps": m, "observed_ci": list(ci), "observed_method": method,
            "bf_escaped": int(bf.escaped.sum()), "bf_replicas": int(bf.escaped.size), "wall_s": time.time() - t0}


def diagnose(model_kind: str, data_name: str, data, cfg: Config, sigma: float) -> dict:
    """Markov check of the reduced coordinate on the fit runs of :func:`one_setting` (same seeds, so the same
    trajectories): residuals ``r_k = Δq_k − (b₀ + b₁ q_k)`` of the linear drift fit (steps ≥ ``fit_burn_in``), their
    autocorrelation ρ_l at lags 1–30 (pooled over replicas) and ``τ_int = 1 + 2 Σ_l ρ_l`` (the ratio of the
    long-time to the one-step noise variance: 1 for the Markov chain the reduced model assumes), and the residual
    variance in the first and second half of the runs (stationarity)."""
    X, y, loss_fn, sample, seed, model, _, loc = _setting(model_kind, data_name, data, cfg)
    st = start_point(model, loss_fn, sample, loc, sigma, cfg, seed)
    s = loc["s_ou"]
    fit = _fit(st["model"], loss_fn, sample, len(X), loc, sigma, cfg, seed)
    trajs = [t[cfg.fit_burn_in:] for t in fit.trajectories]
    qs = np.concatenate([t[:-1] for t in trajs])
    dq = np.concatenate([np.diff(t) for t in trajs])
    b1, b0 = np.polyfit(qs, dq, 1)
    res = [np.diff(t) - (b0 + b1 * t[:-1]) for t in trajs]
    allr = np.concatenate(res)
    var = float(allr.var())
    rho = []
    for lag in range(1, 31):
        num = sum(float(np.dot(r[:-lag], r[lag:])) for r in res if r.size > lag)
        cnt = sum(r.size - lag for r in res if r.size > lag)
        rho.append(num / cnt / var)
    half = cfg.fit_steps // 2 - cfg.fit_burn_in
    v1 = float(np.concatenate([r[:half] for r in res]).var())
    v2 = float(np.concatenate([r[half:] for r in res if r.size > half]).var())
    # shape of the noise: skewness of the residuals for q above the minimum, and the mean first passage to the
    # middle exit level of the linear-drift chain driven by Gaussian noise vs by the empirical residuals
    # (bootstrap; pre-escape pairs only: records cut at their first q ≥ a)
    a = cfg.levels[len(cfg.levels) // 2] * s
    cq, cr = [], []
    for t in fit.trajectories:
        hit = np.nonzero(t >= a)[0]
        c = (t[: hit[0] + 1] if hit.size else t)[cfg.fit_burn_in:]
        cq.append(c[:-1])
        cr.append(np.diff(c) - (b0 + b1 * c[:-1]))
    cq, cr = np.concatenate(cq), np.concatenate(cr)
    up = cq > 0
    sd = float(cr.std())
    skew_up = float(np.mean(cr[up] ** 3) / cr[up].std() ** 3)
    tail_up = float(np.mean(cr[up] > 1.5 * cr[up].std()))
    gen = np.random.default_rng(cfg.seed)

    def mfpt(draw, n=4000, cap=10**6):
        q, t, alive, k = np.full(n, fit.q_start), np.zeros(n), np.ones(n, dtype=bool), 0
        while alive.any() and k < cap:
            q[alive] += b0 + b1 * q[alive] + draw(int(alive.sum()))
            k += 1
            t[alive] = k
            alive &= q < a
        return float(t.mean())

    t_gauss = mfpt(lambda m: sd * gen.standard_normal(m))
    t_boot = mfpt(lambda m: cr[gen.integers(0, cr.size, m)])
    fpt = [(int(np.nonzero(t >= a)[0][0]) if np.any(t >= a) else t.size - 1, bool(np.any(t >= a)))
           for t in fit.trajectories]
    n_esc = sum(e for _, e in fpt)
    out = {"model": model_kind, "dataset": data_name, "sigma_over_lr": sigma, "fit_steps": cfg.fit_steps,
           "exit_level_over_s_ou": a / s, "residual_skewness_q_above_0": skew_up,
           "residual_P_above_1p5sd_q_above_0": tail_up, "gaussian_P_above_1p5sd": 0.0668,
           "mfpt_linear_drift_gaussian_noise_mc": t_gauss, "mfpt_linear_drift_empirical_residuals_mc": t_boot,
           "fit_runs_escaped": int(n_esc), "fit_runs_mean_fpt_mle": float(sum(k for k, _ in fpt) / max(n_esc, 1)),
           "drift_slope_per_step": float(b1),
           "one_step_sd_over_s_ou": math.sqrt(var) / s, "rho_lag1_30": rho, "tau_int_10": 1 + 2 * float(np.sum(rho[:10])), "tau_int": 1 + 2 * float(np.sum(rho)),
           "stationary_sd_over_s_ou": float(np.concatenate(trajs).std() / s),
           "residual_var_first_half_over_second": v1 / v2}
    print(json.dumps(out), flush=True)
    return out


def predict_only(model_kind: str, data_name: str, data, cfg: Config, sigma: float) -> list:
    """The prediction step of :func:`one_setting` alone (same θ*, θ₀ and fit seeds), e.g. with longer fit runs
    (``--fit-steps``): one row per exit level."""
    X, y, loss_fn, sample, seed, model, _, loc = _setting(model_kind, data_name, data, cfg)
    st = start_point(model, loss_fn, sample, loc, sigma, cfg, seed)
    s = loc["s_ou"]
    fit = _fit(st["model"], loss_fn, sample, len(X), loc, sigma, cfg, seed)
    out = []
    for c in cfg.levels:
        pred = _predict(fit, c * s, cfg)
        out.append({"model": model_kind, "dataset": data_name, "sigma_over_lr": sigma, "exit_level": c * s,
                    "exit_level_over_s_ou": c, "fit_steps": cfg.fit_steps, "fit_replicas": cfg.fit_replicas,
                    "predicted_mean_steps": pred["mean_steps"], "predicted_ci": pred["ci"],
                    "predicted_mean_steps_cubic_drift": pred["mean_steps_cubic"], "fit_pairs": pred["n_pairs"],
                    "fit_reached_exit": int(sum(np.any(t >= c * s) for t in fit.trajectories))})
        if cfg.empirical:
            out[-1].update(predicted_mean_steps_empirical=pred["mean_steps_empirical"],
                           predicted_ci_empirical=pred["ci_empirical"],
                           predicted_mean_steps_empirical_split=pred["mean_steps_empirical_split"],
                           predicted_ci_empirical_split=pred["ci_empirical_split"],
                           **{k: pred[k] for k in ("residual_skewness", "residual_skewness_q_above_0",
                                                   "residual_skewness_q_below_0", "n_residuals")})
        print(json.dumps(out[-1]), flush=True)
    return out


def _epoch(sample, gen, n, batch):
    """One 'epoch' of minibatches drawn with replacement (the loader form of fit_reduced_model)."""
    for _ in range(max(1, n // batch)):
        yield sample(gen)


def _predict(fit, a: float, cfg: Config) -> dict:
    """Reduced-chain mean exit time at q ≥ a from the fit runs cut at their first q ≥ a (pre-escape data)."""
    from leap_sde import fit_reduced_chain

    cut = []
    for t in fit.trajectories:
        hit = np.nonzero(t >= a)[0]
        cut.append(t[: hit[0] + 1] if hit.size else t)
    used = [c[cfg.fit_burn_in:] for c in cut if c.size > cfg.fit_burn_in + 1]
    red = fit_reduced_chain(used, window=(-math.inf, a), bins=cfg.fit_bins, q_start=fit.q_start,
                            drift_order=cfg.drift_order, var_order=cfg.var_order, min_count=cfg.min_count)
    p = red.predict_escape(exit_hi=a, x0=fit.q_start, seed=cfg.seed)
    try:
        alt = fit_reduced_chain(used, window=(-math.inf, a), bins=cfg.fit_bins, q_start=fit.q_start, drift_order=3,
                                var_order=2, min_count=cfg.min_count).predict_escape(exit_hi=a, x0=fit.q_start, n_boot=0).mean_steps
    except ValueError:  # too few filled bins for the cubic fit
        alt = math.nan
    emp = {}
    if cfg.empirical:
        # pooled residual law, and one law per side of θ* (q = 0): the skewness differs above and below
        pe = red.predict_escape(exit_hi=a, x0=fit.q_start, seed=cfg.seed, kernel="empirical")
        ps = red.predict_escape(exit_hi=a, x0=fit.q_start, seed=cfg.seed, kernel="empirical", split_at=0.0)
        xi, _ = red.residuals()
        xs, _, up = red.residuals(0.0)
        emp = {"mean_steps_empirical": float(pe.mean_steps), "ci_empirical": [float(pe.ci[0]), float(pe.ci[1])],
               "mean_steps_empirical_split": float(ps.mean_steps),
               "ci_empirical_split": [float(ps.ci[0]), float(ps.ci[1])],
               "residual_skewness": float(np.mean(xi ** 3)), "residual_skewness_q_above_0": float(np.mean(xs[up] ** 3)),
               "residual_skewness_q_below_0": float(np.mean(xs[~up] ** 3)), "n_residuals": int(xi.size)}
    return {"mean_steps": float(p.mean_steps), "ci": [float(p.ci[0]), float(p.ci[1])], **emp,
            "mean_steps_cubic": float(alt),
            "model_error": float(p.model_error), "status": p.status, "extrapolation": float(p.extrapolation),
            "n_pairs": int(red.table.n_pairs), "kurtosis": _kurtosis(red.table)}


def _kurtosis(tab) -> float:
    """Pair-count-weighted mean excess kurtosis of the one-step increments over the fitted bins (0: Gaussian)."""
    w = np.where(tab.used, tab.count, 0).astype(float)
    k = np.where(tab.used, tab.kurtosis, 0.0)
    return float((w * k).sum() / w.sum()) if w.sum() > 0 else math.nan


# ------------------------------------------------------------------------------------------------------------------
def plot(rows: list, path: Path, checks: list = ()) -> None:
    """Observed vs predicted, log-log: marker = model, colour = data set, filled = σ/lr 0, open = σ/lr > 0;
    AMS rows with a thin edge, brute-force rows with a thick black edge; ``checks`` (brute force at a higher level,
    ``escape_bf_check.json``) as black stars at the prediction of the same setting and level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6.4, 5.8))
    marker = {"tanh_mlp": "o", "relu_mlp": "s", "cnn": "^"}
    color = {"digits": "C0", "mnist1d": "C3"}
    vals = []

    def point(p, pc, o, oc, **kw):
        vals.extend([o, p])
        ax.errorbar(p, o, xerr=[[max(p - pc[0], 0)], [max(pc[1] - p, 0)]],
                    yerr=[[max(o - oc[0], 0) if oc[0] > 0 else o * 0.9], [max(oc[1] - o, 0)]], lw=0.7, **kw)

    for r in rows:
        o, p = float(r["observed_mean_steps"]), float(r["predicted_mean_steps"])
        if not (np.isfinite(o) and np.isfinite(p) and o > 0 and p > 0):
            continue
        bf = r["observed_method"].startswith("brute")
        c = color.get(r["dataset"], "k")
        point(p, r["predicted_ci"], o, [float(v) for v in r["observed_ci"]], fmt=marker.get(r["model"], "o"),
              color=c, mfc=c if r["sigma_over_lr"] == 0 else "w", mec="k" if bf else c, mew=1.6 if bf else 0.8,
              ms=6, alpha=0.85)
    for ch in checks:
        match = [r for r in rows if (r["model"], r["dataset"], r["sigma_over_lr"], r["exit_level_over_s_ou"]) ==
                 (ch["model"], ch["dataset"], ch["sigma_over_lr"], ch["exit_level_over_s_ou"])]
        if match:
            point(match[0]["predicted_mean_steps"], match[0]["predicted_ci"], ch["observed_mean_steps"],
                  ch["observed_ci"], fmt="*", color="k", ms=11, zorder=5)
    lo, hi = (min(vals) / 2, max(vals) * 2) if vals else (1, 10)
    g = np.geomspace(lo, hi, 10)
    ax.plot(g, g, "k-", lw=1)
    ax.fill_between(g, g / 2, g * 2, color="0.85", zorder=0)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted mean steps (reduced chain)",
           ylabel="observed mean steps (95% CI)")
    h = [Line2D([], [], ls="", marker=marker[m], color="k", mfc="0.5", label=m) for m in marker]
    h += [Line2D([], [], ls="", marker="o", color=color[d], label=d) for d in color]
    h += [Line2D([], [], ls="", marker="o", color="0.4", mfc="0.4", label="σ/lr = 0"),
          Line2D([], [], ls="", marker="o", color="0.4", mfc="w", label="σ/lr = 1"),
          Line2D([], [], ls="", marker="o", color="0.6", mec="k", mew=1.6, label="brute force (2·s_OU)"),
          Line2D([], [], ls="", marker="o", color="0.6", label="AMS (2, 3, 4·s_OU)"),
          Line2D([], [], ls="", marker="*", color="k", ms=10, label="brute-force check (3·s_OU)"),
          Line2D([], [], color="0.85", lw=6, label="factor 2")]
    ax.legend(handles=h, fontsize=7, loc="upper left")
    ax.set_title("Escape on real networks: observed vs reduced-model prediction", fontsize=9)
    fig.tight_layout()
    _atomic(path, lambda f: fig.savefig(f, dpi=130, format="png"))
    plt.close(fig)


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json(obj) -> bytes:
    def conv(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if isinstance(o, float) and not math.isfinite(o):
            return str(o)
        raise TypeError(type(o).__name__)

    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return str(o)
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(obj), indent=1, default=conv).encode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="seconds-scale variant (tiny models and budgets)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--models", nargs="+", default=None, choices=MODELS)
    ap.add_argument("--datasets", nargs="+", default=None, choices=DATASETS)
    ap.add_argument("--sigmas", nargs="+", type=float, default=None)
    ap.add_argument("--bf-check", type=float, default=None, metavar="C",
                    help="only brute force at exit level C·s_OU (AMS check), rows to escape_bf_check.json")
    ap.add_argument("--diagnose", action="store_true",
                    help="only the Markov check of the reduced coordinate, to escape_markov_check.json")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from the JSON files")
    ap.add_argument("--predict-only", action="store_true",
                    help="only the reduced-model predictions (e.g. with --fit-steps), to escape_prediction_long_fit.json")
    ap.add_argument("--fit-steps", type=int, default=None)
    ap.add_argument("--empirical", action="store_true",
                    help="also predict with the empirical-residual kernel; with --predict-only the rows go to "
                         "escape_prediction_empirical.json")
    ap.add_argument("--bf-replicas", type=int, default=None)
    ap.add_argument("--bf-max-steps", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = QUICK if args.quick else Config()
    if args.models:
        cfg = replace(cfg, models=tuple(args.models), settings=())
    if args.datasets:
        cfg = replace(cfg, datasets=tuple(args.datasets), settings=())
    for k in ("sigmas", "bf_replicas", "bf_max_steps", "fit_steps"):
        if getattr(args, k) is not None:
            cfg = replace(cfg, **{k: tuple(args.sigmas) if k == "sigmas" else getattr(args, k)})
    if args.empirical:
        cfg = replace(cfg, empirical=True)
    t0 = time.time()
    rows, info = [], []
    pairs = cfg.settings or tuple((m, d) for d in cfg.datasets for m in cfg.models)
    if args.replot:
        name = "escape_prediction_quick" if args.quick else "escape_prediction"
        chk = args.out / "escape_bf_check.json"
        plot(json.loads((args.out / f"{name}.json").read_text()), args.out / f"{name}.png",
             json.loads(chk.read_text()) if chk.exists() and not args.quick else [])
        return []
    if args.predict_only:
        for dname in dict.fromkeys(d for _, d in pairs):
            data = load_data(dname, cfg)
            for mk in (m for m, d in pairs if d == dname):
                for sg in cfg.sigmas:
                    rows += predict_only(mk, dname, data, cfg, sg)
        path = args.out / ("escape_prediction_empirical.json" if cfg.empirical else "escape_prediction_long_fit.json")
        if args.quick:
            path = path.with_name(path.stem + "_quick.json")
        old = json.loads(path.read_text()) if path.exists() else []
        new = {(r["model"], r["dataset"], r["sigma_over_lr"], r["fit_steps"]) for r in rows}
        keep = [r for r in old if (r["model"], r["dataset"], r["sigma_over_lr"], r["fit_steps"]) not in new]
        _atomic(path, lambda f: f.write(_json(keep + rows)))
        return rows
    if args.diagnose:
        for dname in dict.fromkeys(d for _, d in pairs):
            data = load_data(dname, cfg)
            for mk in (m for m, d in pairs if d == dname):
                for sg in cfg.sigmas:
                    rows.append(diagnose(mk, dname, data, cfg, sg))
        _atomic(args.out / f"escape_markov_check{'' if cfg.fit_steps == Config.fit_steps else f'_fit{cfg.fit_steps}'}.json",
                lambda f: f.write(_json(rows)))
        return rows
    if args.bf_check is not None:
        path = args.out / "escape_bf_check.json"
        old = json.loads(path.read_text()) if path.exists() else []
        for dname in dict.fromkeys(d for _, d in pairs):
            data = load_data(dname, cfg)
            for mk in (m for m, d in pairs if d == dname):
                for sg in cfg.sigmas:
                    rows.append(bf_check(mk, dname, data, cfg, args.bf_check, sg))
        keep = [r for r in old if (r["model"], r["dataset"], r["sigma_over_lr"], r["exit_level_over_s_ou"]) not in
                {(r["model"], r["dataset"], r["sigma_over_lr"], r["exit_level_over_s_ou"]) for r in rows}]
        _atomic(path, lambda f: f.write(_json(keep + rows)))
        return rows
    for dname in dict.fromkeys(d for _, d in pairs):
        data = load_data(dname, cfg)
        for mk in (m for m, d in pairs if d == dname):
            one_setting(mk, dname, data, cfg, rows, info)
    name = "escape_prediction_quick" if args.quick else "escape_prediction"
    _atomic(args.out / f"{name}.json", lambda f: f.write(_json(rows)))
    _atomic(args.out / f"{name}_info.json", lambda f: f.write(_json(
        {"config": asdict(cfg), "settings": info, "wall_s": time.time() - t0, "torch": torch.__version__,
         "threads": torch.get_num_threads()})))
    plot(rows, args.out / f"{name}.png")
    print(f"total {time.time() - t0:.0f} s; {len(rows)} rows in {args.out / (name + '.json')}")
    return rows


if __name__ == "__main__":
    main()
