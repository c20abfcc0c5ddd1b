"""Reduced escape model of real training: pre-escape replica runs through the plug-in → :mod:`leap_sde.reduced`."""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from ..reduced import EscapePrediction, KMTable, ReducedModel, fit_reduced_chain
from ._optim import LEAP

__all__ = ["ReducedFit", "fit_reduced_model"]

Coordinate = Union[Callable[[nn.Module], Any], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ReducedFit:
    """Result of :func:`fit_reduced_model`.

    ``reduced`` — the fitted :class:`leap_sde.reduced.ReducedModel` (its ``table`` holds the binned estimates);
    ``trajectories`` — ``q`` of every replica, from its start to the step where it stopped (``n + 1`` values for
    ``n`` steps run, burn-in included); ``stopped`` — which replicas reached the window edge; ``steps_run`` —
    steps each replica ran; ``q_start`` — ``q`` of the model handed in (the default start of predictions);
    ``window``, ``burn_in``, ``seed`` as given.
    """

    reduced: ReducedModel
    trajectories: tuple[np.ndarray, ...]
    stopped: np.ndarray
    steps_run: np.ndarray
    q_start: float
    window: tuple[float, float]
    burn_in: int
    seed: int

    @property
    def table(self) -> KMTable:
        return self.reduced.table

    def predict_escape(self, exit_lo=None, exit_hi=None, **kwargs) -> EscapePrediction:
        """Mean steps until ``q`` leaves ``(exit_lo, exit_hi)`` under the reduced chain, from ``q_start``
        (see :meth:`leap_sde.reduced.ReducedModel.predict_escape` for the options and the result)."""
        kwargs.setdefault("x0", self.q_start)
        return self.reduced.predict_escape(exit_lo, exit_hi, **kwargs)


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _coordinate_fn(coordinate: Coordinate, model: nn.Module) -> Callable[[nn.Module], float]:
    if callable(coordinate):
        def q(m):
            with torch.no_grad():
                v = coordinate(m)
            v = float(v.item() if isinstance(v, torch.Tensor) else v)
            return v
        return q
    if isinstance(coordinate, (tuple, list)) and len(coordinate) == 2:
        theta_star, u = coordinate
        n = sum(p.numel() for p in model.parameters())
        ref = _flat(model)
        if not isinstance(theta_star, torch.Tensor) or not isinstance(u, torch.Tensor):
            raise TypeError("coordinate: a callable or a pair (theta_star, u) of flat tensors")
        if theta_star.numel() != n or u.numel() != n:
            raise ValueError(f"coordinate: theta_star and u must have one entry per parameter element ({n}), got "
                             f"{theta_star.numel()} and {u.numel()}")
        ts = theta_star.detach().reshape(-1).to(ref)
        uu = u.detach().reshape(-1).to(ref)
        return lambda m: float(torch.dot(uu, _flat(m) - ts))
    raise TypeError("coordinate must be a callable model -> float or a pair (theta_star, u) of flat tensors")


def _epochs(loader, g: torch.Generator):
    """One replica's endless batch stream: a DataLoader with a random sampler is re-made with the replica's own
    generator; a callable is called with the generator once per epoch; any other iterable is re-iterated."""
    from torch.utils.data import DataLoader, RandomSampler

    if isinstance(loader, DataLoader):
        if isinstance(loader.sampler, RandomSampler) and loader.batch_size is not None:
            s = loader.sampler
            src = DataLoader(loader.dataset, batch_size=loader.batch_size, drop_last=loader.drop_last,
                             collate_fn=loader.collate_fn,
                             sampler=RandomSampler(loader.dataset, replacement=s.replacement,
                                                   num_samples=s._num_samples, generator=g))
        else:
            src = loader
        make = lambda: iter(src)  # noqa: E731
    elif callable(loader):
        make = lambda: iter(loader(g))  # noqa: E731
    elif isinstance(loader, Iterable):
        make = lambda: iter(loader)  # noqa: E731
    else:
        raise TypeError("loader must be a DataLoader, a callable generator -> iterable of batches, or an iterable")
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            raise ValueError("loader yielded no batch")


def _int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def fit_reduced_model(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    loader,
    coordinate: Coordinate,
    *,
    optimizer_factory: Callable[[Iterable[nn.Parameter]], Optimizer],
    leap: Optional[Mapping[str, Any]] = None,
    n_replicas: int,
    n_steps: int,
    window: tuple[float, float],
    seed: int,
    burn_in: int = 0,
    bins=20,
    drift_order: int = 3,
    var_order: int = 1,
    min_count: int = 20,
    train_mode: bool = True,
    kernel: str = "gaussian",
) -> ReducedFit:
    r"""Reduced 1-D escape model of real training, fitted from pre-escape replica runs.

    Runs ``n_replicas`` independent short runs of the actual training — ``optimizer_factory(params)``, wrapped in
    :class:`leap_sde.torch.LEAP` when ``leap`` is given, one minibatch of ``loader`` per step — from the
    model's current parameters, records ``q_k = coordinate(model)`` after every step and stops a replica the first
    time ``q`` leaves the open ``window = (lo, hi)`` (or after ``n_steps``). The window lies inside the exit
    region, so no replica escapes: the measurement is pre-escape. The pairs ``(q_k, q_{k+1})`` with
    ``lo < q_k < hi`` and ``k >= burn_in`` give binned Kramers–Moyal estimates of the one-step drift
    ``b(q) = E[Δq | q]`` and variance ``a(q) = Var[Δq | q]``, fitted by polynomials (``b`` of order
    ``drift_order``, ``log a`` of order ``var_order``); the reduced chain ``q' = q + b(q) + sqrt(a(q)) ξ``
    then predicts escape times with exact chain solvers (:func:`leap_sde.fit_reduced_chain`,
    docs/theory.md §12).

    Assumptions (docs/theory.md §12.3): ``q`` is approximately Markov at one step (the other directions relax
    fast or do not feed back into ``Δq``; with momentum, or random reshuffling whose epoch is long compared with
    the relaxation along ``q``, this holds only approximately); the increments are close to Gaussian
    (``table.kurtosis`` shows it; ``kernel="empirical"`` replaces this by a residual law of fixed shape); and,
    for an exit beyond the visited range, the polynomial form holds there — the prediction then rests on
    extrapolating the fitted drift.

    Parameters
    ----------
    model : nn.Module
        At the start point (e.g. a minimum θ*); copied per replica (``copy.deepcopy``), never modified.
    loss_fn : callable ``(model, batch) -> scalar tensor``
        The training loss of one minibatch, e.g. ``lambda m, b: F.cross_entropy(m(b[0]), b[1])``.
    loader : DataLoader, callable or iterable
        Batches. A ``DataLoader`` with a random sampler gets each replica's own ``torch.Generator``
        (independent batch orders); a callable is called as ``loader(generator)`` once per epoch and must return
        an iterable of batches (the fast path for in-memory tensors); any other iterable is re-iterated in the same
        order for every replica.
    coordinate : callable ``model -> float``, or ``(theta_star, u)``
        The escape coordinate; the pair means ``q = u · (θ − θ*)`` with θ the parameters flattened in
        ``model.parameters()`` order.
    optimizer_factory : callable ``params -> torch.optim.Optimizer``
        E.g. ``lambda p: torch.optim.SGD(p, lr=0.05)``; called once per replica (fresh optimizer state). The
        learning rate stays as the factory sets it (no scheduler): the model is of the local, constant-rate
        dynamics.
    leap : mapping, optional
        Keyword arguments of :class:`leap_sde.torch.LEAP` (``sigma``, ``mode``, ``relative``, ``variant``); the
        seed is set per replica (``seed``/``generator`` keys are refused). None: no LEAP.
    n_replicas : int
        Replica runs (>= 2; they are the independent clusters of the standard errors).
    n_steps : int
        Maximal steps per replica.
    window : (lo, hi)
        Measurement window (``±inf`` allowed); the start must lie inside.
    seed : int
        Root of a ``SeedSequence``: replica r gets the r-th child, split into a loader generator seed, a LEAP
        seed and a torch seed for the model's own randomness (dropout, run inside ``torch.random.fork_rng``, so
        the global generator is left as it was).
    burn_in : int
        Steps at the start of every replica whose pairs are not used (optimizer state, e.g. momentum, and the
        other directions relaxing from the start).
    bins, drift_order, var_order, min_count
        As in :func:`leap_sde.fit_reduced_chain`.
    train_mode : bool
        ``model.train(train_mode)`` for the runs.
    kernel : {"gaussian", "empirical"}
        Default one-step noise law of the predictions (:func:`leap_sde.fit_reduced_chain`): Gaussian, or the
        empirical law of the standardized residuals pooled over the window (skewed increments; docs/theory.md
        §12.4). ``predict_escape(kernel=...)`` can switch either way.

    Returns
    -------
    ReducedFit
        ``.predict_escape(exit_lo, exit_hi)`` → :class:`leap_sde.EscapePrediction` (mean steps, CI, model error,
        notes on extrapolation); ``.table`` the binned estimates; ``.trajectories`` the raw ``q`` records.

    Examples
    --------
    >>> fit = fit_reduced_model(
    ...     net, lambda m, b: F.cross_entropy(m(b[0]), b[1]), train_loader, (theta_star, u),
    ...     optimizer_factory=lambda p: torch.optim.SGD(p, lr=0.05),
    ...     leap={"sigma": 0.5, "relative": True}, n_replicas=32, n_steps=2000,
    ...     window=(-np.inf, 0.6 * q_exit), seed=0)                                # doctest: +SKIP
    >>> pred = fit.predict_escape(exit_hi=q_exit)                                   # doctest: +SKIP
    >>> pred.mean_steps, pred.ci, pred.model_error, pred.status                     # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable (model, batch) -> scalar tensor")
    if not callable(optimizer_factory):
        raise TypeError("optimizer_factory must be callable params -> torch.optim.Optimizer")
    R = _int("n_replicas", n_replicas, 2)
    T = _int("n_steps", n_steps, 1)
    B0 = _int("burn_in", burn_in, 0)
    if B0 >= T:
        raise ValueError(f"burn_in must be < n_steps ({T}), got {burn_in}")
    seed = _int("seed", seed, 0)
    try:
        lo, hi = float(window[0]), float(window[1])
    except (TypeError, IndexError, ValueError):
        raise ValueError(f"window must be a pair (lo, hi), got {window!r}") from None
    if math.isnan(lo) or math.isnan(hi) or not lo < hi:
        raise ValueError(f"window must satisfy lo < hi (±inf allowed), got {window!r}")
    leap_kw = dict(leap) if leap is not None else None
    if leap_kw is not None:
        bad = {"seed", "generator"} & set(leap_kw)
        if bad:
            raise ValueError(f"leap: {sorted(bad)} are set per replica from seed; remove them")
        if "sigma" not in leap_kw:
            raise ValueError("leap: give at least 'sigma' (keyword arguments of leap_sde.torch.LEAP)")
    qf = _coordinate_fn(coordinate, model)
    q_start = qf(model)
    if not lo < q_start < hi:
        raise ValueError(f"window: the start q = {q_start:.6g} must lie strictly inside {window!r}")

    children = np.random.SeedSequence(seed).spawn(R)
    trajs, stopped, steps_run = [], np.zeros(R, dtype=bool), np.zeros(R, dtype=np.int64)
    for r, ss in enumerate(children):
        s_loader, s_leap, s_torch = (int(v) for v in ss.generate_state(3, dtype=np.uint32))
        g = torch.Generator().manual_seed(s_loader)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s_torch)
            m = copy.deepcopy(model)
            m.train(bool(train_mode))
            opt = optimizer_factory(m.parameters())
            if leap_kw is not None:
                opt = LEAP(opt, seed=s_leap, **leap_kw)
            batches = _epochs(loader, g)
            qs = [q_start]
            for k in range(T):
                batch = next(batches)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(m, batch)
                loss.backward()
                opt.step()
                qk = qf(m)
                if not math.isfinite(qk):
                    raise FloatingPointError(f"replica {r}: coordinate is {qk} after step {k + 1} (diverged)")
                qs.append(qk)
                if not lo < qk < hi:
                    stopped[r] = True
                    break
        steps_run[r] = len(qs) - 1
        trajs.append(np.asarray(qs, dtype=np.float64))
    used = [x[B0:] for x in trajs]
    reduced = fit_reduced_chain(used, window=(lo, hi), bins=bins, drift_order=drift_order, var_order=var_order,
                                min_count=min_count, q_start=q_start, kernel=kernel)
    return ReducedFit(reduced=reduced, trajectories=tuple(trajs), stopped=stopped, steps_run=steps_run,
                      q_start=q_start, window=(lo, hi), burn_in=B0, seed=seed)
