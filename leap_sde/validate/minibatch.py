"""Case 9: minibatch SGD on a finite-sum landscape against its Gaussian models.

``L(θ) = (1/n) Σ_i ℓ_i(θ)``, ``ℓ_i(θ) = (θ − a_i)²−1)²`` with n = 16 Gaussian offsets (scale 0.4): a smoothed,
slightly asymmetric double well.  True minibatch SGD draws B of the n per-sample gradients per step (with
replacement): its noise is an average of B atoms, bounded and non-Gaussian, with covariance ``C(θ)/B``.

Three models of the same optimizer:

1. the **Gaussian discrete chain** ``θ' = θ − η(L' + N(0, C(θ)/B))`` — exact MFPT by ``theory.discrete_mfpt_1d``;
   the simulator's ``mode="sde"`` with ``MinibatchNoise`` integrates exactly this chain (Euler–Maruyama of
   ``dθ = −L'dt + √(2D)dW``, ``D = ηC/(2B)``, ``dt = η``);
2. the **continuous SDE** with ``D(θ) = ηC(θ)/(2B)`` — exact MFPT by Itô quadrature (docs/theory.md §1.3);
3. **true minibatch** SGD (simulated).

Model 1 vs the simulator's SDE mode is an exact check; true minibatch vs model 1 tests the Gaussian (CLT)
approximation of the noise; model 2 vs model 1 tests the diffusion approximation, which fails here because
the per-sample gradient variance nearly vanishes near the saddle (docs/theory.md §4.3) while the
discrete chain jumps across that region.
"""
from __future__ import annotations

import math

import numpy as np

import leap_sde as ls
from leap_sde import theory as th

from ._core import ASYMPTOTIC_TOL, Config, Validation, figure, make_case, mean_time, sim
from ._np import finite_sum_funcs


def landscape():
    return ls.FiniteSum.gaussian(ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), 16, 0.4, seed=0)


def run(cfg: Config):
    cid = "9 minibatch"
    cases = []
    fs = landscape()
    U, dU, C = finite_sum_funcs(fs)
    mins, sads = fs.minima, fs.saddles  # computed on a grid at every access: keep them
    a, b, xs_ = float(mins[0].x[0]), float(mins[1].x[0]), float(sads[0].x[0])
    x_l = a - 1.5
    n = cfg.pick(300, 3000)
    rows = []
    for i, (B, eta) in enumerate(((1, 0.05), (4, 0.12), (16, 0.25))):
        cv = lambda x, B=B: C(x) / B  # noqa: E731
        nc = cfg.pick(600, 2000)
        t1 = th.discrete_mfpt_1d(dU, a, b, x_l, eta=eta, noise_var=cv, n_cells=nc) * eta
        t2 = th.discrete_mfpt_1d(dU, a, b, x_l, eta=eta, noise_var=cv, n_cells=nc // 2) * eta
        disc, gerr = t1 + (t1 - t2) / 3, abs(t1 - t2) / 3
        sde_logT = th.mfpt_1d(U, lambda x, cv=cv, eta=eta: eta * cv(x) / 2, a, b, x_l, dU=dU, n=100_001, log=True)
        kw = dict(eta=eta, noise=ls.MinibatchNoise(B), exit=ls.Threshold(b),
                  max_steps=int(cfg.pick(20, 40) * disc / eta) + 1000)
        # B = 1 minibatch escapes ~300x more slowly than its Gaussian model: fewer particles, censored at
        # 20x (quick) or 40x (full) the Gaussian time; the censored exponential MLE uses their exposure
        n_mb = n if B > 1 else min(n, cfg.pick(100, 1000))
        r_sde = sim(cfg, f"mb/sde/{B}/{eta}/{n}", fs, [a], mode="sde", seed=1400 + i, n_particles=n, **kw)
        r_mb = sim(cfg, f"mb/disc/{B}/{eta}/{n_mb}", fs, [a], mode="discrete", seed=1410 + i, n_particles=n_mb, **kw)
        m_sde, se_sde = mean_time(r_sde)
        m_mb, se_mb = mean_time(r_mb)
        rows.append((B, eta, m_sde, se_sde, m_mb, se_mb, disc, sde_logT))
        par = dict(n_samples=16, offset_scale=0.4, B=B, eta=eta, N=n, barrier=round(float(U(np.array([xs_]))[0] - U(np.array([a]))[0]), 4),
                   C_min=round(float(C(np.array([a]))[0]), 3), C_saddle=round(float(C(np.array([xs_]))[0]), 3))
        cases.append(make_case(
            cid, f"B={B}, η={eta}: simulator Gaussian model vs exact chain", claim="mode='sde' with MinibatchNoise "
            "integrates the Gaussian chain θ' = θ − η(L' + N(0, C/B)) exactly", source="exact MFPT of the discrete "
            "Gaussian chain (derived in this project)", kind="exact", theory=disc, estimate=m_sde, se=se_sde,
            model_tol=gerr, tol_note="grid error", params=dict(par, censored=r_sde.n_censored)))
        cases.append(make_case(
            cid, f"B={B}, η={eta}: true minibatch vs Gaussian noise (log τ)", claim="minibatch SGD escapes like "
            "SGD with Gaussian noise of the same covariance C(θ)/B (CLT)", source="Gaussian SGD model (docs/theory.md "
            "§0.2, §4.1: Cov ξ = C/B)", kind="asymptotic", theory=math.log(disc), estimate=math.log(m_mb),
            se=se_mb / m_mb, model_tol=math.log(1 + ASYMPTOTIC_TOL), tol_note="CLT approximation: nominal 10% in τ",
            params=dict(par, N=n_mb, censored=r_mb.n_censored), note=f"minibatch/Gaussian = {m_mb / disc:.3f}"))
        # typical in-well fluctuations: the quasi-stationary law in the left basin (positions after K steps of
        # the particles that have not crossed the saddle) against the exact QSD of the Gaussian chain
        K = 300
        rq = sim(cfg, f"mb/qsd/{B}/{eta}/{n}", fs, [a], mode="discrete", seed=1420 + i, eta=eta,
                 noise=ls.MinibatchNoise(B), exit=ls.Threshold(xs_ + 1e-9), max_steps=K,
                 n_particles=cfg.pick(20_000, 100_000))
        xin = rq.positions[rq.status == ls.Status.CENSORED, 0]
        d2 = (xin - a) ** 2
        qc, qw, _ = th.discrete_stationary_1d(dU, x_l, xs_, eta=eta, noise_var=cv, absorb="high", n_cells=nc)
        qc2, qw2, _ = th.discrete_stationary_1d(dU, x_l, xs_, eta=eta, noise_var=cv, absorb="high", n_cells=nc // 2)
        q1, q2 = float(np.sum(qw * (qc - a) ** 2)), float(np.sum(qw2 * (qc2 - a) ** 2))
        cases.append(make_case(
            cid, f"B={B}, η={eta}: in-well E(θ−a)², minibatch vs Gaussian", claim="the typical (quasi-stationary) "
            "fluctuations of minibatch SGD in a well equal those of the Gaussian chain with the same covariance",
            source="Gaussian SGD model (docs/theory.md §0.2, §2.2: only second moments at leading order)",
            kind="asymptotic", theory=q1 + (q1 - q2) / 3, estimate=float(d2.mean()),
            se=float(d2.std(ddof=1) / math.sqrt(d2.size)), model_tol=ASYMPTOTIC_TOL * q1,
            tol_note="CLT approximation: nominal 10%", params=dict(par, steps=K, N=int(d2.size))))
        cases.append(make_case(
            cid, f"B={B}, η={eta}: continuous SDE D = ηC/(2B) (log τ)", claim="the diffusion approximation predicts "
            "the escape time of SGD", source="docs/theory.md §0.2 (t = kη, D = ηC/2), §1.3 Itô quadrature",
            kind="asymptotic", theory=sde_logT, estimate=math.log(m_mb), se=se_mb / m_mb,
            model_tol=math.log(1 + ASYMPTOTIC_TOL), tol_note="approximation: nominal 10% in τ", params=par,
            note=f"SDE/minibatch = e^{sde_logT - math.log(m_mb):.1f}"))

    def draw(fig):
        a1, a2 = fig.subplots(1, 2)
        xs = np.linspace(a - 0.6, b + 0.6, 400)
        a1.plot(xs, U(xs) - U(np.array([a]))[0], "k-", label="L(θ) − L(a)")
        a1.set_xlabel("θ")
        a1.set_ylabel("loss")
        a1b = a1.twinx()
        a1b.plot(xs, C(xs), "C1-", label="C(θ)")
        a1b.set_yscale("log")
        a1b.set_ylabel("per-sample gradient variance C(θ)", color="C1")
        a1.set_title("finite sum of 16 shifted (x²−1)²", fontsize=8)
        lab = [f"B={r[0]}\nη={r[1]}" for r in rows]
        xx = np.arange(len(rows))
        a2.errorbar(xx - 0.1, [math.log(r[4]) for r in rows], yerr=[3 * r[5] / r[4] for r in rows], fmt="o",
                    label="true minibatch (MC)")
        a2.errorbar(xx + 0.1, [math.log(r[2]) for r in rows], yerr=[3 * r[3] / r[2] for r in rows], fmt="s",
                    label="Gaussian chain (MC, mode='sde')")
        a2.plot(xx, [math.log(r[6]) for r in rows], "k_", ms=20, label="Gaussian chain (exact)")
        a2.plot(xx, [r[7] for r in rows], "r^", label="continuous SDE (Itô quadrature)")
        a2.set_xticks(xx)
        a2.set_xticklabels(lab)
        a2.set_ylabel("log mean escape time")
        a2.legend(fontsize=7)

    fig = figure(cfg, "case9_minibatch", draw)
    for c in cases:
        c.figure = fig
    return cases


CASES = [Validation(9, "minibatch", "Minibatch SGD on a finite sum vs its Gaussian chain and SDE models", run)]
