"""Exact references for the discrete-time chain in 1-D, and the Euler–Maruyama boundary shift."""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import special

from ._common import _eval, _nonneg, _positive, _scalar, _step_of_z, _step_scale, _z_of_step

__all__ = [
    "GOBET_MENOZZI_BETA",
    "em_boundary_shift",
    "discrete_transition_matrix_1d",
    "discrete_mfpt_1d",
    "discrete_stationary_1d",
]


#: Gobet–Menozzi / Broadie–Glasserman–Kou boundary-shift constant β = −ζ(1/2)/√(2π) ≈ 0.5826
#: (Broadie, Glasserman & Kou 1997; Gobet & Menozzi 2010; docs/theory.md §2.3).
GOBET_MENOZZI_BETA = float(-special.zeta(0.5) / math.sqrt(2.0 * math.pi))


def em_boundary_shift(D, dt) -> float:
    r"""Inward boundary shift correcting discrete monitoring of an absorbing boundary.

    ``δ = β sqrt(2 D Δt)`` with ``β = −ζ(1/2)/√(2π) ≈ 0.5826`` (noise ``σ = sqrt(2D)`` normal to the
    boundary): move the absorbing point by ``δ`` towards the start to remove the O(√Δt) bias of
    Euler–Maruyama exit times.

    Parameters
    ----------
    D : float
        Diffusion coefficient at the boundary (> 0).
    dt : float
        Step (> 0).

    Returns
    -------
    float

    Source: Gobet & Menozzi (2010); β ≈ 0.5826 as in Broadie, Glasserman & Kou (1997);
    docs/theory.md §2.3.
    """
    D = _positive("D", D)
    dt = _positive("dt", dt)
    return GOBET_MENOZZI_BETA * math.sqrt(2.0 * D * dt)


def _step_nodes(eta: float, sig: float, variant: str, n_nodes: int):
    """Quadrature nodes (steps η̃_k, weights w_k) for the step law, split where η̃ = 0."""
    if sig == 0.0:
        return np.array([eta]), np.array([1.0])
    L = 9.0
    gx, gw = np.polynomial.legendre.leggauss(n_nodes)
    z0 = _z_of_step(0.0, eta, sig, variant) if variant != "lognormal" else None
    segs = [(-L, L)] if z0 is None or not -L < z0 < L else [(-L, z0), (z0, L)]
    zs, ws = [], []
    for a, b in segs:
        z = 0.5 * (b - a) * gx + 0.5 * (a + b)
        zs.append(z)
        ws.append(0.5 * (b - a) * gw * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    z, w = np.concatenate(zs), np.concatenate(ws)
    steps = _step_of_z(z, eta, sig, variant)
    if variant == "clipped" and z0 is not None and z0 > -L:
        keep = z > z0
        steps, w = np.concatenate((steps[keep], [0.0])), np.concatenate((w[keep], [special.ndtr(z0)]))
    return np.asarray(steps, dtype=np.float64), w / w.sum()


def _as_profile(v, name: str):
    if callable(v):
        return v
    c = _nonneg(name, v)
    return lambda x: np.full(np.shape(x), c)


def discrete_transition_matrix_1d(
    dU, x_lo, x_hi, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, absorb: str = "high",
):
    r"""Cell-discretised transition matrix of the 1-D discrete-time (LEAP-)SGD / Langevin chain.

    One step of the chain is

    .. math:: x' = x - η̃\,\big(U'(x) + \sqrt{C(x)}\,Z_1\big) + \sqrt{A(x)}\,Z_2,

    ``Z_1, Z_2 ~ N(0, 1)`` independent, ``η̃`` the (perturbed) step from :data:`STEP_VARIANTS`
    (``η̃ = η`` when ``sigma = 0``). Given ``η̃`` the next state is ``N(x − η̃U', η̃²C + A)``; the
    step law is integrated with Gauss–Legendre nodes split at ``η̃ = 0``. Covers the simulator's
    discrete mode (``C`` = gradient-noise variance, ``A = 0``) and its SDE mode
    (``C = 0``, ``A = 2D(x)η``, ``σ = 0``).

    ``[x_lo, x_hi]`` is cut into ``n_cells`` equal cells represented by their centres;
    ``P_ij = Σ_k w_k P(x' ∈ cell j | x = c_i, η̃_k)`` by exact normal CDFs (a cell on either side of
    the mean as a difference of the tail on that side, so that tail entries carry a small
    *relative* error, ~1e-13 at 10 standard deviations from the rounding of the edges, not an
    absolute ~1e-16). Mass leaving through the absorbing end (``absorb="high"``: ``x' >= x_hi``;
    ``"low"``: ``x' <= x_lo``) is killed, mass leaving through the other end is returned to the end
    cell (a reflecting end, to be placed where the chain essentially never goes).

    Parameters
    ----------
    dU : callable
        ``U'(x)``, vectorised.
    x_lo, x_hi : float
        Domain.
    eta : float
        Mean step ``η > 0``.
    noise_var : float or callable
        Gradient-noise variance ``C(x) >= 0``.
    sigma, variant, relative
        Step perturbation (see :func:`leap_lyapunov_exponent`); 1-D, so per-coordinate and scalar
        LEAP coincide.
    additive_var : float or callable
        Variance ``A(x) >= 0`` added independently of the step.
    n_cells : int
        Cells (>= 10). The cell width must be well below the smallest relevant kernel width
        ``min |η̃| sqrt(C) or sqrt(A)``.
    n_nodes : int
        Gauss–Legendre nodes per segment of the step law.
    absorb : {"high", "low"}
        Which end absorbs.

    Returns
    -------
    centers : ndarray, shape (n,)
    P : ndarray, shape (n, n)
        Sub-stochastic; ``1 − P.sum(1)`` is the one-step absorption probability (up to the
        ~1e-23 of the kernel truncated beyond ±10 standard deviations, and rounding).

    Notes
    -----
    Exact for the chain up to the cell discretisation (O(h²) for smooth expectations when the cell
    width ``h`` resolves the kernels) and the step-law quadrature. Source: derived in this project
    (standard Ulam/Nyström discretisation of a Markov kernel), docs/theory.md §2.4.
    """
    c, P, _ = _transition_1d(dU, x_lo, x_hi, eta=eta, noise_var=noise_var, sigma=sigma, variant=variant,
                             relative=relative, additive_var=additive_var, n_cells=n_cells, n_nodes=n_nodes,
                             absorb=absorb)
    return c, P


def _transition_1d(dU, x_lo, x_hi, *, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes,
                   absorb):
    """:func:`discrete_transition_matrix_1d` plus the killed mass ``e_i`` of every row, computed directly.

    ``e_i = Σ_k w_k Q((x_hi − μ_ik)/s_ik)`` (``absorb="high"``; ``Φ((x_lo − μ)/s)`` for ``"low"``), ``Q = 1 − Φ``
    the normal survival function, so that ``e_i`` has a small *relative* error even where it is 1e-300;
    ``1 − Σ_j P_ij`` would carry an absolute error ~1e-16 (docs/theory.md §11.3)."""
    if not callable(dU):
        raise ValueError("dU must be callable")
    x_lo = _scalar("x_lo", x_lo)
    x_hi = _scalar("x_hi", x_hi)
    if not x_hi > x_lo:
        raise ValueError(f"x_hi must be > x_lo, got {x_lo}, {x_hi}")
    eta = _positive("eta", eta)
    sig = _step_scale(eta, sigma, relative, variant)
    n = int(n_cells)
    if n < 10:
        raise ValueError(f"n_cells must be >= 10, got {n_cells}")
    if absorb not in ("high", "low"):
        raise ValueError(f"absorb must be 'high' or 'low', got {absorb!r}")
    Cf, Af = _as_profile(noise_var, "noise_var"), _as_profile(additive_var, "additive_var")
    edges = np.linspace(x_lo, x_hi, n + 1)
    c = 0.5 * (edges[1:] + edges[:-1])
    g = _eval(dU, c, "dU")
    Cv, Av = _eval(Cf, c, "noise_var"), _eval(Af, c, "additive_var")
    if np.any(Cv < 0) or np.any(Av < 0):
        raise ValueError("noise_var and additive_var must be >= 0")
    steps, w = _step_nodes(eta, sig, variant, int(n_nodes))
    h = (x_hi - x_lo) / n
    P = np.zeros((n, n + 1))  # last column: sink for clipped (zero-mass) band entries
    killed = np.zeros(n)
    for st, wk in zip(steps, w):
        mu = c - st * g
        s = np.sqrt(st * st * Cv + Av)
        pos = s > 0
        if np.any(pos):
            # banded: only the edges within ±10 s of the mean are evaluated
            r = np.nonzero(pos)[0]
            W = int(min(n, math.ceil(20.0 * float(s[r].max()) / h) + 3))
            _band_mass(P, killed, r, mu[r], s[r], x_lo, x_hi, h, n, W, wk, absorb == "high")
        if np.any(~pos):
            r = np.nonzero(~pos)[0]
            j = np.floor((mu[r] - x_lo) / h).astype(np.int64)
            if absorb == "high":
                j = np.where(j >= n, n, np.maximum(j, 0))  # >= x_hi: killed (sink)
            else:
                j = np.where(j < 0, n, np.minimum(j, n - 1))  # < x_lo: killed (sink)
            P[r, j] += wk
            np.add.at(killed, r[j == n], wk)
    P = P[:, :n]
    return c, P, killed


@njit(cache=True)
def _ndtr_small_tail(z):
    """``Φ(−|z|)``, the smaller normal tail at ``z``, to a few ulps relative (``erfc``)."""
    return 0.5 * math.erfc(abs(z) * 0.7071067811865476)


@njit(cache=True)
def _band_mass(P, killed, rows, mu, s, x_lo, x_hi, h, n, W, wk, high):
    """Add ``wk``·(normal cell masses) of the rows ``rows`` (means ``mu``, sds ``s > 0``) to ``P`` and the killed
    mass to ``killed``. Edges ``jlo..jlo+W`` (clipped at ``n``) with ``jlo`` 10 sds below the mean; the mass of a cell
    is a difference of the tails on the same side of the mean, ``1 − q_a − q_b`` across it (no cancellation).
    ``high``: below ``x_lo`` returns to cell 0, beyond ``x_hi`` killed; else mirror."""
    for t in range(rows.size):
        i, m, sd = rows[t], mu[t], s[t]
        if high:
            zk = (x_hi - m) / sd  # killed: Q(zk)
            killed[i] += wk * (_ndtr_small_tail(zk) if zk >= 0.0 else 1.0 - _ndtr_small_tail(zk))
        else:
            zk = (x_lo - m) / sd  # killed: Φ(zk)
            killed[i] += wk * (_ndtr_small_tail(zk) if zk <= 0.0 else 1.0 - _ndtr_small_tail(zk))
        jlo = int(math.floor((m - 10.0 * sd - x_lo) / h))
        jlo = min(max(jlo, 0), n)
        zl = (x_lo + jlo * h - m) / sd
        ql = _ndtr_small_tail(zl)
        for w in range(W):
            jl = jlo + w
            if jl >= n:
                break
            zr = (x_lo + (jl + 1) * h - m) / sd
            qr = _ndtr_small_tail(zr)
            if high and jl == 0:  # reflecting: Φ(z_right)
                mass = 1.0 - qr if zr > 0.0 else qr
            elif (not high) and jl == n - 1:  # reflecting: Q(z_left)
                mass = ql if zl > 0.0 else 1.0 - ql
            elif zl > 0.0:
                mass = ql - qr
            elif zr > 0.0:
                mass = (1.0 - qr) - ql
            else:
                mass = qr - ql
            P[i, jl] += wk * mass
            zl, ql = zr, qr


def discrete_mfpt_1d(
    dU, x0, x_c, x_l, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, second_moment: bool = False,
):
    r"""Exact mean number of *steps* for the 1-D discrete-time chain to reach ``x_c`` (or beyond).

    Solves ``(I − P) T = 1`` for the transition matrix of :func:`discrete_transition_matrix_1d`
    (chain ``x' = x − η̃(U' + sqrt(C) Z₁) + sqrt(A) Z₂``, exit the first step with
    ``x' >= x_c`` — or ``<= x_c`` when ``x_c < x0`` — as the simulator's :class:`~leap_sde.Threshold`
    checks it after every step). With ``second_moment`` also ``E[τ²]`` from
    ``(I − P) M₂ = 1 + 2 P T``.

    ``I − P`` is an M-matrix whose condition number grows like ``E[τ]``, so an ordinary float64 solve
    fails for rare escapes. It is solved instead by subtraction-free (GTH-type) Gaussian elimination:
    ``I − P`` is represented by the off-diagonal ``P_ij`` and the one-step killed mass ``e_i``, computed
    directly from normal survival functions (never as ``1 − Σ_j P_ij``); elimination updates both by
    additions only and takes every pivot as (remaining off-diagonals of the row) + (its updated killed
    mass). Every quantity is then a sum of products of non-negative numbers, and ``T`` is accurate to
    O(n·ε) relative, entrywise, independently of ``cond(I − P)`` (Grassmann, Taksar & Heyman, Oper. Res.
    33, 1107, 1985; O'Cinneide, Numer. Math. 65, 109, 1993; Alfa, Xue & Ye, Math. Comp. 71, 217, 2002;
    docs/theory.md §11.3). The elimination skips the zero band of the Gaussian kernel.

    This is the O(η)-exact counterpart of :func:`mfpt_1d`: it contains the discretisation bias of
    the chain (the in-well temperature ``D/(1 − ηU''/2)``, the discrete monitoring of the exit) and,
    with ``sigma > 0``, the non-Gaussian random step of LEAP; it makes no diffusion approximation.

    Parameters
    ----------
    dU, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes
        As in :func:`discrete_transition_matrix_1d`.
    x0 : float
        Start (the grid is shifted so that ``x0`` is a cell centre).
    x_c : float
        Absorbing threshold.
    x_l : float
        Far (reflecting) end, where the chain essentially never goes.
    second_moment : bool
        Also return ``E[τ²]``.

    Returns
    -------
    float or (float, float)
        ``E[τ]`` in steps (times ``η`` for continuous time), and ``E[τ²]`` if requested; ``nan`` (with a
        ``RuntimeWarning``) only if the exit cannot be reached from some cell or ``E[τ]`` overflows float64.

    Source: derived in this project (first-step analysis of the discretised chain), docs/theory.md §2.4, §11.3.
    """
    c, P, e = _chain_system(dU, x0, x_c, x_l, eta=eta, noise_var=noise_var, sigma=sigma, variant=variant,
                            relative=relative, additive_var=additive_var, n_cells=n_cells, n_nodes=n_nodes)
    sol = _gth_mfpt(P, e, reverse=float(x_c) < float(x0), second_moment=second_moment)
    if sol is None:
        import warnings

        warnings.warn("discrete_mfpt_1d: the exit is unreachable from part of the grid or E τ overflows float64; "
                      "returning nan", RuntimeWarning, stacklevel=2)
        return (math.nan, math.nan) if second_moment else math.nan
    t0 = float(np.interp(x0, c, sol[0]))
    if not second_moment:
        return t0
    return t0, float(np.interp(x0, c, sol[1]))


def _chain_system(dU, x0, x_c, x_l, *, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes):
    """Grid (``x0`` a cell centre, ``x_c`` on the absorbing edge), ``P`` and the killed mass ``e`` of the chain
    of :func:`discrete_mfpt_1d`; centres increase from the reflecting end when ``x_c > x0``."""
    x0 = _scalar("x0", x0)
    x_c = _scalar("x_c", x_c)
    x_l = _scalar("x_l", x_l)
    if not (x_l < x0 < x_c or x_c < x0 < x_l):
        raise ValueError(f"x0 must lie strictly between x_l and x_c (x_l={x_l}, x0={x0}, x_c={x_c})")
    n = int(n_cells)
    if n < 10:
        raise ValueError(f"n_cells must be >= 10, got {n_cells}")
    # cells of width h2 with x0 at a cell centre and x_c exactly on the absorbing edge
    h = abs(x_c - x_l) / n
    k = max(0, int(round(abs(x_c - x0) / h - 0.5)))
    h2 = abs(x_c - x0) / (k + 0.5)
    m = int(math.floor(abs(x0 - x_l) / h2))
    n_eff = m + 1 + k
    kw = dict(eta=eta, noise_var=noise_var, sigma=sigma, variant=variant, relative=relative,
              additive_var=additive_var, n_cells=n_eff, n_nodes=n_nodes)
    if x_c > x0:
        return _transition_1d(dU, x_c - n_eff * h2, x_c, absorb="high", **kw)
    return _transition_1d(dU, x_c, x_c + n_eff * h2, absorb="low", **kw)


def _gth_mfpt(P, e, *, reverse=False, second_moment=False):
    """``T = (I − P)⁻¹ 1`` (and ``M₂ = (I − P)⁻¹ (1 + 2PT)``) by subtraction-free elimination, from the
    off-diagonal ``P_ij`` and the killed mass ``e``; None if a pivot vanishes or the result overflows.
    ``reverse``: eliminate in reverse order (so that the absorbing end, at index 0, comes last)."""
    n = P.shape[0]
    flip = bool(reverse)
    M = np.array(P[::-1, ::-1] if flip else P, dtype=np.float64, order="C", copy=True)
    ee = np.array(e[::-1] if flip else e, dtype=np.float64, copy=True)
    if np.any(ee < 0) or np.any(M < 0):
        raise ValueError("P and the killed mass must be non-negative")
    d, first, last, bad = _gth_factor(M, ee)
    if bad >= 0:
        return None
    T = _gth_solve(M, d, first, last, np.ones(n))
    out = [T]
    if second_moment:
        Pf = P[::-1, ::-1] if flip else P  # M was factorised in place
        out.append(_gth_solve(M, d, first, last, 1.0 + 2.0 * (Pf @ T)))
    if not all(np.all(np.isfinite(v)) for v in out):
        return None
    return tuple(v[::-1].copy() if flip else v for v in out)


_GTH_BLOCK = 96  # panel width of the blocked elimination


def _gth_factor(M, e, nb=_GTH_BLOCK):
    """In-place subtraction-free LU of ``A = I − P`` for a (sub)stochastic ``P``, from the off-diagonals
    ``M_ij = P_ij ≥ 0`` (``i ≠ j``; the diagonal of ``M`` is ignored and overwritten) and the row defects
    ``e_i = 1 − Σ_j P_ij ≥ 0`` (overwritten with the updated defects).

    Step k: pivot ``d_k = e_k + Σ_{j>k} M_kj``; for each row ``i > k`` with ``M_ik > 0``: multiplier
    ``f = M_ik/d_k`` (stored in ``M_ik``), ``M_ij += f M_kj`` (``j > k``) and ``e_i += f e_k`` — the row sums of
    the Schur complement are the updated defects, so no diagonal is ever formed by subtraction (Grassmann,
    Taksar & Heyman 1985). Right-looking and blocked: panels of ``nb`` columns by :func:`_gth_panel`, the
    trailing update ``M₂₂ += L₂₁ U₁₂`` by a matrix product of non-negative factors (a sum of non-negative terms
    in any order, so the accuracy argument is unchanged), restricted to the band envelope.
    Returns ``(d, first, last, bad)``: pivots, first/last possibly nonzero column of each row (of L, resp. U)
    and the index of a non-positive pivot (-1 if none)."""
    n = M.shape[0]
    first, last, bottom = _gth_profiles(M)
    d = np.zeros(n)
    for k0 in range(0, n, nb):
        k1 = min(n, k0 + nb)
        bad = _gth_panel(M, e, d, last, bottom, k0, k1)
        if bad >= 0:
            return d, first, last, bad
        if k1 == n:
            break
        r1 = int(bottom[k0:k1].max()) + 1  # rows k1..r1-1 may have multipliers in the panel
        c1 = int(last[k0:k1].max()) + 1  # panel rows may reach column c1-1
        if r1 > k1 and c1 > k1:
            M[k1:r1, k1:c1] += M[k1:r1, k0:k1] @ M[k0:k1, k1:c1]
            np.maximum(last[k1:r1], c1 - 1, out=last[k1:r1])
            np.maximum(bottom[k1:c1], r1 - 1, out=bottom[k1:c1])
    return d, first, last, -1


@njit(cache=True)
def _gth_profiles(M):
    """First nonzero column left of the diagonal, last right of it (per row), last nonzero row below it (per column)."""
    n = M.shape[0]
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    bottom = np.empty(n, np.int64)
    for i in range(n):
        a = 0
        while a < i and M[i, a] == 0.0:
            a += 1
        first[i] = a
        b = n - 1
        while b > i and M[i, b] == 0.0:
            b -= 1
        last[i] = b
        r = n - 1
        while r > i and M[r, i] == 0.0:
            r -= 1
        bottom[i] = r
    return first, last, bottom


@njit(cache=True)
def _gth_panel(M, e, d, last, bottom, k0, k1):
    """Eliminate columns ``k0..k1-1`` (see :func:`_gth_factor`): rows of the panel are updated over their whole
    width, rows below it only in the panel's columns (the rest is the caller's matrix product). Returns the
    index of a non-positive pivot, or -1."""
    for k in range(k0, k1):
        lk = last[k]
        s = e[k]
        for j in range(k + 1, lk + 1):
            s += M[k, j]
        if not s > 0.0:
            return k
        d[k] = s
        ek = e[k]
        bk = bottom[k]
        for i in range(k + 1, bk + 1):
            a = M[i, k]
            if a == 0.0:
                continue
            f = a / s
            M[i, k] = f
            e[i] += f * ek
            hi = lk if i < k1 else min(lk, k1 - 1)
            for j in range(k + 1, hi + 1):  # touches the (ignored) diagonal M[i, i] too
                M[i, j] += f * M[k, j]
            if i < k1 and lk > last[i]:
                last[i] = lk
        for j in range(k + 1, lk + 1):
            if bottom[j] < bk:
                bottom[j] = bk
    return -1


@njit(cache=True)
def _gth_solve(M, d, first, last, b):
    """``A⁻¹ b`` from :func:`_gth_factor` (``b ≥ 0``): ``y_i = b_i + Σ_k L_ik y_k``, ``x_k = (y_k + Σ_j U_kj x_j)/d_k``
    with non-negative ``L``, ``U`` as stored — additions of non-negative terms only."""
    n = b.size
    y = b.copy()
    for i in range(n):
        s = y[i]
        for k in range(first[i], i):
            s += M[i, k] * y[k]
        y[i] = s
    x = np.empty(n)
    for k in range(n - 1, -1, -1):
        s = y[k]
        for j in range(k + 1, last[k] + 1):
            s += M[k, j] * x[j]
        x[k] = s / d[k]
    return x


def discrete_stationary_1d(
    dU, x_lo, x_hi, *, eta, noise_var=0.0, sigma=0.0, variant: str = "gaussian", relative: bool = False,
    additive_var=0.0, n_cells: int = 2000, n_nodes: int = 24, absorb: str | None = None, tol: float = 1e-12,
):
    r"""(Quasi-)stationary distribution of the 1-D discrete-time chain on ``[x_lo, x_hi]``.

    Left Perron vector ``π P = ρ π`` of :func:`discrete_transition_matrix_1d` by power iteration.
    With ``absorb=None`` both ends reflect (mass leaving is returned to the end cells) and ``ρ = 1``:
    the stationary law of the chain confined to the interval. With ``absorb="high"``/``"low"``
    it is the quasi-stationary distribution of the basin and ``1 − ρ`` the per-step escape rate.

    Parameters
    ----------
    dU, x_lo, x_hi, eta, noise_var, sigma, variant, relative, additive_var, n_cells, n_nodes
        As in :func:`discrete_transition_matrix_1d`.
    absorb : {None, "high", "low"}
        Absorbing end, or ``None`` for a closed interval.
    tol : float
        Convergence tolerance of the power iteration (L1 change of ``π``).

    Returns
    -------
    centers : ndarray (n,)
    weights : ndarray (n,)
        Probabilities of the cells (sum 1); ``E f ≈ Σ f(centers)·weights``.
    rho : float
        Perron eigenvalue (1 for a closed interval).

    Source: derived in this project, docs/theory.md §2.4.
    """
    c, P = discrete_transition_matrix_1d(
        dU, x_lo, x_hi, eta=eta, noise_var=noise_var, sigma=sigma, variant=variant, relative=relative,
        additive_var=additive_var, n_cells=n_cells, n_nodes=n_nodes,
        absorb="high" if absorb is None else absorb)
    if absorb is None:  # close the absorbing end too
        lost = 1.0 - P.sum(axis=1)
        P[:, -1] += lost
    pi = np.full(c.size, 1.0 / c.size)
    rho = 1.0
    for _ in range(200_000):
        new = pi @ P
        rho = float(new.sum())
        new /= rho
        if np.abs(new - pi).sum() < tol:
            pi = new
            break
        pi = new
    return c, pi, rho
