r"""The rare-event engine through the plug-in: generalized AMS on replicas of a torch network.

Maths (docs/theory.md §11).  With a score ``ξ(θ)`` increasing towards the exit ``B = {ξ ≥ z_B}``, a start set
``A = {ξ ≤ z_A}`` around the start point θ₀ and a level ``Σ = {ξ = z_Σ}`` (``z_A < z_Σ < z_B``), the mean escape
time of the training process decomposes as (Cérou, Guyader, Lelièvre & Pommier, J. Chem. Phys. 134, 054108,
2011)

.. math:: E[τ] = E[T_1^{θ_0}] + (1/p − 1)\,(E[T_1] + E[T_2]) + E[T_3],

``p`` = P(a trajectory entering Σ reaches B before A), ``T_1``/``T_2`` the A → Σ / Σ → A loop times, ``T_3`` the
duration of a reactive Σ → B trajectory.  The loop times are measured by brute force; ``p`` and ``T_3`` by
generalized AMS (Bréhier, Gazeau, Goudenège, Lelièvre & Rousset, Ann. Appl. Probab. 26, 2016): N replicas start
at the Σ-entrance states, the replicas whose maximal score is at or below the ``kill``-th smallest are killed
(ties together) and each is replaced by a clone of a uniformly chosen survivor taken at the first step its path
exceeded that level, continued with a fresh random stream; ``p̂ = Π_j(1 − K_j/N)·#{in B}/N`` is unbiased for
any score.  This module does *not* re-derive any of that: it runs the simulator's own selection loop, loop-time
bookkeeping and pooled estimator (:mod:`leap_sde.ams`: ``_one_run``, ``_split``, ``_summarise``) on an engine
whose particles are replicas of a torch network.

**Replica state.**  One replica is (flat parameter vector, flat optimizer state, step count k, stream words).
Cloning a replica copies all four: the parameters, the wrapped optimizer's per-parameter state (momentum
buffers, Adam moments and step counts: every tensor in ``optimizer.state``), the step count, and the random
stream.  The stream is counter-based: the minibatch drawn at step k and LEAP's noise at step k are fixed
functions of (stream key, k) — the minibatch generator is seeded with ``stream_key(key, k, slot)`` and LEAP's
counter-based noise uses ``seed = key`` and step counter ``k`` — so a replica's path is a deterministic function
of its branch state, which the engine replays instead of storing paths, exactly as the simulator does.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from .. import _kernels as K
from .._checks import check_int
from .._counter_rng import _MASK, _mix_py, stream_key
from ..ams import AMSResult, _one_run, _summarise
from ..simulate import normalize_seed
from ._optim import LEAP

__all__ = ["ams_escape", "brute_force_escape", "minibatch_sampler", "EscapeTimes"]

_BATCH_SLOT = (1 << 64) - 2  # stream slot of the minibatch draws (LEAP uses 0, 1, … and 2**64 − 1)


def minibatch_sampler(X: torch.Tensor, y: torch.Tensor, batch_size: int) -> Callable[[torch.Generator], tuple]:
    """``sample(gen) -> (X[idx], y[idx])`` with ``idx`` = ``batch_size`` indices drawn uniformly with replacement
    from ``gen`` (the engine seeds ``gen`` per replica stream and step)."""
    b = check_int("batch_size", batch_size, 1)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must be non-empty with the same length, got {len(X)} and {len(y)}")
    n = len(X)

    def sample(gen: torch.Generator):
        idx = torch.randint(0, n, (b,), generator=gen)
        return X[idx], y[idx]

    return sample


class _StateCodec:
    """Flat float64 encoding of an optimizer's per-parameter state: slot 0 is 1 when a state exists (0: fresh
    optimizer, as after construction), then every tensor/number of ``state[p]`` in parameter order."""

    def __init__(self, opt, params):
        self.params = params
        inner = opt.optimizer if isinstance(opt, LEAP) else opt
        self.inner = inner
        self.spec = []
        for i, p in enumerate(params):
            for key in sorted(inner.state.get(p, {})):
                v = inner.state[p][key]
                if isinstance(v, torch.Tensor):
                    self.spec.append((i, key, tuple(v.shape), v.dtype, v.numel(), True))
                elif isinstance(v, (int, float)):
                    self.spec.append((i, key, (), None, 1, False))
                else:
                    raise TypeError(f"optimizer state entry {key!r} of type {type(v).__name__} cannot be cloned")
        self.size = 1 + sum(s[4] for s in self.spec)

    def encode(self, out: np.ndarray) -> None:
        st = self.inner.state
        if not any(p in st and st[p] for p in self.params):
            out[:] = 0.0
            return
        out[0] = 1.0
        j = 1
        for i, key, _, _, n, is_t in self.spec:
            v = st[self.params[i]][key]
            out[j:j + n] = v.detach().reshape(-1).double().numpy() if is_t else float(v)
            j += n

    def decode(self, row: np.ndarray) -> None:
        st = self.inner.state
        for p in self.params:
            st.pop(p, None)
        if row[0] == 0.0:
            return
        j = 1
        for i, key, shape, dtype, n, is_t in self.spec:
            p = self.params[i]
            vals = row[j:j + n]
            st.setdefault(p, {})[key] = (torch.tensor(vals, dtype=dtype).reshape(shape) if is_t else
                                         (int(vals[0]) if float(vals[0]).is_integer() else float(vals[0])))
            j += n


def _words_key(w: np.ndarray) -> int:
    """63-bit stream key of a replica's four stream words."""
    h = 0
    for v in w:
        h = _mix_py(h ^ int(v))
    return h & ((1 << 63) - 1)


class _TorchEngine:
    """The segment driver of :mod:`leap_sde.ams` (same arguments and status codes as its compiled kernel) on
    replicas of a torch model: particle rows are flat parameters, flat optimizer states, steps, stream words."""

    def __init__(self, model, loss_fn, sample, opt, score, exit_level):
        self.model, self.loss_fn, self.sample, self.opt, self.score = model, loss_fn, sample, opt, score
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.exit_level = float(exit_level)
        self.codec = None
        self.gen = torch.Generator()
        self.work = 0

    def load(self, x: np.ndarray) -> None:
        v = torch.from_numpy(np.asarray(x, dtype=np.float64))
        j = 0
        with torch.no_grad():  # copy into the parameters (vector_to_parameters would alias the row)
            for p in self.params:
                p.copy_(v[j:j + p.numel()].view_as(p))
                j += p.numel()

    def flat(self) -> np.ndarray:
        return torch.nn.utils.parameters_to_vector(self.params).detach().double().numpy().copy()

    def score_of(self, x, _qp=()) -> float:
        self.load(x)
        with torch.no_grad():
            return float(self.score(self.model))

    def step(self, key: int, k: int) -> float:
        """One optimizer step of the loaded replica at step index k of stream ``key``; returns the new score."""
        self.gen.manual_seed(stream_key(key, k, _BATCH_SLOT) & ((1 << 63) - 1))
        batch = self.sample(self.gen)
        if isinstance(self.opt, LEAP):
            self.opt._seed, self.opt._leap_step = key, k
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model, batch)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            return float(self.score(self.model))

    def run(self, rng, X, OPT, steps, smax, z_a, z_stop, k_max, idx=None):
        """Advance the rows ``idx`` (default all) until the exit (ESCAPED, ``smax = ∞``), score ≤ ``z_a``
        (RETURNED), score > ``z_stop`` (STOPPED), a non-finite score (DIVERGED) or step ``k_max`` (RUNNING);
        the stream words advance once per call (as the compiled kernel's do), so a replay from the same
        branch state and words reproduces the path."""
        rows = np.arange(len(steps)) if idx is None else np.asarray(idx)
        status = np.zeros(len(rows), dtype=np.int8)
        for j, i in enumerate(rows):
            key = _words_key(rng[i])
            self.load(X[i])
            self.codec.decode(OPT[i])
            k, m, st = int(steps[i]), float(smax[i]), K.RUNNING
            while k < k_max:
                q = self.step(key, k)
                k += 1
                if not math.isfinite(q):
                    st = K.DIVERGED
                    break
                if q >= self.exit_level:
                    st, m = K.ESCAPED, math.inf
                    break
                m = max(m, q)
                if q > z_stop:
                    st = K.STOPPED
                    break
                if q <= z_a:
                    st = K.RETURNED
                    break
            self.work += k - int(steps[i])
            X[i] = self.flat()
            self.codec.encode(OPT[i])
            steps[i], smax[i], status[j] = k, m, st
            rng[i, 0] = np.uint64(_mix_py(int(rng[i, 0]) + 1) & _MASK)
        return status


def _setup(model, loss_fn, sample, optimizer_factory, score, exit_level):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, f in (("loss_fn", loss_fn), ("sample", sample), ("optimizer_factory", optimizer_factory),
                    ("score", score)):
        if not callable(f):
            raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    if not math.isfinite(float(exit_level)):
        raise ValueError(f"exit_level must be finite, got {exit_level}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or any(p.device.type != "cpu" for p in params):
        raise ValueError("model: needs trainable parameters, all on the CPU (the replica streams are the "
                         "counter-based CPU path of LEAP)")
    opt = optimizer_factory(params)
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"optimizer_factory must return a torch.optim.Optimizer, got {type(opt).__name__}")
    if isinstance(opt, LEAP) and opt._user_generator is not None:
        raise ValueError("optimizer_factory: construct LEAP with seed= (any value), not generator=: each replica "
                         "needs its own counter-based stream")
    if opt.param_groups and any(g.get("lr") is None for g in opt.param_groups):
        raise ValueError("optimizer_factory: every param group needs an lr")
    eng = _TorchEngine(model, loss_fn, sample, opt, score, exit_level)
    x0 = eng.flat()
    # probe one step on a copy to learn the optimizer's state layout, then restore a fresh optimizer
    probe = copy.deepcopy(model)
    pp = [p for p in probe.parameters() if p.requires_grad]
    popt = optimizer_factory(pp)
    popt.zero_grad()
    loss_fn(probe, sample(torch.Generator().manual_seed(0))).backward()
    popt.step()
    codec = _StateCodec(popt, pp)
    codec.params, codec.inner = params, opt.optimizer if isinstance(opt, LEAP) else opt
    eng.codec = codec
    return eng, x0


def ams_escape(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    sample: Callable[[torch.Generator], Any],
    *,
    optimizer_factory: Callable[[list], torch.optim.Optimizer],
    score: Callable[[nn.Module], float],
    exit_level: float,
    levels: tuple,
    n_replicas: int = 100,
    n_runs: int = 4,
    kill: int = 0,
    loops: int = 10,
    max_steps: int = 10**6,
    seed=None,
) -> AMSResult:
    """Mean number of optimizer steps until ``score(model) ≥ exit_level``, started from the model's current
    parameters with a fresh optimizer, by generalized AMS on replicas of the network (module docstring).

    Parameters
    ----------
    model : the network at the start point θ₀ (left at θ₀ on return).  Parameters on the CPU.
    loss_fn : ``loss_fn(model, batch) -> scalar tensor`` (the minibatch loss to differentiate).
    sample : ``sample(gen) -> batch``, one minibatch drawn with the ``torch.Generator`` given (e.g.
        :func:`minibatch_sampler`); the engine seeds it per replica stream and step.
    optimizer_factory : ``f(params) -> optimizer`` (any ``torch.optim`` optimizer, or :class:`LEAP` around one,
        built with ``seed=``; its seed is replaced by each replica's stream).  Constant learning rate: a
        schedule has no stationary escape rate.
    score : ``score(model) -> float``, the escape coordinate, increasing towards the exit (called under
        ``no_grad`` after every step).  exit_level : the exit ``score ≥ exit_level``.
    levels : ``(z_A, z_Σ)`` with ``score(θ₀) ≤ z_A < z_Σ < exit_level``.
    n_replicas, n_runs, kill, loops, max_steps, seed : as for :func:`leap_sde.ams` (run r uses
        ``SeedSequence(seed).spawn(n_runs)[r]``; the result is a deterministic function of ``seed``).

    Returns
    -------
    :class:`leap_sde.AMSResult` (``mean_steps`` with its jackknife SE and Student-t 95% CI over the runs,
    ``probability`` of reaching the exit from Σ before A, per-run ``runs``; ``eta`` is the first group's lr).
    """
    n = check_int("n_replicas", n_replicas, 2)
    n_runs = check_int("n_runs", n_runs, 2)
    kill = check_int("kill", kill, 0) or max(1, n // 50)
    if kill >= n:
        raise ValueError(f"kill must be in [0, {n - 1}] (below n_replicas), got {kill}")
    loops = check_int("loops", loops, 2)
    max_steps = check_int("max_steps", max_steps, 1)
    eng, x0 = _setup(model, loss_fn, sample, optimizer_factory, score, exit_level)
    try:
        z0 = eng.score_of(x0)
        z_a, z_sig = (float(v) for v in levels)
        if not (z0 <= z_a < z_sig < eng.exit_level):
            raise ValueError(f"levels: need score(theta0) = {z0:.4g} <= z_A < z_Sigma < exit_level = "
                             f"{eng.exit_level:.4g}, got ({z_a:.4g}, {z_sig:.4g})")
        ss = normalize_seed(seed)
        t0 = time.perf_counter()
        runs, notes = [], []
        for child in ss.spawn(n_runs):
            eng.work = 0
            runs.append(_one_run(eng, child, x0, n, x0.size, eng.codec.size, kill, loops, max_steps, z_a, z_sig,
                                 eng.score_of, (), notes))
        eta = float(eng.opt.param_groups[0]["lr"])
        return _summarise(runs, eta, n, (z_a, z_sig), time.perf_counter() - t0, tuple(dict.fromkeys(notes)))
    finally:
        eng.load(x0)
        eng.codec.decode(np.zeros(eng.codec.size))


class EscapeTimes(tuple):
    """``(steps, escaped)`` of :func:`brute_force_escape`: int64 steps to the exit (the cap where censored) and
    a bool mask of the replicas that escaped."""

    @property
    def steps(self) -> np.ndarray:
        return self[0]

    @property
    def escaped(self) -> np.ndarray:
        return self[1]


def brute_force_escape(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    sample: Callable[[torch.Generator], Any],
    *,
    optimizer_factory: Callable[[list], torch.optim.Optimizer],
    score: Callable[[nn.Module], float],
    exit_level: float,
    n_replicas: int,
    max_steps: int,
    seed=None,
) -> EscapeTimes:
    """First step with ``score ≥ exit_level`` of ``n_replicas`` independent runs from the model's parameters
    (fresh optimizer each), with the same replica engine and streams as :func:`ams_escape` (replica i's stream
    from ``SeedSequence(seed)``); censored at ``max_steps``.  Returns :class:`EscapeTimes`."""
    from .._rng import particle_seeds
    from ..ams import _seed_words

    n = check_int("n_replicas", n_replicas, 1)
    max_steps = check_int("max_steps", max_steps, 1)
    eng, x0 = _setup(model, loss_fn, sample, optimizer_factory, score, exit_level)
    try:
        rng = np.empty((n, 4), dtype=np.uint64)
        _seed_words(particle_seeds(normalize_seed(seed), n), rng)
        X = np.tile(x0, (n, 1))
        OPT = np.zeros((n, eng.codec.size))
        steps = np.zeros(n, dtype=np.int64)
        smax = np.full(n, -np.inf)
        st = eng.run(rng, X, OPT, steps, smax, -np.inf, np.inf, max_steps)
        if np.any(st == K.DIVERGED):
            raise RuntimeError(f"{int(np.sum(st == K.DIVERGED))} replicas diverged (non-finite score)")
        return EscapeTimes((steps, st == K.ESCAPED))
    finally:
        eng.load(x0)
        eng.codec.decode(np.zeros(eng.codec.size))
