"""Ensemble kernels, generated per configuration from the components' single definitions.

:func:`kernel_for` composes the compiled step of one configuration (landscape, noise, LEAP, schedule, exit,
mode) from the components' own code (``_kernel_*`` methods and compiled functions), wraps it in one of two
drivers, and compiles the result once per machine (:mod:`leap_sde._codegen`).  No run-time component codes
exist: every branch is resolved when the kernel is written, so an unsupported combination raises then.

Drivers (both write results in place; shapes for ``N`` particles in ``d`` dimensions)::

    rng     (N, 4) uint64   xoshiro256+ state of each particle's own stream
    X       (N, d) float64  positions
    steps   (N,)   int64    steps done
    status  (N,)   int8     RUNNING / ESCAPED / DIVERGED (CENSORED is set by the caller)
    counts  (N, b) int64    steps spent in each basin (b = 0: not recorded)
    snaps   (S, N, d)       positions every ``snap_every`` steps (S = 0: not recorded)

* **register** (d ≤ 2, a landscape of form "1d"/"2d", discrete mode): position, gradient and random
  stream in scalars, and ``LANES`` particles interleaved per thread, so each core has independent
  dependency chains in flight; a lane whose particle exits takes the next one of its block.
* **array** (any d, discrete or SDE mode): one particle at a time, arrays for the position, the random
  stream in scalars.

Every particle advances until it exits, diverges or reaches the global step ``k_stop``, so the caller can run
the ensemble in slices (progress, Ctrl-C) with bit-identical results.  Random draws per step, in this order:
gradient noise (minibatch indices, or d normals), then the LEAP perturbation (d normals per-coordinate, 1
scalar), all from the particle's own stream; particles never share a stream, so results do not depend on the
thread count or on how particles are interleaved.
"""
from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numba as nb

from . import _codegen
from ._codegen import Layout
from ._rng import normal_t, uniform_int_t
from .dynamics import LEAP, Exit, Noise
from .optimizers import SGD, Optimizer
from .landscapes import FiniteSum, Landscape
from .schedules import Schedule

RUNNING, ESCAPED, CENSORED, DIVERGED = 0, 1, 2, 3
RETURNED, STOPPED = 4, 5  # segment driver: back in the start set A / the score passed the stop level
LANES = 2        # particles interleaved per thread, register driver
ARRAY_LANES = 1  # the same, array driver (2 measured no faster: the state is in memory there)
BLOCK = 64     # particles per parallel block of the register driver


@nb.njit(inline="always")
def basin_index(edges, x0):
    """Index of the basin holding first coordinate ``x0`` (``edges`` sorted)."""
    b = 0
    while b < edges.shape[0] and x0 > edges[b]:
        b += 1
    return b


def _indent(lines, n):
    return [" " * n + line if line else line for line in lines]


def _gradient_lines(lay, finite_sum):
    """Full gradient (the average over the samples of a finite sum) into ``g``."""
    if lay.reg:
        gs = ", ".join(f"g{j}" for j in range(lay.d))
        if not finite_sum:
            return [f"{gs} = {lay.grad_call(', '.join(f'x{j}' for j in range(lay.d)))}"]
        a = ", ".join(f"a{j}" for j in range(lay.d))
        return ([f"g{j} = 0.0" for j in range(lay.d)] + ["for i in range(off.shape[0]):",
                f"    {a} = {lay.grad_call(', '.join(f'x{j} - off[i, {j}]' for j in range(lay.d)))}"]
                + [f"    g{j} += a{j}" for j in range(lay.d)] + [f"g{j} /= off.shape[0]" for j in range(lay.d)])
    if not finite_sum:
        return ["GRAD(x, lp, g)"]
    return ["g[:] = 0.0", "for i in range(off.shape[0]):", "    for j in range(d):",
            "        xt[j] = x[j] - off[i, j]", "    GRAD(xt, lp, gt)", "    for j in range(d):",
            "        g[j] += gt[j]", "g /= off.shape[0]"]


def _discrete_lines(lay, noise, leap, optimizer, finite_sum):
    """θ ← θ − η̃ ⊙ u, with u the optimizer's direction from g = ∇L + ξ."""
    lines = [] if noise.replaces_gradient else _gradient_lines(lay, finite_sum)
    lines += noise._kernel_discrete(lay)
    lines += optimizer._kernel_direction(lay)
    if leap is None:
        if lay.reg:
            return lines + [f"x{j} -= eta_k * g{j}" for j in range(lay.d)]
        return lines + ["for j in range(d):", "    x[j] -= eta_k * g[j]"]
    return lines + leap._kernel_discrete(lay)


_SDE_GENERAL = """\
e2 = eta_k * eta_k
if {per_coordinate} or sv == 0.0:  # S = η²C + σ² Diag(g² + diag C)
    for a in range(d):
        cdiag = C[a, a]
        for b in range(d):
            C[a, b] *= e2
        C[a, a] += sv * (g[a] * g[a] + cdiag)
else:  # S = (η² + σ²) C + σ² g gᵀ
    for a in range(d):
        for b in range(d):
            C[a, b] = (e2 + sv) * C[a, b] + sv * g[a] * g[b]
diagonal = True
for a in range(d):
    for b in range(d):
        if a != b and C[a, b] != 0.0:
            diagonal = False
for j in range(d):
    xt[j], s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
if diagonal:
    for j in range(d):
        x[j] -= eta_k * g[j] + math.sqrt(max(C[j, j], 0.0)) * xt[j]
else:
    lam, V = np.linalg.eigh(C)
    for b in range(d):  # symmetric square root: S^(1/2) z = V Λ^(1/2) Vᵀ z
        v = 0.0
        for c in range(d):
            v += V[c, b] * xt[c]
        gt[b] = math.sqrt(max(lam[b], 0.0)) * v
    for a in range(d):
        v = 0.0
        for b in range(d):
            v += V[a, b] * gt[b]
        x[a] -= eta_k * g[a] + v"""


def _sde_lines(lay, noise, leap, optimizer, finite_sum):
    """Euler–Maruyama step of dθ = −∇L dt + √(2D) dW with dt = η_k: θ ← θ − η_k∇L − S^{1/2}z, where
    S = 2·D·dt = η_k²·Cov ξ + (LEAP) is the step covariance and z the particle's next d normals (the sign
    matches the discrete step, so white noise without LEAP gives the discrete path exactly)."""
    lines = _gradient_lines(lay, finite_sum)
    lines.append("sv = VAR(lv[0], eta_k)" if leap is not None else "sv = 0.0")
    per_coordinate = leap is None or leap.mode == "per-coordinate"
    var = noise._kernel_var(lay)
    if var is not None and (per_coordinate or lay.d == 1):  # diagonal by construction: no d x d matrix
        return lines + ["e2 = eta_k * eta_k", "for j in range(d):", f"    c = {var}",
                        "    v = c * e2 + sv * (g[j] * g[j] + c)",
                        "    z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)",
                        "    x[j] -= eta_k * g[j] + math.sqrt(max(v, 0.0)) * z"]
    lines += noise._kernel_cov(lay)
    return lines + _SDE_GENERAL.format(per_coordinate=per_coordinate).split("\n")


def _adapters(landscape):
    """Array-layout ``GRAD``/``HESS`` for a landscape of any form."""
    if landscape.form == "nd":
        return []
    if landscape.form == "1d":
        return ["@nb.njit(inline='always')", "def GRAD(x, p, out):", "    out[0] = L_grad(x[0], p)", "", "",
                "@nb.njit(inline='always')", "def HESS(x, p, out):", "    out[0, 0] = L_hess(x[0], p)", "", ""]
    return ["@nb.njit(inline='always')", "def GRAD(x, p, out):", "    out[0], out[1] = L_grad(x[0], x[1], p)", "", "",
            "@nb.njit(inline='always')", "def HESS(x, p, out):", "    h00, h01, h11 = L_hess(x[0], x[1], p)",
            "    out[0, 0] = h00", "    out[0, 1] = h01", "    out[1, 0] = h01", "    out[1, 1] = h11", "", ""]


def _driver(lay, lanes, record, snapshots):
    """``kernel(lo, hi, ...)``: particles [lo, hi) in blocks of ``BLOCK``, ``lanes`` particles in flight per
    thread (each with its own state and stream); a lane whose particle exits, diverges or reaches ``k_stop``
    stores it and takes the next running particle of the block.  ``record``/``snapshots``: whether the basin
    counts / snapshots are written (resolved here, not in the loop)."""
    d = lay.d
    names = ("x",) + lay.state
    if lay.reg:
        state = lambda l: ", ".join(f"{a}{l}_{j}" for a in names for j in range(d))  # noqa: E731
        load_x = lambda l: ([f"x{l}_{j} = X[c, {j}]" for j in range(d)]  # noqa: E731
                            + [f"{a}{l}_{j} = OPT[c, {s * d + j}]" for s, a in enumerate(lay.state) for j in range(d)])
        store_x = lambda l: ([f"X[i{l}, {j}] = x{l}_{j}" for j in range(d)]  # noqa: E731
                             + [f"OPT[i{l}, {s * d + j}] = {a}{l}_{j}" for s, a in enumerate(lay.state) for j in range(d)])
        init = lambda l: [f"{a}{l}_{j} = 0.0" for a in names for j in range(d)]  # noqa: E731
        finite = lambda l: " and ".join(f"math.isfinite(x{l}_{j})" for j in range(d))  # noqa: E731
        first = lambda l: f"x{l}_0"  # noqa: E731
        snap = lambda l: [f"snaps[k{l} // snap_every, i{l}, {j}] = x{l}_{j}" for j in range(d)]  # noqa: E731
        call = lambda l: f"{state(l)}, s{l}_0, s{l}_1, s{l}_2, s{l}_3 = advance({state(l)}, s{l}_0, s{l}_1, s{l}_2, s{l}_3, "  # noqa: E731
        exit_args = lambda l: ", ".join(f"x{l}_{j}" for j in range(d))  # noqa: E731
    else:
        arrays = ("x", "g", "xt", "gt", "C", "mean", "G") + lay.state
        load_x = lambda l: [f"x{l}[:] = X[c]"] + [f"{a}{l}[:] = OPT[c, {s} * d:{s + 1} * d]"  # noqa: E731
                                                   for s, a in enumerate(lay.state)]
        store_x = lambda l: [f"X[i{l}] = x{l}"] + [f"OPT[i{l}, {s} * d:{s + 1} * d] = {a}{l}"  # noqa: E731
                                                    for s, a in enumerate(lay.state)]
        init = lambda l: [f"x{l} = np.empty(d)", f"g{l} = np.empty(d)", f"xt{l} = np.empty(d)",  # noqa: E731
                          f"gt{l} = np.empty(d)", f"C{l} = np.empty((d, d))", f"mean{l} = np.empty(d)",
                          f"G{l} = np.empty((off.shape[0], d))"] + [f"{a}{l} = np.empty(d)" for a in lay.state]
        finite = lambda l: f"all_finite(x{l})"  # noqa: E731
        first = lambda l: f"x{l}[0]"  # noqa: E731
        snap = lambda l: [f"snaps[k{l} // snap_every, i{l}, :] = x{l}"]  # noqa: E731
        call = lambda l: (f"s{l}_0, s{l}_1, s{l}_2, s{l}_3 = advance({', '.join(a + str(l) for a in arrays)}, "  # noqa: E731
                          f"s{l}_0, s{l}_1, s{l}_2, s{l}_3, ")
        exit_args = lambda l: f"x{l}"  # noqa: E731

    def load(l):
        return (["while nxt < end:", "    c = nxt", "    nxt += 1", "    if status[c] == RUNNING and steps[c] < k_stop:"]
                + _indent([f"i{l} = c", f"k{l} = steps[c]"] + [f"s{l}_{j} = rng[c, {j}]" for j in range(4)]
                          + load_x(l) + ["break"], 8))

    body = []
    for l in range(lanes):
        body += [f"i{l} = -1", f"k{l} = 0"] + init(l) + [f"s{l}_{j} = rng[0, {j}]" for j in range(4)] + load(l)
    body.append("while " + " or ".join(f"i{l} >= 0" for l in range(lanes)) + ":")
    for l in range(lanes):
        step = [call(l) + f"k{l}, lp, nz, lv, sp, eta0, off, op)", f"k{l} += 1", "st = RUNNING",
                f"if not ({finite(l)}):", "    st = DIVERGED", "else:"]
        if record:
            step.append(f"    counts[i{l}, basin_index(edges, {first(l)})] += 1")
        if snapshots:
            step += [f"    if k{l} % snap_every == 0 and k{l} // snap_every < snaps.shape[0]:"] + _indent(snap(l), 8)
        step += [f"    if exit_hit({exit_args(l)}, ep):", "        st = ESCAPED", f"if st != RUNNING or k{l} >= k_stop:"]
        step += _indent([f"rng[i{l}, {j}] = s{l}_{j}" for j in range(4)] + store_x(l)
                        + [f"steps[i{l}] = k{l}", f"status[i{l}] = st", f"i{l} = -1"] + load(l), 4)
        body += _indent([f"if i{l} >= 0:"] + _indent(step, 4), 4)
    head = ["@nb.njit(cache=True, nogil=True)",
            "def kernel(lo, hi, rng, X, OPT, steps, status, counts, snaps, snap_every, k_stop, lp, nz, lv, sp, eta0,",
            "           ep, edges, off, op):",
            "    d = X.shape[1]",
            f"    for blk in range(lo, hi, {BLOCK}):", "        nxt = blk", f"        end = min(hi, nxt + {BLOCK})"]
    return head + _indent(body, 8)


@nb.njit(inline="always")
def all_finite(x):
    for v in x:
        if not math.isfinite(v):
            return False
    return True


def _check_parts(landscape, noise, leap, schedule, exit):
    for name, obj, cls in (("landscape", landscape, Landscape), ("noise", noise, Noise),
                           ("schedule", schedule, Schedule), ("exit", exit, Exit)):
        if not isinstance(obj, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(obj).__name__}")
    if leap is not None and not isinstance(leap, LEAP):
        raise TypeError(f"leap must be a LEAP or None, got {type(leap).__name__}")
    if landscape.form not in ("1d", "2d", "nd") or len(landscape.kernel_functions) != 3:
        raise TypeError(f"landscape: {type(landscape).__name__} declares no kernel definition "
                        "(form and kernel_functions; see docs/developing.md)")


def run_parallel(kernel, n_threads, n, args):
    """``kernel(lo, hi, *args)`` over particles [0, n) on ``n_threads`` Python threads (the kernels release
    the GIL), in blocks of whole register-driver blocks; each particle's result is independent of the split."""
    if n_threads == 1:
        kernel(0, n, *args)
        return
    size = max(BLOCK, -(-n // (4 * n_threads * BLOCK)) * BLOCK)
    bounds = [(lo, min(n, lo + size)) for lo in range(0, n, size)]
    with ThreadPoolExecutor(n_threads) as pool:
        for f in [pool.submit(kernel, lo, hi, *args) for lo, hi in bounds]:
            f.result()


def kernel_for(landscape, noise, leap, schedule, exit, mode, *, optimizer=SGD(), record=False, snapshots=False,
               general=False, score=None):
    """The compiled kernel ``f(lo, hi, rng, X, OPT, steps, status, counts, snaps, snap_every, k_stop, lp, nz,
    lv, sp, eta0, ep, edges, off, op)`` advancing particles [lo, hi) for this configuration, ``OPT`` (N, S·d)
    holding the optimizer's per-particle state (``general``: the array driver even where the register driver
    applies; tests compare the two).

    With a compiled ``score(x, qp) -> float`` it is the *segment* kernel of the rare-event engine instead:
    ``f(lo, hi, rng, X, OPT, steps, status, smax, z_a, z_stop, k_max, lp, nz, lv, sp, eta0, ep, off, op, qp)``
    advances each RUNNING particle until it exits (ESCAPED), its score drops to ``z_a`` or below (RETURNED),
    passes ``z_stop`` (STOPPED), diverges, or reaches step ``k_max``; ``smax`` holds the largest score seen
    (∞ once escaped).  Array layout, one particle at a time."""
    _check_parts(landscape, noise, leap, schedule, exit)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a leap_sde optimizer (SGD, Adam, AdamW), got {type(optimizer).__name__}")
    if mode == "sde" and not optimizer.is_plain:
        raise ValueError(f"optimizer: {optimizer} has no SDE model here; use mode='discrete'")
    leap = leap if leap is not None and leap.sigma > 0 else None
    reg = mode == "discrete" and landscape.form in ("1d", "2d") and not general and score is None
    lay = Layout(reg=reg, d=landscape.dim, form=landscape.form, constant_hessian=landscape.constant_hessian,
                 state=tuple(optimizer.state_names))
    finite_sum = isinstance(landscape, FiniteSum)
    loss_fn, grad_fn, hess_fn = landscape.kernel_functions
    functions = {"L_grad": grad_fn}
    if score is not None:
        functions["SCORE"] = score
    if hess_fn is not None:
        functions["L_hess"] = hess_fn
    if landscape.form == "nd":
        functions["GRAD"] = grad_fn
        if hess_fn is not None:
            functions["HESS"] = hess_fn
    if leap is not None:
        functions["RATE"] = leap._rate_fn()
        if mode == "sde":
            if leap.variant == "clipped":
                raise ValueError("leap: variant='clipped' has no SDE model; use mode='discrete'")
            functions["VAR"] = leap._var_fn()
    key = (f"{'register' if reg else 'array'}/{mode}/{landscape.form}{landscape.dim if reg else ''}/"
           f"{'finite-sum' if finite_sum else 'plain'}/{noise.key}/{leap.key if leap else 'no-LEAP'}/{optimizer.key}/"
           f"{schedule.key}/{exit.key}/{'basins' if record else ''}{'snapshots' if snapshots else ''}"
           f"{'/segment' if score is not None else ''}")
    try:
        return _build(key, lay, noise, leap, optimizer, schedule, exit, mode, finite_sum, record, snapshots, score,
                      tuple(sorted(functions.items(), key=lambda kv: kv[0])), _adapters(landscape))
    except NotImplementedError as err:
        raise TypeError(f"a component has no kernel code for {key}: {err}") from None


def _build(key, lay, noise, leap, optimizer, schedule, exit, mode, finite_sum, record, snapshots, score, functions,
           adapters):
    step = (_sde_lines if mode == "sde" else _discrete_lines)(lay, noise, leap, optimizer, finite_sum)
    if lay.reg:
        xs = ", ".join(f"x{j}" for j in range(lay.d))
        st = ", ".join(f"{a}{j}" for a in ("x",) + lay.state for j in range(lay.d))
        head = [f"def advance({st}, s0, s1, s2, s3, k, lp, nz, lv, sp, eta0, off, op):"]
        tail = [f"return {st}, s0, s1, s2, s3"]
        exit_head = f"def exit_hit({xs}, ep):"
    else:
        st = "".join(f"{a}, " for a in lay.state)
        head = [f"def advance(x, g, xt, gt, C, mean, G, {st}s0, s1, s2, s3, k, lp, nz, lv, sp, eta0, off, op):",
                "    d = x.shape[0]"]
        tail = ["return s0, s1, s2, s3"]
        exit_head = "def exit_hit(x, ep):"
    exit_lines = exit._kernel_test(lay) + ["return hit"]
    if not lay.reg:
        exit_lines = ["d = x.shape[0]"] + exit_lines
    body = ["from leap_sde._rng import normal_t, uniform_int_t",
            "from leap_sde._kernels import RUNNING, ESCAPED, DIVERGED, RETURNED, STOPPED, all_finite, basin_index",
            "from leap_sde.dynamics import abs_floor_root_2x2",
            *schedule._kernel_source(), "", "", *adapters,
            "@nb.njit(inline='always')", *head, "    eta_k = S_eta(sp, eta0, k)",
            *_indent(step + tail, 4), "", "",
            "@nb.njit(inline='always')", exit_head, *_indent(exit_lines, 4), "", ""]
    if score is not None:
        st = "".join(f", {a}" for a in lay.state)
        body += _SEGMENT_DRIVER.replace("{state_init}", "".join(
            f"\n        {a} = OPT[i, {s} * d:{s + 1} * d].copy()" for s, a in enumerate(lay.state))).replace(
            "{state_store}", "".join(f"\n        OPT[i, {s} * d:{s + 1} * d] = {a}" for s, a in enumerate(lay.state))
        ).replace("{state}", st).split("\n")
    else:
        body += _driver(lay, LANES if lay.reg else ARRAY_LANES, record, snapshots)
    return _compiled(tuple(body), functions, key)


_SEGMENT_DRIVER = """\
@nb.njit(cache=True, nogil=True)
def kernel(lo, hi, rng, X, OPT, steps, status, smax, z_a, z_stop, k_max, lp, nz, lv, sp, eta0, ep, off, op, qp):
    d = X.shape[1]
    for i in range(lo, hi):
        if status[i] != RUNNING:
            continue
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        x = X[i].copy()
        g = np.empty(d)
        xt = np.empty(d)
        gt = np.empty(d)
        C = np.empty((d, d))
        mean = np.empty(d)
        G = np.empty((off.shape[0], d)){state_init}
        k = steps[i]
        m = smax[i]
        st = RUNNING
        while k < k_max:
            s0, s1, s2, s3 = advance(x, g, xt, gt, C, mean, G{state}, s0, s1, s2, s3, k, lp, nz, lv, sp, eta0, off, op)
            k += 1
            if not all_finite(x):
                st = DIVERGED
                break
            if exit_hit(x, ep):
                st = ESCAPED
                m = np.inf
                break
            q = SCORE(x, qp)
            if q > m:
                m = q
            if q > z_stop:
                st = STOPPED
                break
            if q <= z_a:
                st = RETURNED
                break
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        X[i] = x{state_store}
        steps[i] = k
        smax[i] = m
        status[i] = st"""


@functools.lru_cache(maxsize=None)
def _compiled(body, functions, key):
    return _codegen.compile_module(list(body), dict(functions), tag=key).kernel


__all__ = ["kernel_for", "run_parallel", "basin_index", "RUNNING", "ESCAPED", "CENSORED", "DIVERGED", "normal_t", "uniform_int_t"]
