"""Cost of the generated ensemble kernels against NumPy written the obvious vectorised way, side by side.

Every row simulates one configuration with :func:`leap_sde.simulate` and with a NumPy implementation of the
same dynamics (all particles as one array, one ``Generator``; checked pathwise against the kernel on the
kernel's own per-particle streams before anything is timed, so both do the same work).  Rows:

=====================  ===========================================================================  =======
row                    dynamics (η = 0.01 unless stated; exits far away, so every particle runs)     target
=====================  ===========================================================================  =======
1-D double well        (x²−1)², white noise s = 4 + per-coordinate LEAP σ = 0.005                   ≥ 4×
2-D EntropicWell       κ = 1, c = 0.5, white noise s = 4 + per-coordinate LEAP σ = 0.005            ≥ 4×
d = 10 quadratic       H = A Aᵀ/d + I, white noise + LEAP                                           ≥ 3×
d = 100 quadratic      same, d = 100 (NumPy: one matrix product per step)                            ≥ 1.5×
SDE d = 10 / d = 100   ``mode="sde"``, white noise + per-coordinate LEAP (diagonal by construction)  ≥ 2× (d=10)
HessianNoise d = 10    Cov ξ = |H|/B on the d = 10 quadratic (NumPy: the root precomputed)          ≥ 3×
MinibatchNoise B = 16  1-D FiniteSum of the double well, 256 samples, + LEAP                        ≥ 2×
2 threads / 1 thread   the 1-D row on two threads (wall-clock rate ratio, idle machine needed)      ≥ 1.8×
=====================  ===========================================================================  =======

Ratios are of particle-steps per CPU-second of the process (``time.process_time``), single thread, the
implementations interleaved over ``--reps`` repetitions of about ``--seconds`` each; the table gives the
median ratio and its min–max spread (the machine is shared: ratios, not absolute times).  Compile times
are measured in fresh interpreters with empty caches (``NUMBA_CACHE_DIR`` and ``LEAP_SDE_CACHE_DIR`` pointing
at new folders: cold) and again with the caches they left (warm): the default experiment
(``leap-sde simulate``) and a first ``simulate`` on the d = 10 quadratic, each ≤ 15 s cold and ≤ 1 s warm
(the import excluded), and a :class:`~leap_sde.CustomLandscape` whose gradient lives in an importable
module (reused across processes).

    python simulations/bench_kernel.py | tee simulations/results/bench_kernel.txt
    python simulations/bench_kernel.py --quick      # tiny, for tests/test_bench_kernel.py
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numba as nb
import numpy as np

import leap_sde as ls
from leap_sde._rng import fill_normals, particle_seeds

ETA, STD, SIGMA = 0.01, 4.0, 0.005


def _quadratic(d, seed=0):
    A = np.random.default_rng(seed).normal(size=(d, d))
    return A @ A.T / d + np.eye(d)


@dataclass
class Row:
    """One benchmark configuration: the simulate() arguments and the NumPy step of the same dynamics."""

    name: str
    land: ls.Landscape
    x0: np.ndarray
    kw: dict
    n: int                       # particles per timing
    target: float                # kernel / NumPy goal
    numpy_step: object = None    # f(X, Z) -> None, Z the step's normals (N, m) in the kernel's draw order
    normals_per_step: int = 0
    extra: dict = field(default_factory=dict)


def rows(quick=False) -> list:
    dw = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
    far = dict(exit=ls.Threshold(50.0))
    white = dict(eta=ETA, noise=ls.WhiteNoise(STD), leap=ls.LEAP(SIGMA))
    out = []

    def leap_update(X, G, Z):                       # θ ← θ − (η + σ z) ⊙ g, per coordinate
        X -= (ETA + SIGMA * Z) * G

    def step_1d(X, Z):
        x = X[:, 0]
        g = 4.0 * x * (x * x - 1.0) + STD * Z[:, 0]
        X[:, 0] -= (ETA + SIGMA * Z[:, 1]) * g
    out.append(Row("1-D double well", dw, np.array([-1.0]), {**white, **far}, 20_000 if not quick else 512, 4.0,
                   step_1d, 2))

    kappa, c = 1.0, 0.5

    def step_2d(X, Z):
        x, y = X[:, 0], X[:, 1]
        g0 = 4.0 * x * (x * x - 1.0) + 2.0 * c * x * y * y + STD * Z[:, 0]
        g1 = kappa * y + 2.0 * c * x * x * y + STD * Z[:, 1]
        X[:, 0] -= (ETA + SIGMA * Z[:, 2]) * g0
        X[:, 1] -= (ETA + SIGMA * Z[:, 3]) * g1
    out.append(Row("2-D EntropicWell", ls.EntropicWell(kappa, c), np.array([-1.0, 0.0]), {**white, **far},
                   20_000 if not quick else 512, 4.0, step_2d, 4))

    for d, n, target in ((10, 4000, 3.0), (100, 500, 1.5)):
        H = _quadratic(d)

        def step_q(X, Z, H=H, d=d):
            G = X @ H + STD * Z[:, :d]
            leap_update(X, G, Z[:, d:])
        out.append(Row(f"d = {d} quadratic", ls.Quadratic(H), np.zeros(d), {**white, "exit": ls.LeaveBall(np.zeros(d), 1e3)},
                       n if not quick else 64, target, step_q, 2 * d))

    for d, n, target in ((10, 4000, 2.0), (100, 500, 0.0)):
        H = _quadratic(d)

        def step_sde(X, Z, H=H):                    # S = η²s² + σ²(g² + s²) per coordinate
            G = X @ H
            X -= ETA * G + np.sqrt(ETA * ETA * STD * STD + SIGMA * SIGMA * (G * G + STD * STD)) * Z
        out.append(Row(f"SDE d = {d}", ls.Quadratic(H), np.zeros(d),
                       {**white, "mode": "sde", "exit": ls.LeaveBall(np.zeros(d), 1e3)}, n if not quick else 64,
                       target, step_sde, d))

    d, B = 10, 4.0
    H = _quadratic(d)
    lam, V = np.linalg.eigh(H)
    r = np.sqrt(np.maximum(np.abs(lam), 1e-2) / B)

    def step_hess(X, Z, H=H, V=V, r=r):            # ξ = V (r ⊙ z), the root computed once
        G = X @ H + (Z * r) @ V.T
        X -= ETA * G
    out.append(Row("HessianNoise d = 10", ls.Quadratic(H), np.zeros(d),
                   {"eta": ETA, "noise": ls.HessianNoise(B), "exit": ls.LeaveBall(np.zeros(d), 1e3)},
                   4000 if not quick else 64, 3.0, step_hess, d))

    fs = ls.FiniteSum.gaussian(dw, 256, 0.3, seed=1)
    off = fs.offsets[:, 0]
    rng = np.random.default_rng(2)

    def step_mb(X, Z, rng=rng):                     # own generator for the indices (not pathwise)
        idx = rng.integers(0, off.size, size=(X.shape[0], 16))
        y = X[:, :1] - off[idx]
        X[:, 0] -= (ETA + SIGMA * Z[:, 0]) * np.mean(4.0 * y * (y * y - 1.0), axis=1)
    out.append(Row("MinibatchNoise B = 16", fs, np.array([-1.0]),
                   {"eta": ETA, "noise": ls.MinibatchNoise(16), "leap": ls.LEAP(SIGMA), **far},
                   20_000 if not quick else 512, 2.0, step_mb, 1, {"pathwise": False}))
    return out


def kernel_rate(row: Row, steps: int, seed=1, threads=1):
    """(particle-steps per CPU-s, per wall-s) of simulate() on ``row``."""
    c0, w0 = time.process_time(), time.perf_counter()
    res = ls.simulate(row.land, row.x0, n_particles=row.n, max_steps=steps, seed=seed, threads=threads, **row.kw)
    c1, w1 = time.process_time(), time.perf_counter()
    work = float(res.steps.sum())
    return work / max(c1 - c0, 1e-9), work / max(w1 - w0, 1e-9)


def numpy_rate(row: Row, steps: int, seed=1):
    rng = np.random.default_rng(seed)
    X = np.tile(row.x0, (row.n, 1)).astype(np.float64)
    c0 = time.process_time()
    for _ in range(steps):
        row.numpy_step(X, rng.standard_normal((row.n, row.normals_per_step)))
    return row.n * steps / max(time.process_time() - c0, 1e-9)


def pathwise(row: Row, n=32, steps=200, seed=5) -> float:
    """max |Δx| between the kernel and the NumPy step driven by the kernel's own normals (same work)."""
    res = ls.simulate(row.land, row.x0, n_particles=n, max_steps=steps, seed=seed, **row.kw)
    words = particle_seeds(ls.normalize_seed(seed), n)
    Z = np.empty((n, steps * row.normals_per_step))
    for i in range(n):
        fill_normals(words[i], Z[i])
    Z = Z.reshape(n, steps, row.normals_per_step)
    X = np.tile(row.x0, (n, 1)).astype(np.float64)
    for k in range(steps):
        row.numpy_step(X, Z[:, k])
    return float(np.max(np.abs(X - res.positions)))


def calibrate(rate_fn, seconds, lo=8, hi=1 << 22):
    steps = lo
    while steps < hi:
        t = time.process_time()
        rate_fn(steps)
        if time.process_time() - t > seconds / 4:
            break
        steps *= 4
    return steps


_FIRST = r"""
import sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import numpy as np, leap_sde as ls
t1 = time.perf_counter()
what = sys.argv[1]
if what == "quadratic":
    A = np.random.default_rng(0).normal(size=(10, 10))
    ls.simulate(ls.Quadratic(A @ A.T / 10 + np.eye(10)), np.zeros(10), eta=0.01, noise=ls.WhiteNoise(4.0),
                leap=ls.LEAP(0.005), exit=ls.LeaveBall(np.zeros(10), 10.0), n_particles=64, max_steps=100, seed=1)
elif what == "custom":
    sys.path.insert(0, sys.argv[2])
    from bench_user_landscape import grad
    ls.simulate(ls.CustomLandscape(grad, 1, saddle_points=[[0.0]]), [-1.0], eta=0.01, noise=ls.WhiteNoise(4.0),
                exit=ls.Threshold(1.0), n_particles=64, max_steps=100, seed=1)
else:
    from leap_sde.cli import main
    main(["simulate", "--quiet", "--out", sys.argv[2]])
print(f"{t1 - t0:.3f} {time.perf_counter() - t1:.3f}")
"""

_USER_MODULE = """import numba as nb


@nb.njit
def grad(x, p, out):
    out[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0)
"""


def first_calls(quick=False) -> list:
    """(what, cold import s, cold first call s, warm import s, warm first call s) in fresh interpreters."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"), LEAP_SDE_CACHE_DIR=os.path.join(tmp, "k"))
        with open(os.path.join(tmp, "bench_user_landscape.py"), "w") as f:
            f.write(_USER_MODULE)
        for what in ("quadratic", "custom") + (() if quick else ("default",)):
            times = []
            for attempt in range(2):
                arg = os.path.join(tmp, f"run{what}{attempt}") if what == "default" else tmp
                p = subprocess.run([sys.executable, "-c", _FIRST, what, arg], env=env, capture_output=True,
                                   text=True, check=True)
                times += [float(v) for v in p.stdout.split()[-2:]]
            out.append((what, *times))
    return out


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.reps = 0.02, 2
    all_rows = rows(args.quick)
    lines = [f"# leap_sde kernel benchmark ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
             f"numba {nb.__version__}, numpy {np.__version__})",
             f"# single-thread particle-steps per CPU-second, {args.reps} interleaved repetitions of ~{args.seconds} s; "
             f"load average {os.getloadavg()[0]:.1f} at the start", ""]
    checks = []
    for row in all_rows:
        ls.simulate(row.land, row.x0, n_particles=8, max_steps=4, seed=0, **row.kw)  # compile outside timings
        if row.extra.get("pathwise", True):
            checks.append((row.name, pathwise(row)))
    lines.append("pathwise check, NumPy step on the kernel's own normals (32 particles, 200 steps): max |Δx|")
    lines += [f"  {name:<24s} {dx:.1e}" for name, dx in checks] + [""]
    results = []
    for row in all_rows:
        steps = calibrate(lambda s: kernel_rate(row, s), args.seconds)
        np_steps = calibrate(lambda s: numpy_rate(row, s), args.seconds)
        ratios, k_rates, n_rates = [], [], []
        for _ in range(args.reps):
            k, _w = kernel_rate(row, steps)
            nr = numpy_rate(row, np_steps)
            k_rates.append(k)
            n_rates.append(nr)
            ratios.append(k / nr)
        results.append((row, np.median(k_rates), np.median(n_rates), np.median(ratios), min(ratios), max(ratios)))
    lines.append(f"{'row':<24s} {'kernel /CPU-s':>14s} {'NumPy /CPU-s':>13s} {'ratio':>7s} {'spread':>15s} "
                 f"{'target':>7s}  verdict")
    for row, k, nr, med, lo, hi in results:
        verdict = "-" if not row.target else ("MET" if med >= row.target else f"MISSED by {row.target / med:.2f}x")
        tgt = f"{row.target:.1f}x" if row.target else "-"
        lines.append(f"{row.name:<24s} {k:14.3e} {nr:13.3e} {med:6.2f}x [{lo:5.2f}, {hi:5.2f}]x {tgt:>7s}  {verdict}")
    row = all_rows[0]
    steps = calibrate(lambda s: kernel_rate(row, s), args.seconds)
    big = Row(row.name, row.land, row.x0, row.kw, row.n * 4, 0.0)
    pairs, effs = [], []
    for _ in range(args.reps):
        c1, w1 = kernel_rate(big, steps, threads=1)
        c2, w2 = kernel_rate(big, steps, threads=2)
        pairs.append(w2 / w1)
        effs.append(2 * c2 / c1)
    med, eff = float(np.median(pairs)), float(np.median(effs))
    lines.append(f"{'2 threads / 1 thread':<24s} {'(1-D row, wall-clock rates)':>28s} {med:6.2f}x "
                 f"[{min(pairs):5.2f}, {max(pairs):5.2f}]x {'1.8x':>7s}  "
                 + ("MET" if med >= 1.8 else f"MISSED by {1.8 / med:.2f}x (machine shared: load {os.getloadavg()[0]:.1f})"))
    lines.append(f"{'  idle-machine projection':<24s} {'(2 x per-CPU-s rate ratio)':>28s} {eff:6.2f}x "
                 f"[{min(effs):5.2f}, {max(effs):5.2f}]x {'1.8x':>7s}  " + ("MET" if eff >= 1.8 else "MISSED"))
    lines += ["", "optimizer cost per particle-step, relative to plain SGD on the same row (CPU-s, interleaved):"]
    for base in (all_rows[0], all_rows[2]):
        plain_steps = calibrate(lambda s: kernel_rate(base, s), args.seconds)
        for opt, target in ((ls.SGD(momentum=0.9), 1.3), (ls.SGD(momentum=0.9, nesterov=True), 1.3),
                            (ls.Adam(), 2.0), (ls.AdamW(), 2.0)):
            other = Row(base.name, base.land, base.x0, {**base.kw, "optimizer": opt}, base.n, 0.0)
            kernel_rate(other, 4)
            costs = []
            for _ in range(args.reps):
                costs.append(kernel_rate(base, plain_steps)[0] / kernel_rate(other, plain_steps)[0])
            med = float(np.median(costs))
            lines.append(f"  {base.name:<20s} {opt.key:<22s} {med:5.2f}x [{min(costs):4.2f}, {max(costs):4.2f}]  "
                         f"target <= {target:.1f}x  " + ("MET" if med <= target else f"MISSED by {med / target:.2f}x"))
    lines += ["", "first call in a fresh interpreter (import excluded), empty caches (cold) and with the caches the cold "
              "run left (warm):"]
    for what, ci, cf, wi, wf in first_calls(args.quick):
        label = {"quadratic": "simulate, d = 10 quadratic", "custom": "CustomLandscape (importable grad)",
                 "default": "leap-sde simulate (default)"}[what]
        if what == "default":  # the run itself takes most of the warm time: judge the compile part, cold − warm
            verdict = f"compile (cold - warm) {cf - wf:.2f} s: " + ("MET" if cf - wf <= 15 else "MISSED")
        else:
            verdict = "MET" if cf <= 15 and wf <= 1 else "MISSED"
        lines.append(f"  {label:<36s} cold {cf:6.2f} s   warm {wf:5.2f} s   (import {ci:.2f} s / {wi:.2f} s)  {verdict}")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
