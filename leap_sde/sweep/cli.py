"""Command line: ``leap-sde sweep`` and ``leap-sde plot``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError
from .check import FULL_VERIFY_MAX, check_store
from .plots import plot_sweep
from .run import _summary_table, run_sweep
from .spec import Plan, SweepError, load_spec
from .store import Store

__all__ = ["main_sweep", "main_plot"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _sweep_parser():
    p = argparse.ArgumentParser(
        prog="leap-sde sweep", description="Run a parameter sweep (SWEEP.toml: [base] config + [grid] / "
        "[[points]]); every point is stored atomically in DIR, and rerunning the same command resumes.",
        epilog="Exit codes: 0 all points finished, 1 some points failed, 2 bad arguments/config or a changed "
               "config for finished points (see --force), 130 interrupted (finished points kept).")
    p.add_argument("sweep", help="the sweep file (TOML)")
    p.add_argument("--out", help="result folder DIR (default: runs/sweeps/<name>[-quick])")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local process pool (default) or a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786); without it "
                   "--executor dask starts a LocalCluster on 127.0.0.1")
    p.add_argument("--workers", type=int, help="worker processes (default: number of cores; 0 with the local "
                   "executor: run in this process)")
    p.add_argument("--threads-per-point", type=int, dest="threads", help="Numba threads per point (default: "
                   "cores / workers locally, 1 on a remote Dask cluster)")
    p.add_argument("--force", action="store_true", help="recompute finished points whose config changed")
    p.add_argument("--verify", choices=("auto", "all", "recent", "none"), default="auto",
                   help="re-hash finished points' files against their done.json: all, the recently written ones, "
                        "none; auto (default): all when at most %d points are finished, else recent"
                        % FULL_VERIFY_MAX)
    p.add_argument("--quick", action="store_true", help="apply the sweep file's [quick] table (reduced size, CI)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a [base] key (value parsed as TOML; repeatable)")
    p.add_argument("--dry-run", action="store_true", help="check the store and list what would run; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar; print only the summary")
    return p


def main_sweep(argv) -> int:
    """``leap-sde sweep``; returns the exit code."""
    args = _sweep_parser().parse_args(argv)
    err = lambda msg: print(f"leap-sde sweep: error: {msg}", file=sys.stderr)  # noqa: E731
    try:
        spec = load_spec(args.sweep, quick=args.quick, overrides=args.set)
        plan = Plan(spec)
    except ConfigError as e:
        err(e)
        return EXIT_USAGE
    if args.scheduler and args.executor != "dask":
        err("--scheduler needs --executor dask")
        return EXIT_USAGE
    for name, v in (("--workers", args.workers), ("--threads-per-point", args.threads)):
        if v is not None and v < 0:
            err(f"{name}: must be >= 0, got {v}")
            return EXIT_USAGE
    clash = [s.split("=", 1)[0].strip() for s in args.set if s.split("=", 1)[0].strip() in plan.names]
    if clash:
        err(f"--set {clash[0]}: this key is swept; change it in the sweep file")
        return EXIT_USAGE
    out = Path(args.out) if args.out else Path("runs") / "sweeps" / (spec.name + ("-quick" if args.quick else ""))
    if args.dry_run:
        chk = check_store(Store(out), spec, plan, verify=args.verify)
        print(f"sweep {spec.name}: {len(plan)} points; {len(chk.done)} finished, {len(chk.todo)} to run, "
              f"{len(chk.conflicts)} with a changed config, {len(chk.corrupt)} corrupt, {len(chk.adopted)} "
              f"recoverable, {len(chk.rebuilt)} row{'s' if len(chk.rebuilt) != 1 else ''} to rebuild; resume check {chk.seconds * 1e3:.0f} ms ({chk.n_verified} verified)")
        for i, d in chk.conflicts[:5]:
            print(f"  changed: {plan.params(i)}: {d}")
        return EXIT_OK
    try:  # its messages go to the leap_sde.sweep logger, which `leap-sde` prints to stderr (not with --quiet)
        summary = run_sweep(spec, out, executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                            threads=args.threads, force=args.force, verify=args.verify, progress=not args.quiet)
    except SweepError as e:
        err(e)
        return EXIT_USAGE
    table = _summary_table(out, plan)
    if table and not args.quiet:
        print(table)
    print(summary.text())
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.complete else EXIT_FAILED


def main_plot(argv) -> int:
    """``leap-sde plot DIR``; returns the exit code."""
    p = argparse.ArgumentParser(prog="leap-sde plot", description="Plot a sweep's results: phase diagrams, "
                                "Arrhenius plots, flat-vs-sharp preference (from DIR/sweep.toml's [[plot]] "
                                "tables, or chosen from the swept parameters).")
    p.add_argument("dir", help="the sweep's result folder")
    p.add_argument("--out", help="figure folder (default: DIR/figures)")
    p.add_argument("--formats", default="png,pdf,svg", metavar="FMT[,FMT...]",
                   help="figure formats (default: png,pdf,svg)")
    args = p.parse_args(argv)
    d = Path(args.dir)
    if not (d / "sweep.toml").is_file() or not (d / "index.log").is_file():
        print(f"leap-sde plot: error: {d} is not a sweep result folder (no sweep.toml / index.log)", file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = plot_sweep(d, out_dir=args.out, formats=args.formats)
    except (ConfigError, SweepError, ValueError) as e:
        print(f"leap-sde plot: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for path in paths:
        print(path)
    return EXIT_OK
