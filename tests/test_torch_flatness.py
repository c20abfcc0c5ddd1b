"""Hessian / flatness / gradient-noise tools against dense computations on small models."""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
from torch import nn  # noqa: E402
from torch.func import functional_call  # noqa: E402

import leap_sde.torch as lt  # noqa: E402


def _mlp(seed=0, bn=False, dropout=0.0):
    torch.manual_seed(seed)  # module init only; the data below use explicit generators
    layers = [nn.Linear(6, 8)]
    if bn:
        layers.append(nn.BatchNorm1d(8))
    layers += [nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(8, 3))
    return nn.Sequential(*layers).double()  # 6·8+8+8·3+3 = 83 parameters (+16 with BN)


def _data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _dense_hessian(model, X, y):
    names = [n for n, _ in model.named_parameters()]
    params = list(model.parameters())
    theta = lt.flat_params(params)

    def f(flat):
        out, i = {}, 0
        for n, p in zip(names, params):
            out[n] = flat[i:i + p.numel()].view_as(p)
            i += p.numel()
        return nn.functional.cross_entropy(functional_call(model, out, (X,)), y)

    return torch.autograd.functional.hessian(f, theta, vectorize=True).numpy()


def test_hvp_and_eigenvalues_match_dense_hessian():
    model = _mlp()
    X, y = _data()
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    H = _dense_hessian(model, X, y)
    w = np.linalg.eigvalsh(H)[::-1]
    params = list(model.parameters())
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(lt.hvp(model, closure, v).numpy(), H @ v.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lt.hvp(None, closure, v, params=params).numpy(), H @ v.numpy(), rtol=1e-10,
                               atol=1e-12)
    with pytest.deprecated_call(match="hvp"):  # the old order (closure, params, v), still accepted
        old_order = lt.hvp(closure, params, v)
    np.testing.assert_allclose(old_order.numpy(), H @ v.numpy(), rtol=1e-10, atol=1e-12)
    for method in ("lanczos", "dense"):
        res = lt.hessian_eigenvalues(model, closure, k=3, method=method, tol=1e-10)
        np.testing.assert_allclose(res.eigenvalues, w[:3], rtol=1e-7)
        # eigenvectors: H u = λ u
        for lam, u in zip(res.eigenvalues, res.eigenvectors.numpy()):
            np.testing.assert_allclose(H @ u, lam * u, atol=1e-6 * abs(w[0]))
    res = lt.hessian_eigenvalues(model, closure, k=1, method="power", tol=1e-12, maxiter=5000)
    lm = w[np.argmax(np.abs(w))]
    assert res.eigenvalues[0] == pytest.approx(lm, rel=1e-5)


def test_hutchinson_trace_within_its_standard_error():
    model = _mlp(seed=2)
    X, y = _data(seed=4)
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    H = _dense_hessian(model, X, y)
    m = 400
    est = lt.hessian_trace(model, closure, n_samples=m, seed=0)
    assert abs(est.trace - np.trace(H)) < 4 * est.stderr  # 4 standard errors, fixed seed
    # the standard error matches the Rademacher variance 2 Σ_{i≠j} H_ij² (to 20 %: m = 400 samples)
    off = H - np.diag(np.diag(H))
    assert est.stderr == pytest.approx(np.sqrt(2 * (off**2).sum() / m), rel=0.2)


def test_epsilon_sharpness_matches_exact_vertex_maximum():
    """Convex quadratic f(x) = ½ xᵀAx + bᵀx: the max over the box C_ε is at a vertex (2⁶ of them)."""
    g = torch.Generator().manual_seed(0)
    M = torch.randn(6, 6, generator=g, dtype=torch.float64)
    A = M @ M.T + torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x = nn.Parameter(torch.randn(6, generator=g, dtype=torch.float64))
    f = lambda: 0.5 * x @ A @ x + b @ x  # noqa: E731
    eps = 0.05
    x0 = x.detach().clone()
    r = eps * (x0.abs() + 1)
    f0 = float(f().detach())
    best = max(float(0.5 * (x0 + s * r) @ A @ (x0 + s * r) + b @ (x0 + s * r))
               for s in (torch.tensor(c, dtype=torch.float64) for c in itertools.product((-1.0, 1.0), repeat=6)))
    exact = 100 * (best - f0) / (1 + f0)
    res = lt.epsilon_sharpness(None, f, epsilon=eps, params=[x], maxiter=50, n_restarts=4)
    assert res.value <= exact * (1 + 1e-9)
    assert res.value >= 0.98 * exact
    assert torch.equal(x.detach(), x0)  # parameters restored


def test_gradient_noise_along_matches_per_sample_gradients():
    model = _mlp(seed=5)
    X, y = _data(n=30, seed=6)
    params = list(model.parameters())
    G = []
    for i in range(len(X)):
        model.zero_grad()
        nn.functional.cross_entropy(model(X[i:i + 1]), y[i:i + 1]).backward()
        G.append(torch.cat([p.grad.reshape(-1) for p in params]).clone())
    G = torch.stack(G).numpy()  # (N, n) per-sample gradients
    V = torch.randn(2, G.shape[1], generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    V = V / V.norm(dim=1, keepdim=True)
    B = 8
    res = lt.gradient_noise_along(model, lambda out, t: nn.functional.cross_entropy(out, t, reduction="none"),
                                  X, y, V, batch_size=B, chunk_size=16)
    d = G @ V.numpy().T  # (N, 2)
    np.testing.assert_allclose(res.mean_grad, d.mean(0), rtol=1e-10)
    np.testing.assert_allclose(res.per_sample_var, d.var(0), rtol=1e-10)
    # brute force: variance of v·g_B over all minibatches is impractical; check the formula by sampling
    rng = np.random.default_rng(0)
    draws = np.array([d[rng.choice(len(X), B, replace=False)].mean(0) for _ in range(20000)])
    np.testing.assert_allclose(res.batch_var, draws.var(0), rtol=0.05)  # 20 000 draws: ±2 % s.e.


def test_loss_profiles_and_restoration():
    model = _mlp(seed=8)
    X, y = _data(seed=9)
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    params = list(model.parameters())
    theta = lt.flat_params(params)
    d = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    prof = lt.loss_along_direction(model, closure, d, [0.0, 0.5, -1.0])
    assert prof[0] == pytest.approx(float(closure()))
    with torch.no_grad():
        for p, q in zip(params, torch.split(theta + 0.5 * d, [p.numel() for p in params])):
            p.copy_(q.view_as(p))
        at_half = float(closure())
        for p, q in zip(params, torch.split(theta, [p.numel() for p in params])):
            p.copy_(q.view_as(p))
    assert prof[1] == pytest.approx(at_half)
    assert torch.equal(lt.flat_params(params), theta)
    ip = lt.interpolation_barrier(model, closure, theta, theta + d, n_points=11)
    assert ip.losses[0] == pytest.approx(prof[0]) and ip.ts[-1] == 1.0
    assert ip.barrier >= 0.0
    assert torch.equal(lt.flat_params(params), theta)


def test_batchnorm_dropout_modes():
    model = _mlp(seed=10, bn=True, dropout=0.3)
    X, y = _data(seed=11)
    model.train()
    model(X)  # give BatchNorm non-trivial running statistics
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    bn = model[1]
    rm = bn.running_mean.clone()
    nbt = bn.num_batches_tracked.clone()
    # default: eval mode (running statistics, no dropout) -> deterministic and equal to the dense Hessian
    res = lt.hessian_eigenvalues(model, closure, k=2, tol=1e-10)
    model.eval()
    H = _dense_hessian(model, X, y)
    model.train()
    np.testing.assert_allclose(res.eigenvalues, np.linalg.eigvalsh(H)[::-1][:2], rtol=1e-7)
    assert model.training and model[3].training  # flags restored
    assert torch.equal(bn.running_mean, rm) and torch.equal(bn.num_batches_tracked, nbt)
    with pytest.raises(ValueError, match="Dropout"):
        lt.hessian_trace(model, closure, train_mode=True)
    # train mode without dropout: batch statistics, buffers restored
    model2 = _mlp(seed=10, bn=True)
    model2.eval()
    rm2 = model2[1].running_mean.clone()
    closure2 = lambda: nn.functional.cross_entropy(model2(X), y)  # noqa: E731
    t = lt.hessian_trace(model2, closure2, n_samples=4, train_mode=True)
    assert np.isfinite(t.trace)
    assert not model2.training and torch.equal(model2[1].running_mean, rm2)


def test_bad_inputs():
    model = _mlp()
    X, y = _data()
    closure = lambda: nn.functional.cross_entropy(model(X), y)  # noqa: E731
    with pytest.raises(ValueError, match="k"):
        lt.hessian_eigenvalues(model, closure, k=0)
    with pytest.raises(ValueError, match="method"):
        lt.hessian_eigenvalues(model, closure, method="qr")
    with pytest.raises(ValueError, match="n_samples"):
        lt.hessian_trace(model, closure, n_samples=1)
    with pytest.raises(ValueError, match="epsilon"):
        lt.epsilon_sharpness(model, closure, epsilon=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        lt.gradient_noise_along(model, lambda o, t: o.sum(1), X, y, torch.zeros(83), batch_size=0)
