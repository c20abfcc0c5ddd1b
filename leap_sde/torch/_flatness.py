"""Flatness and gradient-noise measurement on PyTorch models, from Hessian-vector products.

Conventions
-----------
- ``closure()`` returns the scalar loss L(θ) of ``model`` at its current parameters (e.g. the
  full-batch training loss).  ``params`` (default: every parameter of ``model`` that requires grad)
  is the list of tensors θ is made of; vectors over θ are flat 1-D tensors of length
  ``n = Σ p.numel()``, concatenated in ``params`` order (:func:`flat_params`).
- **BatchNorm / Dropout.** Every function evaluates the model in **eval mode** by default
  (``train_mode=False``): BatchNorm uses its running statistics and Dropout is off, so L is a
  deterministic function of θ and its Hessian is well defined.  ``train_mode=True`` evaluates in
  train mode (BatchNorm normalises with the statistics of the batch the closure uses); it is refused
  (``ValueError``) when the model has a Dropout module with ``p > 0``, because the loss is then random.
  In both modes the modules' ``training`` flags and all buffers (BatchNorm running statistics) are
  restored afterwards, and so are the parameters of functions that move them.  Dropout applied
  functionally inside ``forward`` cannot be detected: keep such models in eval mode.
- Hessian-vector products ``Hv = ∇(∇L·v)`` use double backward (Pearlmutter 1994); the gradient graph
  is built once per call and reused for every product.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "flat_params", "hvp", "hessian_eigenvalues", "hessian_trace", "epsilon_sharpness",
    "gradient_noise_along", "loss_along_direction", "interpolation_barrier", "InterpolationProfile",
    "HessianEigen", "TraceEstimate", "EpsSharpness", "NoiseAlong",
]


# ---------------------------------------------------------------------------------------------------
# helpers
def _params(model: Optional[nn.Module], params) -> list[torch.Tensor]:
    if params is None:
        if model is None:
            raise ValueError("give model or params")
        params = [p for p in model.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise ValueError("params is empty (no parameter requires grad)")
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params must be tensors, got {type(p).__name__}")
    return params


def flat_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenated detached copy of ``params``, shape ``(n,)``."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def _split(v: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in params:
        out.append(v[i:i + p.numel()].view_as(p))
        i += p.numel()
    if i != v.numel():
        raise ValueError(f"vector has {v.numel()} elements, params have {i}")
    return out


@torch.no_grad()
def _set_flat(params: Sequence[torch.Tensor], v: torch.Tensor) -> None:
    for p, q in zip(params, _split(v.to(params[0].device), params)):
        p.copy_(q)


@contextlib.contextmanager
def _measurement_mode(model: Optional[nn.Module], train_mode: bool):
    """Put ``model`` in eval (default) or train mode; restore flags and buffers on exit."""
    if model is None:
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    if train_mode:
        for name, m in model.named_modules():
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
                raise ValueError(
                    f"train_mode=True with Dropout (module {name!r}, p={m.p}) makes the loss random; "
                    "use train_mode=False (eval mode) or set p=0")
        model.train()
    else:
        model.eval()
    try:
        yield
    finally:
        for m, t in flags:
            m.training = t
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


class _HessianOperator:
    """v ↦ Hv at the current θ, sharing one gradient graph between products."""

    def __init__(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor]):
        self.params = params
        self.n = sum(p.numel() for p in params)
        with torch.enable_grad():
            loss = closure()
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError("closure must return a scalar loss tensor")
            self.loss = float(loss.detach())
            self.grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        self.grad = torch.cat([(g if g is not None else torch.zeros_like(p)).detach().reshape(-1)
                               for g, p in zip(self.grads, params)])
        self._gp = [(g, p) for g, p in zip(self.grads, params) if g is not None and g.requires_grad]
        self.count = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.count += 1
        vs = _split(v.to(dtype=self.params[0].dtype, device=self.params[0].device), self.params)
        if not self._gp:
            return torch.zeros_like(v)
        idx = {id(p): k for k, p in enumerate(self.params)}
        outs = torch.autograd.grad([g for g, _ in self._gp], self.params,
                                   grad_outputs=[vs[idx[id(p)]] for _, p in self._gp],
                                   retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                          for h, p in zip(outs, self.params)])


def hvp(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], v: torch.Tensor, *, params=None,
        train_mode: bool = False) -> torch.Tensor:
    """Hessian-vector product ``H v = ∇(∇L·v)`` of L = ``closure()`` w.r.t. θ (Pearlmutter 1994).

    Same argument order as the other flatness functions: ``model`` (or None with ``params``), the
    closure, then ``v`` of shape ``(n,)``; the result has shape ``(n,)``.  The model is evaluated in
    eval mode unless ``train_mode=True`` (module docstring).

    The old order ``hvp(closure, params, v)`` still works but is deprecated (``DeprecationWarning``).
    """
    if model is not None and not isinstance(model, nn.Module) and callable(model) and not callable(closure):
        warnings.warn("hvp(closure, params, v) is deprecated: use hvp(model, closure, v, params=...) "
                      "(or hvp(None, closure, v, params=params)), the order of the other flatness functions",
                      DeprecationWarning, stacklevel=2)
        model, closure, params = None, model, closure
    params = _params(model, params)
    with _measurement_mode(model, train_mode):
        return _HessianOperator(closure, params)(v)


# ---------------------------------------------------------------------------------------------------
# eigenvalues
@dataclass(frozen=True)
class HessianEigen:
    """Top eigenpairs: ``eigenvalues`` (k,) descending, ``eigenvectors`` (k, n) unit rows,
    ``n_hvp`` products used, ``loss`` and ``grad_norm`` at θ."""

    eigenvalues: np.ndarray
    eigenvectors: torch.Tensor
    n_hvp: int
    loss: float
    grad_norm: float


def hessian_eigenvalues(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], *, k: int = 1,
                        params=None, train_mode: bool = False, method: str = "lanczos", which: str = "LA",
                        tol: float = 1e-6, maxiter: Optional[int] = None, seed: int = 0) -> HessianEigen:
    r"""Top-``k`` eigenvalues of the Hessian H = ∇²L(θ) from Hessian-vector products.

    ``method="lanczos"``: implicitly restarted Lanczos (ARPACK, ``scipy.sparse.linalg.eigsh``) on a
    ``LinearOperator`` of HVPs, ``which="LA"`` (largest algebraic, the usual "sharpness" λ_max) or
    ``"LM"`` (largest magnitude).  ``method="power"``: power iteration with deflation
    (H ← H − Σ_j λ_j u_j u_jᵀ), which finds the eigenvalues of largest *magnitude*; stops when the
    Rayleigh quotient changes by less than ``tol`` (relative) or after ``maxiter`` (default 1000)
    products.  ``method="dense"``: n HVPs build H, then ``numpy.linalg.eigh`` (small models only).
    With float32 models, accuracy is limited to about 1e-5 relative whatever ``tol``.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if method not in ("lanczos", "power", "dense"):
        raise ValueError(f"method must be 'lanczos', 'power' or 'dense', got {method!r}")
    if which not in ("LA", "LM"):
        raise ValueError(f"which must be 'LA' or 'LM', got {which!r}")
    params = _params(model, params)
    with _measurement_mode(model, train_mode):
        op = _HessianOperator(closure, params)
        n, k = op.n, int(k)
        if k > n:
            raise ValueError(f"k = {k} exceeds the number of parameters n = {n}")
        dev, dt = params[0].device, params[0].dtype
        if method == "lanczos" and k >= n - 1:
            method = "dense"
        if method == "dense":
            eye = torch.eye(n, dtype=dt, device=dev)
            H = torch.stack([op(eye[i]) for i in range(n)]).double().cpu().numpy()
            w, V = np.linalg.eigh(0.5 * (H + H.T))
            order = np.argsort(-w if which == "LA" else -np.abs(w))[:k]
            vals, vecs = w[order], torch.as_tensor(V[:, order].T.copy(), dtype=dt, device=dev)
        elif method == "lanczos":
            from scipy.sparse.linalg import LinearOperator, eigsh

            def mv(x):
                x = torch.as_tensor(np.asarray(x).reshape(-1), dtype=dt, device=dev)
                return op(x).double().cpu().numpy()

            v0 = np.random.default_rng(seed).standard_normal(n)
            w, V = eigsh(LinearOperator((n, n), matvec=mv, dtype=np.float64), k=k, which=which, tol=tol,
                         v0=v0, maxiter=maxiter)
            order = np.argsort(-w if which == "LA" else -np.abs(w))
            vals, vecs = w[order], torch.as_tensor(V[:, order].T.copy(), dtype=dt, device=dev)
        else:
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            vals_l, vecs_l = [], []
            budget = int(maxiter) if maxiter is not None else 1000
            for _ in range(k):
                v = torch.randn(n, generator=gen, dtype=torch.float64).to(dt).to(dev)
                v /= v.norm()
                lam = 0.0
                for it in range(budget):
                    hv = op(v)
                    for lj, uj in zip(vals_l, vecs_l):
                        hv = hv - lj * torch.dot(uj, v) * uj
                    new = float(torch.dot(v, hv))
                    nrm = hv.norm()
                    if nrm == 0:
                        break
                    v = hv / nrm
                    if it > 0 and abs(new - lam) <= tol * max(abs(new), 1e-30):
                        lam = new
                        break
                    lam = new
                vals_l.append(lam)
                vecs_l.append(v)
            vals, vecs = np.array(vals_l), torch.stack(vecs_l)
        vecs = vecs / vecs.norm(dim=1, keepdim=True)
        return HessianEigen(np.asarray(vals, dtype=float), vecs, op.count, op.loss, float(op.grad.norm()))


# ---------------------------------------------------------------------------------------------------
# trace
@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson estimate: ``trace`` ± ``stderr`` (standard error of the mean) from ``n_samples``
    quadratic forms vᵀHv (``samples``)."""

    trace: float
    stderr: float
    n_samples: int
    samples: np.ndarray


def hessian_trace(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], *, n_samples: int = 100,
                  params=None, train_mode: bool = False, distribution: str = "rademacher",
                  seed: int = 0) -> TraceEstimate:
    r"""Hutchinson's estimator tr H ≈ (1/m) Σ_j v_jᵀ H v_j, with E[v vᵀ] = I.

    ``distribution="rademacher"`` (±1 entries; variance 2 Σ_{i≠j} H_ij², the minimum over such
    estimators) or ``"gaussian"`` (variance 2‖H‖_F²).  ``stderr`` = sample std / √m.
    Sources: Hutchinson (1989), Commun. Stat. Simul. Comput. 18(3); Avron & Toledo (2011), J. ACM 58(2);
    PyHessian (Yao et al. 2020) for its use on networks.
    """
    if int(n_samples) < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if distribution not in ("rademacher", "gaussian"):
        raise ValueError(f"distribution must be 'rademacher' or 'gaussian', got {distribution!r}")
    params = _params(model, params)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    with _measurement_mode(model, train_mode):
        op = _HessianOperator(closure, params)
        dt, dev = params[0].dtype, params[0].device
        out = np.empty(int(n_samples))
        for j in range(int(n_samples)):
            if distribution == "rademacher":
                v = torch.randint(0, 2, (op.n,), generator=gen).to(dt).mul_(2).sub_(1)
            else:
                v = torch.randn(op.n, generator=gen, dtype=torch.float64).to(dt)
            v = v.to(dev)
            out[j] = float(torch.dot(v, op(v)))
    return TraceEstimate(float(out.mean()), float(out.std(ddof=1) / math.sqrt(len(out))), len(out), out)


# ---------------------------------------------------------------------------------------------------
# epsilon-sharpness
@dataclass(frozen=True)
class EpsSharpness:
    """Keskar et al. ε-sharpness ``value`` (in %), with ``base_loss`` f(x), ``max_loss``
    max f(x + y) found, and ``epsilon``."""

    value: float
    base_loss: float
    max_loss: float
    epsilon: float


def epsilon_sharpness(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], *, epsilon: float = 1e-3,
                      params=None, train_mode: bool = False, maxiter: int = 10, n_restarts: int = 1,
                      seed: int = 0) -> EpsSharpness:
    r"""ε-sharpness of Keskar et al. (ICLR 2017, "On large-batch training…", eq. 3), full space (A = I)::

        φ_{x,f}(ε) = 100 · (max_{y ∈ C_ε} f(x + y) − f(x)) / (1 + f(x)),
        C_ε = { y : |y_i| ≤ ε (|x_i| + 1) }.

    The inner maximisation is solved as in the paper with L-BFGS-B (``scipy.optimize.minimize``,
    ``maxiter`` iterations, default 10 as there) from y = 0 and ``n_restarts − 1`` random points of the
    box; the best value is returned (a lower bound on the true maximum).  Parameters are restored.
    """
    from scipy.optimize import minimize

    eps = float(epsilon)
    if not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon}")
    if int(n_restarts) < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}")
    params = _params(model, params)
    x0 = flat_params(params)
    dt, dev = x0.dtype, x0.device
    x0d = x0.double().cpu().numpy()
    r = eps * (np.abs(x0d) + 1.0)
    rng = np.random.default_rng(seed)

    def fg(y):
        _set_flat(params, torch.as_tensor(x0d + y, dtype=dt, device=dev))
        for p in params:
            p.grad = None
        with torch.enable_grad():
            loss = closure()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        g = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(grads, params)])
        return -float(loss.detach()), -g.double().cpu().numpy()

    with _measurement_mode(model, train_mode):
        try:
            with torch.no_grad():
                f0 = float(closure())
            best = f0
            for j in range(int(n_restarts)):
                y0 = np.zeros_like(x0d) if j == 0 else rng.uniform(-r, r)
                res = minimize(fg, y0, jac=True, method="L-BFGS-B", bounds=list(zip(-r, r)),
                               options={"maxiter": int(maxiter)})
                best = max(best, -float(res.fun))
        finally:
            _set_flat(params, x0)
    return EpsSharpness(100.0 * (best - f0) / (1.0 + f0), f0, best, eps)


# ---------------------------------------------------------------------------------------------------
# gradient noise along directions
@dataclass(frozen=True)
class NoiseAlong:
    """Per direction v_k (rows of ``directions``): ``mean_grad`` v·∇L, ``per_sample_var``
    Var_i(v·∇ℓ_i) (population variance over the N samples), and ``batch_var`` the variance of
    v·g_B for a minibatch mean of size ``batch_size`` drawn without replacement:
    per_sample_var/B · (N − B)/(N − 1).  Shapes (k,)."""

    mean_grad: np.ndarray
    per_sample_var: np.ndarray
    batch_var: np.ndarray
    batch_size: int
    n_samples: int


def gradient_noise_along(model: nn.Module, per_sample_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         inputs: torch.Tensor, targets: torch.Tensor, directions: torch.Tensor, *,
                         batch_size: int, params=None, train_mode: bool = False,
                         chunk_size: int = 4096) -> NoiseAlong:
    r"""Minibatch gradient-noise variance along given directions.

    With ℓ_i the loss of sample i (``per_sample_loss(model(inputs), targets)`` returns shape (N,)) and
    L = mean_i ℓ_i, the minibatch gradient g_B = (1/B) Σ_{i∈B} ∇ℓ_i has, along a unit vector v,
    Var(v·g_B) = s_v²/B · (N − B)/(N − 1),  s_v² = (1/N) Σ_i (v·∇ℓ_i − v·∇L)².
    The N directional derivatives v·∇ℓ_i come from one forward-mode JVP per direction
    (``torch.func.jvp`` through ``torch.func.functional_call``), not from N per-sample gradients.
    In train mode BatchNorm normalises each chunk with its own statistics (one chunk = all N samples
    when N ≤ ``chunk_size``).  ``directions``: (k, n) or (n,).
    """
    from torch.func import functional_call, jvp

    params = _params(model, params)
    B = int(batch_size)
    N = int(inputs.shape[0])
    if not 1 <= B <= N:
        raise ValueError(f"batch_size must be in [1, N = {N}], got {batch_size}")
    dirs = directions.reshape(-1, sum(p.numel() for p in params)) if directions.dim() == 1 else directions
    name_of = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(params) if id(p) not in name_of]
    if missing:
        raise ValueError("params must be parameters of model")
    names = [name_of[id(p)] for p in params]
    primals = tuple(p.detach() for p in params)

    means, vars_ = [], []
    with _measurement_mode(model, train_mode), torch.no_grad():
        for v in dirs:
            tangents = tuple(_split(v.to(dtype=params[0].dtype, device=params[0].device), params))
            d = []
            for lo in range(0, N, int(chunk_size)):
                xb, yb = inputs[lo:lo + chunk_size], targets[lo:lo + chunk_size]

                def f(*ps, xb=xb, yb=yb):
                    return per_sample_loss(functional_call(model, dict(zip(names, ps)), (xb,)), yb)

                _, dl = jvp(f, primals, tangents)
                d.append(dl.reshape(-1).double())
            d = torch.cat(d)
            if d.numel() != N:
                raise ValueError(f"per_sample_loss must return one loss per sample (N = {N}), got {d.numel()}")
            means.append(float(d.mean()))
            vars_.append(float(d.var(unbiased=False)))
    means, vars_ = np.array(means), np.array(vars_)
    fpc = (N - B) / (N - 1) if N > 1 else 0.0
    return NoiseAlong(means, vars_, vars_ / B * fpc, B, N)


# ---------------------------------------------------------------------------------------------------
# loss profiles
def loss_along_direction(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], direction: torch.Tensor,
                         alphas, *, params=None, train_mode: bool = False) -> np.ndarray:
    """L(θ + α d) for each α in ``alphas`` (shape (m,)); ``direction`` d has shape (n,).  θ is restored."""
    params = _params(model, params)
    x0 = flat_params(params)
    d = direction.reshape(-1).to(dtype=x0.dtype, device=x0.device)
    if d.numel() != x0.numel():
        raise ValueError(f"direction has {d.numel()} elements, params have {x0.numel()}")
    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    out = np.empty(len(alphas))
    with _measurement_mode(model, train_mode), torch.no_grad():
        try:
            for j, a in enumerate(alphas):
                _set_flat(params, x0 + float(a) * d)
                out[j] = float(closure())
        finally:
            _set_flat(params, x0)
    return out


@dataclass(frozen=True)
class InterpolationProfile:
    """``ts`` (m,), ``losses`` (m,) along θ_t = (1 − t) θ_a + t θ_b, and
    ``barrier`` = max_t [L(θ_t) − ((1 − t) L(θ_a) + t L(θ_b))]."""

    ts: np.ndarray
    losses: np.ndarray
    barrier: float


def interpolation_barrier(model: Optional[nn.Module], closure: Callable[[], torch.Tensor], theta_a: torch.Tensor,
                          theta_b: torch.Tensor, *, n_points: int = 25, params=None,
                          train_mode: bool = False) -> InterpolationProfile:
    """Loss along the straight line between two parameter vectors (shape (n,) each) and its barrier
    height above the linear interpolation of the end losses (Frankle et al. 2020; Entezari et al. 2022).
    θ is restored afterwards."""
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    params = _params(model, params)
    x0 = flat_params(params)
    a = theta_a.reshape(-1).to(dtype=x0.dtype, device=x0.device)
    b = theta_b.reshape(-1).to(dtype=x0.dtype, device=x0.device)
    ts = np.linspace(0.0, 1.0, int(n_points))
    losses = np.empty(len(ts))
    with _measurement_mode(model, train_mode), torch.no_grad():
        try:
            for j, t in enumerate(ts):
                _set_flat(params, (1.0 - t) * a + t * b)
                losses[j] = float(closure())
        finally:
            _set_flat(params, x0)
    barrier = float(np.max(losses - ((1.0 - ts) * losses[0] + ts * losses[-1])))
    return InterpolationProfile(ts, losses, barrier)
