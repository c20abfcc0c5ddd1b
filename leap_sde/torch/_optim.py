"""LEAP as a plug-in for any PyTorch optimizer and learning-rate schedule."""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch
from torch.optim import Optimizer

from .._counter_rng import _MASK, _mix_py, counter_normal, fused_leap_update, stream_key

__all__ = ["LEAP", "MODES"]

MODES = ("per-coordinate", "per-tensor", "scalar")
_SCALAR_SLOT = (1 << 64) - 1  # stream slot of the per-tensor / scalar draws (tensor slots are 0, 1, …)
_TORCH_CHUNK = 1 << 22  # scratch size (elements) of the torch-generator path


class LEAP(Optimizer):
    r"""LEArning-rate Perturbation around any ``torch.optim`` optimizer.

    **Update.** With the group's current learning rate η (whatever schedule set it) and
    ``ε ~ N(0, σ²)`` drawn afresh at every step, LEAP takes the wrapped optimizer's step with learning
    rate ``η + ε`` instead of η.  It is implemented generically: snapshot θ_old, let the wrapped optimizer
    step to θ_new, then rescale the displacement per element::

        θ ← θ_old + (1 + ε/η) ⊙ (θ_new − θ_old),     ε/η = σ z / η  (absolute σ)   or  σ z  (relative σ)

    with ``z ~ N(0, 1)`` i.i.d.  For plain SGD (θ_new = θ_old − η g) this is *exactly*
    ``θ ← θ_old − (η + ε) ⊙ g`` — the simulator's rule θ_{k+1} = θ_k − η̃_k ⊙ (∇L + ξ_k).  For every
    optimizer whose displacement is ``η × (a quantity that does not depend on η)`` — SGD with momentum,
    Nesterov or weight decay (the momentum buffer holds gradients, not steps), Adam, AdamW (the decoupled
    decay −ηλθ is also ∝ η), NAdam, RAdam, Adamax, Adagrad, RMSprop, Adadelta — the rescaled step is
    exactly "the same step taken with learning rate η + ε", per element; the optimizer's state (momentum,
    moments) is unchanged by the perturbation, as it would be for a per-element learning-rate tensor.
    It is *not* that for optimizers whose step is not proportional to lr (LBFGS with line search, Rprop):
    there the rule is still the documented rescaling, nothing more.

    **Noise modes** (``mode``): ``"per-coordinate"`` (default; one ε per parameter element and step, the
    simulator's per-coordinate LEAP), ``"per-tensor"`` (one ε per parameter tensor and step),
    ``"scalar"`` (one z per step shared by every element of every group; ε = σ_g·z or σ_g·η_g·z).

    **Parameter groups.** σ and the absolute/relative choice live in each group as ``"leap_sigma"`` and
    ``"leap_relative"`` (set them in the dicts given to the wrapped optimizer, or after construction, or
    pass ``sigma`` as a sequence with one value per group).  ``param_groups`` and ``state`` *are* the
    wrapped optimizer's (shared, not copied), so schedulers (``torch.optim.lr_scheduler.*``), GradScaler,
    gradient clipping and ``add_param_group`` act on both.  η is read from ``group["lr"]`` at each step.

    **Randomness.** ``seed`` (int) or ``generator`` (a ``torch.Generator``), not both; with neither, a
    seed is drawn once from torch's global generator (so ``torch.manual_seed`` makes runs repeatable).

    - With a seed, CPU tensors use a counter-based stream (:mod:`leap_sde._counter_rng`): element i of tensor
      slot j at LEAP step k is a fixed function of (seed, k, j, i), computed in parallel inside one fused
      Numba kernel ``θ ← θ_new + (ε/η) z ⊙ (θ_new − θ_old)`` (no scratch tensor; independent of the
      thread count).  Other devices get one ``torch.Generator`` per device, seeded from (seed, device),
      and draw ``normal_`` on the device in buckets of at most 2²² elements (one ``normal_`` and one
      ``_foreach_addcmul_`` per bucket).  Slot j numbers the parameters in ``param_groups`` order.
    - With ``generator``, every draw uses it (all perturbed parameters must be on its device).
    - ``state_dict()`` is the wrapped optimizer's plus a ``"leap"`` entry (seed, step counter, mode,
      generator states), so a resumed run continues the same random sequence.

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
    optimizer's ``step()`` without it; optimizers that must re-evaluate the closure (LBFGS) are
    therefore not supported.  Not supported either: CUDA-graph capture / ``capturable`` steps.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer to wrap, already constructed.
    sigma : float or sequence of float
        σ ≥ 0, for every group or one per group; a group's own ``"leap_sigma"`` key takes precedence.
    relative : bool, default False
        ε = σ·η·z (σ relative to the current lr) instead of ε = σ·z.
    mode : {"per-coordinate", "per-tensor", "scalar"}
    seed : int, optional
    generator : torch.Generator, optional

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
        relative: bool = False,
        mode: str = "per-coordinate",
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
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
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(relative, bool):
            raise TypeError(f"relative must be a bool, got {type(relative).__name__}")
        if seed is not None and generator is not None:
            raise ValueError("give either seed or generator, not both")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")

        groups = optimizer.param_groups
        if isinstance(sigma, (str, bytes)) or not (isinstance(sigma, numbers.Real) or isinstance(sigma, Sequence)):
            raise TypeError(f"sigma must be a number or a sequence of numbers, got {type(sigma).__name__}")
        sigmas = list(sigma) if isinstance(sigma, Sequence) else [sigma] * len(groups)
        if len(sigmas) != len(groups):
            raise ValueError(f"sigma has {len(sigmas)} values but the optimizer has {len(groups)} param groups")

        self.optimizer = optimizer
        self.mode = mode
        self._default_sigma = _check_sigma(sigmas[0] if sigmas else 0.0, "sigma")
        self._default_relative = relative
        # torch's own mechanism to create the hook dictionaries and patch step() for hooks/profiling
        # (Optimizer.__init__ would re-create state/param_groups, which here belong to `optimizer`).
        Optimizer.__setstate__(self, {})
        self._warned_capturable_if_run_uncaptured = True
        for i, (group, s) in enumerate(zip(groups, sigmas)):
            group.setdefault("leap_sigma", _check_sigma(s, f"sigma[{i}]"))
            group.setdefault("leap_relative", relative)
            _check_group(group, i, at_init=True)

        if generator is not None:
            self._seed = None
        else:
            self._seed = int(seed) if seed is not None else int(torch.randint(0, 2**62, ()).item())
        self._user_generator = generator
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

    # ---- shared with the wrapped optimizer -------------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value):
        self.optimizer.param_groups = value

    @property
    def state(self):
        return self.optimizer.state

    @state.setter
    def state(self, value):
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value):
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
                f"relative={[g.get('leap_relative') for g in self.param_groups]}, mode={self.mode!r})")

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer; missing LEAP keys take the constructor's values."""
        param_group.setdefault("leap_sigma", self._default_sigma)
        param_group.setdefault("leap_relative", self._default_relative)
        _check_sigma(param_group["leap_sigma"], "param_group['leap_sigma']")
        self.optimizer.add_param_group(param_group)
        _check_group(self.param_groups[-1], len(self.param_groups) - 1, at_init=True)

    # ---- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus ``"leap"``: seed, step counter, mode, RNG states."""
        sd = self.optimizer.state_dict()
        gens = {dev: g.get_state() for dev, g in self._generators.items()}
        if self._user_generator is not None:
            gens = {"user": self._user_generator.get_state()}
        sd["leap"] = {"seed": self._seed, "step": self._leap_step, "mode": self.mode, "generators": gens}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped optimizer (groups keep their ``leap_*`` keys) and the random sequence."""
        sd = dict(state_dict)
        leap = sd.pop("leap", None)
        self.optimizer.load_state_dict(sd)
        self._snap.clear()
        if leap is None:
            warnings.warn("state_dict has no 'leap' entry: the LEAP random sequence restarts", RuntimeWarning)
            return
        if leap["mode"] != self.mode:
            raise ValueError(f"state_dict was saved with mode={leap['mode']!r}, this LEAP has mode={self.mode!r}")
        self._leap_step = int(leap["step"])
        gens = leap.get("generators", {})
        if self._user_generator is not None:
            if "user" in gens:
                self._user_generator.set_state(gens["user"])
        else:
            if leap["seed"] is None:
                raise ValueError("state_dict was saved with a user generator; construct LEAP with generator=")
            self._seed = int(leap["seed"])
            self._generators.clear()
            for dev, st in gens.items():
                self._generator(torch.device(dev)).set_state(st)

    # ---- the step --------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None):
        """Inner optimizer step with learning rate η + ε (see the class docstring)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # plan: per group the rescaling coefficient c (ε = c·η·z) and the (slot, param) pairs to perturb
        plan = []
        slot = 0
        for gi, group in enumerate(self.param_groups):
            _check_group(group, gi, at_init=False)
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
                              RuntimeWarning, stacklevel=2)
                continue
            else:
                c = sigma / lr
            plan.append((c, active))

        if plan:
            ps = [p for _, act in plan for _, p in act]
            olds = [self._snapshot(p) for p in ps]
            torch._foreach_copy_(olds, ps)
        self.optimizer.step()
        if plan:
            if self.mode == "per-coordinate":
                self._apply_per_coordinate(plan)
            else:
                self._apply_shared(plan)
        self._leap_step += 1
        return loss

    # ---- internals -------------------------------------------------------------------------------
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
        return self._user_generator is None and p.device.type == "cpu"

    def _apply_per_coordinate(self, plan) -> None:
        torch_items = []  # (c, p, old) for the torch-generator path, in param_groups order
        for c, active in plan:
            for slot, p in active:
                old = self._snap[p]
                if self._counter_ok(p):
                    key = stream_key(self._seed, self._leap_step, slot)
                    if p.dtype in (torch.float32, torch.float64) and p.is_contiguous():
                        fused_leap_update(p.detach().view(-1).numpy(), old.view(-1).numpy(), key, c)
                    else:  # other dtypes / layouts: same stream, via a float32 scratch
                        z = counter_normal(key, p.numel(), dtype="float32")
                        d = p.detach() - old.view_as(p)
                        p.add_(torch.from_numpy(z).view(p.shape).to(p.dtype) * d, alpha=c)
                else:
                    torch_items.append((c, p, old))
        if torch_items:
            self._torch_per_coordinate(torch_items)

    def _torch_per_coordinate(self, items) -> None:
        """p ← p + c·z ⊙ (p − old), z from the device generator (GPU path; CPU with a user generator).

        Draw layout (the reproducible contract): per (device, dtype), in ``param_groups`` order, the
        active tensors are cut into pieces of at most 2²² elements and packed into consecutive buckets
        of at most 2²² elements; each bucket takes **one** ``normal_`` call on a scratch of that size,
        and one ``_foreach_addcmul_`` applies it.  Few kernel launches, bounded scratch memory.
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
                    torch._foreach_addcmul_([pp for _, pp, _ in bucket], zs, [oo for _, _, oo in bucket],
                                            [-cc for cc, _, _ in bucket])
                bucket, size = [], 0

            for c, p, old in its:
                if not p.is_contiguous():
                    flush()
                    z = torch.empty(p.shape, dtype=dtype, device=dev).normal_(generator=gen)
                    p.addcmul_(z, old.view(p.shape), value=-c)
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
        """per-tensor / scalar modes: θ ← θ_new + c·z_t·(θ_new − θ_old) with foreach ops."""
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
                factors.append(-c * (zs[0] if self.mode == "scalar" else zs[slot]))
        torch._foreach_sub_(olds, ps)  # olds ← θ_old − θ_new
        torch._foreach_mul_(olds, factors)  # ← c z (θ_new − θ_old)
        torch._foreach_add_(ps, olds)


def _check_sigma(s, name: str) -> float:
    if isinstance(s, bool) or not isinstance(s, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {type(s).__name__}")
    s = float(s)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {s}")
    return s


def _check_group(group: dict, i: int, *, at_init: bool) -> None:
    if "lr" not in group:
        raise TypeError(f"param group {i} has no 'lr': LEAP perturbs the learning rate of lr-based optimizers")
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
