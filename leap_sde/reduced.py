r"""Reduced 1-D model of escape from pre-escape measurements (binned Kramers–Moyal estimates).

Along an escape coordinate ``q`` the measured process is read as a Markov chain with Gaussian increments

.. math:: q_{k+1} = q_k + b(q_k) + \sqrt{a(q_k)}\,ξ_k,\qquad ξ_k \sim N(0, 1),

with the one-step drift ``b(q) = E[Δq | q]`` and variance ``a(q) = Var[Δq | q]`` (per step of the
discrete process, no time-step limit). Both are estimated in bins of ``q`` from pairs ``(q_k, q_{k+1})``
of many replicas (binned Kramers–Moyal estimates; Friedrich, Peinke, Sahimi & Tabar, "Approaching
complexity by stochastic methods: from biological systems to turbulence", Phys. Rep. 506, 87–162, 2011),
with cluster-robust standard errors (replicas are the independent clusters), then smoothed by weighted
polynomial fits (``b`` a polynomial, ``log a`` a polynomial) with their covariance. The fitted chain's mean
exit time is the exact solution of the chain (:func:`leap_sde.theory.discrete_mfpt_1d`, or the same
subtraction-free solver on a two-sided grid); the Fokker–Planck quadrature with ``U' = −b``, ``D = a/2``
(time in steps) is a cross-check, and :meth:`ReducedModel.survival` gives the escape-time distribution. The CI
propagates the fit covariance (parametric bootstrap over the coefficients); the model error compares two drift
orders. ``kernel="empirical"`` replaces ``ξ ~ N(0, 1)`` by the empirical law of the standardized residuals
``(Δq − b(q))/sqrt(a(q))`` pooled over the window (skewed or heavy-tailed increments; the bootstrap then
resamples replicas' residuals too).

**The prediction at an exit beyond the visited range is an extrapolation of the fitted polynomials.**
It is only as good as the polynomial form outside the region the measurement runs visited; the result says
how far it extrapolates. Method and assumptions: docs/theory.md §12 (derived in this project).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy import special

from .theory.discrete import _gth_mfpt, discrete_mfpt_1d
from .theory.mfpt import mfpt_1d

__all__ = ["KMTable", "ReducedModel", "EscapePrediction", "km_table", "fit_reduced_chain"]


# ---------------------------------------------------------------------------------------------------------------
# data: pairs and binned Kramers–Moyal estimates
@dataclass(frozen=True)
class KMTable:
    """Binned one-step Kramers–Moyal estimates (one row per bin; arrays of shape ``(n_bins,)``).

    ``q_mean`` is the mean start point of the pairs in the bin (where ``drift`` and ``var`` are located);
    ``drift = mean Δq``, ``var = mean (Δq − drift)²·n/(n − 1)``, ``kurtosis`` the excess kurtosis of Δq in the
    bin (0 for the Gaussian model); standard errors are cluster-robust over replicas; ``used`` marks the
    bins with ``count >= min_count`` and ``>= 2`` replicas contributing (the others have ``nan`` SEs and are
    not fitted).
    """

    edges: np.ndarray
    q_mean: np.ndarray
    count: np.ndarray
    n_clusters: np.ndarray
    drift: np.ndarray
    drift_se: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    kurtosis: np.ndarray
    used: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.count.sum())

    def as_rows(self) -> list[dict]:
        """The table as a list of plain dicts (JSON-ready)."""
        keys = ("q_mean", "count", "n_clusters", "drift", "drift_se", "var", "var_se", "kurtosis", "used")
        rows = []
        for i in range(self.q_mean.size):
            r = {"q_lo": float(self.edges[i]), "q_hi": float(self.edges[i + 1])}
            for k in keys:
                v = getattr(self, k)[i]
                r[k] = bool(v) if k == "used" else (int(v) if k in ("count", "n_clusters") else float(v))
            rows.append(r)
        return rows


def _as_trajectories(trajectories) -> list[np.ndarray]:
    if isinstance(trajectories, np.ndarray):
        if trajectories.ndim != 2:
            raise ValueError(f"trajectories: a 2-D array (replicas, steps + 1), got shape {trajectories.shape}")
        trajs = [np.asarray(r, dtype=np.float64) for r in trajectories]
    elif isinstance(trajectories, Sequence) and not isinstance(trajectories, (str, bytes)):
        trajs = [np.asarray(r, dtype=np.float64).reshape(-1) for r in trajectories]
    else:
        raise TypeError("trajectories must be a 2-D array (nan-padded) or a sequence of 1-D arrays")
    if len(trajs) < 2:
        raise ValueError(f"trajectories: need at least 2 replicas (independent clusters), got {len(trajs)}")
    return trajs


def _window(window) -> tuple[float, float]:
    if window is None:
        return (-math.inf, math.inf)
    try:
        lo, hi = (float(window[0]), float(window[1]))
    except (TypeError, IndexError, ValueError):
        raise ValueError(f"window must be a pair (lo, hi), got {window!r}") from None
    if math.isnan(lo) or math.isnan(hi) or not lo < hi:
        raise ValueError(f"window must satisfy lo < hi (±inf allowed), got {window!r}")
    return lo, hi


def _pairs(trajs, window):
    """Start points, increments and replica ids of every pair ``(q_k, q_{k+1})`` with both finite and
    ``lo < q_k < hi``."""
    lo, hi = window
    q0s, dqs, ids = [], [], []
    for r, x in enumerate(trajs):
        if x.size < 2:
            continue
        a, b = x[:-1], x[1:]
        ok = np.isfinite(a) & np.isfinite(b) & (a > lo) & (a < hi)
        q0s.append(a[ok])
        dqs.append(b[ok] - a[ok])
        ids.append(np.full(int(ok.sum()), r, dtype=np.int64))
    return np.concatenate(q0s), np.concatenate(dqs), np.concatenate(ids)


def _cluster_stats(values, bin_idx, cid, n_bins, n_clusters):
    """Per bin: mean of ``values``, its cluster-robust SE, pair count and number of clusters.

    Ratio estimator ``m = Σ_r S_r / Σ_r n_r`` over clusters r; ``Var m ≈ G/(G − 1) Σ_r (S_r − m n_r)² / (Σ n_r)²``
    (G clusters with data in the bin; the sandwich estimator with replicas as clusters)."""
    key = bin_idx * n_clusters + cid
    S = np.bincount(key, weights=values, minlength=n_bins * n_clusters).reshape(n_bins, n_clusters)
    N = np.bincount(key, minlength=n_bins * n_clusters).reshape(n_bins, n_clusters).astype(np.float64)
    n = N.sum(1)
    G = (N > 0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = S.sum(1) / n
        resid = S - m[:, None] * N
        var = np.where(G > 1, G / np.maximum(G - 1, 1) * (resid ** 2).sum(1) / n ** 2, np.nan)
    return m, np.sqrt(var), n.astype(np.int64), G


def km_table(trajectories, *, bins=20, window=None, min_count: int = 20) -> KMTable:
    r"""Binned one-step Kramers–Moyal estimates of drift and variance along a coordinate.

    From every pair ``(q_k, q_{k+1})`` of every replica with ``lo < q_k < hi`` (``window``): in each bin of
    ``q_k``, ``b = mean Δq`` and ``a = Σ(Δq − b)²/(n − 1)``, located at the mean ``q_k`` of the bin.
    Standard errors treat the replicas as independent clusters (sandwich / ratio estimator), so that
    correlations of a replica's pairs within a bin are accounted for.

    Parameters
    ----------
    trajectories : ndarray (n_replicas, n_steps + 1) or sequence of 1-D arrays
        ``q`` along each replica; ``nan`` marks steps not run (a replica stopped early).
    bins : int or array of edges
        Number of equal-width bins over the range of the used start points, or the edges (increasing).
    window : (lo, hi), optional
        Only pairs whose start lies strictly inside are used (the measurement window).
    min_count : int
        Bins with fewer pairs (or fewer than 2 replicas) are reported but marked unused.

    Returns
    -------
    KMTable

    Source: Friedrich et al., Phys. Rep. 506, 87 (2011), §4 (binned conditional moments); cluster SEs
    standard (e.g. Cameron & Miller, J. Human Resources 50, 317, 2015); docs/theory.md §12.1.
    """
    trajs = _as_trajectories(trajectories)
    q0, dq, cid = _pairs(trajs, _window(window))
    if q0.size < 2:
        raise ValueError("trajectories: fewer than 2 usable pairs (q_k, q_k+1) inside the window")
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if int(bins) < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        lo, hi = float(q0.min()), float(q0.max())
        pad = 1e-12 * max(1.0, abs(lo), abs(hi))
        edges = np.linspace(lo - pad, hi + pad, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError("bins: an int >= 1 or a 1-D array of at least 2 increasing edges")
    if int(min_count) < 2:
        raise ValueError(f"min_count must be >= 2, got {min_count}")
    inside = (q0 >= edges[0]) & (q0 <= edges[-1])
    q0, dq, cid = q0[inside], dq[inside], cid[inside]
    nb, R = edges.size - 1, len(trajs)
    idx = np.clip(np.searchsorted(edges, q0, side="right") - 1, 0, nb - 1)
    qm, _, cnt, G = _cluster_stats(q0, idx, cid, nb, R)
    b, b_se, _, _ = _cluster_stats(dq, idx, cid, nb, R)
    r2 = (dq - b[idx]) ** 2
    m2, m2_se, _, _ = _cluster_stats(r2, idx, cid, nb, R)
    m4, _, _, _ = _cluster_stats(r2 * r2, idx, cid, nb, R)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cnt / np.maximum(cnt - 1, 1)
        a, a_se = m2 * corr, m2_se * corr
        kurt = m4 / m2 ** 2 - 3.0
    used = (cnt >= int(min_count)) & (G >= 2) & np.isfinite(b_se) & (b_se > 0) & np.isfinite(a_se) & (a_se > 0)
    return KMTable(edges=edges, q_mean=qm, count=cnt, n_clusters=G, drift=b, drift_se=b_se, var=a, var_se=a_se,
                   kurtosis=kurt, used=used)


# ---------------------------------------------------------------------------------------------------------------
# fits
def _wls(t, y, se, order):
    """Weighted least squares of ``y`` on ``1, t, …, t^order`` (weights ``1/se²``); covariance scaled by
    ``max(1, χ²/dof)`` (over-dispersion relative to the SEs, e.g. a misfit of the polynomial form)."""
    V = np.vander(t, order + 1, increasing=True)
    w = 1.0 / se ** 2
    A = V.T @ (w[:, None] * V)
    coef = np.linalg.solve(A, V.T @ (w * y))
    cov = np.linalg.inv(A)
    chi2 = float(np.sum(w * (y - V @ coef) ** 2))
    dof = t.size - (order + 1)
    if dof > 0:
        cov = cov * max(1.0, chi2 / dof)
    cov = 0.5 * (cov + cov.T)
    return coef, cov, chi2, dof


@dataclass(frozen=True)
class EscapePrediction:
    """Mean escape time (in steps) of the reduced chain, with its uncertainty.

    ``mean_steps`` — the fitted chain's exact mean exit time ``T`` from ``x0``; ``ci`` — the ``level`` percentile
    interval of the parametric bootstrap over the fit coefficients (``n_boot`` draws); ``log_se`` — the standard
    deviation of ``ln T`` over the draws (``ln T`` is close to linear in the drift coefficients, so this is the
    natural scale of the error); ``model_error`` — the larger of ``|T(p + 1) − T(p)|`` for the drift order ``p``
    and the same for the log-variance order: the change from fitting one more term, a truncation-error estimate
    of the polynomial forms (when the data cannot determine the extra term it is large, and so is the CI); the
    values of the alternatives (orders ``± 1``) are in ``alternatives``; ``fp_mean_steps`` — Fokker–Planck quadrature with
    ``U' = −b``, ``D = a/2`` (one-sided exits only, else ``nan``); ``extrapolation`` — how far (in ``q``)
    an exit lies beyond the visited range (0 if inside); ``status``/``notes`` — plain-language caveats;
    ``table`` — the binned estimates the model was fitted to; ``kernel`` — the one-step noise law used
    (``"gaussian"`` or ``"empirical"``).
    """

    mean_steps: float
    ci: tuple[float, float]
    log_se: float
    model_error: float
    alternatives: tuple[tuple[str, float], ...]
    fp_mean_steps: float
    x0: float
    exit_lo: float
    exit_hi: float
    reflect_at: float
    n_cells: int
    level: float
    n_boot: int
    n_boot_failed: int
    extrapolation: float
    status: str
    notes: tuple[str, ...] = ()
    table: Optional[KMTable] = None
    kernel: str = "gaussian"

    def as_dict(self) -> dict:
        """Plain data (JSON-ready): the fields, ``ci`` as a list, ``alternatives`` as a dict, ``table`` as rows."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["ci"] = list(self.ci)
        d["alternatives"] = {k: v for k, v in self.alternatives}
        d["notes"] = list(self.notes)
        d["table"] = self.table.as_rows() if self.table is not None else None
        return d


@dataclass(frozen=True)
class ReducedModel:
    """Fitted reduced chain ``q' = q + b(q) + sqrt(a(q)) ξ`` (see the module docstring).

    ``b(q) = Σ_j drift_coef[j] t^j`` and ``log a(q) = Σ_j logvar_coef[j] t^j`` with ``t = (q − q_center)/q_scale``;
    ``*_cov`` the coefficients' covariance (scaled by ``max(1, χ²/dof)``); ``visited`` the range of the fitted
    bins' start points; ``q_start`` the default start of predictions; ``kernel`` the default one-step noise law
    of the predictions (``"gaussian"`` or ``"empirical"``); ``pairs`` the measured ``(q_k, Δq_k, replica_id)``
    inside the table's range (the empirical kernel's residuals; None for a model built without them).
    """

    table: KMTable
    drift_order: int
    var_order: int
    q_center: float
    q_scale: float
    drift_coef: np.ndarray
    drift_cov: np.ndarray
    logvar_coef: np.ndarray
    logvar_cov: np.ndarray
    drift_chi2: float
    drift_dof: int
    var_chi2: float
    var_dof: int
    visited: tuple[float, float]
    window: tuple[float, float]
    q_start: float
    n_replicas: int
    notes: tuple[str, ...] = field(default=())
    kernel: str = "gaussian"
    pairs: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default=None, repr=False)

    # -- the model ------------------------------------------------------------------------------------------------
    def _t(self, q):
        return (np.asarray(q, dtype=np.float64) - self.q_center) / self.q_scale

    def drift(self, q, coef=None) -> np.ndarray:
        """Fitted one-step drift ``b(q)``."""
        c = self.drift_coef if coef is None else coef
        return np.polynomial.polynomial.polyval(self._t(q), c)

    def variance(self, q, coef=None) -> np.ndarray:
        """Fitted one-step variance ``a(q) = exp(poly)``."""
        c = self.logvar_coef if coef is None else coef
        return np.exp(np.polynomial.polynomial.polyval(self._t(q), c))

    def refit(self, *, drift_order: Optional[int] = None, var_order: Optional[int] = None) -> "ReducedModel":
        """The same table fitted with other polynomial orders."""
        return _fit(self.table, drift_order=self.drift_order if drift_order is None else drift_order,
                    var_order=self.var_order if var_order is None else var_order, window=self.window,
                    q_start=self.q_start, n_replicas=self.n_replicas, kernel=self.kernel, pairs=self.pairs)

    def residuals(self, split_at: Optional[float] = None):
        r"""Standardized one-step residuals of the fit and their replica ids.

        ``r_k = (Δq_k − b(q_k))/sqrt(a(q_k))`` for every pair ``(q_k, q_{k+1})`` of the table's range (``b``, ``a``
        the fitted polynomials), then centred and scaled to mean 0 and variance 1 over the pool, so that the
        empirical kernel keeps the fitted drift and variance exactly and changes only the *shape* of the
        one-step law (docs/theory.md §12.4). Returns ``(xi, replica_id)``; with ``split_at`` the pool is split
        into ``q_k < split_at`` and ``q_k >= split_at``, each standardized on its own, and the result is
        ``(xi, replica_id, upper)`` with ``upper`` marking the second side."""
        if self.pairs is None:
            raise ValueError("kernel='empirical' needs the measured pairs: this ReducedModel has none (fit it with "
                             "fit_reduced_chain, or pass pairs=(q_k, Δq_k, replica_id))")
        q0, dq, cid = self.pairs
        r = (dq - self.drift(q0)) / np.sqrt(self.variance(q0))
        ok = np.isfinite(r)
        r, cid, q0 = r[ok], cid[ok], q0[ok]
        if split_at is None:
            return _standardize(r, "the residuals"), cid
        up = q0 >= float(split_at)
        out = np.empty_like(r)
        for side, name in ((~up, f"q < split_at = {split_at}"), (up, f"q >= split_at = {split_at}")):
            out[side] = _standardize(r[side], f"the residuals with {name}")
        return out, cid, up

    def _kernel(self, kernel) -> str:
        k = self.kernel if kernel is None else kernel
        if k not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {k!r}")
        return k

    # -- predictions ----------------------------------------------------------------------------------------------
    def survival(self, steps, exit_lo=None, exit_hi=None, *, x0=None, reflect_at=None, cells_per_sd: float = 8.0,
                 max_cells: int = 800, kernel: Optional[str] = None,
                 split_at: Optional[float] = None) -> np.ndarray:
        r"""Survival ``P(τ > k)`` of the fitted chain at the step counts ``steps`` (point estimate, no CI).

        ``S(k) = p₀ Pᵏ 1`` for the cell-discretised Gaussian kernel (as :meth:`predict_escape`; a one-sided exit
        reflects at ``reflect_at``, default two bin widths beyond the visited range), by binary powers of ``P``
        (products of non-negative matrices, so tails of ``S`` keep their relative accuracy); ``x0`` is split
        linearly between its neighbouring cell centres. ``Σ_k S(k) = E[τ]``. ``kernel`` (default: the model's):
        ``"gaussian"`` or ``"empirical"`` (the measured residual law; ``split_at`` as in :meth:`predict_escape`).
        """
        xi = None
        if self._kernel(kernel) == "empirical":
            if split_at is None:
                xi = np.sort(self.residuals()[0])
            else:
                r, _, up = self.residuals(float(split_at))
                xi = (np.sort(r[~up]), np.sort(r[up]))
        elif split_at is not None:
            raise ValueError("split_at applies to kernel='empirical' only")
        return _survival(self, steps, exit_lo, exit_hi, x0=x0, reflect_at=reflect_at, cells_per_sd=cells_per_sd,
                         max_cells=max_cells, xi=xi, split_at=split_at)

    def predict_escape(self, exit_lo=None, exit_hi=None, *, x0=None, n_boot: int = 200, level: float = 0.95,
                       seed: int = 0, cells_per_sd: float = 8.0, max_cells: int = 1500,
                       reflect_at=None, kernel: Optional[str] = None,
                       split_at: Optional[float] = None) -> EscapePrediction:
        r"""Mean number of steps until ``q`` first leaves ``(exit_lo, exit_hi)`` under the reduced chain.

        ``T(x0)`` solves ``(I − P) T = 1`` for the cell-discretised Gaussian kernel
        ``N(q + b(q), a(q))`` (exact for the chain up to the cell width; subtraction-free elimination, so
        accurate at any barrier height, docs/theory.md §2.4, §11.3). One-sided (``exit_lo`` or ``exit_hi`` None):
        :func:`leap_sde.theory.discrete_mfpt_1d` with a reflecting end at ``reflect_at`` (default: two bin widths
        beyond the visited range on the far side), and the Fokker–Planck quadrature
        :func:`leap_sde.theory.mfpt_1d` with ``U' = −b``, ``D = a/2`` as a cross-check.

        ``kernel="empirical"`` replaces ``ξ ~ N(0, 1)`` by the empirical law of the standardized residuals
        ``ξ_k = (Δq_k − b(q_k))/sqrt(a(q_k))`` of the measured pairs, pooled over the window and rescaled to
        mean 0, variance 1 (:meth:`residuals`): the cell-to-cell probabilities are differences of the empirical
        CDF at the scaled cell edges, ``P_ij = F̂((e_{j+1} − μ_i)/s_i) − F̂((e_j − μ_i)/s_i)`` (counts of
        residuals, exact for the piecewise-constant CDF, no Monte Carlo), and every exit — one- or two-sided —
        is solved by the same subtraction-free elimination on that grid. It assumes that the *shape* of the
        standardized one-step law does not depend on ``q`` within the window (drift and variance still do), and
        it can carry the skewness of real increments that the Gaussian kernel misses; single steps are bounded
        by the largest measured residual. The bootstrap then also resamples the residuals by replica clusters
        (whole replicas with replacement, re-standardized). Derived in this project, docs/theory.md §12.4.

        Parameters
        ----------
        exit_lo, exit_hi : float or None
            Exit levels (``q <= exit_lo`` or ``q >= exit_hi`` ends the run); at least one.
        x0 : float, optional
            Start (default: ``q_start``, the measurement runs' start).
        n_boot : int
            Parametric-bootstrap draws of the coefficients (``N(coef, cov)``, drift and variance fits
            independent); 0 skips the CI.
        level : float
            CI level in (0, 1).
        seed : int
            Seed of the bootstrap draws.
        cells_per_sd : float
            Grid resolution: cells per smallest kernel standard deviation ``min sqrt(a)`` on the domain.
        max_cells : int
            Cap on the number of cells.
        reflect_at : float, optional
            Reflecting end of a one-sided exit.
        kernel : {"gaussian", "empirical"}, optional
            One-step noise law (default: the model's ``kernel``, as fitted).
        split_at : float, optional
            Empirical kernel only: two residual laws, one from the pairs with ``q_k < split_at`` and one from
            those with ``q_k >= split_at`` (e.g. the minimum: the kicks toward the exit and back can differ in
            shape), each used on its side. None: one pooled law.

        Returns
        -------
        EscapePrediction
        """
        kern = self._kernel(kernel)
        lo, hi, x0 = _exit_interval(self, exit_lo, exit_hi, x0)
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        if int(n_boot) < 0:
            raise ValueError(f"n_boot must be >= 0, got {n_boot}")
        if not float(cells_per_sd) > 0:
            raise ValueError(f"cells_per_sd must be > 0, got {cells_per_sd}")
        width = float(np.mean(np.diff(self.table.edges)))
        ref = math.nan
        if math.isinf(lo) or math.isinf(hi):
            if reflect_at is not None:
                ref = float(reflect_at)
            else:
                ref = self.visited[0] - 2 * width if math.isinf(lo) else self.visited[1] + 2 * width
            if not (ref < x0 if math.isinf(lo) else x0 < ref):
                raise ValueError(f"reflect_at must lie on the far side of x0 from the exit (reflect_at={ref}, x0={x0})")
        dom = (ref if math.isinf(lo) else lo, ref if math.isinf(hi) else hi)
        xs = np.linspace(dom[0], dom[1], 2001)
        s_min = float(np.sqrt(np.min(self.variance(xs))))
        n_cells = int(min(max(200, math.ceil(cells_per_sd * (dom[1] - dom[0]) / s_min)), int(max_cells)))
        xi = cid = up = xi_arg = None
        if split_at is not None and kern != "empirical":
            raise ValueError("split_at applies to kernel='empirical' only")
        if kern == "empirical":
            if split_at is None:
                xi, cid = self.residuals()
                xi_arg = np.sort(xi)
            else:
                split_at = float(split_at)
                xi, cid, up = self.residuals(split_at)
                xi_arg = (np.sort(xi[~up]), np.sort(xi[up]))
        solve = _solver(self, lo, hi, ref, x0, n_cells, xi_arg, split_at)

        T = solve(self.drift_coef, self.logvar_coef)
        notes = []
        alts = []
        model_error = math.nan
        n_used = int(self.table.used.sum())
        for key, p in (("drift_order", self.drift_order + 1), ("drift_order", self.drift_order - 1),
                       ("var_order", self.var_order + 1), ("var_order", self.var_order - 1)):
            if p < (1 if key == "drift_order" else 0) or n_used < p + 2:
                continue
            m = self.refit(**{key: p})
            Tp = solve(m.drift_coef, m.logvar_coef)
            alts.append((f"{key}={p}", Tp))
            if p == getattr(self, key) + 1 and math.isfinite(Tp):
                model_error = abs(Tp - T) if math.isnan(model_error) else max(model_error, abs(Tp - T))
        fp = math.nan
        if math.isinf(lo) or math.isinf(hi):
            try:
                fp = mfpt_1d(None, lambda q: 0.5 * self.variance(q), x0, hi if math.isinf(lo) else lo, ref,
                             dU=lambda q: -self.drift(q), n=20001)
            except (ValueError, FloatingPointError, OverflowError):  # pragma: no cover - diagnostic only
                fp = math.nan
        boots = []
        failed = 0
        if int(n_boot) > 0:
            rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
            cb = rng.multivariate_normal(self.drift_coef, self.drift_cov, size=int(n_boot), method="svd")
            cv = rng.multivariate_normal(self.logvar_coef, self.logvar_cov, size=int(n_boot), method="svd")
            if xi is not None:
                resample = _cluster_resampler(xi, cid) if up is None else _cluster_resampler_split(xi, cid, up)
                solve_b = lambda c1, c2: _solver(self, lo, hi, ref, x0, n_cells, resample(rng),  # noqa: E731
                                                 split_at)(c1, c2)
            else:
                solve_b = solve
            for i in range(int(n_boot)):
                Ti = solve_b(cb[i], cv[i])
                if math.isfinite(Ti):
                    boots.append(Ti)
                else:
                    failed += 1
        if boots:
            bv = np.array(boots)
            # failed draws (E τ overflow or unreachable exit) count as +inf in the percentile interval
            allv = np.concatenate((bv, np.full(failed, np.inf)))
            # interpolating between two +inf draws gives nan (inf − inf): such a bound is +inf
            ci = tuple(float(np.nan_to_num(np.quantile(allv, p), nan=np.inf, posinf=np.inf))
                       for p in (0.5 * (1 - level), 0.5 * (1 + level)))
            log_se = float(np.std(np.log(bv), ddof=1)) if bv.size > 1 else math.nan
        else:
            ci, log_se = (math.nan, math.nan), math.nan
        ext = max(0.0, hi - self.visited[1] if math.isfinite(hi) else 0.0,
                  self.visited[0] - lo if math.isfinite(lo) else 0.0)
        status = "ok"
        if ext > 0:
            status = "extrapolated"
            span = self.visited[1] - self.visited[0]
            notes.append(f"exit lies {ext:.4g} beyond the visited range [{self.visited[0]:.4g}, {self.visited[1]:.4g}] "
                         f"({ext / span:.3g} visited widths): the prediction rests on extrapolating the fitted "
                         f"drift (order {self.drift_order}) and log-variance (order {self.var_order})")
        if failed:
            status = "bootstrap_failures" if status == "ok" else status + "+bootstrap_failures"
            notes.append(f"{failed} of {n_boot} bootstrap draws gave no finite E[τ] (counted as +inf in the CI)")
        if math.isfinite(ref):
            notes.append(f"one-sided exit: reflecting end at q = {ref:.6g}")
        if xi is not None:
            parts = [("", np.ones(xi.size, dtype=bool))] if up is None else [
                (f" with q < {split_at:.4g}", ~up), (f" with q >= {split_at:.4g}", up)]
            for name, m in parts:
                v = xi[m]
                notes.append(f"empirical kernel{name}: {v.size} standardized residuals from {np.unique(cid[m]).size} "
                             f"replicas (skewness {float(np.mean(v ** 3)):.3g}, range [{v.min():.3g}, "
                             f"{v.max():.3g}]); bootstrap resamples replicas")
        return EscapePrediction(mean_steps=float(T), ci=ci, log_se=log_se, model_error=float(model_error),
                                alternatives=tuple(alts), fp_mean_steps=float(fp), x0=x0, exit_lo=lo, exit_hi=hi,
                                reflect_at=ref, n_cells=n_cells, level=float(level), n_boot=int(n_boot),
                                n_boot_failed=failed, extrapolation=float(ext), status=status,
                                notes=tuple(self.notes) + tuple(notes), table=self.table, kernel=kern)


def _exit_interval(model: ReducedModel, exit_lo, exit_hi, x0):
    """``(lo, hi, x0)`` with None exits as ∓inf and ``x0`` defaulting to the fitted start; checked."""
    lo = -math.inf if exit_lo is None else float(exit_lo)
    hi = math.inf if exit_hi is None else float(exit_hi)
    if math.isinf(lo) and math.isinf(hi):
        raise ValueError("exit_lo, exit_hi: give at least one finite exit level")
    x0 = model.q_start if x0 is None else float(x0)
    if not lo < x0 < hi:
        raise ValueError(f"x0 must lie strictly between exit_lo and exit_hi (x0={x0}, exit_lo={lo}, exit_hi={hi})")
    return lo, hi, x0


def _survival(model: ReducedModel, steps, exit_lo, exit_hi, *, x0, reflect_at, cells_per_sd, max_cells, xi=None,
              split_at=None):
    lo, hi, x0 = _exit_interval(model, exit_lo, exit_hi, x0)
    k = np.asarray(steps)
    if k.ndim != 1 or k.size == 0 or not np.issubdtype(k.dtype, np.integer) or np.any(k < 0):
        raise ValueError("steps must be a non-empty 1-D array of integers >= 0")
    width = float(np.mean(np.diff(model.table.edges)))
    if math.isinf(lo):
        lo = model.visited[0] - 2 * width if reflect_at is None else float(reflect_at)
    if math.isinf(hi):
        hi = model.visited[1] + 2 * width if reflect_at is None else float(reflect_at)
    if not lo < x0 < hi:
        raise ValueError(f"reflect_at must lie on the far side of x0 from the exit (got {reflect_at}, x0={x0})")
    xs = np.linspace(lo, hi, 2001)
    s_min = float(np.sqrt(np.min(model.variance(xs))))
    n = int(min(max(200, math.ceil(float(cells_per_sd) * (hi - lo) / s_min)), int(max_cells)))
    if xi is None:
        c, P, _ = gaussian_chain_matrix(model.drift, model.variance, lo, hi, n, kill_lo=exit_lo is not None,
                                        kill_hi=exit_hi is not None)
    else:
        c, P, _ = empirical_chain_matrix(model.drift, model.variance, xi, lo, hi, n, kill_lo=exit_lo is not None,
                                         kill_hi=exit_hi is not None, split_at=split_at)
    # start distribution: x0 split linearly between its two neighbouring cell centres
    p0 = np.zeros(n)
    j = int(np.clip(np.searchsorted(c, x0) - 1, 0, n - 2))
    w = float(np.clip((x0 - c[j]) / (c[j + 1] - c[j]), 0.0, 1.0))
    p0[j], p0[j + 1] = 1.0 - w, w
    # S(k) = p0 · P^k · 1 by binary powers of P (products of non-negative matrices: no cancellation)
    order = np.argsort(k)
    out = np.empty(k.size)
    kmax = int(k.max())
    powers = [P]
    while (1 << len(powers)) <= kmax:
        powers.append(powers[-1] @ powers[-1])
    for i in order:
        v = p0.copy()
        kk, bit = int(k[i]), 0
        while kk:
            if kk & 1:
                v = v @ powers[bit]
            kk >>= 1
            bit += 1
        out[i] = v.sum()
    return out


def _solver(model: ReducedModel, lo, hi, ref, x0, n_cells, xi=None, split_at=None):
    """``(drift_coef, logvar_coef) -> E[τ](x0)`` of the Gaussian chain, or of the empirical-kernel chain when the
    sorted standardized residuals ``xi`` are given (nan if not finite)."""
    import warnings

    def solve(cb, cv):
        b = lambda q: model.drift(q, cb)  # noqa: E731
        a = lambda q: model.variance(q, cv)  # noqa: E731
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                if xi is not None:
                    return _empirical_mfpt(b, a, xi, lo, hi, ref, x0, n_cells, split_at)
                if math.isinf(lo):
                    return float(discrete_mfpt_1d(lambda q: -b(q), x0, hi, ref, eta=1.0, additive_var=a,
                                                  n_cells=n_cells))
                if math.isinf(hi):
                    return float(discrete_mfpt_1d(lambda q: -b(q), x0, lo, ref, eta=1.0, additive_var=a,
                                                  n_cells=n_cells))
                return _two_sided_mfpt(b, a, lo, hi, x0, n_cells)
            except (ValueError, FloatingPointError):
                return math.nan

    return solve


def _scaled_edges(b, a, lo, hi, n_cells):
    """Cell centres ``c`` of ``n_cells`` equal cells on ``(lo, hi)`` and the cell edges in units of each row's
    step law, ``z_ij = (e_j − c_i − b(c_i))/sqrt(a(c_i))``, shape ``(n_cells, n_cells + 1)``."""
    edges = np.linspace(lo, hi, n_cells + 1)
    c = 0.5 * (edges[1:] + edges[:-1])
    mu = c + b(c)
    s = np.sqrt(a(c))
    if not np.all(np.isfinite(mu)) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("drift/variance not finite or variance <= 0 on the grid")
    return c, (edges[None, :] - mu[:, None]) / s[:, None]


def _ends(P, t_lo, t_hi, kill_lo, kill_hi):
    """Killed mass per row from the tails beyond each end; an end that does not kill returns its tail to the
    end cell of ``P`` (in place)."""
    e = np.zeros(P.shape[0])
    for kill, tail, j in ((kill_lo, t_lo, 0), (kill_hi, t_hi, -1)):
        if kill:
            e += tail
        else:
            P[:, j] += tail
    return e


def gaussian_chain_matrix(b, a, lo, hi, n_cells, *, kill_lo=True, kill_hi=True):
    """Cells, sub-stochastic ``P`` and killed mass ``e`` of ``q' ~ N(q + b(q), a(q))`` on ``(lo, hi)``: cell
    masses as differences of normal tails on the same side of the mean, ``e`` from the tails directly (never
    ``1 − Σ_j P_ij``), entries beyond 12 standard deviations set to 0 (banded). An end that does not kill
    returns its tail mass to the end cell (reflecting)."""
    c, z = _scaled_edges(b, a, lo, hi, n_cells)
    low = special.ndtr(np.minimum(z, 0.0))  # Φ(z) for z <= 0
    up = special.ndtr(-np.maximum(z, 0.0))  # Q(z) for z >= 0
    # mass of cell j: both edges below the mean: Φ(z_{j+1}) − Φ(z_j); above: Q(z_j) − Q(z_{j+1}); across: 1 − Φ − Q
    zl, zr = z[:, :-1], z[:, 1:]
    P = np.where(zr <= 0, low[:, 1:] - low[:, :-1],
                 np.where(zl >= 0, up[:, :-1] - up[:, 1:], 1.0 - low[:, :-1] - up[:, 1:]))
    P[(zr < -12.0) | (zl > 12.0)] = 0.0
    P = np.maximum(P, 0.0)
    t_lo, t_hi = special.ndtr(z[:, 0]), special.ndtr(-z[:, -1])
    return c, P, _ends(P, t_lo, t_hi, kill_lo, kill_hi)


def empirical_chain_matrix(b, a, xi, lo, hi, n_cells, *, kill_lo=True, kill_hi=True, split_at=None):
    """Cells, sub-stochastic ``P`` and killed mass ``e`` of ``q' = q + b(q) + sqrt(a(q)) ξ`` on ``(lo, hi)`` with
    ``ξ`` distributed as the sorted sample ``xi`` (equal weights): with ``N(z) = #{ξ_m <= z}``,
    ``P_ij = (N(z_{i,j+1}) − N(z_{i,j}))/n`` for the scaled edges ``z_{i,j} = (e_j − μ_i)/s_i`` — exact integer
    counts of the piecewise-constant empirical CDF, so no cancellation; the killed masses are ``N(z_{i,0})/n``
    (below ``lo``) and ``(n − N(z_{i,n}))/n`` (at or above ``hi``). An end that does not kill returns its tail mass
    to the end cell (reflecting). With ``split_at``, ``xi`` is a pair ``(xi_lower, xi_upper)`` of sorted samples:
    rows whose cell centre lies below ``split_at`` use the first, the others the second."""
    c, z = _scaled_edges(b, a, lo, hi, n_cells)
    if split_at is None:
        groups = [(np.asarray(xi, dtype=np.float64), np.ones(n_cells, dtype=bool))]
    else:
        upper = c >= float(split_at)
        groups = [(np.asarray(xi[0], dtype=np.float64), ~upper), (np.asarray(xi[1], dtype=np.float64), upper)]
    P = np.zeros((n_cells, n_cells))
    t_lo, t_hi = np.zeros(n_cells), np.zeros(n_cells)
    for x, rows in groups:
        if not rows.any():
            continue
        n = x.size
        N = np.searchsorted(x, z[rows], side="right")
        P[rows] = np.diff(N, axis=1).astype(np.float64) / n
        t_lo[rows], t_hi[rows] = N[:, 0] / n, (n - N[:, -1]) / n
    return c, P, _ends(P, t_lo, t_hi, kill_lo, kill_hi)


def _empirical_mfpt(b, a, xi, lo, hi, ref, x0, n_cells, split_at=None):
    """Mean exit time from ``x0`` of the empirical-kernel chain: two-sided on ``(lo, hi)``, or one-sided with the
    reflecting end ``ref`` replacing the infinite exit; the finite exit is a grid edge."""
    d_lo, d_hi = (ref, hi) if math.isinf(lo) else ((lo, ref) if math.isinf(hi) else (lo, hi))
    c, P, e = empirical_chain_matrix(b, a, xi, d_lo, d_hi, n_cells, kill_lo=not math.isinf(lo),
                                     kill_hi=not math.isinf(hi), split_at=split_at)
    # eliminate towards the absorbing end (as discrete_mfpt_1d): reverse when only the low end kills
    sol = _gth_mfpt(P, e, reverse=math.isinf(hi))
    if sol is None:
        return math.nan
    return float(np.interp(x0, c, sol[0]))


def _standardize(r, what):
    if r.size < 2:
        raise ValueError(f"kernel='empirical': fewer than 2 finite residuals in {what}")
    sd = float(r.std())
    if not sd > 0:
        raise ValueError(f"kernel='empirical': {what} have zero spread")
    return (r - r.mean()) / sd


def _cluster_resampler_split(xi, cid, up):
    """As :func:`_cluster_resampler`, for residuals split in two sides: ``rng -> (sorted lower, sorted upper)``,
    whole replicas resampled, each side re-standardized."""
    order = np.argsort(cid, kind="stable")
    xs, cs, us = xi[order], cid[order], up[order]
    ids, start, count = np.unique(cs, return_index=True, return_counts=True)

    def draw(rng):
        pick = rng.integers(0, ids.size, size=ids.size)
        r = np.concatenate([xs[start[k]:start[k] + count[k]] for k in pick])
        u = np.concatenate([us[start[k]:start[k] + count[k]] for k in pick])
        res = []
        for side in (~u, u):
            v = r[side]
            sd = v.std() if v.size > 1 else 0.0
            res.append(np.sort((v - v.mean()) / sd if sd > 0 else v - (v.mean() if v.size else 0.0)))
        if res[0].size == 0 or res[1].size == 0:  # a draw without one side: use the pooled draw there
            pooled = np.sort(np.concatenate(res))
            res = [r_ if r_.size else pooled for r_ in res]
        return tuple(res)

    return draw


def _cluster_resampler(xi, cid):
    """``rng -> sorted standardized residuals`` of a cluster bootstrap: as many replicas as contributed, drawn
    with replacement, all their residuals pooled and re-standardized to mean 0, variance 1."""
    order = np.argsort(cid, kind="stable")
    xs, cs = xi[order], cid[order]
    ids, start, count = np.unique(cs, return_index=True, return_counts=True)

    def draw(rng):
        pick = rng.integers(0, ids.size, size=ids.size)
        r = np.concatenate([xs[start[k]:start[k] + count[k]] for k in pick])
        sd = r.std()
        r = (r - r.mean()) / sd if sd > 0 else r - r.mean()
        return np.sort(r)

    return draw


def _two_sided_mfpt(b, a, lo, hi, x0, n_cells):
    c, P, e = gaussian_chain_matrix(b, a, lo, hi, n_cells)
    sol = _gth_mfpt(P, e)
    if sol is None:
        return math.nan
    return float(np.interp(x0, c, sol[0]))


# ---------------------------------------------------------------------------------------------------------------
KERNELS = ("gaussian", "empirical")


def _fit(table: KMTable, *, drift_order, var_order, window, q_start, n_replicas, notes=(), kernel="gaussian",
         pairs=None) -> ReducedModel:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    for name, v in (("drift_order", drift_order), ("var_order", var_order)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    u = table.used
    n_used = int(u.sum())
    need = max(drift_order, var_order) + 1
    if n_used < need:
        raise ValueError(f"only {n_used} bins have enough pairs (min_count) from >= 2 replicas; the fits need "
                         f">= {need}: use fewer bins, a lower order or more replicas/steps")
    q = table.q_mean[u]
    vis = (float(q.min()), float(q.max()))
    qc = 0.5 * (vis[0] + vis[1])
    qs = 0.5 * (vis[1] - vis[0]) if vis[1] > vis[0] else 1.0
    t = (q - qc) / qs
    cb, Cb, chib, dofb = _wls(t, table.drift[u], table.drift_se[u], int(drift_order))
    cv, Cv, chiv, dofv = _wls(t, np.log(table.var[u]), table.var_se[u] / table.var[u], int(var_order))
    return ReducedModel(table=table, drift_order=int(drift_order), var_order=int(var_order), q_center=qc, q_scale=qs,
                        drift_coef=cb, drift_cov=Cb, logvar_coef=cv, logvar_cov=Cv, drift_chi2=chib, drift_dof=dofb,
                        var_chi2=chiv, var_dof=dofv, visited=vis, window=window, q_start=float(q_start),
                        n_replicas=int(n_replicas), notes=tuple(notes), kernel=kernel, pairs=pairs)


def fit_reduced_chain(trajectories, *, window=None, bins=20, drift_order: int = 3, var_order: int = 1,
                      min_count: int = 20, q_start=None, kernel: str = "gaussian") -> ReducedModel:
    r"""Fit the reduced chain ``q' = q + b(q) + sqrt(a(q)) ξ`` to measured trajectories of a coordinate.

    Binned Kramers–Moyal estimates (:func:`km_table`), then weighted least squares of ``b`` on a polynomial of
    order ``drift_order`` and of ``log a`` on one of order ``var_order`` (weights ``1/SE²``; ``SE(log a) =
    SE(a)/a``), in the scaled variable ``t = (q − centre)/half-width`` of the visited range; the coefficient
    covariance is scaled by ``max(1, χ²/dof)``. The default cubic drift is exact for a quartic double well
    (``b = −ηU'``); the default log-linear variance extrapolates tamely (a convex log-variance fitted to a
    variance that grows on the far side of the well, e.g. multiplicative minibatch noise ∝ U'², inflates ``a``
    beyond the visited range on the exit side as well); see docs/theory.md §12.2 for why the orders are the model.

    Parameters
    ----------
    trajectories : ndarray (n_replicas, n_steps + 1) or sequence of 1-D arrays
        ``q`` of each replica (``nan`` after it stopped). Measurement runs should stop before any escape,
        e.g. when ``q`` first leaves an inner ``window``; only pairs starting inside the window are used
        (stopping is decided by the past, so it does not bias ``E[Δq | q]``).
    window : (lo, hi), optional
    bins, min_count
        As in :func:`km_table`.
    drift_order, var_order : int
        Polynomial orders of ``b`` and ``log a``.
    q_start : float, optional
        Default start of predictions (default: the median first value of the trajectories).
    kernel : {"gaussian", "empirical"}
        Default one-step noise law of the predictions: ``ξ ~ N(0, 1)``, or the empirical law of the
        standardized residuals pooled over the window (assumes its shape independent of ``q`` there;
        :meth:`ReducedModel.predict_escape`, docs/theory.md §12.4). The measured pairs are kept either way, so
        ``predict_escape(kernel=...)`` can switch.

    Returns
    -------
    ReducedModel
        With :meth:`ReducedModel.predict_escape`.

    Examples
    --------
    >>> model = fit_reduced_chain(q_runs, window=(-np.inf, -0.5))       # doctest: +SKIP
    >>> pred = model.predict_escape(exit_hi=0.0)                          # doctest: +SKIP
    >>> pred.mean_steps, pred.ci, pred.model_error, pred.status           # doctest: +SKIP

    Source: derived in this project, docs/theory.md §12.
    """
    trajs = _as_trajectories(trajectories)
    win = _window(window)
    table = km_table(trajs, bins=bins, window=win, min_count=min_count)
    if q_start is None:
        firsts = [x[0] for x in trajs if x.size and np.isfinite(x[0])]
        q_start = float(np.median(firsts))
    q0, dq, cid = _pairs(trajs, win)
    inside = (q0 >= table.edges[0]) & (q0 <= table.edges[-1])
    return _fit(table, drift_order=drift_order, var_order=var_order, window=win, q_start=q_start,
                n_replicas=len(trajs), kernel=kernel, pairs=(q0[inside], dq[inside], cid[inside]))
