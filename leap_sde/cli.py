"""``leap-sde`` command line: simulate, validate, sweep, plot.

    leap-sde simulate [CONFIG.toml] [--set section.key=value ...] [--out DIR] [--force] [--quiet]
                      [--format table|csv|json]
    leap-sde validate [--quick | --full] [--only NAME ...] [--seed N] [--out DIR] [--format table|csv|json]
    leap-sde sweep SWEEP.toml [--out DIR] [--executor local|dask] [--scheduler ADDRESS] [--workers N]
                   [--threads-per-point N] [--force] [--verify auto|all|recent|none] [--quick] [--set K=V ...]
                   [--dry-run] [--quiet]
    leap-sde plot DIR [--out FIGDIR]
    leap-sde keys [SECTION] [--format table|csv|json]
    leap-sde compare RUN_A RUN_B [--sigma S | --sigma SA:SB] [--unit steps|time] [--out DIR] [--force]

Exit codes: 0 success, 1 a failed validation case, 2 bad arguments, configuration or output folder,
130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM (both after saving what was simulated).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import logging
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional

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


def check_out_dir(path: Path, *, force: bool = False) -> Optional[str]:
    """Why ``path`` cannot take a run's results (None if it can): an existing file, a path under a file, a
    place where no folder can be created or written, or an existing non-empty folder without ``force``.
    Creates the folder (and probes it with a temporary file) so that nothing is simulated in vain."""
    if path.exists() and not path.is_dir():
        return f"--out {path}: exists and is not a folder"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"--out {path}: {parent} is a file, so no folder can be created under it"
            break
    if path.is_dir() and not force and any(path.iterdir()):
        return f"--out {path}: folder exists and is not empty (an earlier run?); choose another --out or pass --force"
    try:
        path.mkdir(parents=True, exist_ok=True)
        import tempfile

        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        return f"--out {path}: cannot write there: {e.strerror or e}"
    return None


class _Signals:
    """SIGINT and SIGTERM (what SLURM, ``timeout`` and container stops send) both stop the simulation like
    Ctrl-C: the first one raises KeyboardInterrupt (caught by the simulation, which keeps what it has);
    from then on, and while results are saved, further signals are only recorded, so the atomic writes
    finish and the folder always holds a complete result.json.

    The exit code names the first signal to *arrive*: a burst can start a second handler inside the first
    one before it has recorded anything, so the order is read from the wakeup pipe, where the interpreter's
    C-level handler writes each signal number as it is delivered."""

    def __init__(self):
        self.received = None
        self.deferring = False
        self._old = {}
        self._pipe = None
        self._old_wakeup = -1

    def __enter__(self):
        import os

        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import os

        for sig, h in self._old.items():
            # after a signal the command is finishing: later ones are ignored until the process exits (also
            # during the interpreter's shutdown), so the exit code is 130/143 however many arrive
            signal.signal(sig, h if self.received is None else signal.SIG_IGN)
        signal.set_wakeup_fd(self._old_wakeup)
        for fd in self._pipe:
            os.close(fd)
        return False

    def _first_arrived(self, signum):
        import os

        try:
            first = os.read(self._pipe[0], 1)
        except (BlockingIOError, OSError):
            first = b""
        return first[0] if first else signum

    def _handle(self, signum, frame):
        first = self.received is None
        self.received = self.received or self._first_arrived(signum)
        if first and not self.deferring:
            self.deferring = True
            raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received) if self.received else EXIT_INTERRUPTED


class _LevelFormatter(logging.Formatter):
    """``message`` for INFO, ``warning: message`` / ``error: message`` above, always on one line."""

    def format(self, record):
        msg = " ".join(record.getMessage().split())
        return msg if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {msg}"


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the command line: ``warning: Category: message`` on one line, no source."""
    text = " ".join(str(message).split())
    name = "" if category in (UserWarning, RuntimeWarning) else f"{category.__name__}: "
    print(f"warning: {name}{text}", file=sys.stderr if file is None else file, flush=True)


@contextlib.contextmanager
def cli_output(quiet: bool = False):
    """While a command runs: the ``leap_sde`` loggers print to stderr (INFO, or WARNING with ``quiet``) as
    one clean line each, and Python warnings too (``warning: ...``, no source lines); restored afterwards."""
    logger = logging.getLogger("leap_sde")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter())
    old_level, old_show = logger.level, warnings.showwarning
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    warnings.showwarning = _one_line_warning
    try:
        yield
    finally:
        warnings.showwarning = old_show
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def cmd_simulate(args) -> int:
    from .config import ConfigError, load_toml, resolve

    try:
        user = load_toml(args.config) if args.config else None
        cfg = resolve(user, args.set)
    except ConfigError as e:
        print(f"leap-sde simulate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out) if args.out else _default_out()
    problem = check_out_dir(out_dir, force=args.force)
    if problem:
        print(f"leap-sde simulate: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from .ams import AMSResult
    from .experiment import format_table, result_rows, run_experiment, run_warnings, write_outputs
    from .simulate import StabilityWarning

    what = args.config or "the built-in default experiment (sharp-vs-flat double well, SGD vs SGD + LEAP)"
    chatter = sys.stdout if args.format == "table" else sys.stderr  # csv/json: stdout holds only the data
    with _Signals() as sig, warnings.catch_warnings():
        if not args.quiet:  # printed once the signal handlers are in place
            import textwrap

            print(textwrap.fill(f"leap-sde {__version__}: running {what}; results in {out_dir}", 80,
                                subsequent_indent="  ", break_on_hyphens=False, break_long_words=False),
                  file=chatter, flush=True)
        # the runs' warnings are printed below, once each (and saved in result.json)
        warnings.simplefilter("ignore", StabilityWarning)
        warnings.filterwarnings("ignore", message=".*require_barrier", category=UserWarning)
        try:
            out = run_experiment(cfg, progress=not args.quiet, interrupt="return")
        except KeyboardInterrupt:  # a signal outside the simulation loop, before any run finished
            print(f"Interrupted before any run finished; nothing saved in {out_dir}.", file=sys.stderr)
            return sig.exit_code
        sig.deferring = True  # from here on a signal cannot interrupt the saving
        write_outputs(out_dir, out, formats=args.figure_formats)
        if args.format == "table":
            print(format_table(out))
        elif args.format == "csv":
            _print_records(result_rows(out), "csv")
        else:  # exactly what result.json holds
            print((out_dir / "result.json").read_text(encoding="utf-8"), end="")
        for w in run_warnings(out):
            print(f"warning: {' '.join(w.split())}", file=sys.stderr)
        if out.interrupted or sig.received:
            n = sum(r.escape.n_censored for r in out.runs if not isinstance(r.escape, AMSResult))
            print(f"Interrupted: saved what was simulated in {out_dir} (unfinished particles counted as censored; "
                  f"{n} censored in total; later runs not done).", file=sys.stderr)
            return sig.exit_code
        if not args.quiet:
            print(f"wall time {out.wall_time:.1f} s; results in {out_dir}", file=chatter)
        return EXIT_OK


def cmd_compare(args) -> int:
    """Rate ratio with its exact CI, equal-rate and log-rank tests, config diff of two result folders
    (:func:`leap_sde.compare_runs`); with ``--out`` also comparison.json and the overlaid survival figure."""
    from .runs import compare_runs, write_comparison

    sigma = None
    if args.sigma is not None:
        try:
            parts = [float(x) for x in args.sigma.split(":")]
            if len(parts) not in (1, 2):
                raise ValueError
        except ValueError:
            print(f"leap-sde compare: error: --sigma: expected a number or SA:SB, got {args.sigma!r}",
                  file=sys.stderr)
            return EXIT_USAGE
        sigma = parts[0] if len(parts) == 1 else tuple(parts)
    try:
        cmp = compare_runs(args.run_a, args.run_b, sigma=sigma, unit=args.unit)
    except (OSError, ValueError, KeyError) as e:
        print(f"leap-sde compare: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.out:
        out_dir = Path(args.out)
        problem = check_out_dir(out_dir, force=args.force)
        if problem:
            print(f"leap-sde compare: error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        write_comparison(cmp, out_dir)
    print(cmp.text())
    if args.out:
        print(f"\nwritten: {Path(args.out) / 'comparison.json'}, {Path(args.out) / 'survival.png'} (.pdf, .svg)")
    return EXIT_OK


def cmd_keys(args) -> int:
    """``leap-sde keys [SECTION]``: the config keys, generated from the schema."""
    from .config import ConfigError, key_rows, keys_text

    try:
        if args.format == "table":
            print(keys_text(args.section))
        else:
            _print_records(key_rows(args.section), args.format)
    except ConfigError as e:
        print(f"leap-sde keys: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _print_records(rows, fmt) -> None:
    """``rows`` (a list of flat dicts) as CSV (header line first) or as a JSON list on stdout."""
    if fmt == "json":
        import json

        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    import csv

    w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)


def cmd_validate(args, rest) -> int:
    from .validate.runner import run_suite

    return run_suite(rest)


def cmd_sweep(args, rest) -> int:
    from .sweep import main_sweep

    return main_sweep(rest)


def _formats(text):
    """``--formats`` value: comma-separated figure formats (argparse turns the ValueError into a usage error)."""
    from .plots import check_formats

    try:
        return check_formats(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
    p.add_argument("--out", help="result folder (default: runs/<timestamp>); must be new or empty unless --force")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or chatter; print only the table")
    p.add_argument("--figure-formats", default="png,pdf,svg", type=_formats, metavar="FMT[,FMT...]",
                   help="formats of the figures written into --out (default: png,pdf,svg)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="what is printed: table (default, 80 columns), csv (one row per sigma and direction) or "
                        "json (result.json); csv/json print only the data on stdout")
    p = sub.add_parser("keys", help="list the config keys with type, default, valid range and meaning")
    p.add_argument("section", nargs="?", help="one section (landscape, dynamics, leap, schedule, init, exit, run)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default, 80 columns), csv or json")
    p = sub.add_parser("compare", help="compare two result folders: rate ratio with CI, log-rank test, "
                       "survival curves, config diff")
    p.add_argument("run_a", metavar="RUN_A", help="result folder of `leap-sde simulate` (run A)")
    p.add_argument("run_b", metavar="RUN_B", help="result folder of run B")
    p.add_argument("--sigma", help="compare this LEAP σ of both runs, or SA:SB (σ of A, σ of B); default: the "
                   "single σ of each run, or every σ both runs have")
    p.add_argument("--unit", choices=("steps", "time"), default="steps", help="rates per step (default) or per "
                   "unit of continuous time")
    p.add_argument("--out", help="also write comparison.json and survival.png/.pdf/.svg into this folder")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty --out folder")
    for name, help_ in (("validate", "run the numerical validation suite (see leap-sde validate --help)"),
                        ("sweep", "run a parameter sweep (see leap-sde sweep --help)"),
                        ("plot", "plot a sweep's results (see leap-sde plot --help)")):
        sub.add_parser(name, help=help_, add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["simulate"]
    with cli_output(quiet="--quiet" in argv):
        if argv[0] in ("validate", "sweep", "plot"):
            handler = {"validate": cmd_validate, "sweep": cmd_sweep, "plot": cmd_plot}[argv[0]]
            return handler(None, argv[1:])
        args = parser.parse_args(argv)
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "keys":
            return cmd_keys(args)
        if args.command == "compare":
            return cmd_compare(args)
        parser.print_help()
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
