"""Case 7: escape under LEAP — the project's LEAP theory and LEAP's claim "exponentially favours flat minima".

Landscape: :class:`leap_sde.SharpFlatWell` with equal barriers, a flat minimum (``H_flat = 1``) and a sharp one
(``H_sharp`` ∈ {2, 4}), saddle curvature 4.  Discrete LEAP ``x' = x − (η + ε)(U' + ξ)``, ``ε ~ N(0, σ²)``
(1-D: per-coordinate = scalar).  Exit at the other minimum.

References: the exact MFPT of the discrete LEAP chain (``theory.discrete_mfpt_1d`` with the random step
integrated exactly), and the project's continuous LEAP model (docs/theory.md §8.2, derived in this project)
``D(θ) = ((η² + σ²)C(θ) + σ²U'(θ)²)/(2η)`` by Itô quadrature (``theory.leap_mfpt_1d``).

(a) SGD noise ``C = |U''|/B`` + LEAP: the flat/sharp log-ratio against λ = 2BΔL/η (exponential law kept) and
    against σ at fixed η, B (the theory predicts the effective batch B η²/(η² + σ²): LEAP *weakens* the ratio).
(b) white gradient noise + LEAP against white noise of equal variance at the minima (same D there): the
    log-ratio's excess over the white-noise value against the curvature gap 1/H_flat − 1/H_sharp.
"""
from __future__ import annotations

import math

import numpy as np

import leap_sde as ls
from leap_sde import theory as th

from ._core import ASYMPTOTIC_TOL, Config, Validation, figure, make_case, mean_time
from ._np import funcs_1d
from .sgd_noise import FLOOR, escape_setup, hess_var, refs, run_escape

SRC_DISC = "exact MFPT of the discrete LEAP chain (derived in this project)"
SRC_LEAP = "LEAP diffusion model, docs/theory.md §8.2 (derived in this project)"
SRC_CLAIM = "LEAP, Liu et al. CIKM 2022 (arXiv 2208.11873), abstract (docs/theory.md §8.1)"
HF, HB, DL, ETA = 1.0, 4.0, 0.03, 0.02


def _land(hs):
    return ls.SharpFlatWell(curv_flat=HF, curv_sharp=hs, barrier_flat=DL, barrier_sharp=DL, curv_saddle=HB)


def _sde_time(land, side, sigma, noise_var):
    U, dU, _ = funcs_1d(land)
    x0, xc, direction = escape_setup(land, side)
    return th.leap_mfpt_1d(U, dU, x0, xc, x0 - direction * 0.8, eta=ETA, sigma=sigma, noise_var=noise_var,
                           n=60_001)


def run(cfg: Config):
    cid = "7 leap-escape"
    cases = []
    rec = {}

    def escape(tag, land, side, sigma, noise, noise_var, n, seed):
        key = (tag, side)
        disc, gerr, _ = refs(cfg, land, side, ETA, noise_var, sigma=sigma)
        leap = ls.LEAP(sigma) if sigma > 0 else None
        res = run_escape(cfg, f"leap/{tag}/{side}/{n}" if sigma > 0 else tag + f"/{side}/{n}", land, side, ETA,
                         noise, n, seed, disc, leap=leap)
        m, se = mean_time(res)
        sde = _sde_time(land, side, sigma, noise_var)
        rec[key] = dict(m=m, se=se, disc=disc, gerr=gerr, sde=sde)
        well = "flat" if side == "left" else "sharp"
        par = dict(H_flat=HF, H_sharp=land.curv_sharp, H_b=HB, barrier=DL, eta=ETA, sigma=sigma, N=n,
                   censored=res.n_censored)
        if sigma > 0:
            cases.append(make_case(
                cid, f"{tag}, from {well}: MC vs exact LEAP chain", claim="mean escape time = exact MFPT of the "
                "discrete LEAP chain", source=SRC_DISC, kind="exact", theory=disc, estimate=m, se=se,
                model_tol=gerr, tol_note="grid + step-law quadrature error (Richardson step)", params=par))
            cases.append(make_case(
                cid, f"{tag}, from {well}: MC vs LEAP SDE theory", claim="the continuous LEAP model "
                "D = ((η²+σ²)C + σ²U'²)/(2η) gives the mean escape time", source=SRC_LEAP, kind="asymptotic",
                theory=sde, estimate=m, se=se, model_tol=ASYMPTOTIC_TOL * sde,
                tol_note="diffusion approximation: nominal 10%", params=par,
                note=f"exact chain/SDE = {disc / sde:.3f}"))
        return rec[key]

    def lr(tag):
        f, s = rec[(tag, "left")], rec[(tag, "right")]
        return (math.log(f["m"] / s["m"]), math.hypot(f["se"] / f["m"], s["se"] / s["m"]),
                math.log(f["disc"] / s["disc"]), math.log(f["sde"] / s["sde"]))

    # ---------------- (a) SGD noise + LEAP -----------------------------------------------------------
    land4 = _land(4.0)
    lams = cfg.pick((4.0, 6.0), (6.0, 9.0))
    n = cfg.pick(300, 1500)
    for j, lam in enumerate(lams):
        B = lam * ETA / (2 * DL)
        rs = (0.0, 1.0) if j == 0 else (0.0, 0.5, 1.0)
        for r in rs:
            tag = f"sf/{lam}/sgd" if r == 0 else f"sgd+leap λ={lam:g} σ={r:g}η"
            for side in ("left", "right"):
                # σ = 0 uses the key and seed of case 6 (shared run when both cases run in one process)
                seed = (900 + 10 * j + (side == "right")) if r == 0 else (1000 + 10 * j + int(4 * r) * 2 + (side == "right"))
                escape(tag, land4, side, r * ETA, ls.HessianNoise(B, floor=FLOOR), hess_var(land4, B), n, seed)
    lam1, lam2 = lams
    t1, t2 = f"sgd+leap λ={lam1:g} σ=1η", f"sgd+leap λ={lam2:g} σ=1η"
    (a1, e1, d1, s1), (a2, e2, d2, s2) = lr(t1), lr(t2)
    slope, slope_se = (a2 - a1) / (lam2 - lam1), math.hypot(e1, e2) / (lam2 - lam1)
    par = dict(H_flat=HF, H_sharp=4.0, H_b=HB, barrier=DL, eta=ETA, sigma=ETA, lambdas=list(lams), N=n)
    cases.append(make_case(
        cid, "SGD+LEAP (σ=η): d log(τ_flat/τ_sharp)/dλ > 0", claim="with LEAP the preference for flat minima "
        "stays exponential: log(τ_flat/τ_sharp) grows linearly in λ = 2BΔL/η", source=SRC_CLAIM, kind="claim",
        theory=0.0, estimate=slope, se=slope_se, model_tol=0.0, sided="greater",
        tol_note="significance (> 3 SE)", params=par,
        note=f"exact chain {(d2 - d1) / (lam2 - lam1):.4f}; SDE theory {(s2 - s1) / (lam2 - lam1):.4f}; "
             f"Xie form with B_eff = Bη²/(η²+σ²): {0.5 * 0.6:.3f}"))
    base = lr(f"sf/{lam2}/sgd")
    for r in (0.5, 1.0):
        a, e, d, sd = lr(f"sgd+leap λ={lam2:g} σ={r:g}η")
        diff, diff_se = a - base[0], math.hypot(e, base[1])
        par = dict(H_flat=HF, H_sharp=4.0, H_b=HB, barrier=DL, eta=ETA, B=lam2 * ETA / (2 * DL), sigma=r * ETA, N=n)
        cases.append(make_case(
            cid, f"SGD+LEAP σ={r:g}η vs SGD: change of log(τ_flat/τ_sharp)", claim="LEAP changes SGD's flat/sharp "
            "log-ratio as the exact chain predicts (theory: it weakens it, B_eff = Bη²/(η²+σ²))", source=SRC_DISC,
            kind="exact", theory=d - base[2], estimate=diff, se=diff_se,
            model_tol=sum(rec[(t, s)]["gerr"] / rec[(t, s)]["disc"] for t in (f"sgd+leap λ={lam2:g} σ={r:g}η",
                                                                                 f"sf/{lam2}/sgd")
                          for s in ("left", "right")),
            tol_note="grid errors of the four references", params=par, note=f"SDE theory {sd - base[3]:.3f}"))
        cases.append(make_case(
            cid, f"claim: LEAP σ={r:g}η strengthens SGD's preference for flat minima", claim="adding LEAP to SGD "
            "(same η, B) increases log(τ_flat/τ_sharp)", source=SRC_CLAIM + " (our reading: a benefit of LEAP)",
            kind="claim", theory=0.0, estimate=diff, se=diff_se, model_tol=0.0, sided="greater",
            tol_note="significance (> 3 SE)", params=par))

    # ---------------- (b) white noise + LEAP vs white noise of equal variance --------------------------
    ratio = cfg.pick(5.0, 6.0)  # ΔL/D at the minima
    D = DL / ratio
    n2 = cfg.pick(300, 1500)
    gaps, excess = {}, {}
    for i, hs in enumerate((2.0, 4.0)):
        land = _land(hs)
        for k, r in enumerate((0.0, 1.0, 2.0)):
            sig = r * ETA
            var = 2 * ETA * D / (ETA**2 + sig**2)  # equal diffusion D at the minima
            tag = f"white+leap H_s={hs:g} σ={r:g}η" if r > 0 else f"white H_s={hs:g}"
            for side in ("left", "right"):
                escape(tag, land, side, sig, ls.WhiteNoise(math.sqrt(var)), var, n2, 1100 + 20 * i + 4 * k + (side == "right"))
                if r == 0:  # the white-noise reference runs also get the exact-chain row
                    q = rec[(tag, side)]
                    cases.append(make_case(
                        cid, f"{tag}, from {'flat' if side == 'left' else 'sharp'}: MC vs exact chain",
                        claim="mean escape time = exact MFPT of the discrete chain", source=SRC_DISC, kind="exact",
                        theory=q["disc"], estimate=q["m"], se=q["se"], model_tol=q["gerr"],
                        tol_note="grid error", params=dict(H_sharp=hs, eta=ETA, D=D, N=n2)))
        w = lr(f"white H_s={hs:g}")
        for r in (1.0, 2.0):
            a = lr(f"white+leap H_s={hs:g} σ={r:g}η")
            gaps.setdefault(r, []).append(1 / HF - 1 / hs)
            excess.setdefault(r, []).append((a[0] - w[0], math.hypot(a[1], w[1]), a[2] - w[2], a[3] - w[3]))
    for r in (1.0, 2.0):
        g = np.array(gaps[r])
        E = np.array(excess[r])
        wts = 1 / E[:, 1] ** 2
        c = float(np.sum(wts * g * E[:, 0]) / np.sum(wts * g * g))
        c_se = float(1 / math.sqrt(np.sum(wts * g * g)))
        c_disc = float(np.sum(wts * g * E[:, 2]) / np.sum(wts * g * g))
        c_sde = float(np.sum(wts * g * E[:, 3]) / np.sum(wts * g * g))
        par = dict(H_flat=HF, H_sharp=[2.0, 4.0], H_b=HB, barrier=DL, eta=ETA, sigma=r * ETA, D_at_minima=D, N=n2)
        cases.append(make_case(
            cid, f"white+LEAP σ={r:g}η: excess log-ratio per unit curvature gap", claim="LEAP exponentially favours "
            "flat minima: log(τ_flat/τ_sharp) exceeds that of white noise of equal variance by c·(1/H_flat − "
            "1/H_sharp), c > 0", source=SRC_CLAIM, kind="claim", theory=0.0, estimate=c, se=c_se, model_tol=0.0,
            sided="greater", tol_note="significance (> 3 SE)", params=par,
            note=f"exact chain c = {c_disc:.3f}; LEAP SDE theory c = {c_sde:.3f}"))
        cases.append(make_case(
            cid, f"white+LEAP σ={r:g}η: excess slope vs exact chain", claim="the excess log-ratio slope equals the "
            "exact discrete-chain value", source=SRC_DISC, kind="exact", theory=c_disc, estimate=c, se=c_se,
            model_tol=0.0, tol_note="grid errors negligible (< 1e-3 in log)", params=par))

    def draw(fig):
        ax1, ax2 = fig.subplots(1, 2)
        for r, mk in ((0.5, "v"), (1.0, "o")):
            a, e, d, sd = lr(f"sgd+leap λ={lam2:g} σ={r:g}η")
            ax1.errorbar([r], [a], yerr=[3 * e], fmt=mk, color="C0")
            ax1.plot([r], [d], "ks", mfc="none")
            ax1.plot([r], [sd], "k+")
        ax1.errorbar([0.0], [base[0]], yerr=[3 * base[1]], fmt="o", color="C0", label="MC (±3 SE)")
        ax1.plot([0.0], [base[2]], "ks", mfc="none", label="exact chain")
        ax1.plot([0.0], [base[3]], "k+", label="SDE theory")
        rr = np.linspace(0, 1.1, 50)
        Beff = lam2 * ETA / (2 * DL) * 1 / (1 + rr**2)
        ax1.plot(rr, [0.5 * math.log(4) + (2 * b * DL / ETA) * 0.6 for b in Beff], "k--", lw=0.8,
                 label="Xie form, B_eff")
        ax1.set_xlabel("σ/η")
        ax1.set_ylabel("log(τ_flat / τ_sharp)")
        ax1.set_title(f"SGD + LEAP, λ = {lam2:g}, H_sharp = 4", fontsize=8)
        ax1.legend(fontsize=7)
        for r, col in ((1.0, "C1"), (2.0, "C2")):
            E = np.array(excess[r])
            ax2.errorbar(gaps[r], E[:, 0], yerr=3 * E[:, 1], fmt="o", color=col, label=f"σ={r:g}η (MC)")
            ax2.plot(gaps[r], E[:, 2], "s", mfc="none", color=col)
            ax2.plot(gaps[r], E[:, 3], "+", color=col)
        ax2.axhline(0, color="gray", lw=0.5)
        ax2.set_xlabel("curvature gap 1/H_flat − 1/H_sharp")
        ax2.set_ylabel("log-ratio(LEAP) − log-ratio(white, equal D)")
        ax2.set_title(f"white noise + LEAP, ΔL/D = {ratio:g} at the minima; □ exact chain, + SDE", fontsize=8)
        ax2.legend(fontsize=7)

    fig = figure(cfg, "case7_leap_escape", draw)
    for c in cases:
        c.figure = fig
    return cases


CASES = [Validation(7, "leap-escape", "LEAP escape: exact chain and LEAP SDE theory; 'exponentially favours flat "
                    "minima' tested against white noise of equal variance", run)]
