"""Compiled ensemble kernels: pure loops over arrays, no validation, no defaults, results written in place.

Shapes: ``N`` particles in ``d`` dimensions.  Per-particle state is resumable, so the Python layer can run
the ensemble in slices of steps (progress, Ctrl-C) with bit-identical results:

    rng     (N, 4) uint64   xoshiro256+ state of each particle's own stream
    X       (N, d) float64  positions
    steps   (N,)   int64    steps done
    times   (N,)   float64  continuous time Σ η_k
    status  (N,)   int8     RUNNING / ESCAPED / DIVERGED (CENSORED is set by the caller)
    counts  (N, b) int64    steps spent in each basin (b = 0: not recorded)
    snaps   (S, N, d)       positions every ``snap_every`` steps (S = 0: not recorded)

Random draws per step, in this order: gradient noise (minibatch indices, or d normals), then the LEAP
perturbation (d normals per-coordinate, 1 scalar), all from the particle's stream.

Landscape access goes through the module globals ``grad_at``/``hess_at``; :func:`kernels_for` rebinds
them to a user's compiled functions (the built-in set is compiled once and cached on disk).
"""
from __future__ import annotations

import math
import types

import numba as nb
import numpy as np

from ._rng import normal, normal_t, uniform_int
from .dynamics import E_LEAVE, E_REACH, E_THRESHOLD, L_CLIP, L_LOGN, N_HESS, N_MINIBATCH, N_NONE, N_WHITE
from .landscapes import grad1_at, grad2_at, grad_at, hess1_at, hess_at
from .schedules import eta_at

RUNNING, ESCAPED, CENSORED, DIVERGED = 0, 1, 2, 3


@nb.njit(inline="always")
def _basin(edges, x0):
    """Index of the basin holding first coordinate ``x0`` (``edges`` sorted)."""
    b = 0
    while b < edges.shape[0] and x0 > edges[b]:
        b += 1
    return b


def _exited(ecode, ep, x):
    if ecode == E_THRESHOLD:
        return ep[2] * (x[np.int64(ep[0])] - ep[1]) >= 0.0
    if ecode == E_LEAVE or ecode == E_REACH:
        r2 = 0.0
        for j in range(x.shape[0]):
            r2 += (x[j] - ep[1 + j]) ** 2
        return r2 >= ep[0] * ep[0] if ecode == E_LEAVE else r2 < ep[0] * ep[0]
    return False


def _full_grad(lcode, lp, off, x, g, xt, gt):
    """∇L(x) into g; for a finite sum the average of ∇base(x − a_i) over all samples."""
    n = off.shape[0]
    if n == 0:
        grad_at(lcode, lp, x, g)
        return
    g[:] = 0.0
    for i in range(n):
        _add_sample_grad(lcode, lp, off, i, x, g, xt, gt)
    g /= n


def _minibatch_grad(lcode, lp, off, batch, x, g, xt, gt, s):
    """Average of ∇base(x − a_i) over ``batch`` indices drawn with replacement."""
    g[:] = 0.0
    for _ in range(batch):
        _add_sample_grad(lcode, lp, off, uniform_int(s, off.shape[0]), x, g, xt, gt)
    g /= batch


def _add_sample_grad(lcode, lp, off, i, x, g, xt, gt):
    """g += ∇base(x − a_i)."""
    for j in range(x.shape[0]):
        xt[j] = x[j] - off[i, j]
    grad_at(lcode, lp, xt, gt)
    for j in range(x.shape[0]):
        g[j] += gt[j]


def _abs_floor_sqrt(lam, floor, scale):
    return math.sqrt(max(abs(lam), floor) * scale)


def _noise_cov(ncode, npar, lcode, lp, off, x, C, xt, gt):
    """Gradient-noise covariance Cov(ξ) at x into C (d, d)."""
    d = x.shape[0]
    C[:, :] = 0.0
    if ncode == N_WHITE:
        for j in range(d):
            C[j, j] = npar[0] * npar[0]
    elif ncode == N_HESS:
        hess_at(lcode, lp, x, C)
        if d == 1:
            C[0, 0] = max(abs(C[0, 0]), npar[1]) / npar[0]
        else:
            lam, V = np.linalg.eigh(C)
            for j in range(d):
                lam[j] = max(abs(lam[j]), npar[1]) / npar[0]
            C[:, :] = (V * lam) @ V.T
    elif ncode == N_MINIBATCH:
        n = off.shape[0]
        mean = np.zeros(d)
        G = np.empty((n, d))
        for i in range(n):
            for j in range(d):
                xt[j] = x[j] - off[i, j]
            grad_at(lcode, lp, xt, gt)
            for j in range(d):
                G[i, j] = gt[j]
                mean[j] += gt[j] / n
        for i in range(n):
            for a in range(d):
                for b in range(d):
                    C[a, b] += (G[i, a] - mean[a]) * (G[i, b] - mean[b]) / (n * npar[0])


def _gradient_noise(ncode, npar, lcode, lp, x, xi, H, s):
    """Draw ξ into xi (white or Hessian noise)."""
    d = x.shape[0]
    if ncode == N_WHITE:
        for j in range(d):
            xi[j] = npar[0] * normal(s)
    elif ncode == N_HESS:
        hess_at(lcode, lp, x, H)
        if d == 1:
            xi[0] = _abs_floor_sqrt(H[0, 0], npar[1], 1.0 / npar[0]) * normal(s)
        else:
            lam, V = np.linalg.eigh(H)
            z = np.empty(d)
            for j in range(d):
                z[j] = _abs_floor_sqrt(lam[j], npar[1], 1.0 / npar[0]) * normal(s)
            for a in range(d):
                v = 0.0
                for b in range(d):
                    v += V[a, b] * z[b]
                xi[a] = v
    else:
        xi[:] = 0.0


def _perturbed_rate(leap, eta_k, z):
    """η̃ = η_k + ε for one standard normal z, per the LEAP variant."""
    if leap[3] == L_LOGN:
        return eta_k * math.exp(leap[0] * z - 0.5 * leap[0] * leap[0])
    e = eta_k + (leap[0] * eta_k if leap[2] else leap[0]) * z
    if leap[3] == L_CLIP and e < 0.0:
        return 0.0
    return e


def _discrete_step(x, eta_k, lcode, lp, off, ncode, npar, leap, g, xi, xt, gt, H, s):
    """θ ← θ − η̃ ⊙ (∇L + ξ)."""
    d = x.shape[0]
    if ncode == N_MINIBATCH:
        _minibatch_grad(lcode, lp, off, np.int64(npar[0]), x, g, xt, gt, s)
    else:
        _full_grad(lcode, lp, off, x, g, xt, gt)
        if ncode != N_NONE:
            _gradient_noise(ncode, npar, lcode, lp, x, xi, H, s)
            for j in range(d):
                g[j] += xi[j]
    if leap[0] == 0.0:
        for j in range(d):
            x[j] -= eta_k * g[j]
    elif leap[1]:  # per-coordinate
        for j in range(d):
            x[j] -= _perturbed_rate(leap, eta_k, normal(s)) * g[j]
    else:
        e = _perturbed_rate(leap, eta_k, normal(s))
        for j in range(d):
            x[j] -= e * g[j]


def _sde_step(x, eta_k, lcode, lp, off, ncode, npar, leap, g, xi, xt, gt, H, s):
    """Euler–Maruyama step of dθ = −∇L dt + √(2D) dW with dt = η_k: θ ← θ − η_k∇L − S^{1/2}z, where
    S = 2·D·dt is the step covariance and z the particle's next d normals (the sign matches the discrete
    step, so white noise without LEAP gives the discrete path exactly)."""
    d = x.shape[0]
    _full_grad(lcode, lp, off, x, g, xt, gt)
    _noise_cov(ncode, npar, lcode, lp, off, x, H, xt, gt)  # H <- C
    if leap[3] == L_LOGN:
        s2 = eta_k * eta_k * math.expm1(leap[0] * leap[0])
    else:
        s2 = (leap[0] * eta_k if leap[2] else leap[0]) ** 2
    e2 = eta_k * eta_k
    if leap[1] or s2 == 0.0:  # S = η²C + σ² Diag(g² + diag C)
        for a in range(d):
            cdiag = H[a, a]
            for b in range(d):
                H[a, b] *= e2
            H[a, a] += s2 * (g[a] * g[a] + cdiag)
    else:  # S = (η² + σ²) C + σ² g gᵀ
        for a in range(d):
            for b in range(d):
                H[a, b] = (e2 + s2) * H[a, b] + s2 * g[a] * g[b]
    diagonal = True
    for a in range(d):
        for b in range(d):
            if a != b and H[a, b] != 0.0:
                diagonal = False
    for j in range(d):
        xt[j] = normal(s)
    if diagonal:
        for j in range(d):
            x[j] -= eta_k * g[j] + math.sqrt(max(H[j, j], 0.0)) * xt[j]
    else:
        lam, V = np.linalg.eigh(H)
        # symmetric square root: S^{1/2} z = V Λ^{1/2} Vᵀ z
        for b in range(d):
            v = 0.0
            for c in range(d):
                v += V[c, b] * xt[c]
            gt[b] = math.sqrt(max(lam[b], 0.0)) * v
        for a in range(d):
            v = 0.0
            for b in range(d):
                v += V[a, b] * gt[b]
            x[a] -= eta_k * g[a] + v


def _run_particles(sde, rng, X, steps, times, status, counts, snaps, snap_every, k_stop,
                   lcode, lp, off, ncode, npar, leap, scode, sp, eta, ecode, ep, edges):
    """Advance every RUNNING particle until it exits, diverges or reaches global step ``k_stop``."""
    N, d = X.shape
    n_snaps = snaps.shape[0]
    for i in nb.prange(N):
        if status[i] != RUNNING:
            continue
        s = rng[i].copy()
        x = X[i].copy()
        g = np.empty(d)
        xi = np.empty(d)
        xt = np.empty(d)
        gt = np.empty(d)
        H = np.empty((d, d))
        k = steps[i]
        t = times[i]
        st = RUNNING
        while k < k_stop:
            eta_k = eta_at(scode, sp, eta, k)
            if sde:
                _sde_step(x, eta_k, lcode, lp, off, ncode, npar, leap, g, xi, xt, gt, H, s)
            else:
                _discrete_step(x, eta_k, lcode, lp, off, ncode, npar, leap, g, xi, xt, gt, H, s)
            k += 1
            t += eta_k
            finite = True
            for j in range(d):
                if not math.isfinite(x[j]):
                    finite = False
            if not finite:
                st = DIVERGED
                break
            if counts.shape[1] > 0:
                counts[i, _basin(edges, x[0])] += 1
            if n_snaps > 0 and k % snap_every == 0 and k // snap_every < n_snaps:
                for j in range(d):
                    snaps[k // snap_every, i, j] = x[j]
            if _exited(ecode, ep, x):
                st = ESCAPED
                break
        rng[i] = s
        X[i] = x
        steps[i] = k
        times[i] = t
        status[i] = st


@nb.njit(cache=True, parallel=True)
def run_particles_1d(rng, X, steps, times, status, counts, snaps, snap_every, k_stop,
                     lcode, lp, ncode, npar, leap, scode, sp, eta, ecode, ep, edges):
    """:func:`run_particles` for the common 1-D case (a built-in landscape, discrete mode, no minibatch):
    same arguments and the same random draws, with the state and the stream held in registers."""
    N = X.shape[0]
    n_snaps = snaps.shape[0]
    record_basins = counts.shape[1] > 0
    const_rate = scode == 0 and sp[0] == 0.0
    for i in nb.prange(N):
        if status[i] != RUNNING:
            continue
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        x = X[i, 0]
        k = steps[i]
        t = times[i]
        st = RUNNING
        while k < k_stop:
            eta_k = eta if const_rate else eta_at(scode, sp, eta, k)
            g = grad1_at(lcode, lp, x)
            if ncode == N_WHITE:
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                g += npar[0] * z
            elif ncode == N_HESS:
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                g += _abs_floor_sqrt(hess1_at(lcode, lp, x), npar[1], 1.0 / npar[0]) * z
            if leap[0] == 0.0:
                x -= eta_k * g
            else:
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                x -= _perturbed_rate(leap, eta_k, z) * g
            k += 1
            t += eta_k
            if not math.isfinite(x):
                st = DIVERGED
                break
            if record_basins:
                counts[i, _basin(edges, x)] += 1
            if n_snaps > 0 and k % snap_every == 0 and k // snap_every < n_snaps:
                snaps[k // snap_every, i, 0] = x
            if ecode == E_THRESHOLD:
                if ep[2] * (x - ep[1]) >= 0.0:
                    st = ESCAPED
                    break
            elif ecode == E_LEAVE:
                if (x - ep[1]) ** 2 >= ep[0] * ep[0]:
                    st = ESCAPED
                    break
            elif ecode == E_REACH:
                if (x - ep[1]) ** 2 < ep[0] * ep[0]:
                    st = ESCAPED
                    break
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        X[i, 0] = x
        steps[i] = k
        times[i] = t
        status[i] = st


@nb.njit(cache=True, parallel=True)
def run_particles_2d(rng, X, steps, times, status, counts, snaps, snap_every, k_stop,
                     lcode, lp, ncode, npar, leap, scode, sp, eta, ecode, ep, edges):
    """:func:`run_particles` for built-in 2-D landscapes in discrete mode with no or white gradient noise:
    same arguments and the same random draws, with the state and the stream held in registers."""
    N = X.shape[0]
    n_snaps = snaps.shape[0]
    record_basins = counts.shape[1] > 0
    const_rate = scode == 0 and sp[0] == 0.0
    white = ncode == N_WHITE
    std = npar[0]
    per_coord = leap[1] != 0.0
    for i in nb.prange(N):
        if status[i] != RUNNING:
            continue
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        x0, x1 = X[i, 0], X[i, 1]
        k = steps[i]
        t = times[i]
        st = RUNNING
        while k < k_stop:
            eta_k = eta if const_rate else eta_at(scode, sp, eta, k)
            g0, g1 = grad2_at(lcode, lp, x0, x1)
            if white:
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                g0 += std * z
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                g1 += std * z
            if leap[0] == 0.0:
                x0 -= eta_k * g0
                x1 -= eta_k * g1
            else:
                z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                e = _perturbed_rate(leap, eta_k, z)
                x0 -= e * g0
                if per_coord:
                    z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)
                    e = _perturbed_rate(leap, eta_k, z)
                x1 -= e * g1
            k += 1
            t += eta_k
            if not (math.isfinite(x0) and math.isfinite(x1)):
                st = DIVERGED
                break
            if record_basins:
                counts[i, _basin(edges, x0)] += 1
            if n_snaps > 0 and k % snap_every == 0 and k // snap_every < n_snaps:
                snaps[k // snap_every, i, 0] = x0
                snaps[k // snap_every, i, 1] = x1
            if ecode == E_THRESHOLD:
                if ep[2] * ((x0 if ep[0] == 0.0 else x1) - ep[1]) >= 0.0:
                    st = ESCAPED
                    break
            elif ecode == E_LEAVE or ecode == E_REACH:
                r2 = (x0 - ep[1]) ** 2 + (x1 - ep[2]) ** 2
                if (r2 >= ep[0] * ep[0]) == (ecode == E_LEAVE):
                    st = ESCAPED
                    break
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        X[i, 0], X[i, 1] = x0, x1
        steps[i] = k
        times[i] = t
        status[i] = st


_HELPERS = ("_exited", "_add_sample_grad", "_full_grad", "_minibatch_grad", "_abs_floor_sqrt", "_noise_cov",
            "_gradient_noise", "_perturbed_rate", "_discrete_step", "_sde_step")
_PY = {name: globals()[name] for name in _HELPERS + ("_run_particles",)}


def _compile(namespace, cache):
    for name in _HELPERS:
        namespace[name] = nb.njit(cache=cache, inline="always" if cache else "never")(_rebind(_PY[name], namespace))
    return nb.njit(cache=cache, parallel=True)(_rebind(_PY["_run_particles"], namespace))


def _rebind(fn, namespace):
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)


run_particles = _compile(globals(), cache=True)


def kernels_for(landscape, noise_code, sde, general=False):
    """A callable ``f(sde, rng, X, ..., edges)`` with :func:`run_particles`' arguments for ``landscape``.

    The register kernels serve built-in landscapes in discrete mode: 1-D without minibatch noise, 2-D with no or
    white noise (unless ``general``: tests compare them pathwise); a :class:`~leap_sde.CustomLandscape` gets the general
    kernel compiled for its functions (memoised per function pair, not cached on disk).
    """
    grad_fn = getattr(landscape, "grad_fn", None)
    if grad_fn is not None:
        key = (grad_fn, landscape.hess_fn)
        if key not in _USER_KERNELS:
            _USER_KERNELS[key] = _compile(_user_namespace(grad_fn, landscape.hess_fn), cache=False)
        return _USER_KERNELS[key]
    if sde or general or landscape.lower()[2].shape[0] > 0 or noise_code == N_MINIBATCH:
        return run_particles
    if landscape.dim == 1:
        register_kernel = run_particles_1d
    elif landscape.dim == 2 and noise_code in (N_NONE, N_WHITE):
        register_kernel = run_particles_2d
    else:
        return run_particles

    def fast(sde, rng, X, steps, times, status, counts, snaps, snap_every, k_stop,
             lcode, lp, off, ncode, npar, leap, scode, sp, eta, ecode, ep, edges):
        register_kernel(rng, X, steps, times, status, counts, snaps, snap_every, k_stop,
                        lcode, lp, ncode, npar, leap, scode, sp, eta, ecode, ep, edges)
    return fast


_USER_KERNELS: dict = {}


def _user_namespace(grad_fn, hess_fn):
    @nb.njit
    def user_grad(code, p, x, out):
        grad_fn(x, p, out)

    if hess_fn is None:
        @nb.njit
        def user_hess(code, p, x, out):
            out[:, :] = np.nan
    else:
        @nb.njit
        def user_hess(code, p, x, out):
            hess_fn(x, p, out)

    namespace = dict(globals())
    namespace["grad_at"] = user_grad
    namespace["hess_at"] = user_hess
    return namespace
