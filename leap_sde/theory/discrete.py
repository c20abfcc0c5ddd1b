"""Exact references for the discrete-time chain in 1-D, and the Euler–Maruyama boundary shift."""
from __future__ import annotations

import math

import numpy as np
from scipy import linalg, special

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
    ``P_ij = Σ_k w_k P(x' ∈ cell j | x = c_i, η̃_k)`` by exact normal CDFs. Mass leaving through the
    absorbing end (``absorb="high"``: ``x' >= x_hi``; ``"low"``: ``x' <= x_lo``) is killed, mass
    leaving through the other end is returned to the end cell (a reflecting end, to be placed
    where the chain essentially never goes).

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
        Sub-stochastic; ``1 − P.sum(1)`` is the one-step absorption probability.

    Notes
    -----
    Exact for the chain up to the cell discretisation (O(h²) for smooth expectations when the cell
    width ``h`` resolves the kernels) and the step-law quadrature. Source: derived in this project
    (standard Ulam/Nyström discretisation of a Markov kernel), docs/theory.md §2.4.
    """
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
    for st, wk in zip(steps, w):
        mu = c - st * g
        s = np.sqrt(st * st * Cv + Av)
        pos = s > 0
        if np.any(pos):
            # banded: only the edges within ±10 s of the mean are evaluated
            r = np.nonzero(pos)[0]
            m_, s_ = mu[r], s[r]
            jlo = np.clip(np.floor((m_ - 10.0 * s_ - x_lo) / h).astype(np.int64), 0, n)
            W = int(min(n, math.ceil(20.0 * float(s_.max()) / h) + 3))
            J = np.minimum(jlo[:, None] + np.arange(W + 1)[None, :], n)  # edge indices, (r, W+1)
            cdf = special.ndtr((x_lo + J * h - m_[:, None]) / s_[:, None])
            if absorb == "high":
                cdf[J == 0] = 0.0  # mass below x_lo returns to cell 0 (reflecting end)
            else:
                cdf[J == n] = 1.0  # mass above x_hi returns to the last cell; below x_lo is killed
            mass = np.diff(cdf, axis=1)
            cols = np.where(J[:, :-1] < n, J[:, :-1], n)  # unique per row; clipped entries -> sink
            P[r[:, None], cols] += wk * mass
        if np.any(~pos):
            r = np.nonzero(~pos)[0]
            j = np.floor((mu[r] - x_lo) / h).astype(np.int64)
            if absorb == "high":
                j = np.where(j >= n, n, np.maximum(j, 0))  # >= x_hi: killed (sink)
            else:
                j = np.where(j < 0, n, np.minimum(j, n - 1))  # < x_lo: killed (sink)
            P[r, j] += wk
    P = P[:, :n]
    return c, P


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
        ``RuntimeWarning``) when the escape is too rare for a float64 solve (``E τ ≳ 10¹²`` steps).

    Source: derived in this project (first-step analysis of the discretised chain), docs/theory.md §2.4.
    """
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
        c, P = discrete_transition_matrix_1d(dU, x_c - n_eff * h2, x_c, absorb="high", **kw)
    else:
        c, P = discrete_transition_matrix_1d(dU, x_c, x_c + n_eff * h2, absorb="low", **kw)
    A = np.eye(c.size) - P
    lu = linalg.lu_factor(A)
    T = _refined_solve(A, lu, np.ones(c.size))
    t0 = float(np.interp(x0, c, T)) if T is not None else math.nan
    if T is None or not (np.all(np.isfinite(T)) and T.min() > 0):
        import warnings

        warnings.warn("discrete_mfpt_1d: the escape is too rare for a float64 linear solve (iterative refinement "
                      "did not converge; E τ ≳ 1e14 steps); returning nan", RuntimeWarning, stacklevel=2)
        return (math.nan, math.nan) if second_moment else math.nan
    if not second_moment:
        return t0
    M2 = _refined_solve(A, lu, 1.0 + 2.0 * (P @ T))
    return t0, (float(np.interp(x0, c, M2)) if M2 is not None else math.nan)


def _refined_solve(A, lu, b, *, rtol=1e-10, max_iter=8):
    """``A⁻¹ b`` by LU with iterative refinement, residuals in extended precision (``np.longdouble``).

    ``I − P`` of a rare escape has condition number ~ E τ: a plain float64 solve loses ``log10 E τ`` digits,
    refinement recovers them while ``cond·ε₆₄ < 1`` (Wilkinson; Higham, *Accuracy and Stability of Numerical
    Algorithms*, ch. 12).  Returns None if the corrections do not fall below ``rtol``."""
    Al, bl = A.astype(np.longdouble), b.astype(np.longdouble)
    x = linalg.lu_solve(lu, b).astype(np.longdouble)
    for _ in range(max_iter):
        r = bl - Al @ x
        dx = linalg.lu_solve(lu, r.astype(np.float64))
        x += dx
        if np.max(np.abs(dx)) <= rtol * float(np.max(np.abs(x))):
            return x.astype(np.float64)
    return None


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
