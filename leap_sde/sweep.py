"""Parameter sweeps: many simulations from one SWEEP.toml, run on a local process pool or a Dask cluster, each
point's result kept in a crash-safe store (:mod:`leap_sde._store`), and their phase diagrams / Arrhenius plots.

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
* A SIGKILL loses at most the points in flight; torn index lines and half-written folders are detected.
* A finished point whose resolved config changed is refused (exit 2) unless ``--force`` recomputes it.
* ``--verify all`` re-hashes every finished point's files against its done.json (``auto``, the default, does
  so when the store holds at most 1000 points, and otherwise for the most recently written ones).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from ._io import atomic_write_text
from ._store import Store, StoreBusy, canonical_json, short_hash
from .config import SCHEMA, ConfigError, load_toml, resolve

__all__ = ["SweepSpec", "SweepError", "SweepConflict", "SweepSummary", "CheckResult", "Plan", "load_spec",
           "plan_points", "point_config", "derive_seed", "config_hash", "check_store", "run_sweep", "make_runner",
           "headline", "write_table", "read_table", "load_results", "theory_log10_rate", "auto_plots",
           "plot_sweep", "main_sweep", "main_plot"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FULL_VERIFY_MAX = 1000  # --verify auto: hash every finished point up to this many, else the recent ones
RECENT_VERIFY = 32
MAX_ATTEMPTS = 3  # a point whose worker died is resubmitted at most this often in total
TABLE_EVERY_S = 60.0

_TOP = ("sweep", "base", "grid", "points", "plot", "quick")
_SWEEP_KEYS = ("name", "seed", "replicates", "point_plots", "description")
_PLOT_KINDS = ("phase", "arrhenius", "preference", "line")
_PLOT_KEYS = ("kind", "x", "y", "by", "theory", "boundaries", "title", "name")
_THEORIES = ("none", "leap-xie", "xie", "kramers", "lyapunov")
_FORBIDDEN = {"run.seed": "the points' seeds are derived from [sweep] seed (use [sweep] replicates for repeats)",
              "run.threads": "set by the executor (--threads-per-point); results do not depend on it"}
REPLICATE = "replicate"


class SweepError(ValueError):
    """A sweep cannot run (bad spec, store in use, workers without leap_sde ...); exit code 2."""


class SweepConflict(SweepError):
    """Finished points whose config changed (rerun with ``--force`` to recompute them)."""


# ---------------------------------------------------------------------------------------------------------
# the sweep file
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep: ``axes`` are ``(name, values)`` in file order (values canonical: as the
    config resolves them), ``points`` the explicit points, ``plots`` the ``[[plot]]`` hints."""

    name: str
    base: dict
    axes: tuple
    points: tuple
    seed: int = 0
    point_plots: bool = True
    plots: tuple = ()
    description: str = ""

    @property
    def names(self) -> tuple:
        """All swept parameter names: explicit points' keys, then the grid axes."""
        first = []
        for p in self.points:
            for k in p:
                if k not in first:
                    first.append(k)
        return tuple(first) + tuple(n for n, _ in self.axes)

    @property
    def base_hash(self) -> str:
        return short_hash(canonical_json({"base": self.base, "seed": self.seed}))

    def to_toml_dict(self) -> dict:
        d = {"sweep": {"name": self.name, "seed": self.seed, "point_plots": self.point_plots}}
        if self.description:
            d["sweep"]["description"] = self.description
        grid = {n: list(v) for n, v in self.axes if n != REPLICATE}
        reps = dict(self.axes).get(REPLICATE)
        if reps is not None:
            d["sweep"]["replicates"] = len(reps)
        d["base"] = _drop_none(self.base)
        if grid:
            d["grid"] = grid
        if self.points:
            d["points"] = [dict(p) for p in self.points]
        if self.plots:
            d["plot"] = [dict(p) for p in self.plots]
        return d


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _flat_params(table, where: str) -> dict:
    """``{"leap.sigma": v}`` from quoted dotted keys or nested tables (``leap = {sigma = v}``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of \"section.key\" = value")
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, dict):
                    raise ConfigError(f"{where}: {k}.{k2} is nested too deep; use \"section.key\" names")
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    for name in out:
        _check_name(name, where)
    return out


def _check_name(name: str, where: str) -> None:
    if name == REPLICATE:
        raise ConfigError(f"{where}: {name!r} is reserved; use [sweep] replicates = N")
    if "." not in name:
        raise ConfigError(f"{where}: {name!r} is not a \"section.key\" name; sections: {', '.join(SCHEMA)}")
    section, key = name.split(".", 1)
    if section not in SCHEMA:
        raise ConfigError(f"{where}: unknown section in {name!r}; valid sections: {', '.join(SCHEMA)}")
    if key not in SCHEMA[section]:
        raise ConfigError(f"{where}: unknown key {name}; valid keys of [{section}]: {', '.join(SCHEMA[section])}")
    if name in _FORBIDDEN:
        raise ConfigError(f"{where}: {name} cannot be swept: {_FORBIDDEN[name]}")


def _with_params(base: dict, params: dict) -> dict:
    user = copy.deepcopy(base)
    for name, v in params.items():
        if name == REPLICATE:
            continue
        section, key = name.split(".", 1)
        user.setdefault(section, {})[key] = copy.deepcopy(v)
    return user


def _canonical_value(name: str, v, where: str):
    """The value as the config coerces it (so ``4`` and ``4.0`` are the same point); errors name the key.
    Combinations with the base are validated when a point's config is resolved (the first point up front, the
    others before they are submitted)."""
    from .config import coerce_value  # the schema's own coercion: one rule for configs and sweeps

    section, key = name.split(".", 1)
    try:
        return coerce_value(name, SCHEMA[section][key], copy.deepcopy(v))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_spec(path, *, quick: bool = False, overrides=()) -> SweepSpec:
    """Read and validate SWEEP.toml (``quick``: apply its ``[quick]`` table; ``overrides``: ``section.key=value``
    strings applied to ``[base]``).  Raises :class:`ConfigError` naming the offending key."""
    from .config import parse_override

    raw = load_toml(path)
    for k in raw:
        if k not in _TOP:
            raise ConfigError(f"{path}: unknown table [{k}]; valid: {', '.join(_TOP)}")
    if quick:
        q = raw.get("quick")
        if not isinstance(q, dict):
            raise ConfigError(f"{path}: --quick needs a [quick] table (base/grid/points/sweep overrides)")
        for k in q:
            if k not in ("base", "grid", "points", "sweep"):
                raise ConfigError(f"[quick]: unknown key {k!r}; valid: base, grid, points, sweep")
        raw = copy.deepcopy(raw)
        for k in ("base", "sweep"):
            if k in q:
                raw[k] = _merge(raw.get(k, {}), q[k])
        if "grid" in q:
            raw["grid"] = {**_flat_params(raw.get("grid", {}), "[grid]"), **_flat_params(q["grid"], "[quick.grid]")}
        if "points" in q:
            raw["points"] = q["points"]
    sw = raw.get("sweep", {})
    if not isinstance(sw, dict):
        raise ConfigError("[sweep] must be a table")
    for k in sw:
        if k not in _SWEEP_KEYS:
            raise ConfigError(f"unknown key sweep.{k}; valid keys of [sweep]: {', '.join(_SWEEP_KEYS)}")
    seed = sw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"sweep.seed: expected an integer >= 0, got {seed!r}")
    reps = sw.get("replicates", 1)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ConfigError(f"sweep.replicates: expected an integer >= 1, got {reps!r}")
    point_plots = sw.get("point_plots", True)
    if not isinstance(point_plots, bool):
        raise ConfigError(f"sweep.point_plots: expected true or false, got {point_plots!r}")
    name = sw.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"sweep.name: expected a non-empty string, got {name!r}")

    base = raw.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError("[base] must be a table of config sections ([base.landscape], [base.run], ...)")
    if overrides:
        base = _merge(base, _nest_overrides(parse_override(o) for o in overrides))
    for section, vals in base.items():
        if isinstance(vals, dict):
            for key in vals:
                if f"{section}.{key}" in _FORBIDDEN:
                    raise ConfigError(f"base: {section}.{key} cannot be set in a sweep: "
                                      f"{_FORBIDDEN[f'{section}.{key}']}")
    try:
        base_cfg = resolve(base, base={})  # the base alone must be a valid config (errors name the key)
    except ConfigError as e:
        raise ConfigError(f"[base]: {e}") from None

    grid = _flat_params(raw.get("grid", {}), "[grid]")
    axes = []
    for n, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"[grid] {n}: expected a non-empty list of values, got {vals!r}")
        canon = [_canonical_value(n, v, "[grid]") for v in vals]
        texts = [canonical_json(v) for v in canon]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"[grid] {n}: duplicate values in {vals!r}")
        axes.append((n, tuple(canon)))
    if reps > 1:
        axes.append((REPLICATE, tuple(range(reps))))
    pts_raw = raw.get("points", [])
    if not isinstance(pts_raw, list):
        raise ConfigError("[[points]] must be an array of tables")
    points = []
    for i, p in enumerate(pts_raw):
        fp = _flat_params(p, f"points[{i}]")
        if not fp:
            raise ConfigError(f"points[{i}]: empty point")
        clash = set(fp) & set(grid)
        if clash:
            raise ConfigError(f"points[{i}]: {sorted(clash)[0]} is also a [grid] axis")
        points.append({n: _canonical_value(n, v, f"points[{i}]") for n, v in fp.items()})
    names = set(grid) | {k for p in points for k in p}
    if isinstance(base_cfg["leap"]["sigma"], list) and "leap.sigma" not in names:
        raise ConfigError("leap.sigma: a sweep point runs one σ; put the list into [grid] \"leap.sigma\" = [...]")
    for n, vals in axes:
        if n == "leap.sigma" and any(isinstance(v, list) for v in vals):
            raise ConfigError("[grid] leap.sigma: each value must be one number (the grid makes the list)")
    first = {n: vals[0] for n, vals in axes}
    for i, p in enumerate(points or [{}]):  # each explicit point with the grid's first values must resolve
        try:
            resolve(_with_params(base, {**p, **first}), base={})
        except ConfigError as e:
            raise ConfigError(f"point {({**p, **first})}: {e}") from None
    plots = tuple(_check_plot(p, i, names) for i, p in enumerate(_as_list(raw.get("plot", []))))
    return SweepSpec(name=name, base=base, axes=tuple(axes), points=tuple(points), seed=seed,
                     point_plots=point_plots, plots=plots, description=str(sw.get("description", "")))


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _nest_overrides(triples) -> dict:
    out: dict = {}
    for s, k, v in triples:
        out.setdefault(s, {})[k] = v
    return out


def _check_plot(p, i, names) -> dict:
    where = f"plot[{i}]"
    if not isinstance(p, dict):
        raise ConfigError(f"{where}: expected a table")
    for k in p:
        if k not in _PLOT_KEYS:
            raise ConfigError(f"{where}: unknown key {k!r}; valid keys: {', '.join(_PLOT_KEYS)}")
    kind = p.get("kind")
    if kind not in _PLOT_KINDS:
        raise ConfigError(f"{where}.kind: must be one of {', '.join(_PLOT_KINDS)}, got {kind!r}")
    for k in ("y", "by") + (("x",) if kind != "arrhenius" else ()):
        if k in p and p[k] not in names:
            raise ConfigError(f"{where}.{k}: {p[k]!r} is not a swept parameter; swept: {', '.join(sorted(names))}")
    if kind == "arrhenius" and p.get("x", "B/eta") not in ("B/eta", "1/D"):
        raise ConfigError(f"{where}.x: for an Arrhenius plot must be 'B/eta' or '1/D', got {p.get('x')!r}")
    if kind in ("phase",) and ("x" not in p or "y" not in p):
        raise ConfigError(f"{where}: a phase diagram needs x and y (two swept parameters)")
    bounds = _as_list(p.get("boundaries", []))
    for b in bounds:
        if b not in ("mean-square", "almost-sure", "gd"):
            raise ConfigError(f"{where}.boundaries: {b!r} is not one of 'mean-square', 'almost-sure', 'gd'")
    if p.get("theory", "none") not in _THEORIES:
        raise ConfigError(f"{where}.theory: must be one of {', '.join(map(repr, _THEORIES))}, got {p['theory']!r}")
    return dict(p)


# ---------------------------------------------------------------------------------------------------------
# points, keys, seeds
# ---------------------------------------------------------------------------------------------------------
_MISSING = object()


class Plan:
    """The points of a sweep in order (explicit points, each crossed with the grid; first axis slowest).
    ``keys[i]`` is the first 16 hex digits of the SHA-256 of point ``i``'s canonical parameters
    (:meth:`canonical`); it names the point's folder."""

    def __init__(self, spec: SweepSpec):
        import hashlib

        self.spec = spec
        self.names = spec.names
        sha = hashlib.sha256
        self._values: list = []
        self.keys: list = []
        for g in list(spec.points) or [{}]:
            # the point's fixed parameters are axes of one value; keys are hashed in name-sorted order
            ax_names = list(g) + [n for n, _ in spec.axes]
            ax_vals = [[g[n]] for n in g] + [list(vals) for _, vals in spec.axes]
            ax_parts = [[f"{json.dumps(n)}:{canonical_json(v)}" for v in vals] for n, vals in zip(ax_names, ax_vals)]
            perm = sorted(range(len(ax_names)), key=ax_names.__getitem__)
            keys = [sha(("{" + ",".join(c) + "}").encode()).hexdigest()[:16]
                    for c in itertools.product(*[ax_parts[j] for j in perm])]
            if perm != sorted(perm):  # reorder from name-sorted product order to file order
                shape = [len(ax_parts[j]) for j in perm]
                order = np.arange(len(keys)).reshape(shape).transpose(np.argsort(perm)).ravel()
                keys = [keys[k] for k in order.tolist()]
            self.keys.extend(keys)
            vals = itertools.product(*ax_vals)
            pos = [ax_names.index(n) if n in ax_names else -1 for n in self.names]
            if pos == list(range(len(self.names))):
                self._values.extend(vals)
            else:
                self._values.extend(tuple(v[j] if j >= 0 else _MISSING for j in pos) for v in vals)
        if len(set(self.keys)) != len(self.keys):
            seen = set()
            for i, k in enumerate(self.keys):
                if k in seen:
                    raise ConfigError(f"duplicate point {self.params(i)} (listed twice in [[points]] x [grid])")
                seen.add(k)

    def __len__(self):
        return len(self.keys)

    def params(self, i: int) -> dict:
        return {n: v for n, v in zip(self.names, self._values[i]) if v is not _MISSING}

    def canonical(self, i: int) -> str:
        """Canonical JSON of the point's parameters (what its key and seed are hashed from)."""
        return canonical_json(self.params(i))


def plan_points(spec: SweepSpec) -> Plan:
    return Plan(spec)


def derive_seed(sweep_seed: int, canonical_params: str) -> int:
    """A point's ``run.seed``: ``SeedSequence([sweep_seed, *sha256(canonical params)])`` → 63-bit integer."""
    import hashlib

    d = hashlib.sha256(canonical_params.encode("utf-8")).digest()
    words = [int.from_bytes(d[i:i + 4], "little") for i in range(0, 32, 4)]
    state = np.random.SeedSequence([int(sweep_seed), *words]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def point_config(spec: SweepSpec, plan: Plan, i: int) -> dict:
    """The resolved config of point ``i`` (schema defaults ← [base] ← the point's parameters; derived seed)."""
    cfg = resolve(_with_params(spec.base, plan.params(i)), base={})
    if isinstance(cfg["leap"]["sigma"], list):
        raise ConfigError("leap.sigma: a sweep point runs one σ")
    cfg["run"]["seed"] = derive_seed(spec.seed, plan.canonical(i))
    return cfg


def config_hash(cfg: dict) -> str:
    """Hash of a resolved config, ``run.threads`` left out (it does not change results)."""
    c = dict(cfg)
    c["run"] = {k: v for k, v in cfg["run"].items() if k != "threads"}
    return short_hash(canonical_json(c))


# ---------------------------------------------------------------------------------------------------------
# the resume check
# ---------------------------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """What the store holds for a plan: indices into the plan."""

    done: list = field(default_factory=list)
    todo: list = field(default_factory=list)
    conflicts: list = field(default_factory=list)  # (i, differences text)
    corrupt: list = field(default_factory=list)  # (i, problem)
    adopted: list = field(default_factory=list)  # (i, record) complete folders without an index line
    rebased: list = field(default_factory=list)  # i: base changed, config did not
    missing: list = field(default_factory=list)  # i: index line but no folder
    n_orphans: int = 0
    n_verified: int = 0
    seconds: float = 0.0


def check_store(store: Store, spec: SweepSpec, plan: Plan, *, verify: str = "auto", entries=None) -> CheckResult:
    """Classify every planned point: finished (index line + folder, same config), to do, or conflicting.

    Cost: one read of the index, one listing of ``points/``, string comparisons per point; configs are resolved
    only for points whose sweep base changed and folders hashed only as ``verify`` asks.
    """
    t0 = time.perf_counter()
    if verify not in ("auto", "all", "recent", "none"):
        raise ValueError(f"verify must be 'auto', 'all', 'recent' or 'none', got {verify!r}")
    res = CheckResult()
    entries = store.load_index() if entries is None else entries
    listing = store.listing()
    base = spec.base_hash
    suspect = []
    for i, key in enumerate(plan.keys):
        line = entries.get(key)  # "key cfg base row"
        if line is not None and key in listing:
            if line[34:50] == base:
                res.done.append(i)
            else:
                suspect.append(i)
        elif key in listing:
            res.adopted.append((i, None))
        else:
            if line is not None:
                res.missing.append(i)
            res.todo.append(i)
    res.n_orphans = len(set(entries) - set(plan.keys))
    for i in suspect:  # the base table or seed changed: compare the point's resolved config
        key = plan.keys[i]
        try:
            cfg = point_config(spec, plan, i)
        except ConfigError as e:
            res.conflicts.append((i, f"the new config is invalid: {e}"))
            continue
        if config_hash(cfg) == entries.entry(key).cfg:
            res.done.append(i)
            res.rebased.append(i)
        else:
            res.conflicts.append((i, _config_diff(store, key, cfg)))
    adopted = []
    for i, _ in res.adopted:  # complete folders written just before a crash, not yet indexed
        key = plan.keys[i]
        problem = store.verify(key)
        done = store.read_done(key) if problem is None else None
        if problem is None and isinstance(done, dict) and "record" in done:
            try:
                cfg_h = config_hash(point_config(spec, plan, i))
            except ConfigError:
                cfg_h = None
            if cfg_h == done.get("cfg_hash"):
                adopted.append((i, done))
                continue
        res.todo.append(i)
    res.adopted = adopted
    done_set = set(res.done)
    if verify == "all" or (verify == "auto" and len(done_set) <= FULL_VERIFY_MAX):
        to_verify = sorted(done_set)
    elif verify in ("auto", "recent"):
        pos = {k: i for i, k in enumerate(plan.keys)}
        recent = [pos[k] for k in list(entries)[-RECENT_VERIFY:] if k in pos]
        to_verify = [i for i in recent if i in done_set]
    else:
        to_verify = []
    bad = set()
    for i in to_verify:
        problem = store.verify(plan.keys[i])
        if problem is not None:
            res.corrupt.append((i, problem))
            bad.add(i)
    res.n_verified = len(to_verify)
    if bad:
        res.done = [i for i in res.done if i not in bad]
        res.todo.extend(sorted(bad))
    res.done.sort()
    res.todo.sort()
    res.seconds = time.perf_counter() - t0
    return res


def _config_diff(store: Store, key: str, cfg: dict) -> str:
    from .config import tomllib

    try:
        old = tomllib.loads((store.points / key / "config.toml").read_text("utf-8"))
    except (OSError, ValueError):
        return "config changed (stored config.toml unreadable)"
    diffs = []
    for s in sorted(set(old) | set(cfg)):
        a, b = old.get(s, {}), cfg.get(s, {})
        for k in sorted(set(a) | set(b)):
            if s == "run" and k == "threads":
                continue
            if a.get(k) != b.get(k):
                diffs.append(f"{s}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return "; ".join(diffs[:4]) + (" ..." if len(diffs) > 4 else "") if diffs else "config changed"


# ---------------------------------------------------------------------------------------------------------
# one point (runs on a worker)
# ---------------------------------------------------------------------------------------------------------
def _run_point(task: dict) -> dict:
    """Simulate one point and return its result folder's files as bytes (the writer stores them).

    Runs in a worker process (local pool or Dask worker); writes only into a private temporary folder.
    """
    import socket
    import tempfile
    import warnings

    import numba

    from .experiment import result_dict, run_experiment, write_outputs

    cfg = copy.deepcopy(task["cfg"])
    threads = int(task.get("threads") or 0)
    cfg["run"]["threads"] = min(threads, numba.config.NUMBA_NUM_THREADS) if threads else 0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # the simulation's warnings go into done.json
        warnings.simplefilter("always")
        out = run_experiment(cfg)
        result = result_dict(out)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="leap-sde-point-") as tmp:
        warnings.simplefilter("ignore")  # matplotlib chatter from the point's plots
        write_outputs(tmp, out, plots=task.get("plots", True))
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())
                 if p.is_file() and not p.name.startswith(".")}
    return {"key": task["key"], "files": files, "result": result, "host": socket.gethostname(), "pid": os.getpid(),
            "version": __version__, "wall_s": time.perf_counter() - t0,
            "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught})}


def _worker_version() -> str:
    return __version__


def headline(result: dict) -> dict:
    """The results-table numbers of one point's result.json."""
    e = result.get("escape") or {}
    occ = result.get("occupation") or {}

    def f(x):
        return None if x is None else float(x)

    ci = e.get("rate_ci") or [None, None]
    mci = e.get("mean_steps_ci") or [None, None]
    tci = e.get("mean_time_ci") or [None, None]
    return {
        "rate_per_step": f(e.get("rate_per_step")), "rate_ci_low": f(ci[0]), "rate_ci_high": f(ci[1]),
        "mean_steps": f(e.get("mean_steps")), "mean_steps_ci_low": f(mci[0]), "mean_steps_ci_high": f(mci[1]),
        "rate_per_time": f(e.get("rate_per_time")), "mean_time": f(e.get("mean_time")),
        "mean_time_ci_low": f(tci[0]), "mean_time_ci_high": f(tci[1]),
        "n_particles": e.get("n_particles"), "n_escaped": e.get("n_escaped"), "n_censored": e.get("n_censored"),
        "n_diverged": e.get("n_diverged"), "exposure_steps": f(e.get("exposure_steps")),
        "ks_pvalue": f(e.get("ks_pvalue")),
        "flat_fraction": f(occ.get("flat_fraction")),
        "basin_fractions": occ.get("basin_fractions"),
        "seed": result.get("seed"), "wall_time_s": f(result.get("wall_time_s")), "version": result.get("version"),
    }


ROW_FIELDS = tuple(headline({}).keys())


# ---------------------------------------------------------------------------------------------------------
# executors: submit(task) -> future; wait(futures, timeout) -> done; result(future) -> dict
# ---------------------------------------------------------------------------------------------------------
class WorkerLost(RuntimeError):
    """The process running a point died (the point is resubmitted)."""


class _InlineRunner:
    """Runs points in this process, one at a time (``--workers 0``: debugging, tiny sweeps, tests)."""

    name = "inline"

    def __init__(self, threads):
        self.threads = threads
        self.slots = 1
        self.n_workers = 1

    def submit(self, task):
        from concurrent.futures import Future

        fut = Future()
        try:
            fut.set_result(_run_point(task))
        except Exception as e:  # noqa: BLE001 - reported as a failed point
            fut.set_exception(e)
        return fut

    def wait(self, futures, timeout):
        return {f for f in futures if f.done()}

    def result(self, fut):
        return fut.result()

    def close(self, cancel=False):
        pass


def _process_identity(pid: int):
    """(pid, start time) of a live process — the start time guards against a reused pid — or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return pid, f.read().rsplit(b")", 1)[1].split()[19]
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # pragma: no cover
        pass
    return pid, None


def _local_worker_init(writer_pid: int) -> None:
    """Pool workers ignore Ctrl-C (the writer handles it) and exit when the writer process dies, even by
    SIGKILL (with the forkserver start method the workers are not the writer's children, so this polls the
    writer itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ident = _process_identity(writer_pid)

    def watch():
        while True:
            time.sleep(0.5)
            if ident is None or _process_identity(writer_pid) != ident:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="leap-sde-writer-watch").start()


def _mp_context():
    """Workers are forked from a fork server that has imported leap_sde once (fast starts and restarts, no
    fork of a process with threads); ``spawn`` where there is no fork server (Windows)."""
    import multiprocessing as mp

    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(["leap_sde.experiment", "leap_sde.sweep"])
    return ctx


class _LocalRunner:
    """``concurrent.futures.ProcessPoolExecutor``; a dead worker breaks the pool, which is then restarted and
    the points in flight resubmitted."""

    name = "local"

    def __init__(self, workers: int, threads: int):
        self.n_workers = workers
        self.threads = threads
        self.slots = workers + max(1, workers // 2)  # a little queue so no worker waits for the writer
        self._pool = None
        self._start()

    def _start(self):
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=self.n_workers, mp_context=_mp_context(),
                                         initializer=_local_worker_init, initargs=(os.getpid(),))

    def submit(self, task):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_run_point, task)
        except BrokenProcessPool:
            self.restart()
            return self._pool.submit(_run_point, task)

    def wait(self, futures, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return done

    def result(self, fut):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return fut.result()
        except BrokenProcessPool as e:
            raise WorkerLost(str(e) or "a worker process died") from None

    def restart(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            self._pool.shutdown(wait=False, cancel_futures=True)
        except BrokenProcessPool:  # pragma: no cover
            pass
        self._start()

    def close(self, cancel=False):
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskRunner:
    """``dask.distributed``: ``Client(scheduler)``, or a ``LocalCluster`` of worker processes on 127.0.0.1."""

    name = "dask"

    def __init__(self, scheduler, workers: int, threads: int):
        try:
            import logging

            from distributed import Client, LocalCluster
        except ImportError:
            raise SweepError("--executor dask needs dask.distributed: pip install 'leap_sde[dask]'") from None
        self.threads = threads
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise SweepError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        try:
            self._check_workers(workers if not scheduler else 1)
        except BaseException:
            self.close()
            raise
        self._sized = 0.0
        self._resize()

    def _resize(self):
        """Points in flight follow the cluster's size (workers may join or leave while the sweep runs)."""
        nthreads = self.client.nthreads()
        self.n_workers = max(getattr(self, "n_workers", 0), len(nthreads))
        total = sum(nthreads.values())
        self.slots = max(2, total + max(1, total // 2))
        self._sized = time.monotonic()

    def _check_workers(self, n_min):
        try:
            self.client.wait_for_workers(n_min, timeout=120)
        except TimeoutError:
            raise SweepError(f"no Dask worker joined the scheduler {self.client.scheduler.address} within 120 s") \
                from None
        try:
            versions = self.client.run(_worker_version)
        except Exception as e:  # noqa: BLE001 - ModuleNotFoundError on the workers, pickling errors ...
            raise SweepError(f"the Dask workers cannot run leap_sde ({type(e).__name__}: {e}); install leap_sde "
                             f"{__version__} on every worker") from None
        bad = {w: v for w, v in versions.items() if v != __version__}
        if bad:
            raise SweepError(f"Dask workers run another leap_sde version than this client ({__version__}): "
                             + ", ".join(f"{w}: {v}" for w, v in sorted(bad.items())))

    def submit(self, task):
        # the key names the point and its config: two sweeps sharing a cluster never share a result wrongly
        key = f"leap-sde-point-{task['key']}-{config_hash(task['cfg'])}-{task['attempt']}"
        return self.client.submit(_run_point, task, key=key, pure=False)

    def wait(self, futures, timeout):
        from distributed import wait

        if time.monotonic() - self._sized > 10.0:
            self._resize()
        try:
            done, _ = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def result(self, fut):
        from distributed import KilledWorker

        try:
            return fut.result()
        except KilledWorker as e:
            raise WorkerLost(f"Dask gave up on the point after its workers died: {e}") from None
        finally:
            fut.release()

    def close(self, cancel=False):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def make_runner(executor: str = "local", *, workers=None, scheduler=None, threads=None):
    """The executor: ``"local"`` (process pool, ``workers=0`` runs in this process) or ``"dask"``."""
    if executor == "local":
        if scheduler:
            raise SweepError("--scheduler needs --executor dask")
        n = _cores() if workers is None else int(workers)
        if n < 0:
            raise SweepError(f"--workers: must be >= 0, got {n}")
        t = threads if threads is not None else (0 if n <= 1 else max(1, _cores() // n))
        return _InlineRunner(t) if n == 0 else _LocalRunner(n, t)
    if executor == "dask":
        n = _cores() if workers is None else int(workers)
        if n < 1:
            raise SweepError(f"--workers: must be >= 1 with --executor dask, got {n}")
        t = threads if threads is not None else (1 if scheduler else max(1, _cores() // n))
        return _DaskRunner(scheduler, n, t)
    raise SweepError(f"--executor: must be 'local' or 'dask', got {executor!r}")


# ---------------------------------------------------------------------------------------------------------
# the writer loop
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    out_dir: Path
    name: str
    total: int = 0
    skipped: int = 0  # finished before this run
    computed: int = 0
    failed: list = field(default_factory=list)  # (params, error)
    corrupt: int = 0
    forced: int = 0
    adopted: int = 0
    resubmitted: int = 0
    orphans: int = 0
    check_s: float = 0.0
    startup_s: float = 0.0  # starting the pool / connecting to or starting the Dask cluster
    wall_s: float = 0.0
    executor: str = ""
    n_workers: int = 0
    interrupted: bool = False
    warnings: dict = field(default_factory=dict)  # message -> count

    @property
    def complete(self) -> bool:
        return not self.failed and not self.interrupted and self.skipped + self.computed == self.total

    def text(self) -> str:
        lines = [f"sweep {self.name}: {self.total} points: {self.computed} computed now, {self.skipped} already "
                 f"finished, {len(self.failed)} failed"
                 + (f", {self.corrupt} corrupt recomputed" if self.corrupt else "")
                 + (f", {self.forced} recomputed with --force" if self.forced else "")
                 + (f", {self.adopted} recovered after a crash" if self.adopted else "")
                 + (f", {self.resubmitted} resubmitted after a worker died" if self.resubmitted else "")
                 + f"; {self.wall_s:.1f} s on {self.n_workers} {self.executor} worker(s)"
                 + f" (resume check {self.check_s * 1e3:.0f} ms)"]
        if self.orphans:
            lines.append(f"  {self.orphans} finished point(s) in {self.out_dir} are not in this sweep (kept, not in "
                         f"the table)")
        for params, err in self.failed[:10]:
            lines.append(f"  FAILED {params}: {err}")
        for msg, n in sorted(self.warnings.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"  warning in {n} point(s): {msg}")
        if self.interrupted:
            lines.append("  interrupted: finished points are saved; rerun the same command to resume")
        lines.append(f"  results: {self.out_dir / 'results.csv'}; plot with: leap-sde plot {self.out_dir}")
        return "\n".join(lines)


def write_table(store: Store, plan: Plan, entries=None) -> Path:
    """Rebuild ``results.csv`` (one row per finished planned point, plan order) atomically from the store."""
    import csv
    import io

    entries = store.load_index() if entries is None else entries
    rows = store.load_rows(entries)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *plan.names, *ROW_FIELDS, "path"])
    for i, key in enumerate(plan.keys):
        rec = rows.get(key)
        if rec is None:
            continue
        params = rec.get("params", {})
        row = rec.get("row", {})
        w.writerow([key, *(_cell(params.get(n)) for n in plan.names), *(_cell(row.get(f)) for f in ROW_FIELDS),
                    f"points/{key}"])
    path = store.root / "results.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return canonical_json(v)
    if isinstance(v, float):
        return repr(v)
    return v


def read_table(path) -> list:
    """``results.csv`` as a list of dicts (numbers parsed; list cells parsed as JSON)."""
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append({k: _parse_cell(v) for k, v in r.items()})
    return rows


def _parse_cell(v: str):
    if v == "":
        return None
    if v[0] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v in ("True", "False"):
        return v == "True"
    return v


def run_sweep(spec: SweepSpec, out_dir, *, executor: str = "local", workers=None, scheduler=None, threads=None,
              force: bool = False, verify: str = "auto", progress: bool = True, log=None,
              _on_point=None) -> SweepSummary:
    """Run every unfinished point of ``spec`` and store it in ``out_dir`` (see the module docstring).

    Raises :class:`SweepConflict` when finished points' configs changed (unless ``force``),
    :class:`SweepError` when the store is busy or the executor cannot start.  ``_on_point(n_finished)`` is
    called after each point is stored (tests use it to kill a worker mid-sweep).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    plan = Plan(spec)
    store = Store(out_dir)
    try:
        store.lock()
    except StoreBusy as e:
        raise SweepError(str(e)) from None
    summary = SweepSummary(out_dir=out_dir, name=spec.name, total=len(plan))
    t0 = time.perf_counter()
    runner = None
    try:
        store.clean()
        entries = store.load_index()
        chk = check_store(store, spec, plan, verify=verify, entries=entries)
        summary.check_s = chk.seconds
        summary.orphans = chk.n_orphans
        if chk.conflicts and not force:
            lines = [f"  {plan.params(i)}: {d}" for i, d in chk.conflicts[:5]]
            more = f"\n  ... and {len(chk.conflicts) - 5} more" if len(chk.conflicts) > 5 else ""
            raise SweepConflict(f"{len(chk.conflicts)} finished point(s) in {out_dir} were computed with another "
                                f"config:\n" + "\n".join(lines) + more + "\nrerun with --force to recompute them, "
                                f"or use another --out")
        todo = list(chk.todo) + [i for i, _ in chk.conflicts]
        summary.forced = len(chk.conflicts)
        summary.corrupt = len(chk.corrupt)
        for i, problem in chk.corrupt:
            log(f"point {plan.keys[i]} {plan.params(i)}: {problem}; recomputing")
        # repair the index: adopted folders, rebased lines, torn / superseded lines
        base = spec.base_hash
        if chk.adopted:
            for i, done in chk.adopted:
                store.append(plan.keys[i], done["cfg_hash"], base, done["record"])
            summary.adopted = len(chk.adopted)
        if chk.rebased or store.n_bad_lines or store.n_superseded:
            store.compact(store.load_index(), rebase={plan.keys[i]: base for i in chk.rebased})
        done_now = len(plan) - len(todo)
        summary.skipped = done_now
        atomic_write_text(out_dir / "sweep.toml", _toml_dumps(spec.to_toml_dict()))
        if todo:
            t_start = time.perf_counter()
            runner = make_runner(executor, workers=workers, scheduler=scheduler, threads=threads)
            summary.startup_s = time.perf_counter() - t_start
            summary.executor, summary.n_workers = runner.name, runner.n_workers
            log(f"sweep {spec.name}: {len(todo)} of {len(plan)} points to run on {runner.n_workers} "
                f"{runner.name} worker(s); results in {out_dir}")
            _loop(runner, store, spec, plan, todo, summary, progress=progress, log=log, on_point=_on_point)
        else:
            summary.executor, summary.n_workers = executor, 0
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if runner is not None:
            try:
                runner.close(cancel=summary.interrupted or bool(summary.failed))
            except Exception:  # noqa: BLE001 - closing a broken pool/cluster must not hide the result
                pass
        try:
            entries = store.load_index()
            if store.n_superseded or store.n_bad_lines:
                store.compact(entries)
            write_table(store, plan, entries)
        finally:
            store.close()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _loop(runner, store, spec, plan, todo, summary, *, progress, log, on_point):
    from tqdm.auto import tqdm

    base = spec.base_hash
    queue = list(reversed(todo))  # pop() from the end: plan order
    inflight: dict = {}  # future -> (i, task)
    attempts: dict = {}
    bar = tqdm(total=len(plan), initial=summary.skipped, unit="pt", desc=f"sweep {spec.name}", dynamic_ncols=True,
               disable=not (progress and sys.stderr.isatty()), smoothing=0.1)
    last_table = time.monotonic()
    n_stored = 0
    try:
        while queue or inflight:
            while queue and len(inflight) < runner.slots:
                i = queue.pop()
                try:
                    cfg = point_config(spec, plan, i)
                except ConfigError as e:
                    summary.failed.append((plan.params(i), f"invalid config: {e}"))
                    continue
                attempts[i] = attempts.get(i, 0) + 1
                task = {"key": plan.keys[i], "cfg": cfg, "threads": runner.threads, "plots": spec.point_plots,
                        "attempt": attempts[i]}
                inflight[runner.submit(task)] = (i, task)
            done = runner.wait(set(inflight), timeout=1.0)
            lost = False
            for fut in done:
                i, task = inflight.pop(fut)
                try:
                    res = runner.result(fut)
                except WorkerLost as e:
                    lost = True
                    if attempts[i] >= MAX_ATTEMPTS:
                        summary.failed.append((plan.params(i), f"worker died {attempts[i]} times: {e}"))
                    else:
                        summary.resubmitted += 1
                        queue.append(i)
                    continue
                except Exception as e:  # noqa: BLE001 - the point's own error: record it, go on
                    summary.failed.append((plan.params(i), f"{type(e).__name__}: {e}"))
                    continue
                _store_point(store, plan, i, task, res, base)
                for w in {_NUMBER.sub("…", w) for w in res.get("warnings", ())}:
                    summary.warnings[w] = summary.warnings.get(w, 0) + 1
                summary.computed += 1
                n_stored += 1
                bar.update(1)
                if on_point is not None:
                    on_point(n_stored)
            if lost and isinstance(runner, _LocalRunner):
                # every future of a broken pool fails: resubmit the rest of the points in flight too
                for fut, (i, task) in list(inflight.items()):
                    inflight.pop(fut)
                    summary.resubmitted += 1
                    queue.append(i)
                runner.restart()
                log("a worker process died; pool restarted, points in flight resubmitted")
            if time.monotonic() - last_table > TABLE_EVERY_S:
                write_table(store, plan)
                last_table = time.monotonic()
    finally:
        bar.close()


_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?")  # warnings are grouped with their numbers blanked


def _store_point(store, plan, i, task, res, base):
    key = plan.keys[i]
    cfg_h = config_hash(task["cfg"])
    record = {"params": plan.params(i), "row": headline(res["result"])}
    done = {"params": plan.params(i), "cfg_hash": cfg_h, "base_hash": base, "seed": task["cfg"]["run"]["seed"],
            "version": res.get("version"), "host": res.get("host"), "pid": res.get("pid"),
            "wall_s": res.get("wall_s"), "warnings": res.get("warnings", []), "record": record,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    store.write_point(key, res["files"], done)
    store.append(key, cfg_h, base, record)


def _toml_dumps(d) -> str:
    import tomli_w

    return tomli_w.dumps(d)


def _summary_table(out_dir: Path, plan: Plan, limit: int = 40) -> str:
    try:
        rows = read_table(out_dir / "results.csv")
    except OSError:
        return ""
    if not rows or len(rows) > limit:
        return ""
    names = list(plan.names)
    head = "  ".join(f"{n:>14}" for n in names) + f"  {'rate/step':>10} {'mean steps':>11} {'escaped':>8} " \
                                                  f"{'flat frac':>9}"
    lines = [head]
    for r in rows:
        vals = "  ".join(f"{_fmt(r.get(n)):>14}" for n in names)
        flat = r.get("flat_fraction")
        lines.append(f"{vals}  {_fmt(r.get('rate_per_step')):>10} {_fmt(r.get('mean_steps')):>11} "
                     f"{r.get('n_escaped')!s:>8} {(_fmt(flat) if flat is not None else '-'):>9}")
    return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return canonical_json(v)
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------------------------------------
# command line: leap-sde sweep / leap-sde plot
# ---------------------------------------------------------------------------------------------------------
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
              f"recoverable; resume check {chk.seconds * 1e3:.0f} ms ({chk.n_verified} verified)")
        for i, d in chk.conflicts[:5]:
            print(f"  changed: {plan.params(i)}: {d}")
        return EXIT_OK
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    try:
        summary = run_sweep(spec, out, executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                            threads=args.threads, force=args.force, verify=args.verify, progress=not args.quiet,
                            log=log)
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
    args = p.parse_args(argv)
    d = Path(args.dir)
    if not (d / "sweep.toml").is_file() or not (d / "index.log").is_file():
        print(f"leap-sde plot: error: {d} is not a sweep result folder (no sweep.toml / index.log)", file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = plot_sweep(d, out_dir=args.out)
    except (ConfigError, SweepError) as e:
        print(f"leap-sde plot: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for path in paths:
        print(path)
    return EXIT_OK

# ---------------------------------------------------------------------------------------------------------
# plots: leap-sde plot DIR
# ---------------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def load_results(sweep_dir):
    """``(spec, plan, rows)`` of a sweep folder; rows from results.csv, or from the store when it is missing."""
    d = Path(sweep_dir)
    spec = load_spec(d / "sweep.toml")
    plan = Plan(spec)
    path = d / "results.csv"
    if path.is_file():
        rows = read_table(path)
    else:
        store = Store(d)
        idx = store.load_index()
        recs = store.load_rows(idx)
        rows = [{"key": k, **recs[k]["params"], **recs[k]["row"]} for k in plan.keys if k in recs]
    return spec, plan, rows


class _Configs:
    """Resolved config of a row (memoised): the theory curves read η, B, curvatures ... from it."""

    def __init__(self, spec):
        self.spec = spec
        self._memo = {}

    def __call__(self, params: dict) -> dict:
        k = canonical_json(params)
        if k not in self._memo:
            self._memo[k] = resolve(_with_params(self.spec.base, params), base={})
        return self._memo[k]


def _num(v):
    """A plottable number from a parameter value (one-element lists such as a 1-D Hessian included)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, (int, float)):
        return float(v)
    a = np.asarray(v, dtype=float).ravel() if isinstance(v, list) else np.array([math.nan])
    return float(a[0]) if a.size == 1 else math.nan


def _escape_side(cfg):
    """(barrier, curvature at the start minimum, saddle curvature) of a 1-D double well, or None."""
    L = cfg["landscape"]
    if L["kind"] == "double-well":
        return L["barrier"], L["curv_min"], L["curv_saddle"]
    if L["kind"] == "sharp-flat":
        if cfg["init"]["x0"] != "minimum":
            return None
        side = "sharp" if cfg["init"]["minimum"] == 1 else "flat"
        return L[f"barrier_{side}"], L[f"curv_{side}"], L["curv_saddle"]
    return None


def theory_log10_rate(cfg: dict, kind: str) -> float:
    """log10 of the theory's escape rate per step for a resolved config (nan where the theory does not apply).

    ``"leap-xie"`` / ``"xie"``: Xie et al.'s SGD law with LEAP's effective batch
    (:func:`leap_sde.theory.leap_xie_escape_time`; sgd-hessian noise on a 1-D double well);
    ``"kramers"``: Kramers' law with LEAP's effective diffusion at the minimum (white noise);
    ``"lyapunov"``: GD + LEAP leaving a ball on a quadratic, rate ≈ λ/log(R/|x0|) for Lyapunov exponent λ > 0.
    """
    from . import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    eta, sigma = D["eta"], P["sigma"]
    if isinstance(sigma, list) or P["variant"] != "gaussian" and kind != "lyapunov":
        return math.nan
    try:
        if kind in ("leap-xie", "xie"):
            side = _escape_side(cfg)
            if side is None or D["noise"] != "sgd-hessian":
                return math.nan
            dU, ha, hb = side
            log_tau = th.leap_xie_escape_time(dU, ha, -hb, batch_size=D["batch_size"], eta=eta, sigma=sigma,
                                              s=hb / (ha + hb), mode=P["mode"], relative=P["relative"], log=True)
        elif kind == "kramers":
            side = _escape_side(cfg)
            if side is None or D["noise"] != "white":
                return math.nan
            dU, ha, hb = side
            Dm = float(th.leap_diffusion(0.0, D["noise_std"] ** 2, eta, sigma, mode=P["mode"],
                                         relative=P["relative"]))
            log_tau = th.kramers_time(dU, ha, hb, Dm, log=True)
        elif kind == "lyapunov":
            L, E = cfg["landscape"], cfg["exit"]
            if L["kind"] != "quadratic" or E["kind"] != "leave-ball" or D["noise"] != "none":
                return math.nan
            h = float(np.max(np.abs(np.asarray(L["hessian"], dtype=float))))
            lam = th.leap_lyapunov_exponent(h, eta, sigma, relative=P["relative"], variant=P["variant"])
            x0 = cfg["init"]["x0"]
            r0 = float(np.linalg.norm(np.atleast_1d(x0))) if x0 != "minimum" else 0.0
            if not (lam > 0 and 0 < r0 < E["radius"]):
                return math.nan
            return math.log10(lam / math.log(E["radius"] / r0))
        else:
            return math.nan
    except (ValueError, ZeroDivisionError, OverflowError):
        return math.nan
    return (math.log(eta) - log_tau) / math.log(10)  # rate per step = η/τ (τ in continuous time)


def _boundary(kind: str, cfg: dict, sigma: float) -> float:
    from . import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    if kind == "gd":
        return th.gd_stability_threshold(D["eta"])
    if kind == "mean-square":
        return th.leap_mean_square_threshold(D["eta"], sigma, relative=P["relative"], variant=P["variant"])
    return th.leap_almost_sure_threshold(D["eta"], sigma, relative=P["relative"], variant=P["variant"])


def _edges(v):
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if v[0] == 0 else np.array([v[0] * 0.8, v[0] * 1.25])
    if _logscale(v):
        lv = np.log(v)
        mid = np.exp((lv[1:] + lv[:-1]) / 2)
        return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _axis_scale(ax, which, values):
    """Log axis for positive values spanning more than a factor 15, labelled with plain numbers."""
    if not _logscale(values):
        return
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    v = np.asarray(values, dtype=float)
    ticks = v if v.size <= 8 else v[:: math.ceil(v.size / 8)]
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())
    getattr(ax, f"set_{which}ticks")(ticks)
    axis.set_major_formatter(ScalarFormatter())


def _logscale(v) -> bool:
    v = np.asarray(v, dtype=float)
    return bool(v.size > 2 and np.all(v > 0) and v.max() / v.min() > 15)


def _pooled_log10_rate(rows):
    """log10 of Σ escapes / Σ exposure over rows (replicates pooled); -inf with no escape, nan without data."""
    n = sum(r.get("n_escaped") or 0 for r in rows)
    expo = sum(r.get("exposure_steps") or 0.0 for r in rows)
    if expo <= 0:
        rates = [r.get("rate_per_step") for r in rows if r.get("rate_per_step") is not None]
        return math.log10(np.mean(rates)) if rates and np.mean(rates) > 0 else (-math.inf if rates else math.nan)
    return math.log10(n / expo) if n > 0 else -math.inf


def _groups(rows, names):
    """``{key: rows}`` grouped by the values of ``names`` (keys: canonical JSON), in numeric order."""
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(canonical_json(r.get(n)) for n in names), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(key):
    return tuple((0, _num(json.loads(k)), k) if np.isfinite(_num(json.loads(k))) else (1, 0.0, k) for k in key)


def _label(name: str) -> str:
    return {"leap.sigma": "LEAP σ", "landscape.curv_sharp": "sharp curvature h", "landscape.hessian": "curvature h",
            "landscape.curv_min": "curvature at the minimum", "dynamics.eta": "η",
            "dynamics.batch_size": "batch size B"}.get(name, name)


def _varying(rows, names):
    return [n for n in names if len({canonical_json(r.get(n)) for r in rows}) > 1]


def _plot_phase(spec, rows, p, cfgs, save):
    plt = _plt()
    x, y = p["x"], p["y"]
    others = [n for n in _varying(rows, spec.names) if n not in (x, y, REPLICATE)]
    panels = _groups(rows, others) if others else {(): rows}
    keys = list(panels)[:6]
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, 4.8 * nrow), squeeze=False)
    finite = [v for r in rows if (v := _pooled_log10_rate([r])) is not None and np.isfinite(v)]
    vmin, vmax = (min(finite), max(finite)) if finite else (-6, 0)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    theory = p.get("theory", "none")
    bounds = _as_list(p.get("boundaries", []))
    for ax, k in zip(axes.ravel(), keys):
        prow = panels[k]
        xs = sorted({_num(r[x]) for r in prow})
        ys = sorted({_num(r[y]) for r in prow})
        Z = np.full((len(ys), len(xs)), np.nan)
        for (xv, yv), cell in _groups(prow, [x, y]).items():
            xi = xs.index(_num(json.loads(xv)))
            yi = ys.index(_num(json.loads(yv)))
            Z[yi, xi] = _pooled_log10_rate(cell)
        none = np.isneginf(Z)
        Zp = np.where(np.isfinite(Z), Z, np.nan)
        xe, ye = _edges(xs), _edges(ys)
        ax.set_facecolor("0.85")
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(Zp), cmap="viridis", vmin=vmin, vmax=vmax,
                             shading="flat")
        if len(xs) * len(ys) <= 100:
            for yi, yv in enumerate(ys):
                for xi, xv in enumerate(xs):
                    txt = "none" if none[yi, xi] else (f"{Z[yi, xi]:.1f}" if np.isfinite(Z[yi, xi]) else "")
                    ax.text(xv, yv, txt, ha="center", va="center", fontsize=7,
                            color="black" if (not np.isfinite(Zp[yi, xi]) or Zp[yi, xi] > (vmin + vmax) / 2)
                            else "white")
        _axis_scale(ax, "x", xs)
        _axis_scale(ax, "y", ys)
        handles = []
        ref = prow[0]
        base_params = {n: ref[n] for n in spec.names if n in ref and ref[n] is not None}
        if theory != "none":
            gx = np.geomspace(xe[0], xe[-1], 60) if _logscale(xs) else np.linspace(xe[0], xe[-1], 60)
            gy = np.geomspace(ye[0], ye[-1], 60) if _logscale(ys) else np.linspace(ye[0], ye[-1], 60)
            gx = gx[gx >= 0] if x == "leap.sigma" else gx
            TZ = np.full((gy.size, gx.size), np.nan)
            c0 = cfgs(base_params)
            for j, yv in enumerate(gy):
                for i, xv in enumerate(gx):
                    c = _set_params(c0, {x: _like(ref[x], xv), y: _like(ref[y], yv)})
                    TZ[j, i] = theory_log10_rate(c, theory)
            if np.any(np.isfinite(TZ)):
                levels = np.arange(math.floor(vmin * 2) / 2, math.ceil(vmax * 2) / 2 + 0.01, 0.5)
                cs = ax.contour(gx, gy, TZ, levels=levels, colors="white", linewidths=1.0, linestyles="--")
                ax.clabel(cs, fmt="%.1f", fontsize=7)
                handles.append(plt.Line2D([], [], color="0.3", ls="--", label=f"theory ({theory}): log10 rate"))
        if bounds:
            sig_axis = x if x == "leap.sigma" else (y if y == "leap.sigma" else None)
            if sig_axis is not None:
                sv = np.linspace(min(xs if sig_axis == x else ys), max(xs if sig_axis == x else ys), 31)
                c0 = cfgs({**base_params})
                styles = {"mean-square": ("tab:red", "-"), "almost-sure": ("tab:orange", "-."), "gd": ("k", ":")}
                for b in bounds:
                    hv = np.array([_boundary(b, c0, float(sg)) for sg in sv])
                    col, ls = styles[b]
                    if sig_axis == x:
                        ax.plot(sv, hv, color=col, ls=ls, lw=2)
                    else:
                        ax.plot(hv, sv, color=col, ls=ls, lw=2)
                    handles.append(plt.Line2D([], [], color=col, ls=ls, lw=2, label=f"{b} stability boundary"))
                ax.set_xlim(xe[0], xe[-1])
                ax.set_ylim(ye[0], ye[-1])
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y))
        if others:
            ax.set_title(", ".join(f"{n} = {json.loads(v)}" for n, v in zip(others, k)), fontsize=9)
        fig.colorbar(mesh, ax=ax, label="log10 escape rate per step (grey: no escape)")
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.suptitle(p.get("title") or f"{spec.name}: escape-rate phase diagram", fontsize=10)
    fig.tight_layout()
    return save(fig, p)


def _set_params(cfg: dict, params: dict) -> dict:
    """A resolved config with some values replaced, unvalidated (for theory curves between the grid points)."""
    out = dict(cfg)
    for name, v in params.items():
        section, key = name.split(".", 1)
        out[section] = {**out[section], key: v}
    return out


def _like(template, v):
    """``v`` in the shape of a parameter value (a 1-D Hessian is a one-element list)."""
    if isinstance(template, list):
        return [float(v)] if not isinstance(template[0], list) else [[float(v)]]
    return float(v)


def _arrhenius_x(cfg, xkind):
    from . import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    if xkind == "B/eta":
        return D["batch_size"] / D["eta"]
    C = D["noise_std"] ** 2 if D["noise"] == "white" else math.nan
    return 1.0 / float(th.leap_diffusion(0.0, C, D["eta"], P["sigma"], mode=P["mode"], relative=P["relative"]))


def _plot_arrhenius(spec, rows, p, cfgs, save):
    from .estimates import arrhenius_fit

    plt = _plt()
    xkind = p.get("x", "B/eta")
    theory = p.get("theory", "leap-xie" if xkind == "B/eta" else "kramers")
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names)
                                              if n not in ("dynamics.batch_size", "dynamics.eta",
                                                           "dynamics.noise_std", REPLICATE)]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = plt.cm.tab10(np.arange(10))
    lines = []
    for c, (k, grp) in zip(colors, _groups(rows, by).items()):
        pts = []
        for r in grp:
            params = {n: r[n] for n in spec.names if n in r and r[n] is not None}
            cfg = cfgs(params)
            X = _arrhenius_x(cfg, xkind)
            if r.get("mean_time") is None or not np.isfinite(r["mean_time"]) or not r.get("n_escaped"):
                continue
            th_log = theory_log10_rate(cfg, theory)
            # log τ in continuous time: τ = η / rate_per_step
            th_tau = math.log(cfg["dynamics"]["eta"]) - th_log * math.log(10) if np.isfinite(th_log) else math.nan
            pts.append((X, r["mean_time"], r.get("mean_time_ci_low"), r.get("mean_time_ci_high"), r["n_escaped"],
                        th_tau))
        if not pts:
            continue
        pts.sort()
        X, T, lo, hi, n, th_tau = (np.array(v, dtype=float) for v in zip(*pts))
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        yerr = np.vstack([np.log(T) - np.log(np.where(np.isfinite(lo), lo, T)),
                          np.log(np.where(np.isfinite(hi), hi, T)) - np.log(T)])
        ax.errorbar(X, np.log(T), yerr=yerr, fmt="o", color=c, ms=4, capsize=2, label=lab)
        line = f"{lab}:"
        if len(X) >= 2:
            fit = arrhenius_fit(X, T, n)
            xx = np.linspace(X.min(), X.max(), 50)
            ax.plot(xx, fit.intercept + fit.slope * xx, "-", color=c, lw=1.2,
                    label=f"  fit: slope {fit.slope:.3f} [{fit.slope_ci[0]:.3f}, {fit.slope_ci[1]:.3f}]")
            line += f" fitted slope {fit.slope:.4f} (95% CI {fit.slope_ci[0]:.4f}..{fit.slope_ci[1]:.4f})"
        ok = np.isfinite(th_tau)
        if ok.sum() >= 2:
            slope_th = float(np.polyfit(X[ok], th_tau[ok], 1)[0])
            w = n / n.sum()
            xc, yc = float(np.sum(w * X)), float(np.sum(w * np.log(T)))
            xx = np.linspace(X.min(), X.max(), 50)
            ax.plot(xx, yc + slope_th * (xx - xc), ":", color=c, lw=1.5,
                    label=f"  theory slope {slope_th:.3f} ({theory}, through the data)")
            ax.plot(X[ok], th_tau[ok], "--", color=c, lw=0.8, alpha=0.6)
            line += f", theory slope {slope_th:.4f}"
        lines.append(line)
    ax.set_xlabel({"B/eta": "B / η", "1/D": "1 / D"}[xkind])
    ax.set_ylabel("log τ  (mean escape time, continuous time t = kη)")
    ax.set_title(p.get("title") or f"{spec.name}: Arrhenius plot (dashed: theory incl. prefactor)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, p, text="\n".join(lines))


def _plot_preference(spec, rows, p, cfgs, save):
    from . import theory as th

    plt = _plt()
    x = p.get("x", "leap.sigma")
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names) if n not in (x, REPLICATE)]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(_groups(rows, by)))))
    drew_theory = False
    for c, (k, grp) in zip(colors, _groups(rows, by).items()):
        pts = sorted((_num(r[x]), r["flat_fraction"]) for r in grp if r.get("flat_fraction") is not None)
        if not pts:
            continue
        X, F = np.array(pts).T
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        ax.plot(X, F, "o-", color=c, ms=4, label=lab)
        ref = grp[0]
        params = {n: ref[n] for n in spec.names if n in ref and ref[n] is not None}
        xx = np.linspace(X.min(), X.max(), 60)
        pf = []
        c0 = cfgs(params)
        for xv in xx:
            cfg = _set_params(c0, {x: float(xv)})
            L, D, P = cfg["landscape"], cfg["dynamics"], cfg["leap"]
            if L["kind"] != "sharp-flat" or D["noise"] != "sgd-hessian":
                pf.append(math.nan)
                continue
            lt = []
            for side in ("flat", "sharp"):
                ha, hb = L[f"curv_{side}"], L["curv_saddle"]
                lt.append(th.leap_xie_escape_time(L[f"barrier_{side}"], ha, -hb, batch_size=D["batch_size"],
                                                  eta=D["eta"], sigma=P["sigma"], s=hb / (ha + hb), mode=P["mode"],
                                                  relative=P["relative"], log=True))
            pf.append(1.0 / (1.0 + math.exp(lt[1] - lt[0])))  # τ_flat / (τ_flat + τ_sharp)
        if np.any(np.isfinite(pf)):
            ax.plot(xx, pf, "--", color=c, lw=1)
            drew_theory = True
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(_label(x))
    ax.set_ylabel("fraction of time in the flat basin")
    ttl = p.get("title") or f"{spec.name}: flat-vs-sharp preference"
    if drew_theory:
        ttl += "\n(dashed: stationary τ_flat/(τ_flat+τ_sharp), Xie et al. + LEAP)"
    ax.set_title(ttl, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, p)


def _plot_line(spec, rows, p, cfgs, save):
    plt = _plt()
    x = p.get("x") or (_varying(rows, spec.names) or spec.names)[0]
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names) if n not in (x, REPLICATE)]
    theory = p.get("theory", "none")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for k, grp in _groups(rows, by).items():
        pts = sorted((_num(r[x]), r["rate_per_step"], r.get("rate_ci_low"), r.get("rate_ci_high"), r)
                     for r in grp if r.get("rate_per_step") is not None)
        if not pts:
            continue
        X = np.array([q[0] for q in pts])
        R = np.array([q[1] for q in pts])
        lo = np.array([q[2] if q[2] is not None else q[1] for q in pts])
        hi = np.array([q[3] if q[3] is not None else q[1] for q in pts])
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        eb = ax.errorbar(X, R, yerr=[R - lo, hi - R], fmt="o-", ms=4, capsize=2, label=lab)
        if theory != "none":
            params = [{n: q[4][n] for n in spec.names if n in q[4] and q[4][n] is not None} for q in pts]
            T = [10 ** theory_log10_rate(cfgs(pp), theory) for pp in params]
            ax.plot(X, T, "--", color=eb[0].get_color(), lw=1)
    ax.set_yscale("log")
    if _logscale(sorted({_num(r[x]) for r in rows})):
        ax.set_xscale("log")
    ax.set_xlabel(_label(x))
    ax.set_ylabel("escape rate per step (95% CI)")
    ax.set_title(p.get("title") or f"{spec.name}: escape rate" + (f" (dashed: {theory})" if theory != "none"
                                                                     else ""), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, p)


_PLOTTERS = {"phase": _plot_phase, "arrhenius": _plot_arrhenius, "preference": _plot_preference,
             "line": _plot_line}


def auto_plots(spec: SweepSpec, rows) -> list:
    """Plot hints chosen from the swept parameters when the sweep file has no ``[[plot]]``."""
    vary = [n for n in _varying(rows, spec.names) if n != REPLICATE
            and all(np.isfinite(_num(r.get(n))) for r in rows)]
    out = []
    if len(vary) >= 2:
        out.append({"kind": "phase", "x": vary[0], "y": vary[1]})
    elif vary:
        out.append({"kind": "line", "x": vary[0]})
    if "leap.sigma" in vary and any(r.get("flat_fraction") is not None for r in rows):
        out.append({"kind": "preference", "x": "leap.sigma"})
    return out


def plot_sweep(sweep_dir, *, out_dir=None) -> list:
    """Draw the sweep's figures (its ``[[plot]]`` hints, or :func:`auto_plots`) into ``out_dir`` (default
    ``DIR/figures``); returns the written paths (PNG, plus a .txt with the fitted slopes for Arrhenius plots)."""
    from ._io import atomic_savefig

    spec, plan, rows = load_results(sweep_dir)
    if not rows:
        raise SweepError(f"{sweep_dir}: no finished points to plot")
    out = Path(out_dir) if out_dir else Path(sweep_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    cfgs = _Configs(spec)
    written = []
    hints = list(spec.plots) or auto_plots(spec, rows)
    used = set()

    def save(fig, p, text=None):
        name = p.get("name") or "_".join([p["kind"]] + [p[k].replace(".", "-").replace("/", "-over-")
                                                        for k in ("x", "y") if isinstance(p.get(k), str)])
        while name in used:
            name += "_"
        used.add(name)
        path = out / f"{name}.png"
        atomic_savefig(fig, path, dpi=130)
        _plt().close(fig)
        written.append(path)
        if text:
            atomic_write_text(out / f"{name}.txt", text + "\n")
            written.append(out / f"{name}.txt")
        return path

    for p in hints:
        _PLOTTERS[p["kind"]](spec, rows, p, cfgs, save)
    return written
