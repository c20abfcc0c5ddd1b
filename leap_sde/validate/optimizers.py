"""Case 11: momentum and Adam (``optimizer=``), with and without LEAP.

* Exact: the stationary variance of SGD with heavy-ball / Nesterov momentum, with and without LEAP, on
  ``L = hθ²/2`` (the random affine recursion of docs/theory.md §9, solved exactly) and the heavy-ball
  instability beyond ``ηh = 2(1 + μ)`` (Polyak 1964).
* Asymptotic: heavy-ball SGD at small η escapes like plain SGD with step η/(1 − μ), i.e. like the diffusion
  with ``D = η s²/(2(1 − μ))`` in time ``t = kη/(1 − μ)`` (docs/theory.md §9.2); reference: the exact 1-D
  MFPT quadrature.
* Claims: momentum keeps SGD's flat-minimum preference under SGD-like noise while Adam loses most of it
  (Xie et al., "Adaptive Inertia", ICML 2022); LEAP strengthens the flat preference under momentum and under
  Adam (the LEAP claim, carried over from plain SGD where case 7 refutes it).

The flat-preference measure is ``log(τ_flat/τ_sharp)``: mean escape steps from the flat minimum over those from
the sharp one of a :class:`~leap_sde.SharpFlatWell` with equal barriers, under ``HessianNoise`` (Cov = |H|/B).
"""
from __future__ import annotations

import math

import numpy as np

import leap_sde as ls
from leap_sde import theory as th

from ._core import ASYMPTOTIC_TOL, Config, Validation, figure, log_mean_time, make_case, sim

SRC_EXACT = "docs/theory.md §9.1 (derived in this project)"
SRC_AI = "Xie et al., Adaptive Inertia, ICML 2022 (docs/theory.md §9.3)"


def _stationary_cases(cfg, cid):
    cases = []
    h, eta, s = 1.0, 0.05, 1.0
    n = cfg.pick(10_000, 200_000)
    for i, (beta, sigma, nesterov) in enumerate([(0.5, 0.0, False), (0.9, 0.0, False), (0.9, 0.02, False),
                                                 (0.5, 0.02, True), (0.9, 0.02, True)]):
        x2, _, _ = th.momentum_stationary_moments(h, eta, beta, s * s, sigma, nesterov=nesterov)
        res = sim(cfg, f"mom/{beta}/{sigma}/{nesterov}/{n}", ls.Quadratic(h), [0.0], eta=eta, noise=ls.WhiteNoise(s),
                  leap=ls.LEAP(sigma) if sigma else None, optimizer=ls.SGD(momentum=beta, nesterov=nesterov),
                  exit=ls.NoExit(), n_particles=n, max_steps=3000, seed=1100 + i)
        sq = res.positions[:, 0] ** 2
        cases.append(make_case(
            cid, f"{'Nesterov' if nesterov else 'heavy ball'} μ={beta}, σ={sigma}: stationary variance",
            claim="Var θ = exact second moment of the random affine recursion", source=SRC_EXACT, kind="exact",
            theory=x2, estimate=float(sq.mean()), se=float(sq.std(ddof=1) / math.sqrt(n)), model_tol=0.0,
            tol_note="none (3000 steps: transient below 1e-20)",
            params=dict(h=h, eta=eta, noise_std=s, momentum=beta, sigma=sigma, nesterov=nesterov, N=n)))
    mu = 0.5
    eta_u = 1.02 * th.heavy_ball_stability_threshold(1.0, mu)
    res = sim(cfg, "mom/unstable", ls.Quadratic(1.0), [0.1], eta=eta_u, optimizer=ls.SGD(momentum=mu),
              exit=ls.LeaveBall([0.0], 10.0), n_particles=cfg.pick(500, 5000), max_steps=5000, seed=1110)
    frac = res.n_escaped / res.n_particles
    cases.append(make_case(
        cid, "heavy ball μ=0.5 at ηh = 1.02·2(1+μ): every particle leaves", claim="the heavy ball is unstable "
        "for ηh > 2(1 + μ)", source="Polyak 1964 (docs/theory.md §9.1)", kind="exact", theory=1.0, estimate=frac,
        se=math.sqrt(max(frac * (1 - frac), 0) / res.n_particles), model_tol=0.0, sided="lower", tol_note="none",
        params=dict(h=1.0, eta=eta_u, momentum=mu, N=res.n_particles)))
    return cases


def _effective_temperature_cases(cfg, cid):
    """Mean escape steps of the heavy ball in a double well against the SDE with D = ηs²/(2(1−μ))."""
    cases = []
    land = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
    U = lambda x: (x * x - 1.0) ** 2  # noqa: E731
    dU = lambda x: 4.0 * x * (x * x - 1.0)  # noqa: E731
    n = cfg.pick(500, 5000)
    for i, (mu, eta_eff) in enumerate([(0.5, 0.002), (0.9, 0.002), (0.9, 0.02)]):
        eta = eta_eff * (1.0 - mu)
        D = 0.25
        s = math.sqrt(2.0 * D / eta_eff)
        t_ref = th.mfpt_1d(U, D, -1.0, 1.0, -3.0, dU=dU)
        res = sim(cfg, f"momT/{mu}/{eta_eff}/{n}", land, [-1.0], eta=eta, noise=ls.WhiteNoise(s),
                  optimizer=ls.SGD(momentum=mu), exit=ls.Threshold(1.0), n_particles=n,
                  max_steps=int(40 * t_ref / eta_eff), seed=1120 + i)
        steps = res.steps[res.escaped].astype(float)
        est = float(res.rate().mean) * eta_eff
        se = est / math.sqrt(max(res.n_escaped, 1))
        cases.append(make_case(
            cid, f"heavy ball μ={mu}, η/(1−μ)={eta_eff}: escape ≈ SGD at the effective step",
            claim="τ·η/(1−μ) → MFPT of dX = −U'dt + √(2D)dW, D = ηs²/(2(1−μ)) as η → 0",
            source="docs/theory.md §9.2 (derived in this project)", kind="asymptotic", theory=t_ref, estimate=est,
            se=se, model_tol=ASYMPTOTIC_TOL * t_ref, tol_note="approximation: nominal 10%",
            params=dict(momentum=mu, eta=eta, eta_eff=eta_eff, D=D, N=n, barrier_over_D=1.0 / D),
            note=f"{steps.size} escaped; exit at the other minimum"))
    return cases


def _log_ratio(cfg, key, land, eta, noise, leap, opt, n, seed, budget):
    out = []
    for j, side in enumerate((0, 1)):  # 0: flat (x < 0), 1: sharp
        x0 = land.minima[side].x
        exit_ = ls.Threshold(0.0, direction=1 if side == 0 else -1)
        res = sim(cfg, f"{key}/{side}", land, x0, eta=eta, noise=noise, leap=leap, optimizer=opt, exit=exit_,
                  n_particles=n, max_steps=budget, seed=seed + j)
        out.append(log_mean_time(res, unit="steps"))
    (lf, sf), (ls_, ss) = out
    return lf - ls_, math.sqrt(sf * sf + ss * ss)


def _preference_cases(cfg, cid):
    land = ls.SharpFlatWell(curv_flat=1.0, curv_sharp=4.0, barrier_flat=0.25, barrier_sharp=0.25, curv_saddle=2.0)
    noise = ls.HessianNoise(1.0, floor=1e-3)
    n = cfg.pick(400, 4000)
    budget = 400_000
    eta = 0.1
    setups = {"SGD": (eta, ls.SGD()), "momentum 0.9": (eta * 0.1, ls.SGD(momentum=0.9)), "Adam": (0.1, ls.Adam())}
    ratios = {}
    for i, (name, (e, opt)) in enumerate(setups.items()):
        for sigma_rel in (0.0, 0.5):
            leap = ls.LEAP(sigma_rel, relative=True) if sigma_rel else None
            ratios[name, sigma_rel] = _log_ratio(cfg, f"pref/{name}/{sigma_rel}/{n}", land, e, noise, leap, opt, n,
                                                 1130 + 10 * i + int(sigma_rel * 4), budget)
    params = dict(curv_flat=1.0, curv_sharp=4.0, barrier=0.25, batch=1.0, N=n)
    cases = []
    sgd, sgd_se = ratios["SGD", 0.0]
    mom, mom_se = ratios["momentum 0.9", 0.0]
    adam, adam_se = ratios["Adam", 0.0]
    se = math.hypot(mom_se, sgd_se)
    cases.append(make_case(
        cid, "momentum keeps SGD's flat preference", claim="log(τ_flat/τ_sharp) with momentum ≈ SGD's at the same "
        "effective step η/(1−μ)", source=SRC_AI, kind="claim", theory=sgd, estimate=mom, se=se,
        model_tol=ASYMPTOTIC_TOL * abs(sgd), tol_note="10% of SGD's log-ratio", params=params,
        note=f"SGD {sgd:.3f} ± {sgd_se:.3f}"))
    cases.append(make_case(
        cid, "Adam's flat preference is weaker than SGD's", claim="log(τ_flat/τ_sharp) under Adam < SGD's "
        "(adaptive steps make escape nearly curvature-independent)", source=SRC_AI, kind="claim", theory=sgd,
        estimate=adam, se=math.hypot(adam_se, sgd_se), model_tol=0.0, sided="less", tol_note="significance (3 SE)",
        params=params, note=f"SGD {sgd:.3f}, Adam {adam:.3f}; ln(h_sharp/h_flat) = {math.log(4.0):.3f}"))
    for name in ("momentum 0.9", "Adam"):
        base, base_se = ratios[name, 0.0]
        with_leap, leap_se = ratios[name, 0.5]
        cases.append(make_case(
            cid, f"LEAP (σ = η/2) strengthens the flat preference under {name}",
            claim="log(τ_flat/τ_sharp) larger with LEAP", source="LEAP (Liu et al., CIKM 2022), docs/theory.md §8",
            kind="claim", theory=base, estimate=with_leap, se=math.hypot(base_se, leap_se), model_tol=0.0,
            sided="greater", tol_note="significance (3 SE)", params=dict(params, sigma_rel=0.5),
            note=f"without LEAP {base:.3f} ± {base_se:.3f}"))

    def draw(fig):
        ax = fig.subplots(1, 1)
        names = list(setups)
        for k, sig in enumerate((0.0, 0.5)):
            v = [ratios[nm, sig][0] for nm in names]
            e = [3 * ratios[nm, sig][1] for nm in names]
            ax.errorbar(np.arange(3) + 0.1 * k, v, yerr=e, fmt="o", label=f"LEAP σ/η = {sig}")
        ax.set_xticks(range(3), names)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_ylabel("ln(τ_flat / τ_sharp)  (±3 SE)")
        ax.set_title("flat-minimum preference under SGD-like noise, h_sharp/h_flat = 4", fontsize=9)
        ax.legend(fontsize=8)

    fig = figure(cfg, "case11_optimizers", draw)
    for c in cases:
        c.figure = fig
    return cases


def run(cfg: Config):
    cid = "11 optimizers"
    return _stationary_cases(cfg, cid) + _effective_temperature_cases(cfg, cid) + _preference_cases(cfg, cid)


CASES = [Validation(11, "optimizers", "momentum and Adam: exact moments, effective temperature, flat preference",
                    run)]
