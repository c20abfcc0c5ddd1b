"""Throughput of the compiled ensemble kernel against what a user would otherwise write.

Particle-steps per second, side by side in one run, on the same dynamics::

    θ ← θ − (η + σ z₂) ⊙ (∇L(θ) + s z₁)      z₁, z₂ ~ N(0, I) per coordinate (gradient noise first, then LEAP)

until ``θ[0] ≥ 1`` (threshold exit) or the step budget, for

- ``1-D``: the double well ``(x² − 1)² = Polynomial([1, 0, -2, 0, 1])`` from ``x = −1``;
- ``2-D``: ``EntropicWell(κ=1, c=0.5)`` from ``(−1, 0)``,

with ``η = 0.01``, ``s = 4`` (temperature ``D = ηs²/2 = 0.08``, so escapes over the barrier ``ΔU = 1`` are
rare in the timed window: the kernel's early exit barely matters and every implementation does the same
work; the steps actually simulated, ``res.steps.sum()``, are what is counted).  Implementations:

- ``leap_sde kernel``: :func:`leap_sde.simulate` (first call outside the timing; compile time reported
  separately, in fresh subprocesses, with the on-disk cache and with an empty ``NUMBA_CACHE_DIR``);
- ``NumPy``: :func:`numpy_run`, all particles as one array, compacted when some exit; on all cores the
  particles are split into one chunk per thread, each with its own ``Generator`` (ufuncs release the GIL);
- ``PyTorch``: :func:`torch_run`, the same on CPU tensors with ``torch.set_num_threads``;
- ``torchsde``: Euler on the equivalent Itô SDE, no exit check (only where ``torchsde`` is installed);
- ``fused njit loop``: a minimal hand-written Numba loop of the same dynamics with the kernel's generator
  (what the dynamics cost without the kernel's generality; a profile by ablation), and for 1-D the same
  loop advancing 2 particles per iteration (what overlapping two particles' dependency chains buys);
- ``RNG floor``: a ``@njit(parallel=True)`` loop that only draws the same number of normals (``2d`` per
  particle-step) with the kernel's per-particle xoshiro256+/ziggurat streams, and, for reference, with a
  NumPy ``Generator`` passed into compiled code (one generator per thread, ``nogil``).

Every timing is repeated (``--reps``, default 3) with the implementations interleaved, and the best is
kept: the machine is shared and noisy, so ratios matter, not absolute times.  Work per timing is
calibrated to about ``--seconds`` of run time.  Rates are reported per second of wall time and per
CPU-second of the process (``time.process_time``, all threads): on a machine other users load, the
second is the steadier basis for ratios; the 2-core target is then read as 2 × the per-CPU-s rate of the
2-thread run.  Targets (issue 3): ≥ 1e8 particle-steps/s for 1-D on
2 cores, ≥ 4× NumPy, ≥ 0.7 of the RNG floor, < 200 MB peak RSS for an escape-only run of 10⁶ particles.

Before the timings the script checks that the implementations agree: pathwise (NumPy, PyTorch and the
fused loop driven by the kernel's own per-particle streams reproduce the kernel's exit steps and final
positions) and statistically (escape fractions with independent generators agree within 5 standard
errors).  ``--quick`` is a tiny run for the test suite (``tests/test_bench_kernel.py``).

    python simulations/bench_kernel.py | tee simulations/results/bench_kernel.txt
    python simulations/bench_kernel.py --quick
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numba as nb
import numpy as np

import leap_sde as ls
from leap_sde._rng import fill_normals, normal_t, particle_seeds, seed_state

ESCAPED, CENSORED, DIVERGED = int(ls.Status.ESCAPED), int(ls.Status.CENSORED), int(ls.Status.DIVERGED)

TARGET_RATE_1D = 1e8     # particle-steps/s, 1-D, 2 cores
TARGET_VS_NUMPY = 4.0    # kernel / NumPy
TARGET_VS_FLOOR = 0.7    # kernel / RNG floor
TARGET_MEMORY_MB = 200.0  # peak RSS, escape-only run of 10⁶ particles


# --------------------------------------------------------------------------------------------------
# The benchmarked dynamics
@dataclass(frozen=True)
class Case:
    """One benchmark problem: discrete SGD with white gradient noise ``std`` and per-coordinate absolute
    LEAP ``sigma`` at rate ``eta`` on ``landscape`` from ``x0``, exit when ``θ[0] ≥ threshold``."""

    name: str
    landscape: ls.Landscape
    x0: tuple
    eta: float = 0.01
    std: float = 4.0
    sigma: float = 0.005
    threshold: float = 1.0

    @property
    def dim(self) -> int:
        return self.landscape.dim

    def simulate(self, n: int, steps: int, seed, threads: Optional[int] = None) -> ls.EscapeResult:
        return ls.simulate(self.landscape, list(self.x0), eta=self.eta, noise=ls.WhiteNoise(self.std),
                           leap=ls.LEAP(self.sigma), exit=ls.Threshold(self.threshold), n_particles=n,
                           max_steps=steps, seed=seed, threads=threads)


def cases() -> dict:
    return {"1-D": Case("1-D", ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), (-1.0,)),
            "2-D": Case("2-D", ls.EntropicWell(1.0, 0.5), (-1.0, 0.0))}


def gradient(case: Case, X):
    """∇L at the columns of ``X`` (d, m), NumPy or torch; the same operations in the same order as the
    kernel's ``grad1_at``/``grad_at``, so that paths driven by the same normals agree to the last bit."""
    land = case.landscape
    if isinstance(land, ls.Polynomial):
        c = land.coeffs
        x = X[0]
        v = 0.0 * x  # Horner as the kernel, v = v·x + j·c_j from the top, in place: one array in all
        v += (len(c) - 1) * c[-1]
        for j in range(len(c) - 2, 0, -1):
            v *= x
            v += j * c[j]
        return v[None, :]
    if isinstance(land, ls.EntropicWell):
        kappa, c = land.kappa, land.c
        x, y = X[0], X[1]
        g0 = 4.0 * x * (x * x - 1.0) + 2.0 * c * x * y * y
        g1 = kappa * y + 2.0 * c * x * x * y
        return g0[None, :], g1[None, :]
    raise TypeError(f"no vectorised gradient for {type(land).__name__}")


# --------------------------------------------------------------------------------------------------
# NumPy and PyTorch implementations of the same dynamics
@dataclass
class Paths:
    """Outcome of a vectorised run: status (n,), steps (n,), final positions (n, d)."""

    status: np.ndarray
    steps: np.ndarray
    positions: np.ndarray


def numpy_run(case: Case, n: int, steps: int, *, rng: Optional[np.random.Generator] = None,
              noise: Optional[np.ndarray] = None) -> Paths:
    """The dynamics on all ``n`` particles as one (d, m) array; particles that exit are compacted away.

    ``noise`` (steps, 2, d, n) injects the normals (z₁ then z₂) instead of drawing them from ``rng``.
    """
    d = case.dim
    bz1, bz2, bx = np.empty(d * n), np.empty(d * n), np.empty(d * n)
    X = bx.reshape(d, n)
    X[...] = np.asarray(case.x0)[:, None]
    idx = np.arange(n)                       # original particle index of each active column
    status = np.full(n, CENSORED, np.int8)
    done = np.full(n, steps, np.int64)
    final = np.empty((n, d))
    for k in range(steps):
        m = idx.size
        if m == 0:
            break
        z1, z2 = bz1[:d * m].reshape(d, m), bz2[:d * m].reshape(d, m)
        if noise is None:
            rng.standard_normal(out=z1)
            rng.standard_normal(out=z2)
        else:
            z1[...] = noise[k, 0][:, idx]
            z2[...] = noise[k, 1][:, idx]
        g = gradient(case, X) if d == 1 else np.concatenate(gradient(case, X))
        z1 *= case.std
        g += z1                              # ∇L + s z₁
        z2 *= case.sigma
        z2 += case.eta                       # η + σ z₂
        z2 *= g
        X -= z2
        finite = np.isfinite(X).all(axis=0) if d > 1 else np.isfinite(X[0])
        stop = ~finite | (X[0] >= case.threshold)
        if stop.any():
            j = np.flatnonzero(stop)
            status[idx[j]] = np.where(finite[j], ESCAPED, DIVERGED)
            done[idx[j]] = k + 1
            final[idx[j]] = X[:, j].T
            keep = ~stop
            idx = idx[keep]
            kept = X[:, keep]                # (d, m') copy before the buffer is reused
            X = bx[:d * idx.size].reshape(d, idx.size)
            X[...] = kept
    final[idx] = X.T
    return Paths(status, done, final)


def numpy_threaded(case: Case, n: int, steps: int, threads: int, seed) -> int:
    """Particle-steps of :func:`numpy_run` on ``threads`` chunks in parallel (one Generator each)."""
    if threads == 1:
        return int(numpy_run(case, n, steps, rng=np.random.default_rng(seed)).steps.sum())
    parts = np.array_split(np.arange(n), threads)
    seeds = np.random.SeedSequence(seed).spawn(threads)
    with cf.ThreadPoolExecutor(threads) as pool:
        futs = [pool.submit(numpy_run, case, p.size, steps, rng=np.random.default_rng(s))
                for p, s in zip(parts, seeds)]
        return int(sum(f.result().steps.sum() for f in futs))


def torch_run(case: Case, n: int, steps: int, *, generator=None, noise=None) -> Paths:
    """:func:`numpy_run` on float64 CPU tensors (``noise`` (steps, 2, d, n) injects the normals)."""
    import torch

    d = case.dim
    X = torch.tensor(case.x0, dtype=torch.float64)[:, None].repeat(1, n)
    idx = torch.arange(n)
    status = torch.full((n,), CENSORED, dtype=torch.int8)
    done = torch.full((n,), steps, dtype=torch.int64)
    final = torch.empty((n, d), dtype=torch.float64)
    tnoise = None if noise is None else torch.from_numpy(noise)
    bz1, bz2 = torch.empty(d * n, dtype=torch.float64), torch.empty(d * n, dtype=torch.float64)
    for k in range(steps):
        m = idx.numel()
        if m == 0:
            break
        z1, z2 = bz1[:d * m].view(d, m), bz2[:d * m].view(d, m)
        if tnoise is None:
            z1.normal_(generator=generator)
            z2.normal_(generator=generator)
        else:
            z1.copy_(tnoise[k, 0][:, idx])
            z2.copy_(tnoise[k, 1][:, idx])
        g = gradient(case, X) if d == 1 else torch.cat(gradient(case, X))
        z1.mul_(case.std)
        g += z1
        z2.mul_(case.sigma).add_(case.eta).mul_(g)
        X -= z2
        finite = torch.isfinite(X).all(dim=0)
        stop = ~finite | (X[0] >= case.threshold)
        if bool(stop.any()):
            j = torch.nonzero(stop).flatten()
            status[idx[j]] = torch.where(finite[j], ESCAPED, DIVERGED).to(torch.int8)
            done[idx[j]] = k + 1
            final[idx[j]] = X[:, j].T
            keep = ~stop
            idx = idx[keep]
            X = X[:, keep].contiguous()
    final[idx] = X.T
    return Paths(status.numpy(), done.numpy(), final.numpy())


def torch_threaded(case: Case, n: int, steps: int, threads: int, seed) -> int:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        return int(torch_run(case, n, steps, generator=gen).steps.sum())
    finally:
        torch.set_num_threads(old)


def torchsde_available() -> bool:
    try:
        import torchsde  # noqa: F401
    except ImportError:
        return False
    return True


def torchsde_run(case: Case, n: int, steps: int, threads: int, seed) -> int:
    """Euler–Maruyama (torchsde, ``method="euler"``, ``dt = η``) on the equivalent Itô SDE, diagonal noise
    ``g = sqrt(η s² + (σ²/η)(∇L² + s²))`` (the per-coordinate LEAP diffusion of :mod:`leap_sde.dynamics`);
    no exit check (torchsde has no events): ``n·steps`` particle-steps."""
    import torch
    import torchsde

    class SDE(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):  # y (n, d)
            g = gradient(case, y.T)
            return -(g if not isinstance(g, tuple) else torch.cat(g)).T

        def g(self, t, y):
            gr = self.f(t, y)
            return torch.sqrt(case.eta * case.std ** 2 + case.sigma ** 2 / case.eta * (gr * gr + case.std ** 2))

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y0 = torch.tensor(case.x0, dtype=torch.float64)[None, :].repeat(n, 1)  # (n, d)
        t1 = steps * case.eta
        ts = torch.tensor([0.0, t1], dtype=torch.float64)
        # explicit entropy: torchsde's default Brownian motion would seed from the global torch RNG
        bm = torchsde.BrownianInterval(0.0, t1, (n, case.dim), dtype=torch.float64,
                                       entropy=int(np.random.SeedSequence(seed).generate_state(1)[0]))
        with torch.no_grad():
            torchsde.sdeint(SDE(), y0, ts, bm=bm, method="euler", dt=case.eta)
    finally:
        torch.set_num_threads(old)
    return n * steps


# --------------------------------------------------------------------------------------------------
# Compiled references: a minimal fused loop and the random-number floors
@nb.njit(inline="always")
def _fused_step_1d(x, alive, k, s0, s1, s2, s3, coef, eta, std, sigma, thr):
    """One step of one 1-D particle in registers (Horner as the kernel); draws even when not ``alive``."""
    g = 0.0
    for j in range(coef.shape[0] - 1, 0, -1):
        g = g * x + j * coef[j]
    z1, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
    z2, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
    if alive:
        x -= (eta + sigma * z2) * (g + std * z1)
        k += 1
        alive = math.isfinite(x) and x < thr
    return x, alive, k, s0, s1, s2, s3


@nb.njit(parallel=True)
def _fused_1d(rng, x0, coef, eta, std, sigma, thr, n_steps, steps_out, x_out):
    """Minimal loop of the 1-D dynamics on the kernel's streams, one particle at a time.
    rng (N, 4) uint64, coef (deg + 1,) ascending; writes steps_out (N,), x_out (N, 1)."""
    for i in nb.prange(rng.shape[0]):
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        x, alive, k = x0[0], True, 0
        while alive and k < n_steps:
            x, alive, k, s0, s1, s2, s3 = _fused_step_1d(x, alive, k, s0, s1, s2, s3, coef, eta, std, sigma, thr)
        steps_out[i], x_out[i, 0] = k, x
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3


@nb.njit(parallel=True)
def _fused_1d_x2(rng, x0, coef, eta, std, sigma, thr, n_steps, steps_out, x_out):
    """:func:`_fused_1d` advancing 2 particles in lockstep per loop iteration, so that two independent
    dependency chains (gradient -> update) overlap in the CPU's pipeline.  Same paths as the kernel; the
    stream of the particle that exits first is drawn on (and discarded) until its partner exits too."""
    N = rng.shape[0]
    for b in nb.prange((N + 1) // 2):
        i, j = 2 * b, min(2 * b + 1, N - 1)
        a0, a1, a2, a3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        b0, b1, b2, b3 = rng[j, 0], rng[j, 1], rng[j, 2], rng[j, 3]
        xa, xb, ka, kb = x0[0], x0[0], 0, 0
        la, lb = True, j > i
        step = 0
        while step < n_steps and (la or lb):
            xa, la, ka, a0, a1, a2, a3 = _fused_step_1d(xa, la, ka, a0, a1, a2, a3, coef, eta, std, sigma, thr)
            xb, lb, kb, b0, b1, b2, b3 = _fused_step_1d(xb, lb, kb, b0, b1, b2, b3, coef, eta, std, sigma, thr)
            step += 1
        steps_out[i], x_out[i, 0] = ka, xa
        if j > i:
            steps_out[j], x_out[j, 0] = kb, xb


@nb.njit(parallel=True)
def _fused_2d(rng, x0, kappa, c, eta, std, sigma, thr, n_steps, steps_out, x_out):
    """Minimal loop of the 2-D entropic-well dynamics on the kernel's streams; x_out (N, 2)."""
    for i in nb.prange(rng.shape[0]):
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        x, y, k = x0[0], x0[1], 0
        while k < n_steps:
            g0 = 4.0 * x * (x * x - 1.0) + 2.0 * c * x * y * y
            g1 = kappa * y + 2.0 * c * x * x * y
            a0, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
            a1, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
            b0, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
            b1, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
            x -= (eta + sigma * b0) * (g0 + std * a0)
            y -= (eta + sigma * b1) * (g1 + std * a1)
            k += 1
            if not (math.isfinite(x) and math.isfinite(y)) or x >= thr:
                break
        steps_out[i], x_out[i, 0], x_out[i, 1] = k, x, y
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3


@nb.njit
def _seed_states(words, rng):
    for i in range(words.shape[0]):
        seed_state(words[i], rng[i])


def kernel_states(seed, n: int) -> np.ndarray:
    """(n, 4) xoshiro256+ states exactly as :func:`leap_sde.simulate` seeds its particles."""
    rng = np.empty((n, 4), np.uint64)
    _seed_states(particle_seeds(ls.normalize_seed(seed), n), rng)
    return rng


def fused_run(case: Case, n: int, steps: int, seed, threads: int, *, interleave: bool = False) -> tuple:
    """(steps (n,), positions (n, d)) of the fused loop on the kernel's streams for ``seed``
    (``interleave``: 2 particles in lockstep, 1-D only)."""
    land = case.landscape
    steps_out, x_out = np.empty(n, np.int64), np.empty((n, case.dim))
    x0 = np.asarray(case.x0, np.float64)
    rng = kernel_states(seed, n)
    with numba_threads(threads):
        if isinstance(land, ls.Polynomial):
            f = _fused_1d_x2 if interleave else _fused_1d
            f(rng, x0, np.asarray(land.coeffs), case.eta, case.std, case.sigma, case.threshold, steps,
              steps_out, x_out)
        elif isinstance(land, ls.EntropicWell) and not interleave:
            _fused_2d(rng, x0, land.kappa, land.c, case.eta, case.std, case.sigma, case.threshold, steps,
                      steps_out, x_out)
        else:
            raise TypeError(f"no fused loop for {type(land).__name__} (interleave={interleave})")
    return steps_out, x_out


@nb.njit(parallel=True)
def _xoshiro_floor(rng, n_draws, out):
    """Draw ``n_draws`` normals from each particle's stream; ``out[i]`` = their sum (keeps the work)."""
    for i in nb.prange(rng.shape[0]):
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        acc = 0.0
        for _ in range(n_draws):
            z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
            acc += z
        out[i] = acc
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3


@nb.njit(nogil=True)
def _generator_floor(gen, n_draws):
    acc = 0.0
    for _ in range(n_draws):
        acc += gen.standard_normal()
    return acc


class numba_threads:
    """Context manager: run Numba parallel regions on ``n`` threads."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = nb.get_num_threads()
        nb.set_num_threads(self.n)

    def __exit__(self, *exc):
        nb.set_num_threads(self.old)


def xoshiro_floor(case: Case, n: int, steps: int, threads: int, seed) -> int:
    """Draw ``2d`` normals per particle-step for ``n·steps`` particle-steps; returns ``n·steps``."""
    out = np.empty(n)
    with numba_threads(threads):
        _xoshiro_floor(kernel_states(seed, n), steps * 2 * case.dim, out)
    return n * steps


def generator_floor(case: Case, n: int, steps: int, threads: int, seed) -> int:
    """As :func:`xoshiro_floor` with NumPy ``Generator``s (PCG64) inside compiled code, one per thread."""
    total = n * steps * 2 * case.dim
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(threads)]
    if threads == 1:
        _generator_floor(gens[0], total)
    else:
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda g: _generator_floor(g, total // threads), gens))
    return n * steps


def kernel_run(case: Case, n: int, steps: int, threads: int, seed) -> int:
    return int(case.simulate(n, steps, seed, threads).steps.sum())


# --------------------------------------------------------------------------------------------------
# Agreement checks (also run by tests/test_bench_kernel.py)
def kernel_normals(case: Case, n: int, steps: int, seed) -> np.ndarray:
    """(steps, 2, d, n) the normals particle i of ``simulate(seed=seed)`` draws: per step d gradient-noise
    normals, then d LEAP normals."""
    words = particle_seeds(ls.normalize_seed(seed), n)
    out = np.empty((n, steps * 2 * case.dim))
    for i in range(n):
        fill_normals(words[i], out[i])
    return np.ascontiguousarray(out.reshape(n, steps, 2, case.dim).transpose(1, 2, 3, 0))


def pathwise_check(case: Case, n: int, steps: int, seed, *, use_torch: bool = True) -> dict:
    """Run the kernel, then NumPy / PyTorch on the kernel's own normals and the fused loop on its streams.

    Returns, per implementation, the number of particles whose status or exit step differs from the
    kernel's and the largest difference in final position; plus the kernel's escape count."""
    res = case.simulate(n, steps, seed, threads=1)
    noise = kernel_normals(case, n, steps, seed)
    out = {"n": n, "steps": steps, "kernel_escaped": res.n_escaped}
    runs = {"NumPy": numpy_run(case, n, steps, noise=noise)}
    if use_torch:
        runs["PyTorch"] = torch_run(case, n, steps, noise=noise)
    for name, il in (("fused njit", False), ("fused x2", True)):
        if il and case.dim != 1:
            continue
        f_steps, f_x = fused_run(case, n, steps, seed, threads=1, interleave=il)
        f_status = np.where(~np.isfinite(f_x).all(axis=1), DIVERGED,
                            np.where(f_x[:, 0] >= case.threshold, ESCAPED, CENSORED)).astype(np.int8)
        runs[name] = Paths(f_status, f_steps, f_x)
    for name, p in runs.items():
        out[name] = {"mismatched": int(np.count_nonzero((p.status != res.status) | (p.steps != res.steps))),
                     "max_abs_dx": float(np.max(np.abs(p.positions - res.positions)))}
    return out


def statistical_check(case: Case, n: int, steps: int, seed, *, use_torch: bool = True) -> dict:
    """Escape fraction of the kernel vs NumPy / PyTorch with their own generators: z = Δp / SE."""
    ss = np.random.SeedSequence(seed).spawn(3)
    p_k = case.simulate(n, steps, ss[0], threads=1).n_escaped / n
    out = {"n": n, "steps": steps, "kernel": p_k}
    runs = {"NumPy": lambda: numpy_run(case, n, steps, rng=np.random.default_rng(ss[1]))}
    if use_torch:
        import torch

        seed_t = int(ss[2].generate_state(1)[0])
        runs["PyTorch"] = lambda: torch_run(case, n, steps, generator=torch.Generator().manual_seed(seed_t))
    for name, run in runs.items():
        p = float(np.mean(run().status == ESCAPED))
        pbar = (p + p_k) / 2
        se = math.sqrt(max(2 * pbar * (1 - pbar) / n, 1e-300))
        out[name] = {"p": p, "z": (p - p_k) / se}
    return out


def hot(case: Case) -> Case:
    """The case at a temperature where escapes are common (D = η s²/2 = 0.5), to exercise the exits."""
    return dataclasses.replace(case, std=10.0)


# --------------------------------------------------------------------------------------------------
# Compile time and memory, in fresh subprocesses
_FIRST_CALL = r"""
import json, time
t0 = time.perf_counter()
import leap_sde as ls
t1 = time.perf_counter()
kw = dict(eta=0.01, noise=ls.WhiteNoise(4.0), leap=ls.LEAP(0.005), exit=ls.Threshold(1.0), n_particles=100,
          max_steps=10, seed=0, threads=1)
ls.simulate(ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0]), [-1.0], **kw)
t2 = time.perf_counter()
ls.simulate(ls.EntropicWell(1.0, 0.5), [-1.0, 0.0], **kw)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "1-D": t2 - t1, "2-D": t3 - t2}))
"""

_MEMORY = r"""
import importlib.util, json, resource, sys, tracemalloc
import numpy as np
import leap_sde as ls


def rss_mb():
    "(current, peak) RSS in MB; the peak from /proc where it can be reset, else ru_maxrss."
    try:
        f = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith("Vm"))
        return int(f["VmRSS"].split()[0]) / 1024, int(f["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return r, r


n, steps = int(sys.argv[1]), int(sys.argv[2])
land = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
kw = dict(eta=0.01, noise=ls.WhiteNoise(4.0), leap=ls.LEAP(0.005), exit=ls.Threshold(1.0), seed=0)
ls.simulate(land, [-1.0], n_particles=10, max_steps=10, **kw)   # load the cached kernel
try:
    with open("/proc/self/clear_refs", "w") as f:   # reset the peak RSS (VmHWM) to the current RSS
        f.write("5")
    reset = True
except OSError:
    reset = False
base = rss_mb()[0]
res = ls.simulate(land, [-1.0], n_particles=n, max_steps=steps, **kw)
peak = rss_mb()[1]
spec = importlib.util.spec_from_file_location("bench_kernel", sys.argv[3])
bk = sys.modules["bench_kernel"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bk)
tracemalloc.start()
bk.numpy_run(bk.cases()["1-D"], n, min(steps, 20), rng=np.random.default_rng(0))
np_peak = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps({"base_MB": base, "peak_MB": peak, "peak_reset": reset, "numpy_traced_MB": np_peak}))
"""


def _python(code: str, *args, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_call_times(cold: bool) -> dict:
    """Import and first-call times in a fresh interpreter, with the on-disk cache (``cold=False``) or with
    ``NUMBA_CACHE_DIR`` pointing at an empty directory (``cold=True``: everything is compiled)."""
    env = dict(os.environ)
    if not cold:
        return _python(_FIRST_CALL, env=env)
    with tempfile.TemporaryDirectory() as d:
        env["NUMBA_CACHE_DIR"] = d
        return _python(_FIRST_CALL, env=env)


def memory(n: int, steps: int) -> dict:
    """Peak RSS (MB) of an escape-only ``simulate`` of ``n`` particles (1-D case) in a fresh interpreter,
    the RSS before it, and tracemalloc's peak for :func:`numpy_run` on the same problem (reference)."""
    return _python(_MEMORY, n, steps, os.path.abspath(__file__))


# --------------------------------------------------------------------------------------------------
# Timing
IMPLS: dict[str, Callable] = {
    "leap_sde kernel": kernel_run,
    "NumPy vectorised": numpy_threaded,
    "PyTorch vectorised (CPU)": torch_threaded,
    "torchsde Euler (no exit)": torchsde_run,
    "fused njit loop (ref.)": lambda c, n, s, t, seed: int(fused_run(c, n, s, seed, t)[0].sum()),
    "fused, 2 interleaved (ref.)": lambda c, n, s, t, seed: int(fused_run(c, n, s, seed, t, interleave=True)[0].sum()),
    "RNG floor: xoshiro256+ zig.": xoshiro_floor,
    "RNG floor: NumPy Generator": generator_floor,
}


def calibrate(run: Callable[[int], int], seconds: float, max_steps: int) -> int:
    """Steps per timing so that one timing takes about ``seconds`` on an otherwise idle machine (the first
    call pays any compilation).  The probe's duration is ``min(wall, CPU)`` time: on a shared machine the
    wall time of a 1-thread run includes waiting for a core, while the CPU time of a multi-threaded run
    counts every thread."""
    run(2)
    steps = 8
    while True:
        t, c = time.perf_counter(), time.process_time()
        run(steps)
        dt = min(time.perf_counter() - t, time.process_time() - c)
        if dt >= seconds / 8 or steps >= max_steps:
            break
        steps *= 4
    return int(min(max(8, steps * seconds / max(dt, 1e-9)), max_steps))


def _bind(impl, case, n, threads) -> Callable[[int], int]:
    """``run(steps)`` -> particle-steps done, with a fresh seed each call."""
    seeds = itertools.count()
    return lambda steps: impl(case, n, steps, threads, next(seeds))


def measure(case_names, thread_counts, impls, n, seconds, reps, log) -> dict:
    """Best particle-steps per second of wall time and per CPU-second (all of the process's threads) of
    every (case, threads, implementation), timings interleaved over the repetitions."""
    all_cases = cases()
    plan = {}
    for c in case_names:
        for t in thread_counts:
            for name in impls:
                if name == "fused, 2 interleaved (ref.)" and all_cases[c].dim != 1:
                    continue
                run = _bind(IMPLS[name], all_cases[c], n, t)
                plan[c, t, name] = (run, calibrate(run, seconds, max_steps=100_000))
                log(f"  calibrated {c} {name} threads={t}: {plan[c, t, name][1]} steps x {n} particles")
    best = {k: (0.0, 0.0) for k in plan}
    for rep in range(reps):
        for key, (run, steps) in plan.items():
            t0, c0 = time.perf_counter(), time.process_time()
            done = run(steps)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best[key] = (max(best[key][0], done / wall), max(best[key][1], done / max(cpu, 1e-9)))
        log(f"  rep {rep + 1}/{reps} done")
    return best


# --------------------------------------------------------------------------------------------------
# Report
def _verdict(value, goal, higher=True):
    ok = value >= goal if higher else value < goal
    margin = (value / goal - 1) if higher else (1 - value / goal)
    return f"{'MET' if ok else 'MISSED':6s} {margin:+.0%}"


def report(args, best, thread_counts, impls, compile_t, mem, checks) -> str:
    L = []
    w = L.append
    la = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    w(f"# leap_sde kernel benchmark  ({datetime.date.today().isoformat()}, {platform.machine()}, "
      f"{os.cpu_count()} CPUs, numba {nb.__version__} [{nb.threading_layer()}], numpy {np.__version__}"
      + (f", torch {__import__('torch').__version__}" if "PyTorch vectorised (CPU)" in impls else "") + ")")
    w(f"# {args.particles} particles, best of {args.reps} timings of ~{args.seconds:g} s each, interleaved; "
      f"1-min load average {args.load_start:.1f} at the start, {la[0]:.1f} at the end (shared machine)")
    w("# NumPy on n threads: the particles in n chunks, one Python thread and one Generator each (ufuncs "
      "release the GIL); PyTorch: torch.set_num_threads(n)")
    w(f"# dynamics: θ ← θ − (η + σz₂)(∇L + s·z₁), η = 0.01, s = 4, σ = 0.005, exit θ[0] ≥ 1; "
      "1-D: (x²−1)² from −1, 2-D: EntropicWell(1, 0.5) from (−1, 0)")
    w("")
    w("particle-steps per second of wall time, and per CPU-second of the process (all its threads: robust to "
      "other users' load; time spent spinning or waiting for a core is not counted)")
    w(f"{'case':5s} {'implementation':30s} {'threads':>7s} {'wall':>11s} {'/ kernel':>9s} {'per CPU-s':>11s} "
      f"{'/ kernel':>9s}")
    for c in args.cases:
        for t in thread_counts:
            k, kc = best[c, t, "leap_sde kernel"]
            for name in impls:
                if (c, t, name) not in best:
                    continue
                r, rc = best[c, t, name]
                w(f"{c:5s} {name:30s} {t:7d} {r:11.3e} {r / k:9.3f} {rc:11.3e} {rc / kc:9.3f}")
            w("")
    if "torchsde Euler (no exit)" not in impls:
        w("torchsde: not installed")
        w("")
    w("profile by ablation (per CPU-s, 1 thread): where the kernel's time goes")
    for c in args.cases:
        k, f, fl = (best[c, 1, name][1] for name in ("leap_sde kernel", "fused njit loop (ref.)",
                                                      "RNG floor: xoshiro256+ zig."))
        msg = (f"  {c}: minimal fused loop / kernel = {f / k:.2f} (cost of the kernel's generality), "
               f"RNG floor / fused loop = {fl / f:.2f} (cost of the update arithmetic: one serial chain per particle)")
        if (c, 1, "fused, 2 interleaved (ref.)") in best:
            msg += f", 2 interleaved / fused = {best[c, 1, 'fused, 2 interleaved (ref.)'][1] / f:.2f}"
        w(msg)
    w("")
    w("first call (fresh interpreter; import, then the first simulate of each case):")
    for label, d in compile_t.items():
        w(f"  {label:34s} import {d['import']:6.2f} s   1-D {d['1-D']:6.2f} s   2-D {d['2-D']:6.2f} s")
    w("")
    w(f"memory, escape-only simulate of {mem['n']:.0e} particles (1-D, {mem['steps']} steps, fresh interpreter):")
    w(f"  peak RSS {mem['peak_MB']:.0f} MB = {mem['base_MB']:.0f} MB after import and a first small call "
      f"(Python, NumPy, Numba/LLVM, SciPy, loaded kernel) + {mem['peak_MB'] - mem['base_MB']:.0f} MB for the run"
      + ("" if mem["peak_reset"] else " (peak not resettable here: ru_maxrss, includes the start-up peak)"))
    w(f"  NumPy implementation on the same particles: tracemalloc peak {mem['numpy_traced_MB']:.0f} MB")
    w("")
    w("agreement (hot case: s = 10, escapes common):")
    for c, (pw, st) in checks.items():
        parts = [f"{k} {v['mismatched']} mismatched, max|Δx| {v['max_abs_dx']:.1e}"
                 for k, v in pw.items() if isinstance(v, dict)]
        w(f"  {c} pathwise on the kernel's streams ({pw['n']} particles, {pw['steps']} steps, "
          f"{pw['kernel_escaped']} escaped): " + "; ".join(parts))
        parts = [f"{k} p = {v['p']:.4f} (z = {v['z']:+.2f})" for k, v in st.items() if isinstance(v, dict)]
        w(f"  {c} escape fraction, own generators ({st['n']} particles, {st['steps']} steps): "
          f"kernel p = {st['kernel']:.4f}; " + "; ".join(parts))
    w("")
    w("targets (wall: as measured on this machine; CPU: from the per-CPU-second rates)")
    w(f"{'target':52s} {'goal':>7s} {'wall':>9s}  {'verdict':12s} {'CPU':>9s}  verdict")

    def line(label, goal, wall, cpu, fmt):
        w(f"{label:52s} {goal:{fmt}} {wall:{fmt.replace('7', '9')}}  {_verdict(wall, goal):12s} "
          f"{cpu:{fmt.replace('7', '9')}}  {_verdict(cpu, goal)}")

    t2 = min(2, max(thread_counts))
    if "1-D" in args.cases:
        r, rc = best["1-D", t2, "leap_sde kernel"]
        line(f"1-D kernel, {t2} threads, particle-steps/s (CPU: {t2}x)", TARGET_RATE_1D, r, t2 * rc, "7.2e")
    for c in args.cases:
        for t in thread_counts:
            k, kc = best[c, t, "leap_sde kernel"]
            if "NumPy vectorised" in impls:
                v, vc = best[c, t, "NumPy vectorised"]
                line(f"{c} kernel / NumPy, {t} thread(s)", TARGET_VS_NUMPY, k / v, kc / vc, "7.2f")
            v, vc = best[c, t, "RNG floor: xoshiro256+ zig."]
            line(f"{c} kernel / RNG floor (same generator), {t} thread(s)", TARGET_VS_FLOOR, k / v, kc / vc, "7.2f")
    if mem["n"] >= 10**6:
        for label, v in (("its own memory (RSS rise)", mem["peak_MB"] - mem["base_MB"]),
                         ("whole-process peak RSS", mem["peak_MB"])):
            w(f"{'1e6-particle escape-only run, ' + label + ', MB':52s} {TARGET_MEMORY_MB:7.0f} {v:9.0f}  "
              + _verdict(v, TARGET_MEMORY_MB, higher=False))
    return "\n".join(L)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run for the test suite (seconds, no cold compile)")
    p.add_argument("--particles", type=int, default=100_000, help="particles per timing (default 100000)")
    p.add_argument("--seconds", type=float, default=0.3, help="target wall time of one timing (default 0.3)")
    p.add_argument("--reps", type=int, default=3, help="timings per implementation; the best is kept")
    p.add_argument("--cases", nargs="+", default=["1-D", "2-D"], choices=["1-D", "2-D"])
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch implementations")
    p.add_argument("--no-cold", action="store_true", help="skip the empty-cache compile timing (~1 min)")
    args = p.parse_args(argv)
    if args.quick:
        args.particles, args.seconds, args.reps, args.no_cold = min(args.particles, 2000), 0.02, 1, True
    if args.particles < 1 or args.seconds <= 0 or args.reps < 1:
        p.error("--particles, --seconds and --reps must be positive")
    args.load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:5.0f} s] {msg}", file=sys.stderr, flush=True)

    impls = list(IMPLS)
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            use_torch = False
    if not use_torch:
        impls = [i for i in impls if "torch" not in i.lower()]
    elif not torchsde_available():
        impls.remove("torchsde Euler (no exit)")
    n_all = nb.config.NUMBA_NUM_THREADS
    thread_counts = sorted({1, n_all})

    log("agreement checks ...")
    all_cases = cases()
    checks = {}
    for c in args.cases:
        hc = hot(all_cases[c])
        pw = pathwise_check(hc, 64 if args.quick else 256, 300 if args.quick else 1000, 11, use_torch=use_torch)
        st = statistical_check(hc, 2000 if args.quick else 20_000, 300 if args.quick else 500, 12,
                               use_torch=use_torch)
        checks[c] = (pw, st)

    log("first-call times ...")
    compile_t = {"with on-disk cache": first_call_times(cold=False)}
    if not args.no_cold:
        compile_t["empty NUMBA_CACHE_DIR (cold)"] = first_call_times(cold=True)

    log("timings ...")
    best = measure(args.cases, thread_counts, impls, args.particles, args.seconds, args.reps, log)

    log("memory ...")
    mem_n, mem_steps = (10**5, 20) if args.quick else (10**6, 200)
    mem = dict(memory(mem_n, mem_steps), n=mem_n, steps=mem_steps)

    text = report(args, best, thread_counts, impls, compile_t, mem, checks)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
