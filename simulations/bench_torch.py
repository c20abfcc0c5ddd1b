"""Cost of the LEAP plug-in: time per optimizer step and per training iteration, with and without LEAP,
on a ~10 M-parameter MLP, next to the floor of one fresh normal per parameter.

Every repetition runs every configuration once, in turn (interleaved: robust to a shared, noisy
machine), and the ratios are formed *within* a repetition (LEAP's time / the plain optimizer's time in
the same repetition), then summarised by the median and the quartiles over repetitions.  Two clocks:
wall time, and the process's CPU time (all threads; less sensitive to other users' load, but it counts
spinning threads).

- ``step``: ``opt.step()`` alone, gradients already in place (the worst case for LEAP's relative cost:
  plain SGD touches each parameter ~3 times, LEAP adds a snapshot and a fused rescaling pass);
- ``iter``: a full training iteration (zero_grad, forward, backward, step) on a batch of ``--batch``
  inputs — the cost a user sees.  The targets (≤ 1.30 on CPU, ≤ 1.10 on CUDA) refer to this one.
- ``floor``: one fresh standard normal per parameter, the least any per-coordinate LEAP must add:
  torch's generator (``normal_`` on a float32 tensor of n_params elements, on the device) and, on CPU,
  the counter-based stream LEAP uses (``counter_normal``, threaded).  Reported as the ratio
  ``(plain iteration + floor) / plain iteration`` of the same repetition.

Memory: tensor bytes held by parameters, gradients, optimizer state and LEAP's buffers (snapshot +
scratch), and on CUDA the peak allocated memory of each configuration.

    python simulations/bench_torch.py                 # CPU: writes results/bench_torch_cpu.txt (+ .json)
    python simulations/bench_torch.py --device cuda   # GPU
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import leap_sde.torch as lt
from leap_sde._counter_rng import counter_normal

RESULTS = Path(__file__).resolve().parent / "results"


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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _summary(xs) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return statistics.median(xs), q[0], q[2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="table output (default: results/bench_torch_DEV.txt)")
    ap.add_argument("--note", default="", help="one line added to the table's header (e.g. the code version)")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
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

    z_dev = torch.empty(n_params, dtype=torch.float32, device=device)
    z_np = np.empty(n_params, dtype=np.float32)
    floors = {"torch normal_": lambda: z_dev.normal_()}
    if device.type == "cpu":
        floors["counter stream"] = lambda: counter_normal(12345, n_params, out=z_np)
    for f in floors.values():
        f()
    floor_t = {k: {"wall": [], "cpu": []} for k in floors}

    for c in configs:  # warm-up (allocations, Numba kernels, state creation)
        for _ in range(args.warmup):
            iteration(c)
        c["t"] = {k: [] for k in ("step_wall", "step_cpu", "iter_wall", "iter_cpu")}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            iteration(c)
            sync(device)
            c["peak_MB"] = torch.cuda.max_memory_allocated() / 2**20

    def timed(fn):
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        return time.perf_counter() - w0, time.process_time() - c0

    load0 = os.getloadavg()[0]
    for _ in range(args.reps):
        for c in configs:
            w, cp = timed(c["opt"].step)
            c["t"]["step_wall"].append(w)
            c["t"]["step_cpu"].append(cp)
            w, cp = timed(lambda: iteration(c))
            c["t"]["iter_wall"].append(w)
            c["t"]["iter_cpu"].append(cp)
        for k, f in floors.items():
            w, cp = timed(f)
            floor_t[k]["wall"].append(w)
            floor_t[k]["cpu"].append(cp)
    load1 = os.getloadavg()[0]

    rows = []
    base = {c["optimizer"]: c for c in configs if c["leap"] == "none"}
    for c in configs:
        b = base[c["optimizer"]]["t"]
        row = {"optimizer": c["optimizer"], "leap": c["leap"]}
        for k in ("step_wall", "iter_wall", "iter_cpu"):
            row[k.replace("_wall", "") + ("_ms" if k.endswith("wall") else "_cpu_ms")] = \
                1e3 * statistics.median(c["t"][k])
            ratios = [a / bb for a, bb in zip(c["t"][k], b[k])]
            row[k + "_ratio"] = _summary(ratios)
        row.update(tensor_bytes(c["model"], c["opt"]))
        if "peak_MB" in c:
            row["cuda_peak_MB"] = c["peak_MB"]
        rows.append(row)
    for opt_name, bc in base.items():
        for k in floors:
            row = {"optimizer": opt_name, "leap": f"floor: {k}",
                   "floor_ms": 1e3 * statistics.median(floor_t[k]["wall"])}
            for clock in ("wall", "cpu"):
                it = bc["t"][f"iter_{clock}"]
                row[f"iter_{clock}_ratio"] = _summary([(a + f) / a for a, f in zip(it, floor_t[k][clock])])
            rows.append(row)

    threads = torch.get_num_threads()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# bench_torch  ({now}, {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{threads} torch threads, device {device}"
        + (f" = {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "") + ")",
        f"# MLP 784-{'-'.join([str(args.width)] * args.depth)}-10: {n_params / 1e6:.2f} M float32 parameters, "
        f"batch {args.batch}, sigma {args.sigma}, {args.reps} interleaved repetitions after {args.warmup} warm-up",
        f"# 1-min load average {load0:.1f} at the start, {load1:.1f} at the end (shared machine)",
        "# ratios: per repetition against the plain optimizer of the same repetition; median [quartiles]",
        "# floor rows: (plain iteration + one fresh normal per parameter) / plain iteration",
    ] + ([f"# {args.note}"] if args.note else []) + [
        "",
        f"{'optimizer':9s} {'LEAP':22s} {'step ms':>8s} {'step ×plain':>19s} {'iter ms':>8s} "
        f"{'iter ×plain (wall)':>19s} {'iter ×plain (CPU)':>19s} {'LEAP buf MB':>11s}",
    ]

    def fmt(r):
        return f"{r[0]:5.2f} [{r[1]:4.2f}, {r[2]:4.2f}]"

    for r in rows:
        if r["leap"].startswith("floor"):
            lines.append(f"{r['optimizer']:9s} {r['leap']:22s} {r['floor_ms']:8.2f} {'':>19s} {'':>8s} "
                         f"{fmt(r['iter_wall_ratio']):>19s} {fmt(r['iter_cpu_ratio']):>19s}")
            continue
        line = (f"{r['optimizer']:9s} {r['leap']:22s} {r['step_ms']:8.2f} {fmt(r['step_wall_ratio']):>19s} "
                f"{r['iter_ms']:8.1f} {fmt(r['iter_wall_ratio']):>19s} {fmt(r['iter_cpu_ratio']):>19s} "
                f"{r['leap_buffers_MB']:11.1f}")
        if "cuda_peak_MB" in r:
            line += f"  cuda peak {r['cuda_peak_MB']:.1f} MB"
        lines.append(line)
    target = 1.10 if device.type == "cuda" else 1.30
    pc = [r for r in rows if r["leap"] == "per-coordinate"]
    worst = max(r["iter_wall_ratio"][0] for r in pc)
    lines += ["", f"per-coordinate full-iteration ratio (wall, median): worst {worst:.2f} "
                  f"(target ≤ {target:.2f}: {'met' if worst <= target else 'NOT met'})",
              f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB"]
    if device.type == "cpu" and max(load0, load1) > (os.cpu_count() or 1):
        lines.append(f"WARNING: load average {max(load0, load1):.1f} above the {os.cpu_count()} CPUs: other jobs slow the "
                     "multi-threaded baseline more than LEAP's kernels, so these ratios understate LEAP's cost; "
                     "compare with --threads 1 (CPU-time column) or rerun on an idle machine")
    text = "\n".join(lines) + "\n"
    print(text, end="")

    out = args.out or RESULTS / f"bench_torch_{device.type}.txt"
    _write_atomic(out, text)
    meta = {"device": str(device), "n_params": n_params, "batch": args.batch, "reps": args.reps,
            "torch_threads": threads, "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "load_avg_start": load0, "load_avg_end": load1, "date": now,
            "cuda_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    _write_atomic(out.with_suffix(".json"), json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return rows


if __name__ == "__main__":
    main()
