"""Cost of the LEAP plug-in: time per optimizer step with and without LEAP on a ~10 M-parameter MLP.

Two timings per configuration, interleaved over repetitions (robust to a shared, noisy machine) and
summarised by the median:

- ``step``: ``opt.step()`` alone, gradients already in place (the worst case for LEAP's relative cost:
  plain SGD touches each parameter ~3 times, LEAP adds a snapshot and a fused rescaling pass);
- ``iter``: a full training iteration (zero_grad, forward, backward, step) on a batch of ``--batch``
  inputs — the cost a user sees.  The targets (≤ 30 % on CPU, ≤ 15 % on CUDA) refer to this one.

Memory: tensor bytes held by parameters, gradients, optimizer state and LEAP's buffers (snapshot +
scratch), and on CUDA the peak allocated memory of each configuration.

    python simulations/bench_torch.py                 # CPU
    python simulations/bench_torch.py --device cuda   # GPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import leap_sde.torch as lt

RESULTS = Path(__file__).resolve().parent / "results" / "real_training"


def build(width: int, depth: int, device, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers, d = [], 784
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers).to(device)


def tensor_bytes(model, opt) -> dict:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    inner = opt.optimizer if isinstance(opt, lt.LEAP) else opt
    state = sum(v.numel() * v.element_size() for s in inner.state.values() for v in s.values()
                if isinstance(v, torch.Tensor))
    leap = 0
    if isinstance(opt, lt.LEAP):
        leap = sum(b.numel() * b.element_size() for b in opt._snap.values())
        leap += sum(b.numel() * b.element_size() for b in opt._scratch.values())
    return {"params_MB": params / 2**20, "grads_MB": grads / 2**20, "opt_state_MB": state / 2**20,
            "leap_buffers_MB": leap / 2**20}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=None, help="torch/numba CPU threads (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default: results/real_training/)")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
        import numba
        numba.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 784, generator=g).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=g).to(device)

    configs = []
    for opt_name in ("sgd", "adam"):
        for leap in (None, "per-coordinate", "scalar"):
            model = build(args.width, args.depth, device)
            inner = (torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if opt_name == "sgd"
                     else torch.optim.Adam(model.parameters(), lr=1e-3))
            opt = inner if leap is None else lt.LEAP(inner, sigma=args.sigma, mode=leap, seed=0)
            configs.append({"optimizer": opt_name, "leap": leap or "none", "model": model, "opt": opt})
    n_params = sum(p.numel() for p in configs[0]["model"].parameters())

    def iteration(c):
        c["opt"].zero_grad(set_to_none=False)
        nn.functional.cross_entropy(c["model"](x), y).backward()
        c["opt"].step()

    for c in configs:  # warm-up (allocations, Numba kernels, state creation)
        for _ in range(args.warmup):
            iteration(c)
        c["t_step"], c["t_iter"] = [], []
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            iteration(c)
            sync(device)
            c["peak_MB"] = torch.cuda.max_memory_allocated() / 2**20
    for _ in range(args.reps):
        for c in configs:
            sync(device)
            t0 = time.perf_counter()
            c["opt"].step()
            sync(device)
            c["t_step"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            iteration(c)
            sync(device)
            c["t_iter"].append(time.perf_counter() - t0)

    rows = []
    base = {}
    for c in configs:
        step_ms = 1e3 * statistics.median(c["t_step"])
        iter_ms = 1e3 * statistics.median(c["t_iter"])
        if c["leap"] == "none":
            base[c["optimizer"]] = (step_ms, iter_ms)
        b = base[c["optimizer"]]
        row = {"optimizer": c["optimizer"], "leap": c["leap"], "step_ms": step_ms, "iter_ms": iter_ms,
               "step_ratio": step_ms / b[0], "iter_ratio": iter_ms / b[1],
               "iter_ms_q25": 1e3 * statistics.quantiles(c["t_iter"], n=4)[0],
               "iter_ms_q75": 1e3 * statistics.quantiles(c["t_iter"], n=4)[2]}
        row.update(tensor_bytes(c["model"], c["opt"]))
        if "peak_MB" in c:
            row["cuda_peak_MB"] = c["peak_MB"]
        rows.append(row)

    threads = torch.get_num_threads()
    print(f"device={device}  params={n_params / 1e6:.2f} M  batch={args.batch}  reps={args.reps}  "
          f"torch threads={threads}  torch {torch.__version__}")
    hdr = (f"{'optimizer':9s} {'LEAP':15s} {'step ms':>8s} {'×plain':>7s} {'iter ms':>8s} {'×plain':>7s} "
           f"{'LEAP buf MB':>11s} {'params MB':>9s}" + ("  cuda peak MB" if device.type == "cuda" else ""))
    print(hdr)
    for r in rows:
        line = (f"{r['optimizer']:9s} {r['leap']:15s} {r['step_ms']:8.2f} {r['step_ratio']:7.2f} {r['iter_ms']:8.1f} "
                f"{r['iter_ratio']:7.2f} {r['leap_buffers_MB']:11.1f} {r['params_MB']:9.1f}")
        if "cuda_peak_MB" in r:
            line += f"  {r['cuda_peak_MB']:12.1f}"
        print(line)
    target = 1.15 if device.type == "cuda" else 1.30
    worst = max(r["iter_ratio"] for r in rows)
    print(f"worst full-iteration ratio {worst:.2f} (target ≤ {target:.2f}: {'met' if worst <= target else 'NOT met'})")
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB")

    out = args.out or RESULTS / f"bench_torch_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(device), "n_params": n_params, "batch": args.batch, "reps": args.reps,
            "torch_threads": threads, "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
            "cuda_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return rows


if __name__ == "__main__":
    main()
