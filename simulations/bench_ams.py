"""Efficiency of the rare-event engine (:func:`leap_sde.ams`) against brute force, and how its cost grows.

Problem: the double well ``(x² − 1)²`` (ΔU = 1), discrete GD + white noise of temperature D (η = 0.01,
``std = √(2D/η)``), from the minimum −1 to the saddle 0.  References: the exact discrete-chain MFPT
(``theory.discrete_mfpt_1d``, elimination without cancellation, accurate at any barrier; grid-extrapolated).

* **Efficiency at ΔU/D = 8**: for an estimator of the mean escape steps, ``relative variance × work``
  (particle-steps); brute force (``simulate`` until every particle escapes): ``(1/n)·n·τ = τ``; AMS:
  ``(SE/mean)² · work_steps``.  Target: AMS ≥ 10× smaller.
* **Cost against ΔU/D** ∈ {8, 12, 16, 20, 25, 30} at fixed replicas and runs: work, wall time, relative SE and
  the estimate against the reference; target at ΔU/D = 25: ≤ 5% relative SE in ≤ 5 minutes (2 cores), where
  brute force would need ~``e^{25}`` steps per escape.

    python simulations/bench_ams.py | tee simulations/results/bench_ams.txt
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import time
import warnings

import numpy as np

import leap_sde as ls
import leap_sde.theory as th

LAND = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
ETA = 0.01


def _dU(x):
    return 4.0 * x * (x * x - 1.0)


def reference(ratio):
    std = math.sqrt(2.0 / ratio / ETA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t1 = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=ETA, noise_var=std**2, n_cells=3000)
        t2 = th.discrete_mfpt_1d(_dU, -1.0, 0.0, -3.0, eta=ETA, noise_var=std**2, n_cells=1500)
    if np.isfinite(t1) and np.isfinite(t2):
        return t1 + (t1 - t2) / 3, "exact chain"
    U = lambda x: (x * x - 1.0) ** 2  # noqa: E731
    return th.mfpt_1d(U, 1.0 / ratio, -1.0, 0.0, -3.0, dU=_dU) / ETA, "SDE quadrature"


def run_ams(ratio, n_rep, n_runs, seed, threads):
    std = math.sqrt(2.0 / ratio / ETA)
    t = time.perf_counter()
    res = ls.ams(LAND, [-1.0], eta=ETA, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0), n_replicas=n_rep,
                 n_runs=n_runs, seed=seed, threads=threads)
    return res, time.perf_counter() - t


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    ratios = (8, 12) if args.quick else (8, 12, 16, 20, 25, 30)
    n_bf = 200 if args.quick else 2000
    lines = [f"# leap_sde AMS benchmark ({datetime.date.today()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
             f"# double well (x²−1)², GD + white noise, η = {ETA}, exit at the saddle; AMS: {args.replicas} replicas "
             f"x {args.runs} runs, {args.threads} threads", ""]
    # efficiency at dU/D = 8
    std = math.sqrt(2.0 / 8.0 / ETA)
    t = time.perf_counter()
    bf = ls.simulate(LAND, [-1.0], eta=ETA, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0), n_particles=n_bf,
                     max_steps=50_000_000, seed=1, threads=args.threads)
    t_bf = time.perf_counter() - t
    m_bf = float(bf.steps.mean())
    rel_bf = float(bf.steps.std(ddof=1) / math.sqrt(bf.n_particles)) / m_bf
    work_bf = float(bf.steps.sum())
    a8, t_a8 = run_ams(8, args.replicas, args.runs, 2, args.threads)
    eff_bf, eff_a = rel_bf**2 * work_bf, a8.relative_se**2 * a8.work_steps
    ref8, kind8 = reference(8)
    lines += ["efficiency at ΔU/D = 8 (relative variance x work, particle-steps; smaller is better)",
              f"  brute force  {n_bf} escapes: mean {m_bf:.4g} ± {rel_bf * m_bf:.3g}, work {work_bf:.3g}, "
              f"{t_bf:.1f} s -> {eff_bf:.3g}",
              f"  AMS          mean {a8.mean_steps:.4g} ± {a8.mean_steps_se:.3g}, work {a8.work_steps:.3g}, "
              f"{t_a8:.1f} s -> {eff_a:.3g}",
              f"  reference ({kind8}) {ref8:.4g};  brute force / AMS = {eff_bf / eff_a:.1f}x  (target >= 10x: "
              + ("MET" if eff_bf / eff_a >= 10 else "MISSED") + ")", ""]
    lines.append(f"{'ΔU/D':>5s} {'reference':>11s} {'kind':>15s} {'AMS mean':>11s} {'rel SE':>7s} {'AMS/ref':>8s} "
                 f"{'work':>10s} {'wall s':>7s}  target")
    for ratio in ratios:
        res, wall = run_ams(ratio, args.replicas, args.runs, 10 + ratio, args.threads)
        ref, kind = reference(ratio)
        tgt = ""
        if ratio == 25:
            tgt = "<= 5% in <= 300 s: " + ("MET" if res.relative_se <= 0.05 and wall <= 300 else "MISSED")
        lines.append(f"{ratio:5d} {ref:11.4g} {kind:>15s} {res.mean_steps:11.4g} {res.relative_se:7.3f} "
                     f"{res.mean_steps / ref:8.3f} {res.work_steps:10.3g} {wall:7.1f}  {tgt}")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
