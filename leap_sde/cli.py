"""``leap-sde`` command line: simulate, validate, sweep, plot.

    leap-sde simulate [CONFIG.toml] [--set section.key=value ...] [--out DIR] [--quiet]
    leap-sde validate [--quick | --full] [--only NAME ...] [--out DIR]
    leap-sde sweep SWEEP.toml [--out DIR] [--executor local|dask] [--scheduler ADDRESS] [--workers N]
                   [--threads-per-point N] [--force] [--verify auto|all|recent|none] [--quick] [--set K=V ...]
                   [--dry-run] [--quiet]
    leap-sde plot DIR [--out FIGDIR]

Exit codes: 0 success, 1 a failed validation case, 2 bad arguments or configuration, 130 interrupted
(after saving what was simulated).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _default_out() -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / stamp
    i = 1
    while path.exists():
        path = Path("runs") / f"{stamp}-{i}"
        i += 1
    return path


def cmd_simulate(args) -> int:
    from .config import ConfigError, load_toml, resolve
    from .experiment import format_table, run_experiment, write_outputs

    try:
        user = load_toml(args.config) if args.config else None
        cfg = resolve(user, args.set)
    except ConfigError as e:
        print(f"leap-sde simulate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out) if args.out else _default_out()
    what = args.config or "the built-in default experiment (sharp-vs-flat double well, SGD vs SGD + LEAP)"
    if not args.quiet:
        print(f"leap-sde {__version__}: running {what}; results in {out_dir}", flush=True)
    out = run_experiment(cfg, progress=not args.quiet, interrupt="return")
    write_outputs(out_dir, out)
    print(format_table(out))
    if out.interrupted:
        n = sum(r.escape.n_censored for r in out.runs)
        print(f"Interrupted: saved what was simulated in {out_dir} (unfinished particles counted as censored; "
              f"{n} censored in total; later σ values not run).", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wall time {out.wall_time:.1f} s; results in {out_dir}")
    return EXIT_OK


def cmd_validate(args, rest) -> int:
    from .validate.runner import main as validate_main

    return validate_main(rest)


def cmd_sweep(args, rest) -> int:
    from .sweep import main_sweep

    return main_sweep(rest)


def cmd_plot(args, rest) -> int:
    from .sweep import main_plot

    return main_plot(rest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="leap-sde", description="Escape dynamics of SGD/Langevin with LEAP "
                                     "learning-rate perturbation: simulate, validate, sweep, plot.")
    parser.add_argument("--version", action="version", version=f"leap-sde {__version__}")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("simulate", help="run one experiment (default: the built-in sharp-vs-flat comparison)")
    p.add_argument("config", nargs="?", help="TOML config ([landscape], [dynamics], [leap], [schedule], [init], "
                   "[exit], [run]); omitted: the built-in default experiment")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key (value parsed as TOML; repeatable)")
    p.add_argument("--out", help="result folder (default: runs/<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or chatter; print only the table")
    for name, help_ in (("validate", "run the numerical validation suite (see leap-sde validate --help)"),
                        ("sweep", "run a parameter sweep (see leap-sde sweep --help)"),
                        ("plot", "plot a sweep's results (see leap-sde plot --help)")):
        sub.add_parser(name, help=help_, add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["simulate"]
    if argv[0] in ("validate", "sweep", "plot"):
        handler = {"validate": cmd_validate, "sweep": cmd_sweep, "plot": cmd_plot}[argv[0]]
        return handler(None, argv[1:])
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return cmd_simulate(args)
    parser.print_help()
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
