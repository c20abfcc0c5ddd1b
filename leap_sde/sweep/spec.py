"""The sweep file: parsing and validating SWEEP.toml, the planned points, their keys, seeds and configs."""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ConfigError, SCHEMA, load_toml, resolve
from .store import canonical_json, short_hash

__all__ = [
    "SweepError",
    "SweepConflict",
    "SweepSpec",
    "load_spec",
    "Plan",
    "plan_points",
    "derive_seed",
    "point_config",
    "config_hash",
]

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
    from ..config import coerce_value  # the schema's own coercion: one rule for configs and sweeps

    section, key = name.split(".", 1)
    try:
        return coerce_value(name, SCHEMA[section][key], copy.deepcopy(v))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_spec(path, *, quick: bool = False, overrides=()) -> SweepSpec:
    """Read and validate SWEEP.toml (``quick``: apply its ``[quick]`` table; ``overrides``: ``section.key=value``
    strings applied to ``[base]``).  Raises :class:`ConfigError` naming the offending key.

    ``path`` may also be a dict with the file's tables (``{"sweep": {...}, "base": {...}, "grid": {...}}``);
    its name then defaults to ``"sweep"``."""
    from ..config import parse_override

    if isinstance(path, SweepSpec):
        raise TypeError("load_spec: got a SweepSpec, which is already loaded")
    if isinstance(path, dict):
        raw, stem, path = copy.deepcopy(path), "sweep", "sweep spec"
    else:
        raw, stem = load_toml(path), Path(path).stem
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
    name = sw.get("name", stem)
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
