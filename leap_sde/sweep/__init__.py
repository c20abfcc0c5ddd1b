"""Parameter sweeps: many simulations from one SWEEP.toml, run on a local process pool or a Dask cluster, each
point's result kept in a crash-safe store (:mod:`leap_sde.sweep.store`), and their phase diagrams / Arrhenius
plots.

SWEEP.toml
----------
::

    [sweep]
    name = "leap-phase"          # default: the file name
    seed = 2024                  # the sweep seed (default 0); every point's run.seed is derived from it
    replicates = 1               # > 1 adds an axis "replicate" = 0, 1, ...: independent repeats of each point
    point_plots = true           # each point's PNGs (survival, histogram, occupation), as `simulate` writes

    [base.landscape]             # a simulate config, nested under [base]; schema defaults fill the rest
    kind = "sharp-flat"
    [base.run]
    particles = 2000

    [grid]                       # Cartesian product, first key slowest
    "leap.sigma" = [0.0, 0.05, 0.1]
    "landscape.curv_sharp" = [2.0, 4.0, 8.0]

    [[points]]                   # and/or explicit points (each crossed with the grid)
    "dynamics.eta" = 0.1
    "dynamics.batch_size" = 1.0

    [[plot]]                     # what `leap-sde plot DIR` draws (default: chosen from the swept keys)
    kind = "phase"               # "phase", "arrhenius", "preference" or "line"
    x = "leap.sigma"
    y = "landscape.curv_sharp"
    theory = "leap-xie"          # contour lines of the theory's log10 rate ("leap-xie", "kramers", "none")
    boundaries = ["mean-square", "almost-sure"]   # LEAP stability thresholds h(σ), drawn as curves

    [quick]                      # applied with --quick: a reduced variant (CI)
    base = {run = {particles = 200}}
    grid = {"leap.sigma" = [0.0, 0.1]}

Parameters are ``"section.key"`` names of the simulate config (dotted bare keys work as well).  Each point is
one simulation with a scalar ``leap.sigma``.  ``run.seed`` and ``run.threads`` cannot be set: the seed of a
point is derived from the sweep seed and the point's parameters (SHA-256 of their canonical JSON → NumPy
``SeedSequence``), so a point's result does not depend on the worker, the order or the other points; the
threads are set by the executor (results do not depend on them).

Guarantees
----------
* Each point's result folder is written atomically by the single writer process that owns ``DIR`` (workers
  return the files' bytes, never write into ``DIR``); rerunning the same command skips finished points.
* A SIGKILL loses at most the points in flight; torn index lines and half-written folders are detected, and a
  finished point whose index or results-table line is torn is re-indexed or has its row rebuilt from its intact
  folder (reported in the summary).  Pool workers exit when the writer dies, even while it is an unreaped
  zombie (they watch a pipe that only the writer holds, not its PID).
* A finished point whose resolved config changed is refused (exit 2) unless ``--force`` recomputes it.
* ``--verify all`` re-hashes every finished point's files against its done.json (``auto``, the default, does
  so when the store holds at most 1000 points, and otherwise for the most recently written ones).

Layout
------
:mod:`~leap_sde.sweep.spec` the sweep file, points, seeds; :mod:`~leap_sde.sweep.store` the crash-safe store;
:mod:`~leap_sde.sweep.check` the resume check; :mod:`~leap_sde.sweep.executors` inline, process pool and Dask
executors; :mod:`~leap_sde.sweep.run` the writer loop and results table; :mod:`~leap_sde.sweep.cli`
``leap-sde sweep`` / ``leap-sde plot``; :mod:`~leap_sde.sweep.plots` the figures.  Every public name is
re-exported here.
"""
from __future__ import annotations

from .spec import (
    REPLICATE,
    SweepError,
    SweepConflict,
    SweepSpec,
    load_spec,
    Plan,
    plan_points,
    derive_seed,
    point_config,
    config_hash,
)
from .check import FULL_VERIFY_MAX, RECENT_VERIFY, CheckResult, check_store
from .executors import WorkerLost, _mp_context, make_runner
from .run import (
    MAX_ATTEMPTS,
    TABLE_EVERY_S,
    headline,
    ROW_FIELDS,
    SweepSummary,
    write_table,
    read_table,
    run_sweep,
)
from .cli import EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, main_sweep, main_plot
from .plots import load_results, theory_log10_rate, auto_plots, plot_sweep
from .store import Store, StoreBusy, canonical_json, short_hash

__all__ = [
    "SweepSpec",
    "SweepError",
    "SweepConflict",
    "SweepSummary",
    "CheckResult",
    "Plan",
    "load_spec",
    "plan_points",
    "point_config",
    "derive_seed",
    "config_hash",
    "check_store",
    "run_sweep",
    "make_runner",
    "headline",
    "write_table",
    "read_table",
    "load_results",
    "theory_log10_rate",
    "auto_plots",
    "plot_sweep",
    "main_sweep",
    "main_plot",
]
