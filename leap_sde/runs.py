r"""Results as data: load a result folder (:func:`load_run`) or a sweep (:func:`load_sweep`) back into the
result classes and pandas DataFrames, and compare two runs (:func:`compare_runs`).

The on-disk format (key names, status codes, schema versions) is documented in ``docs/results-format.md``;
:data:`SCHEMA_VERSION` is the version written now.  Folders written by leap_sde 0.1 (schema 1: no
``schema_version`` entry) load as well; what 0.1 did not store is missing (NaN positions of the escape back,
no versions or timings).

Comparing two runs (:func:`compare_runs`)
-----------------------------------------
For each compared pair of σ values, with ``d_a, d_b`` escapes in total observed times (exposures) ``T_a, T_b``
(the censored exponential MLE is ``λ̂ = d/T``, :func:`leap_sde.exponential_rate`, docs/theory.md §6.1):

* **Rate ratio** ``R = λ_a/λ_b``, estimated by ``R̂ = (d_a/T_a)/(d_b/T_b)``.  Its CI is the exact conditional
  binomial interval: given ``n = d_a + d_b``, ``d_a ~ Binomial(n, π)`` with ``π = λ_a T_a/(λ_a T_a + λ_b T_b)``
  (Przyborowski & Wilenski, Biometrika 31, 313, 1940), so the Clopper–Pearson interval ``[π_L, π_U]`` for
  ``π`` (Clopper & Pearson, Biometrika 26, 404, 1934),

  .. math:: π_L = B^{-1}(α/2;\, d_a, d_b + 1), \qquad π_U = B^{-1}(1 − α/2;\, d_a + 1, d_b)

  (``B^{-1}`` the Beta quantile; ``π_L = 0`` for ``d_a = 0``, ``π_U = 1`` for ``d_b = 0``) maps to
  ``R ∈ [π_L/(1−π_L)·T_b/T_a,\; π_U/(1−π_U)·T_b/T_a]``.  The censored exponential likelihood
  ``λ^d e^{−λT}`` is that of a Poisson count ``d`` in exposure ``T``; for Poisson counts with fixed exposures
  the interval's coverage is at least the nominal one; with censoring at ``max_steps`` the exposure is random
  and the coverage is close to nominal (tests/test_runs.py measures it).  ``rate_pvalue`` is the exact
  conditional test of ``R = 1`` (two-sided binomial test of ``d_a`` against ``π_0 = T_a/(T_a + T_b)``).
* **Log-rank test** of equal survival functions (``scipy.stats.logrank``: Mantel 1966; Peto & Peto 1972),
  nonparametric, so it holds without the exponential law; diverged particles are censored at their
  divergence (as in the Kaplan–Meier curves).
* **Config diff**: the dotted keys whose resolved values differ.

σ values: two runs with one σ each are compared with each other (whatever the σ); runs with several σ are
compared σ by σ for the σ values present in both (matched to 1e-12 relative); ``sigma=`` picks one σ (present
in both) or a pair ``(σ_a, σ_b)``.  Runs without a common σ need ``sigma=``.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .ams import AMSResult, AMSRun
from .simulate import EscapeResult, Status

__all__ = ["SCHEMA_VERSION", "STATUS_NAMES", "SavedRun", "RunMeta", "load_run", "SavedSweep", "load_sweep",
           "RateComparison", "RunComparison", "compare_runs", "compare_results", "write_comparison", "config_diff", "escape_arrays", "result_provenance",
           "rate_ratio_ci"]

#: version of the result folder format written now (1: leap_sde 0.1, which wrote no version entry)
SCHEMA_VERSION = 2
#: status code → name (the :class:`~leap_sde.Status` members, lower case); the npz stores this legend
STATUS_NAMES = {int(s): s.name.lower() for s in Status}
NPZ_NAME = "escape_times.npz"
RESULT_NAME = "result.json"
CONFIG_NAME = "config.toml"

#: what each npz key holds (``{i}``: index of the run, in the order of the ``sigma`` array)
NPZ_KEYS = {
    "schema_version": "() int64: version of this format",
    "status_codes": "(3,) int8: the status codes used in status_{i} ...",
    "status_names": "(3,) str: their names (escaped: exit condition met; censored: still inside at max_steps "
                    "or at an interrupt; diverged: state became non-finite)",
    "metadata": "() str: JSON with format, schema_version, status legend, this key list, method, n_runs",
    "sigma": "(R,) float64: the LEAP sigma of run i",
    "steps_{i}": "(N,) int64: steps until exit, censoring or divergence",
    "times_{i}": "(N,) float64: the same in continuous time t = sum of the scheduled rates",
    "status_{i}": "(N,) int8: status code of each particle",
    "exit_points_{i}": "(N, d) float64: final positions (the exit point of escaped particles)",
    "unstable_{i}": "(N,) bool, optional: escapes while GD's step was linearly unstable at the start minimum",
    "basin_steps_{i}": "(N, b) int64, optional: steps spent in each basin (split of coordinate 0)",
    "basin_edges_{i}": "(b-1,) float64, optional: the basin edges on coordinate 0",
    "back_steps_{i}, back_times_{i}, back_status_{i}, back_exit_points_{i}, back_unstable_{i}":
        "the same for the escape back (run.preference)",
}


# ============================================================================================ writing
def escape_arrays(out) -> dict:
    """The arrays of ``escape_times.npz`` for an :class:`~leap_sde.experiment.ExperimentOutput` (keys in
    :data:`NPZ_KEYS`); AMS runs have no per-particle arrays (their estimates are in result.json)."""
    arrays = {}
    method = "simulate"
    for i, r in enumerate(out.runs):
        if isinstance(r.escape, AMSResult):
            method = "ams"
            continue
        for prefix, res in (("", r.escape), ("back_", r.reverse)):
            if res is None or isinstance(res, AMSResult):
                continue
            arrays[f"{prefix}steps_{i}"] = res.steps
            arrays[f"{prefix}times_{i}"] = res.times
            arrays[f"{prefix}status_{i}"] = res.status
            arrays[f"{prefix}exit_points_{i}"] = res.positions
            if res.unstable is not None:
                arrays[f"{prefix}unstable_{i}"] = res.unstable
            if res.basin_steps is not None:
                arrays[f"{prefix}basin_steps_{i}"] = res.basin_steps
                arrays[f"{prefix}basin_edges_{i}"] = np.asarray(res.basin_edges, dtype=np.float64)
    arrays["sigma"] = np.array([r.sigma for r in out.runs], dtype=np.float64)
    codes = sorted(STATUS_NAMES)
    arrays["schema_version"] = np.int64(SCHEMA_VERSION)
    arrays["status_codes"] = np.array(codes, dtype=np.int8)
    arrays["status_names"] = np.array([STATUS_NAMES[c] for c in codes])
    arrays["metadata"] = np.array(json.dumps({
        "format": "leap_sde escape times", "schema_version": SCHEMA_VERSION, "method": method,
        "n_runs": len(out.runs), "status_codes": {str(c): STATUS_NAMES[c] for c in codes}, "keys": NPZ_KEYS,
        "documentation": "docs/results-format.md"}))
    return arrays


def result_provenance(out) -> dict:
    """The result.json entries added in schema 2: ``schema_version``, ``config`` (the resolved config),
    ``provenance`` (versions, git commit, command line, machine) and ``timings_s`` (wall time per phase)."""
    from ._provenance import provenance

    runs = []
    for r in out.runs:
        t = {"leap.sigma": r.sigma, "escape": float(r.escape.wall_time)}
        if r.reverse is not None:
            t["escape_back"] = float(r.reverse.wall_time)
        if r.occupation is not None:
            t["occupation"] = float(r.occupation.wall_time)
        runs.append(t)
    return {"schema_version": SCHEMA_VERSION, "config": out.config, "provenance": provenance(),
            "timings_s": {"total": float(out.wall_time), "runs": runs}}


# ============================================================================================ frames
def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        raise ImportError("DataFrames need pandas: pip install pandas") from None
    return pd


def _status_categorical(status):
    """The status codes as a categorical of their names (an unknown code becomes ``code <n>``)."""
    pd = _pandas()
    names = [STATUS_NAMES[c] for c in sorted(STATUS_NAMES)]
    status = np.asarray(status, dtype=np.int64).ravel()
    table = np.full(max(STATUS_NAMES) + 1, -1, dtype=np.int64)
    for j, c in enumerate(sorted(STATUS_NAMES)):
        table[c] = j
    known = (status >= 0) & (status < table.size)
    codes = np.where(known, table[np.clip(status, 0, table.size - 1)], -1)
    unknown = sorted({int(s) for s in status[codes < 0]})
    for j, c in enumerate(unknown):
        codes[status == c] = len(names) + j
    return pd.Categorical.from_codes(codes, categories=names + [f"code {c}" for c in unknown])


def escape_frame(res: EscapeResult):
    """One row per particle: ``particle``, ``status`` (categorical: escaped / censored / diverged),
    ``steps``, ``time``, the final position ``x0 … x{d-1}`` (the exit point of escaped particles; NaN where
    not stored), ``unstable`` where recorded, ``basin`` (basin index of the final position, coordinate 0
    split at ``basin_edges``) and ``steps_in_basin_{k}`` where basins were recorded."""
    pd = _pandas()
    n = res.n_particles
    cols = {"particle": np.arange(n, dtype=np.int64), "status": _status_categorical(res.status),
            "steps": np.asarray(res.steps, dtype=np.int64), "time": np.asarray(res.times, dtype=np.float64)}
    pos = np.asarray(res.positions, dtype=np.float64).reshape(n, -1)
    for j in range(pos.shape[1]):
        cols[f"x{j}"] = pos[:, j]
    if res.unstable is not None:
        cols["unstable"] = np.asarray(res.unstable, dtype=bool)
    edges = np.asarray(res.basin_edges, dtype=np.float64).ravel()
    if edges.size and pos.shape[1]:
        # the simulation's rule (_kernels.basin_index): the number of edges strictly below x[0]
        b = pd.array(np.searchsorted(np.sort(edges), pos[:, 0], side="left"), dtype="Int64")
        b[~np.isfinite(pos[:, 0])] = pd.NA  # position not stored
        cols["basin"] = b
    if res.basin_steps is not None:
        for k in range(res.basin_steps.shape[1]):
            cols[f"steps_in_basin_{k}"] = np.asarray(res.basin_steps[:, k], dtype=np.int64)
    return pd.DataFrame(cols)


def ams_frame(res: AMSResult):
    """One row per independent AMS run: ``ams_run`` and the :class:`~leap_sde.ams.AMSRun` fields."""
    pd = _pandas()
    names = [f for f in AMSRun.__dataclass_fields__]
    return pd.DataFrame({"ams_run": np.arange(len(res.runs), dtype=np.int64),
                         **{f: [getattr(r, f) for r in res.runs] for f in names}})


def _frame(res):
    return ams_frame(res) if isinstance(res, AMSResult) else escape_frame(res)


# ============================================================================================ loading
@dataclass(frozen=True)
class RunMeta:
    """What a result folder records besides the results (None where the folder's schema has no such entry).

    ``versions``: {package: version}; ``git``: commit / describe / dirty state of the source checkout (None
    when not run from one); ``command``: the command line; ``machine``: core counts and platform;
    ``timings_s``: wall time per phase (``total`` and per σ: escape, escape_back, occupation)."""

    schema_version: int
    version: Optional[str]
    seed: Optional[int]
    wall_time_s: Optional[float]
    interrupted: bool
    warnings: tuple
    versions: Optional[dict] = None
    git: Optional[dict] = None
    command: Optional[list] = None
    cwd: Optional[str] = None
    machine: Optional[dict] = None
    timings_s: Optional[dict] = None


@dataclass(frozen=True)
class SavedRun:
    """A result folder loaded back (:func:`load_run`).

    ``config``: the resolved config; ``sigmas``: the LEAP σ of each run; ``results``: one result per σ (an
    :class:`~leap_sde.EscapeResult`, or an :class:`~leap_sde.AMSResult` for ``run.method = "ams"``), the
    classes :func:`leap_sde.simulate` / :func:`leap_sde.ams` return; ``reverse``: the escape back per σ
    (``run.preference``) or None; ``summary``: result.json as read; ``meta``: :class:`RunMeta`."""

    path: Optional[Path]
    config: dict
    sigmas: tuple
    results: tuple
    reverse: tuple
    summary: dict
    meta: RunMeta

    def __len__(self) -> int:
        return len(self.results)

    def result(self, sigma: float, *, which: str = "escape"):
        """The result of the run with LEAP σ ``sigma`` (``which``: 'escape' or 'escape_back')."""
        i = self._index(sigma)
        return self._pick(which)[i]

    def _index(self, sigma) -> int:
        for i, s in enumerate(self.sigmas):
            if _same_sigma(s, sigma):
                return i
        raise KeyError(f"sigma: this run has σ in {list(self.sigmas)}, got {sigma}")

    def _pick(self, which):
        if which == "escape":
            return self.results
        if which == "escape_back":
            return self.reverse
        raise ValueError(f"which must be 'escape' or 'escape_back', got {which!r}")

    def to_frame(self, *, which: str = "escape"):
        """The per-particle frames of every σ stacked (:meth:`EscapeResult.to_frame`), with the columns
        ``run`` (index of the σ) and ``leap.sigma`` first; AMS runs give one row per AMS run."""
        pd = _pandas()
        frames = []
        for i, (s, res) in enumerate(zip(self.sigmas, self._pick(which))):
            if res is None:
                continue
            f = _frame(res)
            f.insert(0, "leap.sigma", float(s))
            f.insert(0, "run", i)
            frames.append(f)
        if not frames:
            raise ValueError(f"which={which!r}: this run has no such results"
                             + (" (run.preference was off)" if which == "escape_back" else ""))
        out = pd.concat(frames, ignore_index=True)
        if "status" in out and not isinstance(out["status"].dtype, pd.CategoricalDtype):
            # concat gives plain strings when the frames' categories differ (an unknown status code)
            names = list(STATUS_NAMES.values())
            extra = sorted(set(out["status"].astype(str)) - set(names))
            out["status"] = out["status"].astype(str).astype(pd.CategoricalDtype(names + extra))
        return out

    def to_parquet(self, path, *, which: str = "escape") -> Path:
        """Write :meth:`to_frame` as Parquet (needs pyarrow: ``pip install pyarrow``)."""
        return _to_parquet(self.to_frame(which=which), path)


def _same_sigma(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-300)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"path: {path.parent} has no {path.name} (not a leap-sde result folder?)") from None
    except ValueError as e:
        raise ValueError(f"path: {path} is not valid JSON ({e})") from None


def _load_config(folder: Path, summary: dict) -> dict:
    if isinstance(summary.get("config"), dict):
        return summary["config"]
    from .config import ConfigError, load_toml, resolve

    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"path: {folder} has no {CONFIG_NAME} and its {RESULT_NAME} holds no config")
    raw = load_toml(path)
    try:
        return resolve(raw)
    except ConfigError as e:  # a 0.1 config the current schema refuses: keep it as written
        warnings.warn(f"{path}: resolved config not available ({e}); .config is the file as written", UserWarning,
                      stacklevel=3)
        return raw


def _run_blocks(summary: dict) -> list:
    if isinstance(summary.get("runs"), list):
        return summary["runs"]
    return [summary]


def _run_warnings(summary, sigma, label):
    head = f"σ = {sigma:g}, {label}: "
    return tuple(w[len(head):] for w in summary.get("warnings", ()) if isinstance(w, str) and w.startswith(head))


def _escape_from_npz(z, prefix, i, block, cfg, seed, sigma, summary, wall, dim, label) -> Optional[EscapeResult]:
    key = f"{prefix}steps_{i}"
    if key not in z:
        return None
    steps = np.asarray(z[key], dtype=np.int64)
    n = steps.size
    pos_key = f"{prefix}exit_points_{i}"
    positions = (np.asarray(z[pos_key], dtype=np.float64) if pos_key in z
                 else np.full((n, dim), np.nan))  # 0.1 did not store the escape back's positions
    block = block or {}
    max_steps = block.get("max_steps") or cfg.get("run", {}).get("max_steps") or int(steps.max(initial=0))
    edges_key = f"{prefix}basin_edges_{i}"
    return EscapeResult(
        status=np.asarray(z[f"{prefix}status_{i}"], dtype=np.int8), steps=steps,
        times=np.asarray(z[f"{prefix}times_{i}"], dtype=np.float64), positions=positions, max_steps=int(max_steps),
        eta=float(cfg.get("dynamics", {}).get("eta", math.nan)), seed_entropy=seed,
        basin_edges=np.asarray(z[edges_key], dtype=np.float64) if edges_key in z else np.zeros(0),
        basin_steps=np.asarray(z[f"{prefix}basin_steps_{i}"], dtype=np.int64) if f"{prefix}basin_steps_{i}" in z
        else None,
        interrupted=bool(block.get("interrupted", summary.get("interrupted", False))),
        wall_time=float(wall) if wall is not None else 0.0,
        warnings=_run_warnings(summary, sigma, label),
        unstable=np.asarray(z[f"{prefix}unstable_{i}"], dtype=bool) if f"{prefix}unstable_{i}" in z else None,
        exponential_law=bool(block.get("exponential_law", True)))


def _ams_from_block(block: dict, cfg, sigma, summary, wall, label) -> AMSResult:
    a = block.get("ams") or {}
    per_run = a.get("per_run")
    if per_run:
        runs = tuple(AMSRun(**r) for r in per_run)
    else:  # 0.1 stored only the runs' mean times: the other fields are NaN / -1
        runs = tuple(AMSRun(probability=math.nan, mean_steps=float(m), t1_first=math.nan, t_loop=math.nan,
                            t_reactive=math.nan, iterations=-1, work_steps=-1, extinct=False)
                     for m in a.get("per_run_mean_steps", ()))

    def pair(v):
        return tuple(float(x) for x in v) if v is not None else (math.nan, math.nan)

    return AMSResult(
        mean_steps=float(block["mean_steps"]), mean_steps_ci=pair(block.get("mean_steps_ci")),
        mean_steps_se=float(block.get("mean_steps_se") or math.nan), mean_time=float(block["mean_time"]),
        mean_time_ci=pair(block.get("mean_time_ci")), rate=float(block["rate_per_time"]),
        rate_ci=pair(block.get("rate_per_time_ci")), probability=float(a.get("probability", math.nan)),
        probability_ci=pair(a.get("probability_ci")), work_steps=int(a.get("work_steps", -1)),
        iterations=int(a.get("iterations", -1)), runs=runs, levels=tuple(a.get("levels", ())),
        eta=float(cfg.get("dynamics", {}).get("eta", math.nan)), n_replicas=int(a.get("replicas", 0)),
        wall_time=float(wall) if wall is not None else 0.0, warnings=_run_warnings(summary, sigma, label))


def load_run(path) -> SavedRun:
    """Load the result folder ``path`` (as ``leap-sde simulate`` writes it; ``path`` may also name its
    result.json or escape_times.npz) into a :class:`SavedRun`.

    Each σ's escape (and escape back) becomes the result class the run produced, rebuilt from
    escape_times.npz and result.json: per-particle ``status``/``steps``/``times``/final ``positions``,
    ``max_steps``, ``eta``, the seed, ``interrupted``, the warnings.  Not stored, hence not rebuilt: the
    occupation run's arrays (its summary is in ``summary``) and snapshots.  Raises FileNotFoundError naming
    the missing file, ValueError for a folder of a newer schema than :data:`SCHEMA_VERSION`."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"path: {path} is not a folder")
    summary = _read_json(folder / RESULT_NAME)
    schema = int(summary.get("schema_version", 1))
    if schema > SCHEMA_VERSION:
        raise ValueError(f"path: {folder} was written with result schema {schema}; this leap_sde "
                         f"({_version()}) reads schema <= {SCHEMA_VERSION}: upgrade leap_sde")
    cfg = _load_config(folder, summary)
    blocks = _run_blocks(summary)
    npz_path = folder / NPZ_NAME
    z = {}
    if npz_path.is_file():
        with np.load(npz_path, allow_pickle=False) as f:
            z = {k: f[k] for k in f.files}
    if "sigma" in z:
        sigmas = tuple(float(s) for s in np.asarray(z["sigma"]).ravel())
    else:
        sigmas = tuple(float(b.get("leap.sigma", math.nan)) for b in blocks)
    if len(blocks) != len(sigmas):
        raise ValueError(f"path: {folder}: {RESULT_NAME} lists {len(blocks)} runs, {NPZ_NAME} {len(sigmas)}")
    timings = (summary.get("timings_s") or {}).get("runs") or [{} for _ in sigmas]
    dim = next((np.asarray(v).shape[1] for k, v in z.items() if k.startswith("exit_points_")
                and np.asarray(v).ndim == 2), 1)
    seed = summary.get("seed")
    results, reverse = [], []
    for i, (s, b) in enumerate(zip(sigmas, blocks)):
        t = timings[i] if i < len(timings) else {}
        esc = b.get("escape") or {}
        if esc.get("method") == "ams":
            results.append(_ams_from_block(esc, cfg, s, summary, t.get("escape"), "escape"))
            back = b.get("escape_back")
            reverse.append(_ams_from_block(back, cfg, s, summary, t.get("escape_back"), "escape back")
                           if back else None)
            continue
        res = _escape_from_npz(z, "", i, esc, cfg, seed, s, summary, t.get("escape"), dim, "escape")
        if res is None:
            raise FileNotFoundError(f"path: {npz_path} has no steps_{i} (σ = {s:g}); the folder is incomplete")
        results.append(res)
        reverse.append(_escape_from_npz(z, "back_", i, b.get("escape_back"), cfg, seed, s, summary,
                                        t.get("escape_back"), dim, "escape back"))
    prov = summary.get("provenance") or {}
    meta = RunMeta(schema_version=schema, version=summary.get("version"), seed=seed,
                   wall_time_s=summary.get("wall_time_s"), interrupted=bool(summary.get("interrupted", False)),
                   warnings=tuple(summary.get("warnings", ())), versions=prov.get("versions"), git=prov.get("git"),
                   command=prov.get("command"), cwd=prov.get("cwd"), machine=prov.get("machine"),
                   timings_s=summary.get("timings_s"))
    return SavedRun(path=folder, config=cfg, sigmas=sigmas, results=tuple(results), reverse=tuple(reverse),
                    summary=summary, meta=meta)


def _version():
    from . import __version__

    return __version__


def _to_parquet(frame, path) -> Path:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("to_parquet needs pyarrow, an optional dependency: pip install pyarrow "
                          "(or pip install 'leap_sde[parquet]')") from None
    from ._io import atomic_write_bytes
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


# ============================================================================================ sweeps
@dataclass(frozen=True)
class SavedSweep:
    """A sweep folder loaded back (:func:`load_sweep`): ``spec`` (the sweep as last run), ``names`` (the swept
    parameters), ``rows`` (one dict per finished point, plan order: ``key``, the parameters, the headline
    numbers of :data:`leap_sde.sweep.ROW_FIELDS`, ``path``)."""

    path: Path
    spec: object
    names: tuple
    rows: tuple

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self):
        """One row per point: ``key``, the swept parameters, the headline numbers, ``path`` (relative to the
        sweep folder).  List values become one plain column per element, ``name[i]`` (nested:
        ``name[i][j]``), e.g. ``init.x0[0]``, ``basin_fractions[1]``: no cell holds a list or JSON."""
        from .sweep.run import ROW_FIELDS, flat_columns, flatten_value

        pd = _pandas()

        groups = ["key", *self.names, *ROW_FIELDS, "path"]
        cols = [c for g in groups for c in flat_columns(g, [r.get(g) for r in self.rows])]
        data = {c: [] for c in cols}
        for r in self.rows:
            flat = {}
            for g in groups:
                flat.update(flatten_value(g, r.get(g)))
            for c in cols:
                data[c].append(flat.get(c))
        return _numeric(pd.DataFrame(data, columns=cols))

    def to_parquet(self, path) -> Path:
        """Write :meth:`to_frame` as Parquet (needs pyarrow: ``pip install pyarrow``)."""
        return _to_parquet(self.to_frame(), path)

    def run(self, point) -> SavedRun:
        """:func:`load_run` of one point (its key, or its index in ``rows``)."""
        if isinstance(point, (int, np.integer)) and not isinstance(point, bool):
            point = self.rows[int(point)]["key"]
        return load_run(self.path / "points" / str(point))


def _numeric(frame):
    """Object columns holding only numbers / None become float (None → NaN); others stay as they are."""
    for c in frame.columns:
        if frame[c].dtype == object:
            vals = [v for v in frame[c] if v is not None]
            if vals and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                if all(isinstance(v, int) for v in vals) and len(vals) == len(frame):
                    frame[c] = frame[c].astype("int64")
                else:
                    frame[c] = frame[c].astype("float64")
    return frame


def load_sweep(path) -> SavedSweep:
    """Load the sweep folder ``path`` (as ``leap-sde sweep`` writes it) into a :class:`SavedSweep`.

    The rows come from the store's results log (``rows.log``, checked against ``index.log``), in the plan
    order of ``sweep.toml``; results.csv (derived from them) is not read, so folders of 0.1, whose
    results.csv had JSON cells, load the same way."""
    from .sweep.spec import Plan, load_spec
    from .sweep.store import Store

    d = Path(path)
    if not (d / "sweep.toml").is_file():
        raise FileNotFoundError(f"path: {d} has no sweep.toml (not a leap-sde sweep folder?)")
    spec = load_spec(d / "sweep.toml")
    plan = Plan(spec)
    store = Store(d)
    recs = store.load_rows(store.load_index())
    rows = []
    for k in plan.keys:
        rec = recs.get(k)
        if rec is None:
            continue
        rows.append({"key": k, **rec.get("params", {}), **rec.get("row", {}), "path": f"points/{k}"})
    return SavedSweep(path=d, spec=spec, names=tuple(plan.names), rows=tuple(rows))


# ============================================================================================ comparing
def rate_ratio_ci(d_a: int, t_a: float, d_b: int, t_b: float, *, confidence: float = 0.95) -> tuple:
    """``(R̂, (R_L, R_U), p)``: the rate ratio ``(d_a/t_a)/(d_b/t_b)``, its exact conditional binomial CI and the
    exact conditional p-value of ``R = 1`` (formulas and sources in the module docstring).  ``R̂`` is NaN
    when there is no escape at all, inf when only run A has escapes."""
    from scipy import stats

    d_a, d_b = int(d_a), int(d_b)
    if d_a < 0 or d_b < 0:
        raise ValueError(f"d_a, d_b: escape counts must be >= 0, got {d_a}, {d_b}")
    if not (t_a > 0 and t_b > 0 and math.isfinite(t_a) and math.isfinite(t_b)):
        raise ValueError(f"t_a, t_b: exposures must be finite and > 0, got {t_a}, {t_b}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = d_a + d_b
    alpha = 1 - confidence
    if n == 0:
        return math.nan, (0.0, math.inf), 1.0
    ratio = (d_a / t_a) / (d_b / t_b) if d_b else math.inf
    p_lo = float(stats.beta.ppf(alpha / 2, d_a, d_b + 1)) if d_a > 0 else 0.0
    p_hi = float(stats.beta.ppf(1 - alpha / 2, d_a + 1, d_b)) if d_b > 0 else 1.0
    scale = t_b / t_a
    lo = p_lo / (1 - p_lo) * scale
    hi = p_hi / (1 - p_hi) * scale if p_hi < 1 else math.inf
    p = float(stats.binomtest(d_a, n, t_a / (t_a + t_b)).pvalue)
    return float(ratio), (float(lo), float(hi)), p


@dataclass(frozen=True)
class RateComparison:
    """One compared pair: run A at ``sigma_a`` against run B at ``sigma_b`` (``unit``: 'steps' or 'time').

    ``rate_a``/``rate_b``: the censored exponential MLEs (:class:`~leap_sde.RateEstimate`); ``rate_ratio``
    ``λ_a/λ_b`` with ``rate_ratio_ci`` and ``rate_pvalue`` (exact conditional binomial, None where a run has
    no exponential exit law); ``logrank_statistic`` (signed z; negative: A escapes later than expected,
    i.e. fewer escapes than under equal survival) and ``logrank_pvalue`` (two-sided; None without escapes);
    ``note`` says why a number is missing."""

    sigma_a: float
    sigma_b: float
    unit: str
    confidence: float
    rate_a: object
    rate_b: object
    rate_ratio: Optional[float]
    rate_ratio_ci: Optional[tuple]
    rate_pvalue: Optional[float]
    logrank_statistic: Optional[float]
    logrank_pvalue: Optional[float]
    note: Optional[str] = None

    def as_dict(self) -> dict:
        return {"sigma_a": self.sigma_a, "sigma_b": self.sigma_b, "unit": self.unit, "confidence": self.confidence,
                "rate_a": self.rate_a.as_dict(), "rate_b": self.rate_b.as_dict(), "rate_ratio": self.rate_ratio,
                "rate_ratio_ci": list(self.rate_ratio_ci) if self.rate_ratio_ci is not None else None,
                "rate_pvalue": self.rate_pvalue, "logrank_statistic": self.logrank_statistic,
                "logrank_pvalue": self.logrank_pvalue, "note": self.note}


@dataclass(frozen=True)
class RunComparison:
    """:func:`compare_runs`'s answer: ``pairs`` (one :class:`RateComparison` per compared σ pair),
    ``config_diff`` (``{dotted key: (value in A, value in B)}`` of the keys whose resolved values differ;
    a key missing on one side has the value None there), the two runs and their labels."""

    a: SavedRun
    b: SavedRun
    labels: tuple
    pairs: tuple
    config_diff: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"a": str(self.a.path) if self.a.path else None, "b": str(self.b.path) if self.b.path else None,
                "labels": list(self.labels), "pairs": [p.as_dict() for p in self.pairs],
                "config_diff": {k: list(v) for k, v in self.config_diff.items()}}

    def text(self) -> str:
        """A plain-text report (lines of at most 80 characters, the config values aside)."""
        la, lb = self.labels
        lines = [f"A = {la}", f"B = {lb}"]
        for p in self.pairs:
            u = "step" if p.unit == "steps" else "unit time"
            pct = f"{p.confidence:.0%}"
            lines += ["", f"σ_A = {p.sigma_a:g} vs σ_B = {p.sigma_b:g}:"]
            for name, r in (("A", p.rate_a), ("B", p.rate_b)):
                n = r.n_escaped + r.n_censored + r.n_diverged
                lines.append(f"  {name}: {r.n_escaped}/{n} escaped, rate/{u} {r.rate:.4g} "
                             f"[{r.rate_ci[0]:.4g}, {r.rate_ci[1]:.4g}]")
            if p.rate_ratio is not None:
                lo, hi = p.rate_ratio_ci
                lines.append(f"  rate ratio A/B {p.rate_ratio:.4g} [{lo:.4g}, {hi:.4g}] ({pct}, exact "
                             f"conditional)")
                lines.append(f"  equal rates: p = {p.rate_pvalue:.3g} (exact conditional binomial test)")
            if p.logrank_pvalue is not None:
                lines.append(f"  log-rank test: z = {p.logrank_statistic:.3f}, p = {p.logrank_pvalue:.3g}")
            if p.note:
                lines.append(f"  note: {p.note}")
        lines += ["", "config differences (A -> B):" if self.config_diff else "config: no differences"]
        for k, (va, vb) in self.config_diff.items():
            lines.append(f"  {k}: {_show(va)} -> {_show(vb)}")
        return "\n".join(lines)

    def plot(self, *, ax=None):
        """Overlaid Kaplan–Meier survival curves of the compared pairs; returns the Figure."""
        results, labels = [], []
        for p in self.pairs:
            for run, s, lab in ((self.a, p.sigma_a, "A"), (self.b, p.sigma_b, "B")):
                res = run.result(s)
                if isinstance(res, EscapeResult):
                    results.append(res)
                    labels.append(f"{lab}: σ = {s:g}")
        return _survival_figure(results, labels, ax=ax, unit=self.pairs[0].unit if self.pairs else "steps")


def write_comparison(cmp: RunComparison, out_dir) -> Path:
    """Write ``comparison.json`` (:meth:`RunComparison.as_dict`) and the overlaid survival figure
    (survival.png, .pdf, .svg) into ``out_dir``, each atomically."""
    import io

    from ._io import atomic_write_bytes, atomic_write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "comparison.json", cmp.as_dict())
    fig = cmp.plot()
    from . import plots

    if hasattr(plots, "save_figure"):  # the package's writer (reproducible PDF/SVG metadata)
        plots.save_figure(fig, out_dir / "survival", formats=("png", "pdf", "svg"))
        return out_dir
    for fmt in ("png", "pdf", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120)
        atomic_write_bytes(out_dir / f"survival.{fmt}", buf.getvalue())
    return out_dir


def _show(v) -> str:
    return "(absent)" if v is None else json.dumps(v, ensure_ascii=False)


def _survival_figure(results, labels, *, ax=None, unit="steps"):
    """:func:`leap_sde.plots.survival_figure` (the package's survival figure for a list of results) where
    this version has it, else a plain Kaplan–Meier overlay (log y axis, Greenwood bands) drawn here."""
    from . import plots

    fn = getattr(plots, "survival_figure", None)
    if fn is not None:
        return fn(results, labels, ax=ax, unit=unit)
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    lowest = 1.0
    for k, (res, lab) in enumerate(zip(results, labels)):
        c = f"C{k}"
        km = res.survival(unit=unit)
        floor = 0.5 / res.n_particles
        lowest = min(lowest, floor)
        if km.t.size == 0:
            tmax = float(np.max(res._durations(unit))) if res.n_particles else 1.0
            ax.plot([0, tmax], [1, 1], color=c, label=f"{lab} (0/{res.n_particles} escaped)")
            continue
        ok = km.survival > 0
        t = np.concatenate([[0.0], km.t[ok]])
        s = np.concatenate([[1.0], km.survival[ok]])
        if ok.all():  # survivors are censored at the end of the run: the curve runs on to there
            t, s = np.append(t, float(np.max(res._durations(unit)))), np.append(s, s[-1])
        ax.step(t, s, where="post", color=c, label=f"{lab} ({res.n_escaped}/{res.n_particles} escaped)")
        ax.fill_between(km.t[ok], np.maximum(km.lower[ok], floor), km.upper[ok], step="post", color=c, alpha=0.2)
    ax.set_yscale("log")
    ax.set_ylim(lowest, 1.05)
    ax.set_xlabel("steps" if unit == "steps" else "time")
    ax.set_ylabel("P(not escaped)")
    ax.set_title("Kaplan–Meier survival (bands: Greenwood 95%)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _flat_config(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_config(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(a: dict, b: dict) -> dict:
    """``{dotted key: (a's value, b's value)}`` for the keys whose values differ (None: absent on that side)."""
    fa, fb = _flat_config(a), _flat_config(b)
    out = {}
    for k in list(fa) + [k for k in fb if k not in fa]:
        va, vb = fa.get(k), fb.get(k)
        if _norm(va) != _norm(vb):
            out[k] = (va, vb)
    return out


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float, np.number)):
        return float(v)
    return v


def _as_run(x) -> SavedRun:
    if isinstance(x, SavedRun):
        return x
    if isinstance(x, (str, Path)):
        return load_run(x)
    raise TypeError(f"runs must be result folder paths or SavedRun objects (load_run), got {type(x).__name__}")


def _pairs(a: SavedRun, b: SavedRun, sigma):
    if sigma is not None:
        if isinstance(sigma, (tuple, list)):
            if len(sigma) != 2:
                raise ValueError(f"sigma: one σ or a pair (σ_a, σ_b), got {sigma!r}")
            sa, sb = sigma
        else:
            sa = sb = sigma
        for run, s, name in ((a, sa, "A"), (b, sb, "B")):
            if not any(_same_sigma(s, x) for x in run.sigmas):
                raise ValueError(f"sigma: run {name} has σ in {list(run.sigmas)}, got {s}")
        return [(float(sa), float(sb))]
    if len(a.sigmas) == 1 and len(b.sigmas) == 1:
        return [(a.sigmas[0], b.sigmas[0])]
    common = [s for s in a.sigmas if any(_same_sigma(s, x) for x in b.sigmas)]
    if not common:
        raise ValueError(f"sigma: the runs have no σ in common (A: {list(a.sigmas)}, B: {list(b.sigmas)}); "
                         "choose one pair with sigma=(σ_a, σ_b) (CLI: --sigma A:B)")
    return [(s, next(x for x in b.sigmas if _same_sigma(s, x))) for s in common]


def compare_results(ra, rb, *, sigma_a: float = math.nan, sigma_b: float = math.nan, unit: str = "steps",
                    confidence: float = 0.95) -> RateComparison:
    """Compare two :class:`~leap_sde.EscapeResult` (e.g. straight from :func:`leap_sde.simulate`): rate ratio
    ``λ_a/λ_b`` with its exact conditional CI, the exact test of equal rates and the log-rank test (module
    docstring); ``sigma_a``/``sigma_b`` only label the answer."""
    if unit not in ("steps", "time"):
        raise ValueError(f"unit must be 'steps' or 'time', got {unit!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return _compare_pair(ra, rb, sigma_a, sigma_b, unit, confidence)


def _compare_pair(ra, rb, sa, sb, unit, confidence) -> RateComparison:
    from scipy import stats

    for r, name, s in ((ra, "A", sa), (rb, "B", sb)):
        if isinstance(r, AMSResult):
            raise ValueError(f"run {name} (σ = {s:g}) was computed with run.method = 'ams': it has no "
                             "per-particle escape times to compare; compare brute-force runs")
    ea, eb = ra.rate(unit=unit, confidence=confidence), rb.rate(unit=unit, confidence=confidence)
    notes = []
    ratio = ci = p_rate = None
    if ra.exponential_law and rb.exponential_law:
        ratio, ci, p_rate = rate_ratio_ci(ea.n_escaped, ea.exposure, eb.n_escaped, eb.exposure,
                                          confidence=confidence)
        if math.isnan(ratio):
            ratio = None
            notes.append("no escape in either run: the rate ratio is undefined")
    else:
        notes.append("a first passage without a barrier (exit.require_barrier = false) has no exponential exit "
                     "law: no rate ratio; the log-rank test still applies")
    z = p_lr = None
    if ea.n_escaped + eb.n_escaped > 0:
        ta, tb = ra._durations(unit), rb._durations(unit)
        res = stats.logrank(stats.CensoredData(uncensored=ta[ra.escaped], right=ta[~ra.escaped]),
                            stats.CensoredData(uncensored=tb[rb.escaped], right=tb[~rb.escaped]))
        z, p_lr = float(res.statistic), float(res.pvalue)
        if not math.isfinite(p_lr):
            z = p_lr = None
    else:
        notes.append("no escape in either run: no log-rank test")
    return RateComparison(sigma_a=float(sa), sigma_b=float(sb), unit=unit, confidence=confidence, rate_a=ea,
                          rate_b=eb, rate_ratio=ratio, rate_ratio_ci=ci, rate_pvalue=p_rate, logrank_statistic=z,
                          logrank_pvalue=p_lr, note="; ".join(notes) or None)


def compare_runs(a: Union[str, Path, SavedRun], b: Union[str, Path, SavedRun], *, sigma=None,
                 unit: str = "steps", confidence: float = 0.95) -> RunComparison:
    """Compare run A with run B (result folder paths or :func:`load_run` objects): for each compared σ pair
    the rate ratio ``λ_A/λ_B`` with its exact conditional CI, the exact test of equal rates and the log-rank
    test, plus the config diff (module docstring: formulas, sources and which σ are compared).

    ``sigma``: one σ present in both runs, or a pair ``(σ_a, σ_b)``; default: the single σ of each, or every
    σ the runs share.  ``unit``: 'steps' (rate per step) or 'time' (per unit of continuous time: differs
    from 'steps' when the runs' learning rates differ).  Only the forward escape is compared."""
    if unit not in ("steps", "time"):
        raise ValueError(f"unit must be 'steps' or 'time', got {unit!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ra, rb = _as_run(a), _as_run(b)
    pairs = tuple(_compare_pair(ra.result(sa), rb.result(sb), sa, sb, unit, confidence)
                  for sa, sb in _pairs(ra, rb, sigma))
    labels = tuple(str(r.path) if r.path is not None else name for r, name in ((ra, "A"), (rb, "B")))
    return RunComparison(a=ra, b=rb, labels=labels, pairs=pairs, config_diff=config_diff(ra.config, rb.config))

