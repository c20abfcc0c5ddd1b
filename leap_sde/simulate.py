"""Public simulation API: validate once, normalise the seed, run the compiled ensemble, return a result."""
from __future__ import annotations

import enum
import functools
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numba as nb
import numpy as np

from . import _kernels as K
from ._codegen import schedule_elapsed
from ._rng import particle_seeds, seed_state
from ._checks import check_int, check_positive
from .dynamics import LEAP, Exit, HessianNoise, MinibatchNoise, Noise, NoExit, NoNoise, Threshold, ReachBall
from .estimates import RateEstimate, SurvivalCurve, exponential_rate, kaplan_meier, ks_exponential
from .landscapes import CustomLandscape, FiniteSum, Landscape
from .optimizers import SGD, Optimizer
from .schedules import Constant, Schedule

__all__ = ["simulate", "EscapeResult", "Status", "StabilityWarning", "normalize_seed", "check_setup",
           "estimate_memory"]


class Status(enum.IntEnum):
    """Per-particle outcome."""

    ESCAPED = K.ESCAPED    #: the exit condition was met
    CENSORED = K.CENSORED  #: still inside after ``max_steps`` (or when the run was interrupted)
    DIVERGED = K.DIVERGED  #: the state became non-finite (never counted as an escape)


class StabilityWarning(UserWarning):
    """The start minimum is unstable at some step of the schedule: GD's linear condition η_k·λ_max(H) < 2,
    LEAP's mean-square condition or LEAP's almost-sure condition fails (the message says which)."""


def normalize_seed(seed) -> np.random.SeedSequence:
    """``int | SeedSequence | Generator | None`` → one ``SeedSequence`` (None draws fresh OS entropy,
    recorded in the result so the run can be repeated; a Generator contributes 128 bits of its stream)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=2).tolist())
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.SeedSequence(seed)
    raise ValueError(f"seed must be a non-negative int, a SeedSequence, a Generator or None, got {seed!r}")


@dataclass(frozen=True)
class EscapeResult:
    """Outcome of :func:`simulate` for ``N`` particles in ``d`` dimensions.

    Attributes
    ----------
    status : (N,) int8 — :class:`Status` of each particle.
    steps : (N,) int64 — steps until exit, divergence or censoring.
    times : (N,) float64 — the same in continuous time ``t = Σ_{j<k} η_j`` of the unperturbed schedule, an
        exact function of the step count ``k`` (``k·η`` for a constant rate), so equal steps give equal times.
    positions : (N, d) — final positions (the exit point for escaped particles).
    basin_steps : (N, b) int64 or None — steps spent in each basin (basins split coordinate 0 at
        ``basin_edges``).
    snapshots : (S, N, d) or None — positions at steps ``0, snapshot_every, 2·snapshot_every, ...``.
    seed_entropy : the SeedSequence entropy that reproduces the run.
    interrupted : True if Ctrl-C stopped the run (unfinished particles are then censored).
    warnings : human-readable warnings about the run (instability of the start minimum, first passage
        without a barrier); the same texts are emitted as :class:`StabilityWarning` / shown on the CLI.
    unstable : (N,) bool or None — escaped particles whose escape step had ``η_k·λ_max(H) ≥ 2`` at the start
        minimum (linear instability of GD, not noise-driven escape); None when no step is unstable.
    exponential_law : False for a first passage without a barrier (``require_barrier=False``): the
        exponential exit law and hence rate/KS summaries do not apply.
    """

    status: np.ndarray
    steps: np.ndarray
    times: np.ndarray
    positions: np.ndarray
    max_steps: int
    eta: float
    seed_entropy: object
    basin_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    basin_steps: Optional[np.ndarray] = None
    snapshots: Optional[np.ndarray] = None
    snapshot_every: int = 0
    interrupted: bool = False
    wall_time: float = 0.0
    warnings: tuple = ()
    unstable: Optional[np.ndarray] = None
    exponential_law: bool = True

    @property
    def n_particles(self) -> int:
        return int(self.status.size)

    @property
    def escaped(self) -> np.ndarray:
        return self.status == Status.ESCAPED

    @property
    def n_escaped(self) -> int:
        return int(np.count_nonzero(self.status == Status.ESCAPED))

    @property
    def n_censored(self) -> int:
        return int(np.count_nonzero(self.status == Status.CENSORED))

    @property
    def n_diverged(self) -> int:
        return int(np.count_nonzero(self.status == Status.DIVERGED))

    @property
    def n_unstable(self) -> int:
        """Escapes that happened while GD's step was linearly unstable at the start minimum (part of
        ``n_escaped``)."""
        return 0 if self.unstable is None else int(np.count_nonzero(self.unstable))

    @property
    def exit_points(self) -> np.ndarray:
        """(n_escaped, d) positions where the exit condition was met."""
        return self.positions[self.escaped]

    def _durations(self, unit):
        if unit == "steps":
            return self.steps.astype(np.float64)
        if unit == "time":
            return self.times
        raise ValueError(f"unit must be 'steps' or 'time', got {unit!r}")

    def rate(self, *, unit: str = "steps", confidence: float = 0.95) -> RateEstimate:
        """Censored exponential MLE of the escape rate (per step or per unit time) with its CI."""
        return exponential_rate(self._durations(unit), self.escaped, n_diverged=self.n_diverged,
                                confidence=confidence, unit=unit)

    def survival(self, *, unit: str = "steps", confidence: float = 0.95) -> SurvivalCurve:
        """Kaplan–Meier survival curve (diverged particles censored at their divergence time)."""
        return kaplan_meier(self._durations(unit), self.escaped, confidence=confidence)

    def ks_pvalue(self, *, t0: Optional[float] = None, unit: str = "steps") -> float:
        """KS p-value of the exponential exit law after the transient ``t0`` (default: 5% of the
        median escape time); diverged particles are left out."""
        t = self._durations(unit)
        keep = self.status != Status.DIVERGED
        if t0 is None:
            t0 = 0.05 * float(np.median(t[self.escaped])) if self.n_escaped else 0.0
        t_max = self.max_steps if unit == "steps" else float(t.max())  # censoring happens at max_steps
        return ks_exponential(t[keep], self.escaped[keep], t0=t0, t_max=max(t_max, t0 + 1e-12))

    def to_frame(self):
        """pandas DataFrame, one row per particle: ``particle``, ``status`` (categorical: escaped / censored /
        diverged), ``steps``, ``time``, final position ``x0 … x{d-1}`` (the exit point of escaped particles),
        ``unstable`` / ``basin`` / ``steps_in_basin_{k}`` where recorded (:func:`leap_sde.runs.escape_frame`)."""
        from .runs import escape_frame

        return escape_frame(self)

    def basin_fractions(self) -> Optional[np.ndarray]:
        """(b,) fraction of all simulated steps spent in each basin (None if not recorded)."""
        if self.basin_steps is None:
            return None
        tot = self.basin_steps.sum()
        return self.basin_steps.sum(axis=0) / tot if tot else np.zeros(self.basin_steps.shape[1])


@dataclass(frozen=True)
class _Setup:
    """What :func:`check_setup` found: warning texts and GD's instability threshold on the rate."""

    warnings: tuple = ()
    eta_unstable: float = math.inf  #: η with η·λ_max(H) = 2 at the start minimum (inf: unknown / none)
    first_unstable: int = -1        #: first step k < max_steps with η_k ≥ eta_unstable (-1: none)


def _schedule_scan(schedule):
    """Compiled ``scan(sp, eta0, n, eta_unstable)`` → (min η_k, its k, max η_k, its k, first k with
    η_k ≥ eta_unstable or −1, their count) over k < n, and ``etas_at(sp, eta0, ks, out)``, built from the
    schedule's own kernel code (the formula the simulation uses)."""
    return _schedule_scan_for(schedule.key, tuple(schedule._kernel_source()))


@functools.lru_cache(maxsize=None)
def _schedule_scan_for(key, source):
    from ._codegen import compile_module

    body = [*source, "", "",
            "@nb.njit(cache=True)", "def scan(sp, eta0, n, eta_unstable):",
            "    lo, hi = math.inf, -math.inf", "    k_lo, k_hi, first, count = 0, 0, -1, 0",
            "    for k in range(n):", "        e = S_eta(sp, eta0, k)",
            "        if e < lo:", "            lo, k_lo = e, k", "        if e > hi:", "            hi, k_hi = e, k",
            "        if e >= eta_unstable:", "            if first < 0:", "                first = k",
            "            count += 1", "    return lo, k_lo, hi, k_hi, first, count", "", "",
            "@nb.njit(cache=True)", "def etas_at(sp, eta0, ks, out):",
            "    for i in range(ks.shape[0]):", "        out[i] = S_eta(sp, eta0, ks[i])"]
    return compile_module(body, {}, tag=f"schedule scan {key}")


def elapsed_time(schedule: Schedule, eta: float, steps: np.ndarray) -> np.ndarray:
    """Continuous time ``t_k = Σ_{j<k} η_j`` after ``steps`` (any shape) of the unperturbed schedule: an exact
    function of the step count (``k·η`` for a constant rate; otherwise one running sum in step order, shared
    by all particles, so equal step counts give equal times)."""
    steps = np.asarray(steps, dtype=np.int64)
    if isinstance(schedule, Constant):
        return steps * float(eta)
    order = np.argsort(steps, axis=None, kind="stable")
    t = np.empty(steps.size)
    schedule_elapsed(schedule)(schedule.lower(), float(eta), steps.ravel()[order], t)
    out = np.empty(steps.size)
    out[order] = t
    return out.reshape(steps.shape)


def _require_barrier(landscape, x0, exit):
    if not isinstance(exit, (Threshold, ReachBall)):
        return
    hint = "; pass require_barrier=False (config: exit.require_barrier = false) for a first passage without one"
    saddles = landscape.saddles
    if not saddles:
        raise ValueError(f"exit: {type(landscape).__name__} has no saddle, so there is no barrier to "
                         f"escape over (use LeaveBall for stability experiments){hint}")
    if landscape.dim == 1:
        # a barrier is a local maximum between start and exit (the exit may sit on it), or else the
        # exit lies uphill of the start (e.g. just before the saddle, as the Gobet-Menozzi shift puts it)
        target = exit.value if isinstance(exit, Threshold) else float(exit.center[0])
        lo, hi = sorted((float(x0[0]), target))
        between = any(lo <= s.x[0] <= hi and s.x[0] != x0[0] for s in saddles)
        if between:
            return
        if isinstance(landscape, CustomLandscape) and landscape.loss_fn is None:
            raise ValueError(f"exit: no saddle of the landscape lies between x0={x0[0]} and the exit at {target}, "
                             f"and without loss_fn it cannot be checked that the exit is uphill{hint}")
        if landscape.loss([target]) <= landscape.loss(x0):
            raise ValueError(f"exit: no barrier (local maximum) of the landscape lies between x0={x0[0]} "
                             f"and the exit at {target}, which is downhill; the escape would be deterministic{hint}")


def _leap_scale(leap, eta_k):
    return leap.sigma * eta_k if leap.is_relative and leap.variant != "lognormal" else leap.sigma


def check_setup(landscape, x0, exit, eta, noise, leap, mode, schedule, *, require_barrier: bool = True,
                max_steps: int = 1, optimizer: Optional[Optimizer] = None) -> _Setup:
    """The checks :func:`simulate` makes before running: ValueError naming the argument for an impossible
    setup; a :class:`StabilityWarning` (also returned in ``.warnings``) for each stability condition that
    fails at the start minimum (curvature h = λ_max(H)) at some step k < ``max_steps`` of the schedule:

    * GD: ``η_k·h ≥ 2`` — the linearised map ``1 − η_k h`` expands: the minimum is not a basin while it holds;
    * LEAP mean-square: ``h ≥ h_ms(η_k, σ)`` (Gaussian: ``h(η_k² + σ²) ≥ 2η_k``) — the stationary variance of the
      linearised iterates is infinite (heavy tails), yet they may still converge almost surely;
    * LEAP almost-sure: Lyapunov exponent ``E log|1 − η̃_k h| > 0`` — the iterates leave the minimum
      almost surely (docs/theory.md §3.3, §8.5).

    The LEAP conditions are evaluated at the smallest and largest scheduled rate (for the Gaussian
    variant the mean-square threshold ``2η/(η² + σ²)`` is unimodal in η, so its minimum over the schedule
    lies at one of them); in d dimensions the curvature is λ_max (exact for a diagonal H).

    With momentum (:class:`SGD`) the GD condition is the heavy-ball / Nesterov one (the linear map
    ``θ, b → θ', b'`` of docs/theory.md §9 expands, weight decay added to h) and the LEAP condition its
    mean-square version (:func:`leap_sde.theory.momentum_mean_square_radius` ≥ 1); Adam's step is adaptive and
    has no such threshold, so none is checked.

    ``x0`` is one start point (d,) or one per particle (N, d).
    """
    try:
        exit.lower(landscape.dim)
    except ValueError as e:
        raise ValueError(f"exit: {e}") from None
    starts = x0.reshape(-1, landscape.dim)
    for x in starts:
        if exit.satisfied(x):
            raise ValueError(f"exit: the start point x0={x.tolist()} already satisfies the exit condition {exit}")
    x0 = starts[0]
    if isinstance(noise, MinibatchNoise) and not isinstance(landscape, FiniteSum):
        raise ValueError("noise: MinibatchNoise needs a FiniteSum landscape (per-sample losses)")
    if isinstance(noise, HessianNoise) and isinstance(landscape, CustomLandscape) and landscape.hess_fn is None:
        raise ValueError("noise: HessianNoise needs a landscape with a Hessian (CustomLandscape(hess_fn=...))")
    if mode == "sde" and leap is not None and leap.variant == "clipped":
        raise ValueError("leap: variant='clipped' has no SDE model; use mode='discrete'")
    if require_barrier:
        _require_barrier(landscape, x0, exit)
    mins = landscape.minima
    if not mins:
        return _Setup()
    m = min(mins, key=lambda c: float(np.sum((c.x - x0) ** 2)))
    if not np.all(np.isfinite(m.hessian)):
        return _Setup()
    h = float(np.linalg.eigvalsh(m.hessian).max())
    if not h > 0 or (optimizer is not None and not isinstance(optimizer, SGD)):
        return _Setup()
    momentum = optimizer is not None and not optimizer.is_plain
    if momentum:
        h += optimizer.weight_decay
        eta_unstable = _momentum_unstable_rate(h, optimizer)
    else:
        eta_unstable = 2.0 / h
    if isinstance(schedule, Constant):
        lo = hi = float(eta)
        k_lo = k_hi = 0
        first, count = (0, max_steps) if eta >= eta_unstable else (-1, 0)
    else:
        # the scan costs one rate evaluation per step (≈ 1 s per 10⁸ steps); beyond 10⁹ steps only those are checked
        lo, k_lo, hi, k_hi, first, count = _schedule_scan(schedule).scan(
            schedule.lower(), float(eta), min(int(max_steps), 10**9), eta_unstable)
    msgs = []
    where = f"at the start minimum x={m.x.tolist()} (λ_max(H) = {h:.4g})"
    if first >= 0:
        e_first = float(schedule.values(eta, first + 1)[first]) if first else float(schedule.values(eta, 1)[0])
        cond = (f"η_k = {e_first:.4g} >= {eta_unstable:.4g}, the momentum-{optimizer.momentum} stability limit"
                if momentum else f"η_k·λ_max(H) = {e_first * h:.4g} >= 2")
        msgs.append(f"GD step unstable {where}: {cond} from step k = {first} "
                    f"({count} of the {max_steps} steps): the minimum is not a basin while this holds, so escapes "
                    "during those steps are linear instability, not noise-driven escape (counted in n_unstable)")
    if momentum and leap is not None and leap.sigma > 0 and leap.variant == "gaussian":
        from . import theory as th

        for e, k in sorted({(lo, k_lo), (hi, k_hi)}):
            r = th.momentum_mean_square_radius(h, e, optimizer.momentum, leap.sigma, dampening=optimizer.dampening,
                                               nesterov=optimizer.nesterov, relative=bool(leap.relative))
            if r >= 1:
                msgs.append(f"LEAP mean-square condition fails {where} with momentum {optimizer.momentum}: spectral "
                            f"radius of E[A⊗A] = {r:.4g} >= 1 at η_k = {e:.4g} (step {k}): the linearised iterates "
                            "have infinite stationary variance (heavy tails); the almost-sure condition is not "
                            "checked for momentum")
                break
    elif leap is not None and leap.sigma > 0:
        from . import theory as th

        rel = leap.is_relative and leap.variant != "lognormal"
        ms_hit = as_hit = None
        for e, k in sorted({(lo, k_lo), (hi, k_hi)}):
            with np.errstate(all="ignore"):
                try:
                    h_ms = th.leap_mean_square_threshold(e, leap.sigma, relative=rel, variant=leap.variant)
                except (ValueError, OverflowError, ZeroDivisionError):
                    h_ms = 0.0
                try:
                    lam = th.leap_lyapunov_exponent(h, e, leap.sigma, relative=rel, variant=leap.variant)
                except (ValueError, OverflowError, ZeroDivisionError):
                    lam = math.inf
            if as_hit is None and not lam < 0:
                as_hit = (e, k, lam)
            elif ms_hit is None and h >= h_ms:
                ms_hit = (e, k, h_ms)
        if as_hit is not None:
            e, k, lam = as_hit
            msgs.append(f"LEAP almost-sure condition fails {where}: Lyapunov exponent E log|1 − η̃h| = {lam:.3g} "
                        f">= 0 at η_k = {e:.4g} (step {k}), σ = {_leap_scale(leap, e):.4g}: the linearised "
                        "iterates leave the minimum almost surely (unstable), so escapes are instability-driven")
        elif ms_hit is not None:
            e, k, h_ms = ms_hit
            msgs.append(f"LEAP mean-square condition fails {where}: h = {h:.4g} >= h_ms = {h_ms:.4g} at η_k = {e:.4g} "
                        f"(step {k}), σ = {_leap_scale(leap, e):.4g}: the linearised iterates have infinite "
                        "stationary variance (heavy tails), but the almost-sure condition E log|1 − η̃h| < 0 holds, "
                        "so they still converge to the minimum almost surely; large excursions, not a certain exit")
    for msg in msgs:
        warnings.warn(msg, StabilityWarning, stacklevel=3)
    return _Setup(tuple(msgs), eta_unstable, first)


def _momentum_unstable_rate(h, optimizer) -> float:
    """Smallest η at which SGD with momentum is linearly unstable on curvature h (bisection on the spectral
    radius of the deterministic transfer matrix; the heavy ball gives 2(1 + μ)/((1 − τ)h) exactly)."""
    from .theory import momentum_mean_square_radius

    def unstable(e):
        return momentum_mean_square_radius(h, e, optimizer.momentum, dampening=optimizer.dampening,
                                           nesterov=optimizer.nesterov) >= 1.0

    lo, hi = 0.0, 2.0 * (1.0 + optimizer.momentum) / (h * max(1.0 - optimizer.dampening, 1e-12))
    while not unstable(hi):
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if unstable(mid) else (mid, hi)
    return hi


def lowered(landscape, noise, leap, schedule, eta, exit):
    """The kernels' parameter arguments ``(lp, nz, lv, sp, eta0, ep)`` and the finite-sum offsets ``off``."""
    d = landscape.dim
    args = (landscape.lower(), noise.lower(landscape), leap.lower() if leap is not None else (0.0,),
            schedule.lower(), float(eta), exit.lower(d))
    return args, (landscape.offsets if isinstance(landscape, FiniteSum) else np.zeros((0, d)))


@nb.njit(cache=True)
def _seed_all(words, rng):
    for i in range(words.shape[0]):
        seed_state(words[i], rng[i])


def simulate(
    landscape: Landscape,
    x0,
    *,
    eta: float,
    noise: Noise = NoNoise(),
    leap: Optional[LEAP] = None,
    schedule: Schedule = Constant(),
    mode: str = "discrete",
    exit: Exit = NoExit(),
    n_particles: int = 1000,
    max_steps: int = 100_000,
    seed=None,
    threads: Optional[int] = None,
    basins: bool = False,
    snapshot_every: int = 0,
    snapshot_max_bytes: int = 256 * 2**20,
    progress: bool | Callable = False,
    interrupt: str = "raise",
    require_barrier: bool = True,
    optimizer: Optimizer = SGD(),
    _general_kernel: bool = False,
) -> EscapeResult:
    """Simulate ``n_particles`` independent copies of an optimizer from ``x0`` until they exit.

    Discrete (``mode="discrete"``)::  θ_{k+1} = θ_k − η̃_k ⊙ u_k,  η̃_k = η_k + ε_k (LEAP), with u_k the
    optimizer's direction from ``g_k = ∇L(θ_k) + ξ_k`` (plain SGD: u_k = g_k; :mod:`leap_sde.optimizers`)
    SDE (``mode="sde"``)::  dθ = −∇L dt + √(2D(θ)) dW by Euler–Maruyama with dt = η_k,
    ``D = η·Cov(ξ)/2`` plus LEAP's effective diffusion (see :mod:`leap_sde.dynamics`).

    Parameters
    ----------
    landscape, x0 : the loss and the start point, shape (d,), or one start per particle, (n_particles, d).
    eta : base learning rate η > 0 (the schedule's ``η_0``; also the SDE step).
    noise : gradient noise ξ (:class:`NoNoise`, :class:`WhiteNoise`, :class:`HessianNoise`, :class:`MinibatchNoise`).
    leap : :class:`LEAP` perturbation of the rate, or None.
    optimizer : :class:`SGD` (default: plain, no momentum), :class:`Adam` or :class:`AdamW`, with torch.optim's
        update rules and defaults; per-particle state (momentum buffers, moments) lives in the kernel.
        Momentum and Adam: ``mode="discrete"`` only.
    schedule : learning-rate schedule (:mod:`leap_sde.schedules`).
    exit : exit rule; particles that never meet it within ``max_steps`` are right-censored.
    n_particles, max_steps : ensemble size N ≥ 1 and step budget ≥ 1.
    seed : int, SeedSequence, Generator or None; particle ``i`` uses its own xoshiro256+ stream seeded from
        ``SeedSequence(seed).generate_state(N)[i]``, so results do not depend on ``threads``.
    threads : number of threads (default: all Numba threads, one per 64 particles for small ensembles).
    basins : record the steps spent in each basin (split along coordinate 0 at the landscape's saddles).
    snapshot_every, snapshot_max_bytes : record positions every so many steps, at most this much memory.
    progress : True for a progress bar on a terminal (steps done, particles escaped, elapsed, remaining),
        or a callable ``f(steps_done, max_steps, n_escaped, N)`` called after each slice of steps.
    interrupt : on Ctrl-C, ``"raise"`` (default) or ``"return"`` the partial result with unfinished
        particles censored and ``interrupted=True``.
    require_barrier : for :class:`Threshold` and :class:`ReachBall` exits, refuse (ValueError) a setup with no
        barrier between start and exit (no saddle, or a downhill exit in 1-D), where escape is not the
        rare, exponentially distributed event the rate estimates assume.  ``False`` allows such first passages
        (e.g. an uphill first passage of an Ornstein–Uhlenbeck process, or convergence times into a
        ``ReachBall``); the result then has ``exponential_law=False`` and a note in ``warnings``.

    Memory: the arrays are estimated first (:func:`estimate_memory`); a run that would need more than the
    available memory raises ValueError with the estimate.

    Returns
    -------
    EscapeResult
    """
    if not isinstance(landscape, Landscape):
        raise TypeError(f"landscape must be a leap_sde Landscape, got {type(landscape).__name__}")
    if x0 is None or isinstance(x0, (str, bytes)):
        raise TypeError(f"x0 must be a number or an array of numbers of shape ({landscape.dim},), got {x0!r}")
    try:
        x0 = np.asarray(x0, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"x0 must be a number or an array of numbers of shape ({landscape.dim},), "
                        f"got {x0!r}") from None
    if isinstance(eta, bool) or not isinstance(eta, (int, float, np.integer, np.floating)):
        raise TypeError(f"eta must be a real number > 0, got {eta!r}")
    if not isinstance(require_barrier, bool):
        raise TypeError(f"require_barrier must be True or False, got {require_barrier!r}")
    x0 = x0.reshape(1) if x0.ndim == 0 else x0
    if x0.shape != (landscape.dim,) and not (x0.ndim == 2 and x0.shape[1] == landscape.dim):
        raise ValueError(f"x0 must have shape ({landscape.dim},) or (n_particles, {landscape.dim}), got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be finite, got {x0.tolist()}")
    check_positive("eta", eta)
    for name, obj, cls in (("noise", noise, Noise), ("schedule", schedule, Schedule), ("exit", exit, Exit)):
        if not isinstance(obj, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(obj).__name__}")
    if leap is not None and not isinstance(leap, LEAP):
        raise TypeError(f"leap must be a LEAP or None, got {type(leap).__name__}")
    if leap is not None:
        if leap.relative is not None and not isinstance(leap.relative, (bool, np.bool_)):
            raise TypeError(f"leap: relative must be True, False or None, got {leap.relative!r}")
        if isinstance(leap.sigma, bool) or not isinstance(leap.sigma, (int, float, np.integer, np.floating)):
            raise TypeError(f"leap: sigma must be a real number >= 0, got {leap.sigma!r}")
    if mode not in ("discrete", "sde"):
        raise ValueError(f"mode must be 'discrete' or 'sde', got {mode!r}")
    if interrupt not in ("raise", "return"):
        raise ValueError(f"interrupt must be 'raise' or 'return', got {interrupt!r}")
    n = check_int("n_particles", n_particles, 1)
    if x0.ndim == 2 and x0.shape[0] != n:
        raise ValueError(f"x0 with one start per particle must have {n} rows (n_particles), got {x0.shape[0]}")
    max_steps = check_int("max_steps", max_steps, 1)
    snapshot_every = check_int("snapshot_every", snapshot_every, 0)
    # small ensembles run on one thread by default (results never depend on the thread count)
    n_threads = min(nb.config.NUMBA_NUM_THREADS, -(-n // 64)) if threads is None else check_int("threads", threads, 1)
    if n_threads > nb.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be in [1, {nb.config.NUMBA_NUM_THREADS}], got {threads}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a leap_sde optimizer (SGD, Adam, AdamW), got {type(optimizer).__name__}")
    setup = check_setup(landscape, x0, exit, eta, noise, leap, mode, schedule, require_barrier=require_barrier,
                        max_steps=max_steps, optimizer=optimizer)
    need = estimate_memory(landscape, n, max_steps, basins=basins, snapshot_every=snapshot_every,
                           snapshot_max_bytes=snapshot_max_bytes)
    check_memory(need, "the simulation")
    ss = normalize_seed(seed)

    d = landscape.dim

    args, off = lowered(landscape, noise, leap, schedule, eta, exit)
    edges = landscape.basin_edges() if basins else np.zeros(0)
    counts = np.zeros((n, edges.size + 1 if basins else 0), dtype=np.int64)
    n_snaps = 0
    if snapshot_every:
        n_snaps = min(max_steps // snapshot_every + 1, max(1, snapshot_max_bytes // (8 * n * d)))
    snaps = np.full((n_snaps, n, d), np.nan)
    X = np.array(np.broadcast_to(x0, (n, d)))
    if n_snaps:
        snaps[0] = X
    kernel = K.kernel_for(landscape, noise, leap, schedule, exit, mode, optimizer=optimizer, record=basins,
                          snapshots=n_snaps > 0, general=_general_kernel)
    opt_state = np.zeros((n, len(optimizer.state_names) * d))

    rng = np.empty((n, 4), dtype=np.uint64)
    _seed_all(particle_seeds(ss, n), rng)
    steps = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)

    bar = _progress_bar(progress, max_steps, n, escapes=not isinstance(exit, NoExit))
    t_start = time.perf_counter()
    interrupted = False
    k_done, chunk = 0, 256
    try:
        while k_done < max_steps:
            k_stop = min(max_steps, k_done + chunk)
            t0 = time.perf_counter()
            K.run_parallel(kernel, n_threads, n, (rng, X, opt_state, steps, status, counts, snaps,
                                                  max(snapshot_every, 1), k_stop, *args, edges, off, optimizer.lower()))
            k_done = k_stop
            n_done = int(np.count_nonzero(status != K.RUNNING))
            if bar is not None:
                bar(k_done, max_steps, int(np.count_nonzero(status == K.ESCAPED)), n)
            if n_done == n:
                break
            dt = time.perf_counter() - t0
            chunk = int(min(max(chunk * min(4.0, 0.3 / max(dt, 1e-4)), 16), 2**40))
    except KeyboardInterrupt:
        if interrupt == "raise":
            raise
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    status[status == K.RUNNING] = K.CENSORED
    times = elapsed_time(schedule, eta, steps)
    unstable = None
    if setup.first_unstable >= 0:
        esc = status == K.ESCAPED
        last = np.maximum(steps[esc] - 1, 0).astype(np.int64)  # index of the step that met the exit
        e_last = np.empty(last.size)
        _schedule_scan(schedule).etas_at(schedule.lower(), float(eta), last, e_last)
        unstable = np.zeros(n, dtype=bool)
        unstable[np.flatnonzero(esc)] = e_last >= setup.eta_unstable
    notes = list(setup.warnings)
    if not require_barrier and isinstance(exit, (Threshold, ReachBall)):
        notes.append("first passage without the barrier check (require_barrier=False): the exit law need not be "
                     "exponential, so rate and KS-against-exponential summaries do not apply")
    return EscapeResult(status=status, steps=steps, times=times, positions=X, max_steps=max_steps, eta=float(eta),
                        seed_entropy=ss.entropy, basin_edges=edges, basin_steps=counts if basins else None,
                        snapshots=snaps if n_snaps else None, snapshot_every=snapshot_every,
                        interrupted=interrupted, wall_time=time.perf_counter() - t_start, warnings=tuple(notes),
                        unstable=unstable, exponential_law=require_barrier or not isinstance(exit, (Threshold,
                                                                                                   ReachBall)))


def estimate_memory(landscape, n_particles: int, max_steps: int, *, basins: bool = False, snapshot_every: int = 0,
                    snapshot_max_bytes: int = 256 * 2**20) -> int:
    """Bytes :func:`simulate` allocates for one run: per particle the state and final position (2·8d), the
    RNG state (32), steps, times and status (17), basin counts (8·(b + 1)), and the snapshots
    (``min(max_steps/snapshot_every + 1, snapshot_max_bytes/(8Nd))·8Nd``), plus the result's copies (8d + 17)."""
    d, n = int(landscape.dim), int(n_particles)
    per = 8 * d * 3 + 32 + 17 * 2
    if basins:
        per += 8 * (len(landscape.saddles) + 1)
    snaps = 0
    if snapshot_every:
        n_snaps = min(int(max_steps) // int(snapshot_every) + 1, max(1, int(snapshot_max_bytes) // (8 * n * d)))
        snaps = n_snaps * 8 * n * d
    return n * per + snaps


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (``MemAvailable`` of /proc/meminfo), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: int, what: str) -> None:
    """ValueError naming the estimate if ``need`` bytes exceed the available memory."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise ValueError(f"n_particles: {what} needs an estimated {need / 2**30:.3g} GiB of memory, more than the "
                         f"{avail / 2**30:.3g} GiB available; use fewer particles or snapshots")


class _TqdmProgress:
    def __init__(self, max_steps, n, escapes=True):
        from tqdm.auto import tqdm

        self._escapes = escapes  # no "escaped 0/N" for a run without exit
        self._bar = tqdm(total=max_steps, desc="simulate", unit="step", unit_scale=True, dynamic_ncols=True,
                         leave=False)

    def __call__(self, k, max_steps, n_escaped, n):
        if self._escapes:
            self._bar.set_postfix_str(f"escaped {n_escaped}/{n}", refresh=False)
        self._bar.update(k - self._bar.n)

    def close(self):
        self._bar.close()


class _CallbackProgress:
    def __init__(self, fn):
        self._fn = fn

    def __call__(self, *args):
        self._fn(*args)

    def close(self):
        pass


def _progress_bar(progress, max_steps, n, escapes=True):
    if progress is True:
        from ._progress import bars_shown  # a terminal or a notebook

        return _TqdmProgress(max_steps, n, escapes) if bars_shown() else None
    if callable(progress):
        return _CallbackProgress(progress)
    if progress is False or progress is None:
        return None
    raise ValueError(f"progress must be a bool or a callable, got {progress!r}")
