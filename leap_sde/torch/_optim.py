"""LEAP as a plug-in for any PyTorch optimizer and learning-rate schedule."""
from __future__ import annotations

import hashlib
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch
from torch.optim import Optimizer

from .._counter_rng import _MASK, VARIANTS, _mix_py, counter_normal, fused_leap_update, stream_key

__all__ = ["LEAP", "MODES", "VARIANTS", "DISTRIBUTED", "NOT_PROPORTIONAL_TO_LR"]

MODES = ("per-coordinate", "per-tensor", "scalar")
DISTRIBUTED = ("replicated", "independent")
_SCALAR_SLOT = (1 << 64) - 1  # stream slot of the per-tensor / scalar draws (tensor slots are 0, 1, …)
_TORCH_CHUNK = 1 << 22  # scratch size (elements) of the torch-generator path
# optimizers whose displacement is not lr × (something independent of lr): LEAP warns at construction
NOT_PROPORTIONAL_TO_LR = tuple(n for n in ("ASGD", "Adafactor", "Rprop") if hasattr(torch.optim, n))
_GROUP_KEYS_REFUSED = {"sigma": "leap_sigma", "relative": "leap_relative"}


class LEAP(Optimizer):
    r"""LEArning-rate Perturbation around any ``torch.optim`` optimizer.

    **Update.** With the group's current learning rate η (whatever schedule set it) and a perturbed rate
    η̃ drawn afresh at every step, LEAP takes the wrapped optimizer's step with learning rate η̃ instead
    of η.  It is implemented generically: snapshot θ_old, let the wrapped optimizer step to θ_new, then
    rescale the displacement per element by the rate ratio ``m = η̃/η``::

        θ ← θ_old + m ⊙ (θ_new − θ_old)

    with, for ``z ~ N(0, 1)`` i.i.d. (the same ``variant`` vocabulary as the simulator's
    :class:`leap_sde.LEAP`):

    - ``variant="gaussian"`` (default): η̃ = η + ε, ε = σ z (absolute σ) or σ η z (relative σ),
      so m = 1 + ε/η — a negative rate (probability Φ(−η/σ)) is an ascent step;
    - ``variant="clipped"``: η̃ = max(η + ε, 0), m = max(1 + ε/η, 0);
    - ``variant="lognormal"``: η̃ = η·exp(σz − σ²/2) (positive, mean η; σ is the log-scale standard
      deviation, so it is relative by definition and ``relative=False`` is refused).

    For plain SGD (θ_new = θ_old − η g) this is *exactly* θ ← θ_old − η̃ ⊙ g — the simulator's rule
    θ_{k+1} = θ_k − η̃_k ⊙ (∇L + ξ_k).  For every optimizer whose displacement is ``η × (a quantity that
    does not depend on η)`` — SGD with momentum, Nesterov or weight decay (the momentum buffer holds
    gradients, not steps), Adam, AdamW (the decoupled decay −ηλθ is also ∝ η), NAdam, RAdam, Adamax,
    Adagrad, RMSprop, Adadelta, SparseAdam — the rescaled step is exactly "the same step taken with
    learning rate η̃", per element; the optimizer's state (momentum, moments) is unchanged by the
    perturbation, as it would be for a per-element learning-rate tensor.

    **Supported optimizers.** Refused at construction: ``LBFGS`` (its step re-evaluates the closure
    and line-searches, so there is no single displacement to rescale) and any group with
    ``differentiable=True`` (the rescaling runs under ``no_grad``, so autograd would not see the
    noise).  Accepted with a ``UserWarning``: the optimizers in :data:`NOT_PROPORTIONAL_TO_LR`
    (``ASGD``, ``Adafactor``, ``Rprop``), whose step is not proportional to lr — there LEAP applies
    the documented rescaling of the displacement, which is *not* "the step at rate η̃".

    **Noise modes** (``mode``, the simulator's vocabulary plus one): ``"per-coordinate"`` (default; one
    draw per parameter element and step, the simulator's per-coordinate LEAP), ``"scalar"`` (one z per
    step shared by every element of every group, as in the simulator), ``"per-tensor"`` (plug-in only:
    one z per parameter tensor and step).

    **Parameter groups.** σ and the absolute/relative choice live in each group as ``"leap_sigma"`` and
    ``"leap_relative"`` (the documented keys: set them in the dicts given to the wrapped optimizer or
    to :meth:`add_param_group`, or after construction, or pass ``sigma`` as a sequence with one value
    per group, mapped group by group).  A group key ``"sigma"`` or ``"relative"`` is refused with a
    ``ValueError`` naming the right key (unless the wrapped optimizer itself has such a hyper-parameter),
    never ignored.  ``param_groups`` and ``state`` *are* the wrapped optimizer's (shared, not copied),
    so schedulers (``torch.optim.lr_scheduler.*``), GradScaler, gradient clipping and
    ``add_param_group`` act on both.  η is read from ``group["lr"]`` at each step.

    **Randomness.** ``seed`` (int) or ``generator`` (a ``torch.Generator``), not both; with neither, a
    seed is drawn once from torch's global generator (so ``torch.manual_seed`` makes runs repeatable).

    - With a seed, CPU tensors use a counter-based stream (:mod:`leap_sde._counter_rng`): element i of
      tensor slot j at LEAP step k is a fixed function of (seed, k, j, i), computed in parallel inside
      one fused Numba kernel ``θ ← θ_new + (m − 1) ⊙ (θ_new − θ_old)`` (no scratch tensor; independent
      of the thread count).  Other devices get one ``torch.Generator`` per device, seeded from
      (seed, device), and draw ``normal_`` on the device in buckets of at most 2²² elements (one
      ``normal_`` and one ``_foreach_addcmul_`` per bucket).  Slot j numbers the parameters in
      ``param_groups`` order.
    - With ``generator``, every draw uses it (all perturbed parameters must be on its device).
    - ``state_dict()`` is the wrapped optimizer's plus a ``"leap"`` entry (seed, step counter, mode,
      variant, generator states: plain data and tensors, so ``torch.load(weights_only=True)`` reads
      it), so a resumed run continues the same random sequence.  A plain optimizer's state dict (no
      ``"leap"`` entry) loads too: groups keep this LEAP's σ/relative, the noise sequence continues
      from this LEAP's own seed and step counter (a ``UserWarning`` says so).  LEAP's state dict loads
      into the plain wrapped optimizer class as well (the extra keys are ignored by it).

    **Distributed data parallel** (``distributed="replicated"``, default).  DDP replicas stay identical
    only if every rank applies the same update, so when ``torch.distributed`` is initialised with more
    than one process, the constructor (a collective call: every rank must construct its LEAP) makes
    the noise identical on every rank: with no ``seed``/``generator``, rank 0's drawn seed is
    broadcast; an explicit ``seed`` must be equal on every rank and a ``generator`` must have the same
    state on every rank, otherwise a ``ValueError`` names the per-rank values (e.g. ``seed=rank``).
    ``distributed="independent"`` skips this (each rank's own noise: for sharded training where each
    rank holds different parameters — then give each rank a different seed).

    **Hooks.** Each ``step()`` fires every step hook once: the global hooks
    (``torch.optim.optimizer.register_optimizer_step_pre_hook`` / ``…post_hook``, called with the
    LEAP instance) and LEAP's own (``opt.register_step_pre_hook`` …) around the whole step, and hooks
    registered on the wrapped optimizer inside it; in all cases pre-hooks see θ_k with its gradients
    and post-hooks see the *perturbed* θ_{k+1} (the parameters the step leaves).  The wrapped
    optimizer's class ``step`` is called without its hook wrapper (a ``step`` patched on the wrapped
    *instance*, other than a scheduler's step counter, is bypassed: attach schedulers to LEAP).
    LEAP's own state-dict hooks (``register_state_dict_pre_hook`` … ``register_load_state_dict_post_hook``)
    run in :meth:`state_dict` / :meth:`load_state_dict`; the wrapped optimizer's run inside them.

    **torch.compile.** A compiled training step may call ``opt.step()``: LEAP's step is excluded from
    tracing (``torch.compiler.disable``: a graph break), so it runs eagerly — the counter-based kernel
    is Numba code — and gives the eager result; forward and backward stay compiled.  Hence
    ``fullgraph=True`` (no graph breaks allowed) is not supported.

    **Memory.** One snapshot buffer per perturbed parameter (one parameter-sized buffer in total), kept
    between steps.  The torch-generator path adds a scratch of at most 2²² elements per device and dtype.

    **Skipped steps.** Parameters whose ``.grad`` is None are neither snapshotted nor perturbed.
    ``torch.amp.GradScaler.step(opt)`` calls ``opt.step()`` only when all gradients are finite, so a
    step skipped for inf/NaN gradients draws and applies *no* perturbation (no randomness is consumed
    either: the counter-based stream is indexed by LEAP's own step counter, which does not advance).
    Zero learning rate at step time: with relative σ the perturbation vanishes (ε = σηz = 0); with
    absolute σ a zero step cannot be rescaled, so that group is left unperturbed for that step and a
    ``RuntimeWarning`` is issued (use relative σ or ``eta_min > 0`` with schedules that reach 0).

    ``step(closure)`` evaluates the closure once (with grad enabled) and then calls the wrapped
    optimizer's ``step()`` without it.  Not supported either: CUDA-graph capture / ``capturable`` steps.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer to wrap, already constructed.
    sigma : float or sequence of float
        σ ≥ 0, for every group or one per group; a group's own ``"leap_sigma"`` key takes precedence.
    mode : {"per-coordinate", "per-tensor", "scalar"}
    relative : bool or None, default None
        ε = σ·η·z (σ relative to the current lr) instead of ε = σ·z.  None means False, except for
        ``variant="lognormal"`` (always relative), as in :class:`leap_sde.LEAP`.
    variant : {"gaussian", "clipped", "lognormal"}
    seed : int, optional
    generator : torch.Generator, optional
    distributed : {"replicated", "independent"}

    Examples
    --------
    >>> opt = LEAP(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), sigma=0.01, seed=0)
    >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> loss.backward(); opt.step(); sched.step(); opt.zero_grad()

    References
    ----------
    Liu et al., "LEAP: learning rate perturbation", CIKM 2022 (arXiv:2208.11873); the wrapper design
    follows SAM (Foret et al. 2021, github.com/davda54/sam).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        sigma: float | Sequence[float],
        *,
        mode: str = "per-coordinate",
        relative: Optional[bool] = None,
        variant: str = "gaussian",
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        distributed: str = "replicated",
    ) -> None:
        if isinstance(optimizer, type):
            raise TypeError(
                "optimizer must be an optimizer instance, e.g. LEAP(torch.optim.SGD(model.parameters(), "
                f"lr=0.1), sigma=0.01), got the class {optimizer.__name__}"
            )
        if isinstance(optimizer, LEAP):
            raise TypeError("optimizer is already wrapped in LEAP")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer instance, got {type(optimizer).__name__}")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise TypeError("optimizer: LBFGS is not supported by LEAP (its step re-evaluates the closure and "
                            "line-searches, so there is no single lr-proportional displacement to rescale)")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if relative is not None and not isinstance(relative, bool):
            raise TypeError(f"relative must be a bool or None, got {type(relative).__name__}")
        if variant == "lognormal" and relative is False:
            raise ValueError("relative must be True or None for variant='lognormal' (sigma is a log-scale std)")
        if distributed not in DISTRIBUTED:
            raise ValueError(f"distributed must be one of {DISTRIBUTED}, got {distributed!r}")
        if seed is not None and generator is not None:
            raise ValueError("give either seed or generator, not both")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        name = type(optimizer).__name__
        if any(isinstance(optimizer, getattr(torch.optim, n)) for n in NOT_PROPORTIONAL_TO_LR):
            warnings.warn(f"{name}'s step is not proportional to lr: LEAP rescales its displacement by "
                          "eta~/eta, which is not the step taken at rate eta~ (see LEAP's docstring)",
                          UserWarning, stacklevel=2)

        groups = optimizer.param_groups
        if isinstance(sigma, (str, bytes)) or not (isinstance(sigma, numbers.Real) or isinstance(sigma, Sequence)):
            raise TypeError(f"sigma must be a number or a sequence of numbers, got {type(sigma).__name__}")
        self._sigma_per_group = isinstance(sigma, Sequence)
        sigmas = list(sigma) if self._sigma_per_group else [sigma] * len(groups)
        if len(sigmas) != len(groups):
            raise ValueError(f"sigma has {len(sigmas)} values but the optimizer has {len(groups)} param groups")

        self.optimizer = optimizer
        self.mode = mode
        self.variant = variant
        self.distributed = distributed
        is_rel = variant == "lognormal" or bool(relative)
        self._default_sigma = None if self._sigma_per_group else _check_sigma(sigma, "sigma")
        self._default_relative = is_rel
        # torch's own mechanism to create the hook dictionaries and patch step() for hooks/profiling
        # (Optimizer.__init__ would re-create state/param_groups, which here belong to `optimizer`).
        Optimizer.__setstate__(self, {})
        self._warned_capturable_if_run_uncaptured = True
        for i, (group, s) in enumerate(zip(groups, sigmas)):
            _refuse_plain_keys(group, f"param group {i}", optimizer.defaults)
            group.setdefault("leap_sigma", _check_sigma(s, f"sigma[{i}]" if self._sigma_per_group else "sigma"))
            group.setdefault("leap_relative", is_rel)
            self._check_group(group, i, at_init=True)

        if generator is not None:
            self._seed = None
        else:
            self._seed = int(seed) if seed is not None else int(torch.randint(0, 2**62, ()).item())
        self._user_generator = generator
        self._sync_distributed(seed_given=seed is not None)
        self._generators: dict[str, torch.Generator] = {}
        self._snap: dict[torch.Tensor, torch.Tensor] = {}  # θ_old buffers (not part of state_dict)
        self._scratch: dict[str, torch.Tensor] = {}
        self._leap_step = 0

    def __getstate__(self) -> dict[str, Any]:  # pickling / deepcopy: everything but the work buffers
        d = dict(self.__dict__)
        d["_snap"], d["_scratch"] = {}, {}
        return d

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Optimizer.__setstate__(self, {})

    # ---- distributed -----------------------------------------------------------------------------
    def _sync_distributed(self, *, seed_given: bool) -> None:
        """DDP rule: identical noise on every rank (see the class docstring)."""
        dist = torch.distributed
        if self.distributed != "replicated" or not (dist.is_available() and dist.is_initialized()):
            return
        world = dist.get_world_size()
        if world == 1:
            return
        if self._user_generator is not None:
            st = self._user_generator.get_state().cpu().numpy().tobytes()
            mine = hashlib.sha256(st).hexdigest()[:16]
            got: list = [None] * world
            dist.all_gather_object(got, mine)
            if len(set(got)) > 1:
                raise ValueError(
                    "generator: its state differs across the DDP ranks (state digests by rank: "
                    f"{dict(enumerate(got))}), so the replicas would drift apart; seed it identically on every "
                    "rank, pass one seed= on every rank, or distributed='independent' for sharded training")
            return
        got = [None] * world
        dist.all_gather_object(got, (self._seed if seed_given else None, self._seed))
        given = [g[0] for g in got]
        if all(s is None for s in given):
            self._seed = int(got[0][1])  # rank 0's drawn seed, on every rank
        elif any(s is None for s in given) or len(set(given)) > 1:
            raise ValueError(
                f"seed differs across the DDP ranks (seed by rank: {dict(enumerate(given))}; None = not given), so "
                "the replicas would drift apart; pass the same seed on every rank (or none: rank 0's is then "
                "broadcast), or distributed='independent' for sharded training")

    # ---- shared with the wrapped optimizer -------------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    @property
    def seed(self) -> Optional[int]:
        """The seed of the noise streams (None when a user generator is used)."""
        return self._seed

    @property
    def leap_step(self) -> int:
        """Number of LEAP steps taken (indexes the counter-based stream)."""
        return self._leap_step

    def __repr__(self) -> str:
        sig = [g.get("leap_sigma") for g in self.param_groups]
        return (f"LEAP({self.optimizer!r},\n  sigma={sig if len(sig) > 1 else sig[0]}, "
                f"relative={[g.get('leap_relative') for g in self.param_groups]}, mode={self.mode!r}, "
                f"variant={self.variant!r})")

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer.

        σ comes from the group's ``"leap_sigma"`` key; without one, the constructor's scalar ``sigma``
        (when ``sigma`` was given per group, a new group must carry its own ``"leap_sigma"``).  The
        relative flag comes from ``"leap_relative"``, else the constructor's.
        """
        i = len(self.param_groups)
        _refuse_plain_keys(param_group, "param_group", self.optimizer.defaults)
        if "leap_sigma" not in param_group:
            if self._default_sigma is None:
                raise ValueError(
                    "param_group has no 'leap_sigma': this LEAP was given sigma per group, so a new group must "
                    "carry its own, e.g. add_param_group({'params': ..., 'leap_sigma': 0.01})")
            param_group["leap_sigma"] = self._default_sigma
        _check_sigma(param_group["leap_sigma"], "param_group['leap_sigma']")
        param_group.setdefault("leap_relative", self._default_relative)
        self.optimizer.add_param_group(param_group)
        self._check_group(self.param_groups[-1], i, at_init=True)

    # ---- checkpointing ---------------------------------------------------------------------------
    @torch._disable_dynamo
    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus ``"leap"``: seed, step counter, mode, variant, RNG states.

        LEAP's own state-dict pre-hooks run first, its post-hooks last (a post-hook may return a new dict).
        """
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        sd = self.optimizer.state_dict()
        gens = {dev: g.get_state() for dev, g in self._generators.items()}
        if self._user_generator is not None:
            gens = {"user": self._user_generator.get_state()}
        sd["leap"] = {"seed": self._seed, "step": self._leap_step, "mode": self.mode, "variant": self.variant,
                      "generators": gens}
        for hook in self._optimizer_state_dict_post_hooks.values():
            out = hook(self, sd)
            if out is not None:
                sd = out
        return sd

    @torch._disable_dynamo
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped optimizer and, from a LEAP state dict, the random sequence.

        Groups missing ``leap_sigma`` / ``leap_relative`` (a plain optimizer's checkpoint) keep the values
        this LEAP's groups had before loading.  LEAP's load-state-dict pre-hooks (which may return a new
        dict) run first, its post-hooks last.
        """
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            out = hook(self, state_dict)
            if out is not None:
                state_dict = out
        sd = dict(state_dict)
        leap = sd.pop("leap", None)
        if leap is not None:
            if leap["mode"] != self.mode:
                raise ValueError(f"state_dict was saved with mode={leap['mode']!r}, this LEAP has mode={self.mode!r}")
            saved_variant = leap.get("variant", "gaussian")
            if saved_variant != self.variant:
                raise ValueError(f"state_dict was saved with variant={saved_variant!r}, "
                                 f"this LEAP has variant={self.variant!r}")
            if leap["seed"] is None and self._user_generator is None:
                raise ValueError("state_dict was saved with a user generator; construct LEAP with generator=")
        before = [(g["leap_sigma"], g["leap_relative"]) for g in self.param_groups]
        self.optimizer.load_state_dict(sd)
        for i, (group, (s, r)) in enumerate(zip(self.param_groups, before)):
            group.setdefault("leap_sigma", s)
            group.setdefault("leap_relative", r)
            self._check_group(group, i, at_init=False)
        self._snap.clear()
        if leap is None:
            warnings.warn("state_dict has no 'leap' entry (a plain optimizer's checkpoint): groups keep this "
                          "LEAP's sigma/relative, and the noise continues from this LEAP's own seed and step "
                          "counter", UserWarning, stacklevel=2)
        else:
            self._leap_step = int(leap["step"])
            gens = leap.get("generators", {})
            if self._user_generator is not None:
                if "user" in gens:
                    self._user_generator.set_state(gens["user"])
            else:
                self._seed = int(leap["seed"])
                self._generators.clear()
                for dev, st in gens.items():
                    self._generator(torch.device(dev)).set_state(st)
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    # ---- the step --------------------------------------------------------------------------------
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None) -> Optional[torch.Tensor]:
        """Inner optimizer step with learning rate η̃ (see the class docstring); returns the closure's loss."""
        return self._step(closure)

    @torch.compiler.disable
    @torch.no_grad()
    def _step(self, closure: Optional[Callable[[], torch.Tensor]]) -> Optional[torch.Tensor]:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        inner = self.optimizer
        # the wrapped optimizer's own pre-hooks (global hooks and LEAP's fired once, around this call)
        args: tuple = (inner,)
        kwargs: dict = {}
        for hook in list(inner._optimizer_step_pre_hooks.values()):
            res = hook(inner, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise RuntimeError(f"step pre-hook {hook} must return None or (new_args, new_kwargs), got {res}")
                args, kwargs = res

        plan = self._plan()
        if plan:
            ps = [p for _, act in plan for _, p in act]
            olds = [self._snapshot(p) for p in ps]
            torch._foreach_copy_(olds, ps)
        _raw_step(inner)(*args, **kwargs)
        if plan:
            if self.mode == "per-coordinate":
                self._apply_per_coordinate(plan)
            else:
                self._apply_shared(plan)
        self._leap_step += 1
        for hook in list(inner._optimizer_step_post_hooks.values()):
            hook(inner, args, kwargs)
        return loss

    # ---- internals -------------------------------------------------------------------------------
    def _check_group(self, group: dict, i: int, *, at_init: bool) -> None:
        _check_group(group, i, at_init=at_init)
        if self.variant == "lognormal" and not group["leap_relative"]:
            raise ValueError(f"param_groups[{i}]['leap_relative'] must be True with variant='lognormal' "
                             "(sigma is a log-scale std)")

    def _plan(self) -> list:
        """Per group with noise: (c, [(slot, param), …]); c = σ/η (absolute) or σ (relative, lognormal)."""
        plan = []
        slot = 0
        for gi, group in enumerate(self.param_groups):
            self._check_group(group, gi, at_init=False)
            _refuse_plain_keys(group, f"param group {gi}", self.optimizer.defaults)
            params = group["params"]
            sigma = float(group["leap_sigma"])
            lr = group["lr"]
            lr = float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)
            active = [(slot + j, p) for j, p in enumerate(params) if p.grad is not None]
            slot += len(params)
            if sigma == 0.0 or not active:
                continue
            if group["leap_relative"]:
                c = sigma
            elif lr == 0.0:
                warnings.warn(f"param group {gi} has lr = 0 with absolute sigma: the zero step cannot be rescaled, "
                              "so this step is not perturbed (use relative=True or a schedule with eta_min > 0)",
                              RuntimeWarning, stacklevel=4)
                continue
            else:
                c = sigma / lr
            plan.append((c, active))
        return plan

    def _factor(self, c: float, z: float) -> float:
        """m − 1 for one draw z (the per-tensor / scalar modes)."""
        if self.variant == "gaussian":
            return c * z
        if self.variant == "clipped":
            return max(c * z, -1.0)
        return math.expm1(c * z - 0.5 * c * c)

    def _snapshot(self, p: torch.Tensor) -> torch.Tensor:
        buf = self._snap.get(p)
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
            buf = torch.empty_like(p, memory_format=torch.contiguous_format)
            self._snap[p] = buf
        return buf

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._user_generator is not None:
            if self._user_generator.device.type != device.type or (
                device.index is not None and self._user_generator.device.index not in (None, device.index)
            ):
                raise ValueError(f"generator is on {self._user_generator.device} but a parameter is on {device}")
            return self._user_generator
        key = str(device)
        g = self._generators.get(key)
        if g is None:
            g = torch.Generator(device=device)
            dev_code = sum((k + 1) * ord(ch) << (8 * (k % 7)) for k, ch in enumerate(key))
            g.manual_seed(_mix_py(_mix_py(self._seed & _MASK) ^ dev_code) & ((1 << 63) - 1))
            self._generators[key] = g
        return g

    def _counter_ok(self, p: torch.Tensor) -> bool:
        """The counter-based stream is used for CPU tensors with a seed; else the device generator."""
        return self._user_generator is None and p.device.type == "cpu"

    def _apply_per_coordinate(self, plan) -> None:
        torch_items = []  # (c, p, old) for the torch-generator path, in param_groups order
        for c, active in plan:
            for slot, p in active:
                old = self._snap[p]
                if self._counter_ok(p):
                    key = stream_key(self._seed, self._leap_step, slot)
                    if p.dtype in (torch.float32, torch.float64) and p.is_contiguous():
                        fused_leap_update(p.detach().view(-1).numpy(), old.view(-1).numpy(), key, c,
                                          variant=self.variant)
                    else:  # other dtypes / layouts: same stream, via a float32 scratch
                        z = torch.from_numpy(counter_normal(key, p.numel(), dtype="float32")).view(p.shape)
                        d = p.detach() - old.view_as(p)
                        p.add_(self._factor_tensor(z, c).to(p.dtype) * d)
                else:
                    torch_items.append((c, p, old))
        if torch_items:
            self._torch_per_coordinate(torch_items)

    def _factor_tensor(self, z: torch.Tensor, c: float) -> torch.Tensor:
        """m − 1 elementwise, in place on the draws ``z``."""
        z.mul_(c)
        if self.variant == "clipped":
            z.clamp_(min=-1.0)
        elif self.variant == "lognormal":
            z.sub_(0.5 * c * c).expm1_()
        return z

    def _torch_per_coordinate(self, items) -> None:
        """p ← p + f(z) ⊙ (p − old), z from the device generator (GPU path; CPU with a user generator).

        Draw layout (the reproducible contract): per (device, dtype), in ``param_groups`` order, the
        active tensors are cut into pieces of at most 2²² elements and packed into consecutive buckets
        of at most 2²² elements; each bucket takes **one** ``normal_`` call on a scratch of that size,
        and one ``_foreach_addcmul_`` applies it (gaussian variant; the others first map the draws to
        f(z) with foreach ops).  Few kernel launches, bounded scratch memory.
        Non-contiguous parameters take one ``normal_`` of their own shape, at their place in the order.
        """
        groups: dict[tuple, list] = {}
        for c, p, old in items:
            groups.setdefault((str(p.device), p.dtype), []).append((c, p, old))
        for (_, dtype), its in groups.items():
            dev = its[0][1].device
            gen = self._generator(dev)
            torch._foreach_sub_([o for _, _, o in its], [p.detach() for _, p, _ in its])  # old ← −(θ_new − θ_old)
            key = f"{dev}/{dtype}"
            total = sum(p.numel() for _, p, _ in its)
            scratch = self._scratch.get(key)
            need = min(total, _TORCH_CHUNK)
            if scratch is None or scratch.numel() < need:
                scratch = torch.empty(need, dtype=dtype, device=dev)
                self._scratch[key] = scratch
            bucket, size = [], 0

            def flush():
                nonlocal bucket, size
                if bucket:
                    z = scratch[:size].normal_(generator=gen)
                    zs = list(z.split([pp.numel() for _, pp, _ in bucket]))
                    if self.variant == "gaussian":
                        scal = [-cc for cc, _, _ in bucket]
                    else:
                        cs = [cc for cc, _, _ in bucket]
                        torch._foreach_mul_(zs, cs)
                        if self.variant == "clipped":
                            torch._foreach_clamp_min_(zs, -1.0)
                        else:
                            torch._foreach_add_(zs, [-0.5 * cc * cc for cc in cs])
                            torch._foreach_expm1_(zs)
                        scal = [-1.0] * len(bucket)
                    torch._foreach_addcmul_([pp for _, pp, _ in bucket], zs, [oo for _, _, oo in bucket], scal)
                bucket, size = [], 0

            for c, p, old in its:
                if not p.is_contiguous():
                    flush()
                    z = torch.empty(p.shape, dtype=dtype, device=dev).normal_(generator=gen)
                    p.addcmul_(self._factor_tensor(z, c), old.view(p.shape), value=-1.0)
                    continue
                pf, of = p.detach().view(-1), old.view(-1)
                for lo in range(0, pf.numel(), _TORCH_CHUNK):
                    piece_p, piece_o = pf[lo:lo + _TORCH_CHUNK], of[lo:lo + _TORCH_CHUNK]
                    if size + piece_p.numel() > _TORCH_CHUNK:
                        flush()
                    bucket.append((c, piece_p, piece_o))
                    size += piece_p.numel()
            flush()

    def _apply_shared(self, plan) -> None:
        """per-tensor / scalar modes: θ ← θ_new + f(z_t)·(θ_new − θ_old) with foreach ops."""
        n_slots = sum(len(g["params"]) for g in self.param_groups)
        if self._user_generator is None:
            key = stream_key(self._seed, self._leap_step, _SCALAR_SLOT)
            zs = counter_normal(key, 1 if self.mode == "scalar" else n_slots).tolist()
        else:
            gen = self._user_generator
            zs = torch.randn(1 if self.mode == "scalar" else n_slots, generator=gen,
                             device=gen.device, dtype=torch.float64).tolist()
        ps, olds, factors = [], [], []
        for c, active in plan:
            for slot, p in active:
                ps.append(p)
                olds.append(self._snap[p])
                factors.append(-self._factor(c, zs[0] if self.mode == "scalar" else zs[slot]))
        torch._foreach_sub_(olds, ps)  # olds ← θ_old − θ_new
        torch._foreach_mul_(olds, factors)  # ← f(z) (θ_new − θ_old)
        torch._foreach_add_(ps, olds)


def _raw_step(opt: Optimizer) -> Callable[..., Any]:
    """The wrapped optimizer's class ``step`` without torch's hook wrapper (so hooks fire once per step).

    Torch's hook protocol passes ``args`` including the optimizer itself, so the unbound function is
    returned and called as ``fn(*args, **kwargs)`` with ``args = (opt, …)``.
    """
    fn = type(opt).step
    if getattr(fn, "hooked", False) and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    inst = opt.__dict__.get("step")
    if inst is not None and getattr(inst, "_wrapped_by_lr_sched", False):
        opt._opt_called = True  # what the scheduler's patch of the instance records
    return fn  # unbound: called as fn(opt, *args, **kwargs)


def _refuse_plain_keys(group: dict, where: str, defaults: dict) -> None:
    for k, right in _GROUP_KEYS_REFUSED.items():
        if k in group and k not in defaults:
            raise ValueError(f"{where} has a key {k!r}, which LEAP does not read: use {right!r} "
                             f"(e.g. {{'params': ..., {right!r}: ...}})")


def _check_sigma(s: Any, name: str) -> float:
    if isinstance(s, bool) or not isinstance(s, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {type(s).__name__}")
    s = float(s)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {s}")
    return s


def _check_group(group: dict, i: int, *, at_init: bool) -> None:
    if "lr" not in group:
        raise TypeError(f"param group {i} has no 'lr': LEAP perturbs the learning rate of lr-based optimizers")
    if group.get("differentiable", False):
        raise ValueError(f"param_groups[{i}]['differentiable'] is True: LEAP's rescaling runs under no_grad, so "
                         "autograd would not see the noise; use differentiable=False")
    sigma = _check_sigma(group["leap_sigma"], f"param_groups[{i}]['leap_sigma']")
    if not isinstance(group["leap_relative"], bool):
        raise TypeError(f"param_groups[{i}]['leap_relative'] must be a bool")
    if at_init and sigma > 0:
        lr = group["lr"]
        lr = float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)
        if lr == 0.0:
            kind = "relative" if group["leap_relative"] else "absolute"
            raise ValueError(
                f"param group {i} has lr = 0 with {kind} sigma = {sigma}: LEAP rescales the optimizer's step "
                "by (lr + eps)/lr, which needs lr > 0 (a relative sigma would also make eps = 0)")
