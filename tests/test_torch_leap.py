"""LEAP plug-in semantics: exact updates, rescaling, schedulers, checkpoints, GradScaler, bad input."""
import copy
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
from scipy import stats  # noqa: E402

import leap_sde.torch as lt  # noqa: E402
from leap_sde.torch import LEAP, counter_normal, stream_key  # noqa: E402

DEV = torch.device("cpu")  # gpu_check.py reruns this file with LEAP_TEST_DEVICE=cuda
if "LEAP_TEST_DEVICE" in __import__("os").environ:
    DEV = torch.device(__import__("os").environ["LEAP_TEST_DEVICE"])


def _params(shapes=((3, 4), (5,), (2, 2, 2)), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype).to(DEV)) for s in shapes]


def _set_grads(params, seed):
    g = torch.Generator().manual_seed(1000 + seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype).to(DEV)


def _torch_noise(gen, params):
    """The draws the torch-generator path makes: one normal_ per bucket of ≤ 2**22 elements (here all
    parameters of the test fit in one bucket), split in param order."""
    n = sum(p.numel() for p in params)
    assert n <= 2**22
    z = torch.empty(n, dtype=params[0].dtype, device=params[0].device).normal_(generator=gen)
    return [q.view_as(p) for q, p in zip(z.split([p.numel() for p in params]), params)]


def _gen(seed):
    return torch.Generator(device=DEV).manual_seed(seed)


# ---------------------------------------------------------------------------------------------------
# exact SGD update, pathwise (noise injected into .grad, same generator)
@pytest.mark.parametrize("relative", [False, True])
def test_sgd_exact_update_with_user_generator(relative):
    params = _params()
    eta, sigma = 0.1, (0.05 if not relative else 0.5)
    opt = LEAP(torch.optim.SGD(params, lr=eta), sigma=sigma, relative=relative, generator=_gen(7))
    ref_gen = _gen(7)
    for k in range(4):
        _set_grads(params, k)  # the "gradient + injected white noise" of this step
        old = [p.detach().clone() for p in params]
        grads = [p.grad.clone() for p in params]
        opt.step()
        zs = _torch_noise(ref_gen, params)
        for p, o, g, z in zip(params, old, grads, zs):
            eps = sigma * eta * z if relative else sigma * z
            torch.testing.assert_close(p.detach(), o - (eta + eps) * g, rtol=1e-12, atol=1e-12)


def test_sgd_exact_update_counter_stream():
    params = _params()
    if DEV.type != "cpu":
        pytest.skip("the counter-based stream is the CPU path")
    eta, sigma, seed = 0.05, 0.02, 123
    opt = LEAP(torch.optim.SGD(params, lr=eta), sigma=sigma, seed=seed)
    for k in range(3):
        _set_grads(params, k)
        old = [p.detach().clone() for p in params]
        grads = [p.grad.clone() for p in params]
        opt.step()
        for slot, (p, o, g) in enumerate(zip(params, old, grads)):
            z = torch.from_numpy(counter_normal(stream_key(seed, k, slot), p.numel())).view(p.shape)
            torch.testing.assert_close(p.detach(), o - (eta + sigma * z) * g, rtol=1e-12, atol=1e-12)


def test_float32_and_bfloat16_paths_match_formula():
    if DEV.type != "cpu":
        pytest.skip("CPU counter paths")
    for dtype, tol in [(torch.float32, 1e-6), (torch.bfloat16, 2e-2)]:
        p = torch.nn.Parameter(torch.randn(64, 33, generator=torch.Generator().manual_seed(0)).to(dtype))
        q = torch.nn.Parameter(p.detach().clone().t().contiguous().t())  # non-contiguous layout
        assert not q.is_contiguous()
        for par in (p, q):
            par.grad = torch.ones_like(par)
            old = par.detach().float().clone()
            LEAP(torch.optim.SGD([par], lr=0.1), sigma=0.03, seed=5).step()
            z = torch.from_numpy(counter_normal(stream_key(5, 0, 0), par.numel())).float().view(64, 33)
            torch.testing.assert_close(par.detach().float(), old - (0.1 + 0.03 * z), rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["per-tensor", "scalar"])
def test_shared_modes_exact(mode):
    if DEV.type != "cpu":
        pytest.skip("counter stream of the shared draws")
    params = _params()
    eta, sigma, seed = 0.1, 0.04, 9
    opt = LEAP(torch.optim.SGD(params, lr=eta), sigma=sigma, mode=mode, seed=seed)
    for k in range(2):
        _set_grads(params, k)
        old = [p.detach().clone() for p in params]
        grads = [p.grad.clone() for p in params]
        opt.step()
        zs = counter_normal(stream_key(seed, k, (1 << 64) - 1), 1 if mode == "scalar" else len(params))
        for j, (p, o, g) in enumerate(zip(params, old, grads)):
            z = zs[0] if mode == "scalar" else zs[j]
            torch.testing.assert_close(p.detach(), o - (eta + sigma * z) * g, rtol=1e-12, atol=1e-12)


def test_per_coordinate_lr_moments():
    """Effective per-element learning rates η + ε have mean η and std σ (N = 200 000 elements)."""
    n, eta, sigma = 200_000, 0.1, 0.03
    p = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64, device=DEV))
    p.grad = torch.ones_like(p)
    LEAP(torch.optim.SGD([p], lr=eta), sigma=sigma, seed=3).step()
    lr_eff = -p.detach().cpu().numpy()
    se_mean = sigma / np.sqrt(n)  # 6.7e-5
    assert abs(lr_eff.mean() - eta) < 4 * se_mean
    se_std = sigma / np.sqrt(2 * n)  # std of the sample std
    assert abs(lr_eff.std() - sigma) < 4 * se_std


# ---------------------------------------------------------------------------------------------------
# rescaling for optimizers whose step is proportional to lr
@pytest.mark.parametrize("make", [
    lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda ps, lr: torch.optim.Adam(ps, lr=lr),
    lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.1),
])
def test_scalar_mode_equals_inner_step_with_perturbed_lr(make):
    """scalar mode: LEAP(opt) step == opt's own step with lr = η + σ z (same state before)."""
    eta, sigma = 0.01, 0.004
    params = _params()
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = LEAP(make(params, eta), sigma=sigma, mode="scalar", generator=_gen(11))
    ref = make(twin, eta)
    ref_gen = _gen(11)
    for k in range(4):
        _set_grads(params, k)
        _set_grads(twin, k)
        opt.step()
        z = float(torch.randn(1, generator=ref_gen, device=DEV, dtype=torch.float64))
        ref.param_groups[0]["lr"] = eta + sigma * z
        ref.step()
        ref.param_groups[0]["lr"] = eta
        for p, q in zip(params, twin):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-10, atol=1e-12)


def test_adam_per_coordinate_rescaling():
    """per-coordinate: θ = θ_old + (1 + σ z/η) ⊙ (θ_new − θ_old), θ_new from an unperturbed Adam twin."""
    eta, sigma = 0.01, 0.003
    params = _params()
    opt = LEAP(torch.optim.Adam(params, lr=eta), sigma=sigma, generator=_gen(4))
    ref_gen = _gen(4)
    for k in range(3):
        _set_grads(params, k)
        twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
        twin_opt = torch.optim.Adam(twin, lr=eta)
        twin_opt.load_state_dict(copy.deepcopy(opt.optimizer.state_dict()))  # own tensors
        for p, q in zip(params, twin):
            q.grad = p.grad.clone()
        old = [p.detach().clone() for p in params]
        opt.step()
        twin_opt.step()
        zs = _torch_noise(ref_gen, params)
        for p, o, q, z in zip(params, old, twin, zs):
            torch.testing.assert_close(p.detach(), o + (1 + sigma * z / eta) * (q.detach() - o), rtol=1e-10, atol=1e-13)
        # the moments are those of plain Adam (the perturbation does not enter the state)
        for p, q in zip(params, twin):
            torch.testing.assert_close(opt.state[p]["exp_avg"], twin_opt.state[q]["exp_avg"])


# ---------------------------------------------------------------------------------------------------
# schedulers, groups, API surface
def test_scheduler_composition_reads_current_lr():
    params = _params()
    eta0, sigma = 0.2, 0.01
    opt = LEAP(torch.optim.SGD(params, lr=eta0), sigma=sigma, generator=_gen(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.01)
        plain = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=eta0)
        plain_sched = torch.optim.lr_scheduler.CosineAnnealingLR(plain, T_max=5, eta_min=0.01)
        ref_gen = _gen(2)
        for k in range(6):
            eta = opt.param_groups[0]["lr"]
            assert eta == pytest.approx(plain.param_groups[0]["lr"], rel=1e-15)
            _set_grads(params, k)
            old = [p.detach().clone() for p in params]
            grads = [p.grad.clone() for p in params]
            opt.step()
            sched.step()
            plain.step()
            plain_sched.step()
            for p, o, g, z in zip(params, old, grads, _torch_noise(ref_gen, params)):
                torch.testing.assert_close(p.detach(), o - (eta + sigma * z) * g, rtol=1e-12, atol=1e-12)
    # other schedulers accept it too
    for make in (lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5),
                 lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3),
                 lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=10),
                 lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o)):
        o = LEAP(torch.optim.SGD(_params(), lr=0.1, momentum=0.9), sigma=0.01, seed=0)
        make(o)


def test_param_groups_shared_per_group_sigma_and_add_param_group():
    a, b, c = _params(((3,), (4,), (2,)))
    inner = torch.optim.SGD([{"params": [a], "leap_sigma": 0.0}, {"params": [b]}], lr=0.1)
    opt = LEAP(inner, sigma=0.05, seed=0)
    assert opt.param_groups is inner.param_groups and opt.state is inner.state
    assert opt.param_groups[0]["leap_sigma"] == 0.0 and opt.param_groups[1]["leap_sigma"] == 0.05
    opt.add_param_group({"params": [c], "lr": 0.2, "leap_sigma": 0.01, "leap_relative": True})
    assert len(inner.param_groups) == 3 and inner.param_groups[2]["leap_relative"] is True
    _set_grads([a, b, c], 0)
    a0, ga = a.detach().clone(), a.grad.clone()
    opt.step()
    torch.testing.assert_close(a.detach(), a0 - 0.1 * ga, rtol=0, atol=0)  # σ = 0 group: plain SGD
    opt.zero_grad()
    assert a.grad is None
    with pytest.raises(ValueError, match="sigma"):
        LEAP(torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1), sigma=[0.1])
    opt2 = LEAP(torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1), sigma=[0.0, 0.2])
    assert [g["leap_sigma"] for g in opt2.param_groups] == [0.0, 0.2]


def test_params_without_grad_untouched():
    a, b = _params(((3,), (4,)))
    frozen = torch.nn.Parameter(torch.ones(2, dtype=torch.float64, device=DEV), requires_grad=False)
    opt = LEAP(torch.optim.SGD([a, b, frozen], lr=0.1, momentum=0.9), sigma=0.05, seed=1)
    a.grad = torch.ones_like(a)
    b0 = b.detach().clone()
    opt.step()
    assert torch.equal(b.detach(), b0) and torch.equal(frozen.detach(), torch.ones(2, dtype=torch.float64, device=DEV))
    assert b not in opt._snap


# ---------------------------------------------------------------------------------------------------
# checkpoints
def _train(opt, params, steps, start):
    for k in range(start, start + steps):
        _set_grads(params, k)
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("use_gen", [False, True])
@pytest.mark.parametrize("mode", ["per-coordinate", "scalar"])
def test_state_dict_round_trip_continues_sequence(use_gen, mode):
    def make():
        params = _params()
        kw = {"generator": _gen(21)} if use_gen else {"seed": 21}
        return params, LEAP(torch.optim.SGD(params, lr=0.05, momentum=0.9), sigma=0.02, mode=mode, **kw)

    params, opt = make()
    _train(opt, params, 3, 0)
    buf = io.BytesIO()
    torch.save({"model": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buf)
    straight = _train(opt, params, 4, 3)

    params2, opt2 = make()
    buf.seek(0)
    ck = torch.load(buf)  # weights_only=True default: the LEAP entry is plain data + tensors
    with torch.no_grad():
        for p, q in zip(params2, ck["model"]):
            p.copy_(q)
    opt2.load_state_dict(ck["opt"])
    assert opt2.leap_step == 3
    resumed = _train(opt2, params2, 4, 3)
    for x, y in zip(straight, resumed):
        assert torch.equal(x, y)


# ---------------------------------------------------------------------------------------------------
# GradScaler: a skipped step draws and applies no perturbation
def test_grad_scaler_skipped_step_is_not_perturbed():
    if DEV.type != "cpu":
        pytest.skip("CPU GradScaler")
    lin = torch.nn.Linear(3, 1)
    lin2 = copy.deepcopy(lin)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))

    def run(model, inject_inf):
        opt = LEAP(torch.optim.SGD(model.parameters(), lr=0.1), sigma=0.05, seed=2)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
        for k in range(3):
            opt.zero_grad()
            scaler.scale(model(x).pow(2).mean()).backward()
            if inject_inf and k == 1:
                before = [p.detach().clone() for p in model.parameters()]
                model.weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
            if inject_inf and k == 1:
                assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))
                assert opt.leap_step == 1  # no step was taken, no noise consumed
        return opt, [p.detach().clone() for p in model.parameters()]

    opt_a, pa = run(lin, inject_inf=True)
    assert opt_a.leap_step == 2
    # same as a run of two finite steps (the second at the halved scale — the grads are unscaled)
    opt_b = LEAP(torch.optim.SGD(lin2.parameters(), lr=0.1), sigma=0.05, seed=2)
    for _ in range(2):
        opt_b.zero_grad()
        lin2(x).pow(2).mean().backward()
        opt_b.step()
    for p, q in zip(pa, lin2.parameters()):
        torch.testing.assert_close(p, q.detach(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------------
# bad input
def test_bad_inputs():
    p = torch.nn.Parameter(torch.zeros(3, device=DEV))
    sgd = lambda lr=0.1: torch.optim.SGD([p], lr=lr)  # noqa: E731
    with pytest.raises(ValueError, match="sigma"):
        LEAP(sgd(), sigma=-0.1)
    with pytest.raises(ValueError, match="sigma"):
        LEAP(sgd(), sigma=float("nan"))
    with pytest.raises(TypeError, match="sigma"):
        LEAP(sgd(), sigma="0.1")
    with pytest.raises(ValueError, match="lr = 0"):
        LEAP(sgd(0.0), sigma=0.1, relative=True)
    with pytest.raises(TypeError, match="optimizer"):
        LEAP(torch.nn.Linear(2, 2), sigma=0.1)
    with pytest.raises(TypeError, match="instance"):
        LEAP(torch.optim.SGD, sigma=0.1)
    with pytest.raises(TypeError, match="already"):
        LEAP(LEAP(sgd(), sigma=0.1), sigma=0.1)
    with pytest.raises(ValueError, match="mode"):
        LEAP(sgd(), sigma=0.1, mode="per-element")
    with pytest.raises(ValueError, match="seed or generator"):
        LEAP(sgd(), sigma=0.1, seed=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="seed"):
        LEAP(sgd(), sigma=0.1, seed=1.5)
    opt = LEAP(sgd(), sigma=0.1)
    opt.param_groups[0]["leap_sigma"] = -1.0
    p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match="leap_sigma"):
        opt.step()
    # a schedule reaching lr = 0 with absolute sigma: warned, step not perturbed
    opt = LEAP(sgd(), sigma=0.1, seed=0)
    opt.param_groups[0]["lr"] = 0.0
    with pytest.warns(RuntimeWarning, match="lr = 0"):
        opt.step()


# ---------------------------------------------------------------------------------------------------
# the counter-based stream
def test_counter_stream_is_standard_normal():
    n = 400_000
    z = counter_normal(stream_key(2024, 0, 0), n)
    assert stats.kstest(z, "norm").pvalue > 1e-3  # fixed seed; KS on 4e5 draws
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    p3 = 2 * stats.norm.sf(3.0)
    assert abs((np.abs(z) > 3).mean() - p3) < 4 * np.sqrt(p3 * (1 - p3) / n)
    # streams of different keys are uncorrelated
    z2 = counter_normal(stream_key(2024, 1, 0), n)
    assert abs(np.corrcoef(z, z2)[0, 1]) < 4 / np.sqrt(n)
    # float32 output = float64 output rounded
    assert np.array_equal(counter_normal(stream_key(1, 2, 3), 1000, dtype=np.float32),
                          counter_normal(stream_key(1, 2, 3), 1000).astype(np.float32))


def test_counter_stream_independent_of_thread_count():
    before = torch.get_num_threads()
    out = {}
    try:
        for t in (1, 2, 3):  # the CPU path splits tensors over torch.get_num_threads() threads
            torch.set_num_threads(t)
            out[t] = counter_normal(stream_key(5, 6, 7), 200_001)  # ≥ 2**16: the threaded path
            p = torch.linspace(-1, 1, 200_001, dtype=torch.float64)
            p.grad = torch.ones_like(p)
            p = torch.nn.Parameter(p.detach())
            p.grad = torch.ones_like(p)
            LEAP(torch.optim.SGD([p], lr=0.1), sigma=0.05, seed=1).step()
            out[(t, "p")] = p.detach().clone()
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(out[1], out[2]) and np.array_equal(out[1], out[3])
    assert torch.equal(out[(1, "p")], out[(2, "p")]) and torch.equal(out[(1, "p")], out[(3, "p")])
    # small requests run in one call: same numbers
    assert np.array_equal(counter_normal(stream_key(5, 6, 7), 1000), out[1][:1000])


def test_core_package_imports_without_torch():
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('torch blocked for this test')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import leap_sde\n"
            "try:\n    import leap_sde.torch\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install leap_sde[torch]" in out.stdout


def test_device_generators_derive_from_seed_and_round_trip():
    """Non-CPU devices get one torch.Generator each, seeded from (seed, device); saved in state_dict.

    (Exercised through the private accessor on the CPU, the only device here; gpu_check.py runs the
    real CUDA path.)"""
    p = torch.nn.Parameter(torch.zeros(3))
    a = LEAP(torch.optim.SGD([p], lr=0.1), sigma=0.1, seed=5)
    b = LEAP(torch.optim.SGD([p], lr=0.1), sigma=0.1, seed=5)
    c = LEAP(torch.optim.SGD([p], lr=0.1), sigma=0.1, seed=6)
    ga, gb, gc = (o._generator(torch.device("cpu")) for o in (a, b, c))
    assert ga.initial_seed() == gb.initial_seed() != gc.initial_seed()
    torch.randn(10, generator=ga)
    sd = a.state_dict()
    want = torch.randn(5, generator=ga)
    a2 = LEAP(torch.optim.SGD([p], lr=0.1), sigma=0.1, seed=99)
    a2.load_state_dict(sd)
    assert a2.seed == 5
    assert torch.equal(torch.randn(5, generator=a2._generator(torch.device("cpu"))), want)


def test_deepcopy_keeps_sequence():
    params = _params()
    opt = LEAP(torch.optim.SGD(params, lr=0.05, momentum=0.9), sigma=0.02, seed=4)
    _train(opt, params, 2, 0)
    twin = copy.deepcopy(opt)  # its own copies of the parameters, state and sequence position
    twin_params = [p for g in twin.param_groups for p in g["params"]]
    a = _train(opt, params, 2, 2)
    b = _train(twin, twin_params, 2, 2)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_torch_generator_path_bucket_layout():
    """Pieces of ≤ 2**22 elements packed into buckets, one normal_ per bucket; non-contiguous tensors
    draw on their own (the documented draw layout of the GPU path, run here with a CPU generator)."""
    g = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5_000_000, generator=g).to(DEV))  # pieces 4194304 + 805696
    b = torch.nn.Parameter(torch.randn(100, generator=g).to(DEV))  # joins a's second piece
    c = torch.nn.Parameter(torch.randn(6, 4, generator=g).t().to(DEV))  # non-contiguous
    assert not c.is_contiguous()
    params = [a, b, c]
    for p in params:
        p.grad = torch.ones_like(p)
    old = [p.detach().clone() for p in params]
    eta, sigma = 0.1, 0.02
    LEAP(torch.optim.SGD(params, lr=eta), sigma=sigma, generator=_gen(5)).step()
    ref = _gen(5)
    z1 = torch.empty(4194304, device=DEV).normal_(generator=ref)
    z2 = torch.empty(805696 + 100, device=DEV).normal_(generator=ref)
    z3 = torch.empty(4, 6, device=DEV).normal_(generator=ref)
    za = torch.cat([z1, z2[:805696]])
    for p, o, z in ((a, old[0], za), (b, old[1], z2[805696:]), (c, old[2], z3)):
        torch.testing.assert_close(p.detach(), o - (eta + sigma * z), rtol=2e-6, atol=2e-6)
