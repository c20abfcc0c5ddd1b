r"""Rare-event engine: generalized adaptive multilevel splitting (AMS) for mean escape times at high barriers.

Problem: the same as :func:`leap_sde.simulate` (landscape, start point, optimizer, noise, LEAP, exit) with a
time-homogeneous (constant) learning rate.  With a *score* ``ξ(x)`` (a reaction coordinate that increases
towards the exit) define the start set ``A = {ξ ≤ z_A}`` around the start minimum and a level ``Σ = {ξ = z_Σ}``
just outside it (``z_A < z_Σ``).  The escape decomposes into loops ``A → Σ → A`` and one final ``A → Σ → B``
(B: the exit condition), so (Cérou, Guyader, Lelièvre & Pommier, J. Chem. Phys. 134, 054108, 2011)

.. math:: E[τ] = E[T_1^{x_0}] + (1/p − 1)\,(E[T_1] + E[T_2]) + E[T_3]

with ``p`` the probability that a trajectory started on Σ (from its entrance distribution) reaches B before
A, ``T_1`` the time from A to Σ, ``T_2`` from Σ back to A, ``T_3`` the duration of a reactive trajectory Σ → B,
and ``T_1^{x_0}`` the first passage to Σ from ``x_0``.  The loop times are frequent events, measured by brute
force (a burn-in loop per particle is discarded); ``p`` and ``T_3`` come from generalized AMS (Bréhier,
Gazeau, Goudenège, Lelièvre & Rousset, Ann. Appl. Probab. 26, 2016): ``N`` replicas start at the Σ-entrance
points of the loop runs and run until A or B; at each iteration the replicas whose maximal score is at or
below the ``kill``-th smallest maximum ``z_j`` are killed (all ties together: discrete time makes ties real),
each is replaced by a copy of a surviving replica branched at the first time its path exceeded ``z_j`` and
continued with a fresh random stream, and the estimator is multiplied by ``1 − K_j/N``.  The algorithm stops
when every replica has reached B (or all would be killed: ``p̂ = 0``)::

    p̂ = Π_j (1 − K_j/N) · (number of replicas in B)/N        (unbiased for any score)

A replica's path is never stored: it is the deterministic function of its branch state and its stream, and it
is replayed to find where it first exceeds a level.  ``n_runs`` independent AMS runs (each its own
``SeedSequence`` child of ``seed``) are pooled (the mean of their unbiased p̂ enters ``1/p̄``, so the estimate
carries no ``1/p̂`` Jensen bias beyond O(1/n_runs)); the standard error is the jackknife over runs and the
95% interval Student-t.  Results are bit-identical for any thread count.

The score affects the variance, not the bias (the estimator is unbiased for any score whose level sets
separate A from B): a score close to the committor (the probability to reach B first) gives the smallest
variance.  Defaults: ``direction·x[coord]`` for a :class:`~leap_sde.Threshold` exit, the distance to the centre
for :class:`~leap_sde.LeaveBall` and minus the distance for :class:`~leap_sde.ReachBall`; a compiled
``score(x, params) -> float`` can be given instead.  Derivations and validity: docs/theory.md §11.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numba as nb
import numpy as np

from . import _kernels as K
from ._checks import check_int
from ._rng import particle_seeds, seed_state
from .dynamics import LEAP, Exit, LeaveBall, NoNoise, Noise, ReachBall, Threshold
from .landscapes import Landscape
from .optimizers import SGD, Optimizer
from .schedules import Constant, Schedule
from .simulate import check_setup, lowered, normalize_seed

__all__ = ["ams", "ams_probability", "AMSResult", "AMSRun"]


@nb.njit(cache=True)
def threshold_score(x, p):
    """``direction · x[coord]`` (``p = (coord, direction)``)."""
    return p[1] * x[p[0]]


@nb.njit(cache=True)
def ball_score(x, p):
    """``sign · ‖x − center‖`` (``p = (center, sign)``)."""
    r2 = 0.0
    for j in range(x.shape[0]):
        r2 += (x[j] - p[0][j]) ** 2
    return p[1] * math.sqrt(r2)


@nb.njit(cache=True)
def _seed_words(words, rng):
    for i in range(words.shape[0]):
        seed_state(words[i], rng[i])


@dataclass(frozen=True)
class AMSRun:
    """One independent AMS run: its estimates and diagnostics (steps unless stated)."""

    probability: float      #: p̂ = P(reach the exit before A | start on Σ)
    mean_steps: float       #: E[τ] from the decomposition
    t1_first: float         #: mean first passage x0 → Σ
    t_loop: float           #: mean loop A → Σ → A (T1 + T2)
    t_reactive: float       #: mean reactive duration Σ → exit
    iterations: int         #: selection iterations
    work_steps: int         #: particle-steps spent (loops, AMS, replays)
    extinct: bool           #: every replica was killed at some level (p̂ = 0)


@dataclass(frozen=True)
class AMSResult:
    """Outcome of :func:`ams`: the mean escape time, rate and reaching probability with 95% CIs over
    ``n_runs`` independent runs (Student t), and the per-run estimates in ``runs``."""

    mean_steps: float
    mean_steps_ci: tuple
    mean_steps_se: float
    mean_time: float
    mean_time_ci: tuple
    rate: float
    rate_ci: tuple
    probability: float
    probability_ci: tuple
    work_steps: int
    iterations: int
    runs: tuple
    levels: tuple           #: (z_A, z_Σ) of the score
    eta: float
    n_replicas: int = 0
    wall_time: float = 0.0
    warnings: tuple = field(default=())

    def to_frame(self):
        """pandas DataFrame, one row per independent AMS run (``ams_run`` and the :class:`AMSRun` fields)."""
        from .runs import ams_frame

        return ams_frame(self)

    @property
    def relative_se(self) -> float:
        return self.mean_steps_se / self.mean_steps if self.mean_steps > 0 else math.inf


def _default_score(exit: Exit, dim: int):
    if isinstance(exit, Threshold):
        return threshold_score, (np.int64(exit.coord), float(exit.direction)), exit.direction * exit.value
    if isinstance(exit, LeaveBall):
        return ball_score, (exit.center.astype(np.float64), 1.0), float(exit.radius)
    if isinstance(exit, ReachBall):
        return ball_score, (exit.center.astype(np.float64), -1.0), -float(exit.radius)
    raise ValueError(f"exit: AMS needs an exit with a default score (Threshold, LeaveBall, ReachBall) or a "
                     f"score= function, got {type(exit).__name__}")


class _Engine:
    """The arrays of one AMS run and the segment kernel that advances them."""

    def __init__(self, kernel, static, threads):
        self.kernel, self.static, self.threads = kernel, static, threads
        self.work = 0

    def run(self, rng, X, OPT, steps, smax, z_a, z_stop, k_max, idx=None):
        """Advance particles (all, or the rows ``idx``) until A, Σ-stop, exit or ``k_max`` steps; returns status."""
        sub = slice(None) if idx is None else idx
        r, x, o, s, m = rng[sub].copy(), X[sub].copy(), OPT[sub].copy(), steps[sub].copy(), smax[sub].copy()
        status = np.zeros(len(s), dtype=np.int8)
        before = int(s.sum())
        K.run_parallel(self.kernel, self.threads, len(s),
                       (r, x, o, s, status, m, float(z_a), float(z_stop), np.int64(k_max), *self.static))
        self.work += int(s.sum()) - before
        rng[sub], X[sub], OPT[sub], steps[sub], smax[sub] = r, x, o, s, m
        return status


def ams(
    landscape: Landscape,
    x0,
    *,
    eta: float,
    noise: Noise = NoNoise(),
    leap: Optional[LEAP] = None,
    schedule: Schedule = Constant(),
    optimizer: Optimizer = SGD(),
    mode: str = "discrete",
    exit: Exit,
    n_replicas: int = 1000,
    n_runs: int = 8,
    kill: int = 0,
    score: Optional[Callable] = None,
    score_params=(),
    levels: Optional[tuple] = None,
    loops: int = 20,
    max_steps: int = 10**9,
    seed=None,
    threads: Optional[int] = None,
    progress: bool = False,
    require_barrier: bool = True,
) -> AMSResult:
    """Mean escape time by generalized adaptive multilevel splitting (module docstring for the method).

    Parameters
    ----------
    landscape, x0, eta, noise, leap, optimizer, mode, exit : as for :func:`leap_sde.simulate` (``schedule`` must
        be :class:`~leap_sde.Constant`: a time-dependent rate has no stationary escape rate).
    n_replicas : replicas N per AMS run (≥ 2).  n_runs : independent runs (≥ 2) for the CI.
    kill : replicas killed per iteration (0: ``max(1, N // 50)``; ties are killed together).
    score, score_params : compiled ``score(x, score_params) -> float`` increasing towards the exit (default:
        from the exit rule).  levels : ``(z_A, z_Σ)`` in score units (default: 5% and 10% of the way from
        ``score(x0)`` to the exit's score, which suits a minimum with a thermal spread well below that).
    loops : A → Σ → A loops per particle for the loop times (the first is discarded).
    max_steps : step cap of any one segment (a segment that reaches it is reported in ``warnings``).
    seed : as for simulate; run r uses ``SeedSequence(seed).spawn(n_runs)[r]``.
    threads : threads for the segment kernels (results do not depend on it).
    progress : a bar over the ``n_runs`` independent runs (on a terminal or in a notebook; never in pipes).

    Returns
    -------
    AMSResult (``mean_steps`` with its 95% CI, ``mean_time = mean_steps·η``, ``rate = 1/mean_time``,
    ``probability`` of reaching the exit from Σ before A, ``work_steps``, ``iterations``, per-run ``runs``).
    """
    if not isinstance(schedule, Constant):
        raise ValueError("schedule: AMS estimates a stationary escape rate and needs a Constant schedule, got "
                         f"{type(schedule).__name__}")
    n = check_int("n_replicas", n_replicas, 2)
    n_runs = check_int("n_runs", n_runs, 2)
    kill = check_int("kill", kill, 0) or max(1, n // 50)
    if kill >= n:
        raise ValueError(f"kill must be in [0, {n - 1}] (below n_replicas), got {kill}")
    loops = check_int("loops", loops, 2)
    max_steps = check_int("max_steps", max_steps, 1)
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    if x0.shape != (landscape.dim,):
        raise ValueError(f"x0 must have shape ({landscape.dim},), got {x0.shape}")
    setup = check_setup(landscape, x0, exit, eta, noise, leap, mode, schedule, require_barrier=require_barrier,
                        max_steps=1, optimizer=optimizer)
    d = landscape.dim
    if score is None:
        score_fn, qp, z_b = _default_score(exit, d)
    else:
        if levels is None:
            raise ValueError("levels: give (z_A, z_Sigma) in score units with a custom score")
        score_fn, qp, z_b = score, score_params, math.inf
    z0 = float(score_fn(x0, qp))
    if levels is None:
        if not z_b > z0:
            raise ValueError(f"exit: the default score {z0:.4g} at x0 is not below its value {z_b:.4g} at the exit")
        levels = (z0 + 0.05 * (z_b - z0), z0 + 0.10 * (z_b - z0))
    z_a, z_sig = (float(v) for v in levels)
    if not (z0 <= z_a < z_sig):
        raise ValueError(f"levels: need score(x0) = {z0:.4g} <= z_A < z_Sigma, got ({z_a:.4g}, {z_sig:.4g})")
    kernel = K.kernel_for(landscape, noise, leap, schedule, exit, mode, optimizer=optimizer, general=True,
                          score=score_fn)
    args, off = lowered(landscape, noise, leap, schedule, eta, exit)
    static = (*args, off, optimizer.lower(), qp)
    n_state = len(optimizer.state_names) * d
    n_threads = 1 if threads is None else check_int("threads", threads, 1)
    ss = normalize_seed(seed)
    t_start = time.perf_counter()
    runs, notes = [], list(setup.warnings)
    bar = None
    if progress is True:
        from ._progress import bars_shown

        if bars_shown():
            from tqdm.auto import tqdm

            bar = tqdm(total=n_runs, desc="AMS", unit="run", dynamic_ncols=True, leave=False)
    elif progress is not False:
        raise ValueError(f"progress must be a bool, got {progress!r}")
    for r, child in enumerate(ss.spawn(n_runs)):
        eng = _Engine(kernel, static, n_threads)
        runs.append(_one_run(eng, child, x0, n, d, n_state, kill, loops, max_steps, z_a, z_sig, score_fn, qp, notes))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return _summarise(runs, eta, n, (z_a, z_sig), time.perf_counter() - t_start, tuple(dict.fromkeys(notes)))


def ams_probability(
    landscape: Landscape,
    x0,
    *,
    eta: float,
    horizon: int,
    noise: Noise = NoNoise(),
    leap: Optional[LEAP] = None,
    optimizer: Optimizer = SGD(),
    mode: str = "discrete",
    exit: Exit,
    n_replicas: int = 1000,
    n_runs: int = 8,
    kill: int = 0,
    score: Optional[Callable] = None,
    score_params=(),
    seed=None,
    threads: Optional[int] = None,
    require_barrier: bool = True,
):
    """``P(the exit is reached within horizon steps from x0)`` by adaptive multilevel splitting on the maximal
    score of each path over the fixed horizon (the trajectory-AMS estimand, Lestang et al., J. Stat. Mech. 2018;
    generalized AMS with ties as in :func:`ams`).  Returns ``(probability, (ci_low, ci_high), work_steps)`` with
    the mean over ``n_runs`` independent runs and its Student-t 95% interval."""
    from scipy import stats

    horizon = check_int("horizon", horizon, 1)
    n = check_int("n_replicas", n_replicas, 2)
    n_runs = check_int("n_runs", n_runs, 2)
    kill = check_int("kill", kill, 0) or max(1, n // 50)
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    check_setup(landscape, x0, exit, eta, noise, leap, mode, Constant(), require_barrier=require_barrier,
                optimizer=optimizer)
    d = landscape.dim
    score_fn, qp, _ = (score, score_params, None) if score is not None else _default_score(exit, d)
    kernel = K.kernel_for(landscape, noise, leap, Constant(), exit, mode, optimizer=optimizer, general=True,
                          score=score_fn)
    args, off = lowered(landscape, noise, leap, Constant(), eta, exit)
    static = (*args, off, optimizer.lower(), qp)
    n_state = len(optimizer.state_names) * d
    eng = _Engine(kernel, static, 1 if threads is None else check_int("threads", threads, 1))
    ps = []
    for child in normalize_seed(seed).spawn(n_runs):
        gen = np.random.default_rng(child.spawn(1)[0])
        b_rng = np.empty((n, 4), dtype=np.uint64)
        _seed_words(particle_seeds(child, n), b_rng)
        bX, bO, bk = np.tile(x0, (n, 1)), np.zeros((n, n_state)), np.zeros(n, dtype=np.int64)
        b_score = np.full(n, float(score_fn(x0, qp)))
        prefix = np.zeros(n, dtype=np.int64)
        rng, X, OPT, steps, smax = b_rng.copy(), bX.copy(), bO.copy(), bk.copy(), b_score.copy()
        status = eng.run(rng, X, OPT, steps, smax, -np.inf, np.inf, horizon)
        status, weight, _, _ = _split(eng, gen, kill, -np.inf, status, rng, X, OPT, steps, smax, b_rng, bX, bO, bk,
                                      b_score, prefix, horizon, [], horizon=horizon)
        ps.append(weight * np.count_nonzero(status == K.ESCAPED) / n)
    p = np.array(ps)
    m, se = float(p.mean()), float(p.std(ddof=1) / math.sqrt(n_runs))
    tq = float(stats.t.ppf(0.975, n_runs - 1))
    return m, (m - tq * se, m + tq * se), eng.work


def _one_run(eng, ss, x0, n, d, n_state, kill, loops, max_steps, z_a, z_sig, score_fn, qp, notes) -> AMSRun:
    gen = np.random.default_rng(ss.spawn(1)[0])
    rng = np.empty((n, 4), dtype=np.uint64)
    _seed_words(particle_seeds(ss, n), rng)
    X = np.tile(x0, (n, 1))
    OPT = np.zeros((n, n_state))
    steps = np.zeros(n, dtype=np.int64)
    smax = np.full(n, -np.inf)
    # loops A → Σ → A; the first passage from x0 is T1(x0), later ones are loop times
    t1_first, t1, t2 = None, [], []
    for loop in range(loops):
        k0 = steps.copy()
        st = eng.run(rng, X, OPT, steps, smax, -np.inf, z_sig, k0.max() + max_steps)
        if np.any(st != K.STOPPED):
            notes.append(f"{np.count_nonzero(st != K.STOPPED)} particles did not reach Σ within max_steps or "
                         "escaped during the loop runs (loop times biased)")
        if loop == 0:
            t1_first = float(np.mean(steps - k0))
        else:
            t1.append(float(np.mean(steps - k0)))
        if loop == loops - 1:
            break
        entry = (X.copy(), OPT.copy(), steps.copy(), rng.copy())
        k0 = steps.copy()
        smax[:] = -np.inf
        st = eng.run(rng, X, OPT, steps, smax, z_a, np.inf, k0.max() + max_steps)
        back = st == K.RETURNED
        t2.append(float(np.mean((steps - k0)[back])) if back.any() else 0.0)
        if not back.all():  # escaped (or capped) from Σ: restart those at their Σ entry (rare below high barriers)
            X[~back], OPT[~back], steps[~back] = entry[0][~back], entry[1][~back], entry[2][~back]
    t_loop = float(np.mean(t1) + np.mean(t2))
    # AMS from the Σ-entrance points: branch state = (X, OPT, step count), fresh stream per replica
    bX, bO, bk = X.copy(), OPT.copy(), steps.copy()
    b_rng = np.empty((n, 4), dtype=np.uint64)
    _seed_words(gen.integers(0, 2**63, size=n, dtype=np.uint64), b_rng)
    prefix = np.zeros(n, dtype=np.int64)               # steps from Σ-entry to the branch point
    b_score = np.array([score_fn(x, qp) for x in bX])  # score at the branch point
    rng, X, OPT, steps = b_rng.copy(), bX.copy(), bO.copy(), bk.copy()
    smax = b_score.copy()
    st = eng.run(rng, X, OPT, steps, smax, z_a, np.inf, bk.max() + max_steps)
    status, weight, iterations, extinct = _split(eng, gen, kill, z_a, st, rng, X, OPT, steps, smax, b_rng, bX, bO,
                                                 bk, b_score, prefix, max_steps, notes)
    reached = status == K.ESCAPED
    p = weight * reached.sum() / n
    t3 = float(np.mean(prefix[reached] + (steps - bk)[reached])) if reached.any() else math.nan
    mean = t1_first + (1.0 / p - 1.0) * t_loop + t3 if p > 0 else math.inf
    return AMSRun(probability=float(p), mean_steps=float(mean), t1_first=t1_first, t_loop=t_loop, t_reactive=t3,
                  iterations=iterations, work_steps=eng.work, extinct=extinct)


def _split(eng, gen, kill, z_a, status, rng, X, OPT, steps, smax, b_rng, bX, bO, bk, b_score, prefix, max_steps,
           notes, *, horizon=None):
    """The selection loop of generalized AMS on replicas already run once (``status``, ``smax``; branch states
    ``b*``): kill every replica at or below the ``kill``-th smallest maximum (ties together), branch each from a
    uniformly chosen survivor at its first passage above that level with a fresh stream, rerun it until A (score
    ≤ ``z_a``), the exit, or step ``horizon`` (else ``max_steps`` after its branch).  Stops when the level passes
    the exit or every replica would be killed.  Returns ``(status, weight Π(1 − K_j/N), iterations, extinct)``."""
    n = status.size
    weight, iterations, extinct = 1.0, 0, False
    while np.any(status != K.ESCAPED):
        z = np.sort(smax)[kill - 1]
        if not np.isfinite(z):  # the level passed the exit: stop, the replicas in B count
            break
        killed, survivors = np.nonzero(smax <= z)[0], np.nonzero(smax > z)[0]
        if survivors.size == 0:
            return status, 0.0, iterations, True
        weight *= 1.0 - killed.size / n
        iterations += 1
        donors = survivors[gen.integers(0, survivors.size, size=killed.size)]
        words = gen.integers(0, 2**63, size=killed.size, dtype=np.uint64)
        bX[killed], bO[killed], bk[killed], b_score[killed], prefix[killed], in_b = _branch(
            eng, donors, z, bX, bO, bk, b_rng, b_score, prefix, max_steps)
        one = np.empty((killed.size, 4), dtype=np.uint64)
        _seed_words(words, one)
        b_rng[killed] = one
        rng[killed], X[killed], OPT[killed], steps[killed] = one, bX[killed], bO[killed], bk[killed]
        smax[killed] = b_score[killed]
        status[killed[in_b]] = K.ESCAPED  # branched at the donor's exit step: already in B
        go = killed[~in_b]
        if go.size:
            k_max = horizon if horizon is not None else bk[go].max() + max_steps
            status[go] = eng.run(rng, X, OPT, steps, smax, z_a, np.inf, k_max, idx=go)
            if horizon is None and np.any(np.isin(status[go], (K.DIVERGED, K.RUNNING))):
                notes.append("some AMS segments diverged or reached max_steps (counted as returns)")
    return status, weight, iterations, extinct


def _branch(eng, donors, z, bX, bO, bk, b_rng, b_score, prefix, max_steps):
    """Replay each donor from its branch point with its own stream until its score first exceeds ``z``:
    (states, optimizer states, step counts, scores there, steps from Σ-entry)."""
    m = donors.size
    X, O, k0 = bX[donors].copy(), bO[donors].copy(), bk[donors].copy()
    rng = b_rng[donors].copy()
    steps = k0.copy()
    smax = b_score[donors].copy()
    replay = np.nonzero(b_score[donors] <= z)[0]  # a donor already above z at its branch point branches there
    in_b = np.zeros(m, dtype=bool)
    scores = b_score[donors].copy()
    if replay.size:
        st = eng.run(rng, X, O, steps, smax, -np.inf, z, k0.max() + max_steps, idx=replay)
        if np.any((st != K.STOPPED) & (st != K.ESCAPED)):  # a survivor's path exceeds z: cannot happen
            raise RuntimeError("AMS replay did not reproduce a surviving path")
        in_b[replay] = st == K.ESCAPED  # first above z at the exit step itself
        scores[replay] = smax[replay]
    return X, O, steps, scores, prefix[donors] + (steps - k0), in_b


def _pooled_mean(runs) -> float:
    """E[τ] from the runs pooled: ``T₁^{x₀} + (1/p̄ − 1)·T_loop + T₃`` with p̄ the mean of the runs' unbiased p̂
    (averaging the runs' own ``1/p̂`` instead would be biased upward by the relative variance of p̂)."""
    p = float(np.mean([r.probability for r in runs]))
    if not p > 0:
        return math.inf
    reached = [r for r in runs if r.probability > 0]
    t3 = float(np.average([r.t_reactive for r in reached], weights=[r.probability for r in reached]))
    return (float(np.mean([r.t1_first for r in runs])) + (1.0 / p - 1.0) * float(np.mean([r.t_loop for r in runs]))
            + t3)


def _log_interval(m, se, tq):
    """``m·exp(±tq·se/m)``: the Student-t interval of ``ln m`` (delta method), so a positive estimate gets a
    positive interval; to first order in ``se/m`` it is ``m ± tq·se``."""
    if not (m > 0 and np.isfinite(se)):
        return (0.0, math.inf) if not np.isfinite(se) else (m, m)
    half = tq * se / m
    return (m * math.exp(-half), m * math.exp(half))


def _summarise(runs, eta, n, levels, wall, notes) -> AMSResult:
    """Pooled estimate with jackknife (leave-one-run-out) standard error and Student-t 95% intervals on the
    log scale (:func:`_log_interval`: a mean time or a probability is positive)."""
    from scipy import stats  # lazily: importing leap_sde stays light

    k = len(runs)
    tq = float(stats.t.ppf(0.975, k - 1))
    mean = _pooled_mean(runs)
    loo = np.array([_pooled_mean(runs[:i] + runs[i + 1:]) for i in range(k)])
    se = float(math.sqrt((k - 1) / k * np.sum((loo - loo.mean()) ** 2))) if np.all(np.isfinite(loo)) else math.inf
    p = np.array([r.probability for r in runs])
    p_mean, p_se = float(p.mean()), float(p.std(ddof=1) / math.sqrt(k))
    ci = _log_interval(mean, se, tq)
    rate_ci = (1.0 / (ci[1] * eta) if ci[1] > 0 else 0.0, 1.0 / (ci[0] * eta) if ci[0] > 0 else math.inf)
    return AMSResult(mean_steps=mean, mean_steps_ci=ci, mean_steps_se=se, mean_time=mean * eta,
                     mean_time_ci=(ci[0] * eta, ci[1] * eta), rate=1.0 / (mean * eta) if mean > 0 else math.inf,
                     rate_ci=rate_ci, probability=p_mean, probability_ci=_log_interval(p_mean, p_se, tq),
                     work_steps=int(sum(r.work_steps for r in runs)), iterations=int(sum(r.iterations for r in runs)),
                     runs=tuple(runs), levels=levels, eta=float(eta), n_replicas=n, wall_time=wall, warnings=notes)
