"""GPU check of the torch bridge (< 5 min on one CUDA device).

1. the plug-in's correctness tests (``tests/test_torch_leap.py``) with every tensor on the device
   (``LEAP_TEST_DEVICE=cuda``; the tests of the CPU counter stream and the CPU GradScaler skip
   themselves), plus device-only checks: per-element learning-rate moments drawn on the GPU, a CUDA
   ``GradScaler`` skipping an inf step without drawing noise, a checkpoint round trip of the CUDA
   generator state, and the Hessian tools on the device against the CPU;
2. ``bench_torch.py --device cuda`` (time per step with/without LEAP, ratio, peak memory), written to
   ``simulations/results/bench_torch_cuda.txt``;
3. one short real-training run (``real_training.py --quick --device cuda``).

    python simulations/gpu_check.py            # exit code 0 when every check passed
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "simulations"))


def section(title):
    print(f"\n=== {title} ===", flush=True)


def device_checks(dev) -> list[str]:
    import leap_sde.torch as lt

    failures = []

    def check(name, ok, detail=""):
        print(f"  [{'ok' if ok else 'FAIL'}] {name} {detail}", flush=True)
        if not ok:
            failures.append(name)

    # per-element learning rates η + ε drawn on the device
    n, eta, sigma = 1_000_000, 0.1, 0.03
    p = torch.nn.Parameter(torch.zeros(n, device=dev, dtype=torch.float64))
    p.grad = torch.ones_like(p)
    lt.LEAP(torch.optim.SGD([p], lr=eta), sigma=sigma, seed=0).step()
    lr = -p.detach().cpu().numpy()
    check("lr moments on device", abs(lr.mean() - eta) < 4 * sigma / np.sqrt(n)
          and abs(lr.std() - sigma) < 4 * sigma / np.sqrt(2 * n), f"mean {lr.mean():.5f} std {lr.std():.5f}")

    def rng_state(o):  # the device generator's state (CPU tensors use the counter stream: none)
        g = o._generators.get(str(lin.weight.device))  # "cuda:0", not "cuda"
        return None if g is None else g.get_state().clone()

    # GradScaler on CUDA with fp16 autocast: an inf step is skipped, no noise consumed
    lin = torch.nn.Linear(16, 4).to(dev)
    opt = lt.LEAP(torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9), sigma=0.01, seed=1)
    scaler = torch.amp.GradScaler(dev.type)
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    x = torch.randn(8, 16, device=dev)
    gen_state = None
    for k in range(3):
        opt.zero_grad()
        with torch.autocast(dev.type, dtype=amp_dtype):
            loss = lin(x).float().pow(2).mean()
        scaler.scale(loss).backward()
        if k == 1:
            before = [q.detach().clone() for q in lin.parameters()]
            gen_state = rng_state(opt)
            lin.weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
        if k == 1:
            same = all(torch.equal(q.detach(), b) for q, b in zip(lin.parameters(), before))
            same_rng = gen_state is None or torch.equal(rng_state(opt), gen_state)
            check("GradScaler skip: no step, no draw", same and same_rng and opt.leap_step == 1)

    # checkpoint round trip continues the CUDA random sequence
    def make():
        torch.manual_seed(0)
        m = torch.nn.Linear(32, 8).to(dev)
        return m, lt.LEAP(torch.optim.Adam(m.parameters(), lr=1e-3), sigma=0.5, relative=True, seed=3)

    def train(m, o, k0, k1):
        for k in range(k0, k1):
            g = torch.Generator().manual_seed(k)
            o.zero_grad()
            m(torch.randn(4, 32, generator=g).to(dev)).pow(2).mean().backward()
            o.step()
        return torch.cat([q.detach().reshape(-1) for q in m.parameters()])

    m1, o1 = make()
    train(m1, o1, 0, 3)
    buf = io.BytesIO()
    torch.save({"m": m1.state_dict(), "o": o1.state_dict()}, buf)
    a = train(m1, o1, 3, 6)
    m2, o2 = make()
    buf.seek(0)
    ck = torch.load(buf)
    m2.load_state_dict(ck["m"])
    o2.load_state_dict(ck["o"])
    b = train(m2, o2, 3, 6)
    check("state_dict round trip (CUDA generator)", torch.equal(a, b))

    # Hessian tools on the device agree with the CPU
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    X = torch.randn(40, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    cpu = lt.hessian_eigenvalues(net, lambda: torch.nn.functional.cross_entropy(net(X), y), k=2, tol=1e-10)
    net_d, X_d, y_d = net.to(dev), X.to(dev), y.to(dev)
    gpu = lt.hessian_eigenvalues(net_d, lambda: torch.nn.functional.cross_entropy(net_d(X_d), y_d), k=2, tol=1e-10)
    check("Hessian eigenvalues device vs CPU", np.allclose(cpu.eigenvalues, gpu.eigenvalues, rtol=1e-8),
          f"{gpu.eigenvalues} vs {cpu.eigenvalues}")
    # the variants on the device: clipped rates are max(η + σz, 0) (no rate below 0)
    p = torch.nn.Parameter(torch.zeros(n, device=dev, dtype=torch.float64))
    p.grad = torch.ones_like(p)
    lt.LEAP(torch.optim.SGD([p], lr=eta), sigma=3 * eta, variant="clipped", seed=0).step()
    lr = -p.detach().cpu().numpy()
    check("clipped variant on device", lr.min() == 0.0 and (lr == 0).mean() > 0.1, f"P(rate=0) {(lr == 0).mean():.3f}")

    # a compiled train step calling opt.step() equals eager
    def run(compiled):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).to(dev)
        o = lt.LEAP(torch.optim.Adam(m.parameters(), lr=1e-2), sigma=0.3, relative=True, seed=3)
        xx = torch.randn(32, 8, generator=torch.Generator().manual_seed(0)).to(dev)

        def stp():
            o.zero_grad()
            m(xx).pow(2).mean().backward()
            o.step()

        f = torch.compile(stp) if compiled else stp
        for _ in range(5):
            f()
        return torch.cat([q.detach().reshape(-1) for q in m.parameters()])

    try:
        d = (run(True) - run(False)).abs().max().item()
        check("torch.compile train step = eager", d <= 1e-5, f"max |diff| {d:.2e}")
    except Exception as exc:  # report, keep going
        check("torch.compile train step = eager", False, f"{type(exc).__name__}: {exc}")
    return failures


def main() -> int:
    t0 = time.time()
    if "--dry-run-cpu" in sys.argv:  # exercise the device checks on the CPU (development aid)
        failures = device_checks(torch.device("cpu"))
        print("dry run:", "passed" if not failures else failures)
        return 0 if not failures else 1
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to check (run this on a GPU machine)")
        return 2
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    failures = []

    section("1. plug-in tests on the device")
    env = dict(os.environ, LEAP_TEST_DEVICE="cuda")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_torch_leap.py")], env=env, cwd=ROOT, timeout=240)
    if r.returncode != 0:
        failures.append("tests/test_torch_leap.py on cuda")
    failures += device_checks(dev)
    print(f"  ({time.time() - t0:.0f} s so far)")

    section("2. benchmark")
    import bench_torch

    # the table goes to simulations/results/bench_torch_cuda.txt (+ .json): commit it after a run
    rows = bench_torch.main(["--device", "cuda", "--reps", "40"])
    worst = max(r["iter_wall_ratio"][0] for r in rows if r["leap"] == "per-coordinate")
    if worst > 1.10:
        print(f"  note: per-coordinate full-iteration ratio {worst:.2f} above the 1.10 target")
    print(f"  ({time.time() - t0:.0f} s so far)")

    section("3. short real-training run")
    import real_training

    with tempfile.TemporaryDirectory() as tmp:
        try:
            real_training.main(["--quick", "--device", "cuda", "--out", tmp])
        except Exception as exc:  # report, keep going
            print(f"  FAIL: {type(exc).__name__}: {exc}")
            failures.append("real_training --quick on cuda")

    total = time.time() - t0
    print(f"\n{'ALL CHECKS PASSED' if not failures else 'FAILED: ' + ', '.join(failures)} in {total:.0f} s")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
