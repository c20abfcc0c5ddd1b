"""Sweep throughput and resume-check benchmark (a script, not a test).

A 64-point sweep (8 LEAP σ × 8 sharp curvatures on the sharp-flat well, 10⁴ particles per point, SGD noise,
a fixed step budget) is run from scratch with

* the local process pool, 1 worker × 1 Numba thread,
* the local process pool, 2 workers × 1 thread,
* a Dask LocalCluster of 2 worker processes (1 thread each) on 127.0.0.1,
* for reference, the local pool with 1 worker × 2 Numba threads (thread- instead of process-parallelism),

and the wall times are printed side by side (targets: 2 workers ≥ 1.7× faster than 1; Dask within 15% of the
local pool).  All runs must give identical per-point results (the seeds depend only on the points).  Then the
resume check (load the sweep file, plan the points, check the store) is timed on a synthetic store holding
10⁵ finished points (target < 1 s).

    python simulations/bench_sweep.py                       # ~4 min on 2 cores (2 interleaved repeats)
    python simulations/bench_sweep.py --quick               # CI smoke run: 8 small points, 10⁴-point store
    python simulations/bench_sweep.py --out simulations/results/sweeps/bench_sweep.txt
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

SWEEP = """
[sweep]
name = "bench"
seed = 1
point_plots = false
[base.landscape]
kind = "sharp-flat"
barrier_flat = 0.5
barrier_sharp = 0.5
[base.dynamics]
eta = 0.1
noise = "sgd-hessian"
[base.init]
minimum = 1
[base.exit]
target_minimum = 0
[base.run]
particles = {particles}
max_steps = {max_steps}
basins = false
[grid]
"leap.sigma" = {sigmas}
"landscape.curv_sharp" = {curvs}
"""


def _sweep_file(d: Path, n_side: int, particles: int, max_steps: int) -> Path:
    sig = [round(0.01 * i, 4) for i in range(n_side)]
    curv = [float(2 + i) for i in range(n_side)]
    p = d / "bench.toml"
    p.write_text(SWEEP.format(particles=particles, max_steps=max_steps, sigmas=sig, curvs=curv))
    return p


def _cpu_snapshot():
    """(busy, total) CPU jiffies of the whole machine from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


def _busy_cores(a, b) -> float:
    """Average number of busy cores (all processes on the machine) between two snapshots."""
    if a is None or b is None or b[1] == a[1]:
        return float("nan")
    return (b[0] - a[0]) / (b[1] - a[1]) * (os.cpu_count() or 1)


class _OwnCPU:
    """CPU seconds used by this process and all its descendants (pool workers, fork server, Dask nannies and
    workers) during a run: a background thread samples the process tree (psutil), keeping each process's last
    reading, so processes that exit before the end are still counted (to within one sampling interval)."""

    def __init__(self, every=0.25):
        import threading

        try:
            import psutil
        except ImportError:  # pragma: no cover
            psutil = None
        self._ps, self._every, self._seen = psutil, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        me = self._ps.Process()
        for p in [me] + me.children(recursive=True):
            try:
                t = p.cpu_times()
                self._seen[(p.pid, p.create_time())] = t.user + t.system
            except self._ps.Error:
                pass

    def _run(self):
        while not self._stop.wait(self._every):
            self._sample()

    def __enter__(self):
        if self._ps is not None:
            self._sample()
            self._start = dict(self._seen)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._ps is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
        return False

    @property
    def seconds(self) -> float:
        if self._ps is None:
            return float("nan")
        return sum(v - self._start.get(k, 0.0) for k, v in self._seen.items())


def _rows(out: Path) -> dict:
    from leap_sde.sweep import read_table

    return {r["key"]: (r["rate_per_step"], r["n_escaped"], r["mean_steps"]) for r in read_table(out / "results.csv")}


def bench_executors(d: Path, spec_path: Path, repeats: int) -> list:
    """Each configuration ``repeats`` times, interleaved (other jobs on a shared machine hit all of them
    alike); the fastest run of each is reported."""
    from leap_sde.sweep import load_spec, run_sweep

    spec = load_spec(spec_path)
    configs = [("local pool, 1 worker x 1 thread", dict(executor="local", workers=1, threads=1)),
               ("local pool, 2 workers x 1 thread", dict(executor="local", workers=2, threads=1)),
               ("Dask LocalCluster, 2 workers x 1 thread", dict(executor="dask", workers=2, threads=1)),
               ("local pool, 1 worker x 2 threads (ref.)", dict(executor="local", workers=1, threads=2))]
    best: dict = {}
    agree: dict = {}  # every run of the configuration gave the first run's per-point results
    ref = None
    n = 0
    for rep in range(repeats):
        for name, kw in configs:
            if rep > 0 and "(ref.)" in name:
                continue
            n += 1
            out = d / f"run{n}"
            c0 = _cpu_snapshot()
            with _OwnCPU() as own:
                s = run_sweep(spec, out, progress=False, log=lambda m: None, **kw)
            busy = _busy_cores(c0, _cpu_snapshot())
            assert s.complete, s.text()
            rows = _rows(out)
            same = ref is None or rows == ref
            ref = ref or rows
            print(f"  {name}: {s.wall_s:.1f} s (executor start {s.startup_s:.1f} s; {own.seconds:.1f} CPU s by the "
                  f"sweep's processes; {busy:.2f} cores busy on the machine)", flush=True)
            agree[name] = agree.get(name, True) and same
            if name not in best or s.wall_s < best[name][1]:
                best[name] = (name, s.wall_s, s.startup_s, busy, own.seconds)
    return [best[name][:3] + (agree[name],) + best[name][3:] for name, _ in configs]


def bench_resume(d: Path, n_sigma: int, n_curv: int):
    """Synthetic store with every point of an n_sigma x n_curv sweep finished; time the resume check."""
    import json
    import zlib

    from leap_sde.sweep.store import Store, _index_line
    from leap_sde.sweep import RECENT_VERIFY, ROW_FIELDS, Plan, check_store, load_spec

    p = d / "resume.toml"
    p.write_text(f"[sweep]\nseed = 1\n[grid]\n\"leap.sigma\" = {[i * 1e-3 for i in range(n_sigma)]}\n"
                 f"\"landscape.curv_sharp\" = {[1.0 + i for i in range(n_curv)]}\n")
    spec = load_spec(p)
    plan = Plan(spec)
    store = Store(d / "resume")
    store.points.mkdir(parents=True)
    t0 = time.perf_counter()
    for k in plan.keys:
        os.mkdir(store.points / k)
    rows, index, empty = [], [], {f: None for f in ROW_FIELDS}  # the two logs as the writer appends them
    for i, k in enumerate(plan.keys):
        payload = json.dumps({"params": plan.params(i), "row": empty}, sort_keys=True, separators=(",", ":")).encode()
        crc = f"{zlib.crc32(payload) & 0xFFFFFFFF:08x}"
        rows.append(f"{k} {crc} ".encode() + payload + b"\n")
        index.append(_index_line(k, "0" * 16, spec.base_hash, crc))
    (store.root / "rows.log").write_bytes(b"".join(rows))
    (store.root / "index.log").write_bytes(b"".join(index))
    for k in plan.keys[-RECENT_VERIFY:]:
        store.write_point(k, {"result.json": b"{}"}, {})
    build = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        spec = load_spec(p)
        t1 = time.perf_counter()
        plan = Plan(spec)
        t2 = time.perf_counter()
        chk = check_store(Store(d / "resume"), spec, plan)
        t3 = time.perf_counter()
        assert len(chk.done) == len(plan), (len(chk.done), len(chk.todo))
        times.append((t3 - t0, time.process_time() - c0, t1 - t0, t2 - t1, t3 - t2))
    return len(plan), build, min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run (8 small points, 10^4-point store)")
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=2, help="runs per executor, interleaved; the fastest counts")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args(argv)
    n_side, particles, max_steps = (8, args.particles, args.max_steps) if not args.quick else (3, 1000, 500)
    n_resume = (1000, 100) if not args.quick else (100, 100)

    import leap_sde
    from leap_sde.sweep import Plan, load_spec, run_sweep

    lines = []
    with tempfile.TemporaryDirectory(prefix="leap-sde-bench-sweep-") as tmp:
        d = Path(tmp)
        spec_path = _sweep_file(d, n_side, particles, max_steps)
        n_points = len(Plan(load_spec(spec_path)))
        # outside the timings: fill the Numba cache, and start the local pool's fork server (it imports
        # leap_sde once; every local run below forks its workers from it)
        (d / "warm").mkdir()
        warm = _sweep_file(d / "warm", 1, 100, 100)
        run_sweep(load_spec(warm), d / "warm_out", workers=0, progress=False, log=lambda m: None)
        from concurrent.futures import ProcessPoolExecutor

        from leap_sde.sweep import _mp_context

        with ProcessPoolExecutor(1, mp_context=_mp_context()) as pool:
            pool.submit(int).result()
        print(f"sweep benchmark: {n_points} points x {particles} particles x {max_steps} steps "
              f"({n_points * particles * max_steps:.2e} particle-steps at most)", flush=True)
        res = bench_executors(d, spec_path, args.repeats)
        print("resume check on a synthetic store ...", flush=True)
        n_res, build, (wall, cpu, t_spec, t_plan, t_check) = bench_resume(d, *n_resume)

    t1 = res[0][1]
    t2 = res[1][1]
    td = res[2][1]
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    lines.append(f"leap_sde {leap_sde.__version__}, Python {platform.python_version()}, {os.cpu_count()} cores, "
                 f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)")
    lines.append(f"sweep: {n_points} points x {particles} particles x <= {max_steps} steps (sharp-flat well, SGD "
                 f"noise + LEAP), per-point plots off, Numba cache warm; fastest of {args.repeats} interleaved runs "
                 f"per executor (each run starts its own pool / cluster)")
    lines.append("")
    head = (f"{'executor':<42} {'wall [s]':>9} {'start [s]':>10} {'speed-up':>9} {'same results':>13} "
            f"{'sweep CPU [s]':>14} {'sweep cores':>12} {'busy cores':>11}")
    lines.append(head)
    lines.append("-" * len(head))
    for name, wall_s, start_s, same, busy, own in res:
        lines.append(f"{name:<42} {wall_s:>9.1f} {start_s:>10.1f} {t1 / wall_s:>9.2f} "
                     f"{('yes' if same else 'NO'):>13} {own:>14.1f} {own / wall_s:>12.2f} {busy:>11.2f}")
    lines.append("speed-up: wall time of 1 worker x 1 thread / this wall time.  sweep CPU: CPU seconds of the sweep "
                 "process and all its workers; sweep cores = sweep CPU / wall.  busy cores: all processes on the "
                 "machine (/proc/stat); busy cores above sweep cores is CPU taken by other jobs.")
    lines.append("")
    lines.append(f"2 workers vs 1: {t1 / t2:.2f}x (target >= 1.7x: {'met' if t1 / t2 >= 1.7 else 'MISSED'})")
    lines.append(f"Dask vs local pool (2 workers): {td / t2:.3f} of the local wall time (target <= 1.15: "
                 f"{'met' if td / t2 <= 1.15 else 'MISSED'}); without the cluster start: "
                 f"{(td - res[2][2]) / t2:.3f}")
    lines.append("")
    lines.append(f"resume check, {n_res} finished points (synthetic store built in {build:.1f} s): "
                 f"{wall:.3f} s wall, {cpu:.3f} s CPU (parse sweep file {t_spec:.3f} s, plan {t_plan:.3f} s, "
                 f"check store {t_check:.3f} s); target < 1 s: {'met' if wall < 1.0 else 'MISSED'}")
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
