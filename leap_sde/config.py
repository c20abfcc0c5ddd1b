"""Experiment configuration: a TOML file with sections [landscape], [dynamics], [leap], [schedule], [init],
[exit], [run], resolved against defaults and validated once.

Every key has a type and a range; an unknown section or key, a wrong type or an out-of-range value raises
:class:`ConfigError` naming the key and listing the valid ones (the command line turns it into exit code 2).
:func:`leap_sde.experiment.build` turns a resolved config into the objects :func:`leap_sde.simulate` takes.
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "DEFAULT_CONFIG", "resolve", "parse_override", "load_toml"]


class ConfigError(ValueError):
    """A configuration key is unknown, of the wrong type or out of range."""


_ANY = object()


@dataclass(frozen=True)
class _Key:
    type: object  # 'float', 'int', 'bool', 'str', 'floats' (number or list), 'matrix', 'sigma'
    default: object
    check: object = None  # callable(value) -> error text or None
    choices: tuple = ()
    doc: str = ""


def _pos(v):
    return None if v > 0 else "must be > 0"


def _nonneg(v):
    return None if v >= 0 else "must be >= 0"


def _ge1(v):
    return None if v >= 1 else "must be >= 1"


def _unit_open(v):
    return None if 0 <= v < 1 else "must be in [0, 1)"


def _unit_closed(v):
    return None if 0 <= v <= 1 else "must be in [0, 1]"


def _unit(v):
    return None if 0 < v <= 1 else "must be in (0, 1]"


LANDSCAPE_KINDS = {
    "double-well": ("barrier", "curv_min", "curv_saddle"),
    "sharp-flat": ("curv_flat", "curv_sharp", "barrier_flat", "barrier_sharp", "curv_saddle"),
    "polynomial": ("coeffs",),
    "quadratic": ("hessian", "center"),
    "entropic": ("kappa", "c"),
    "styblinski-tang": ("dim", "sharpness"),
}
_COMMON_LANDSCAPE = ("kind", "finite_sum_n", "finite_sum_scale", "finite_sum_seed")

SCHEMA = {
    "landscape": {
        "kind": _Key("str", "sharp-flat", choices=tuple(LANDSCAPE_KINDS)),
        "barrier": _Key("float", 1.0, _pos), "curv_min": _Key("float", 1.0, _pos),
        "curv_saddle": _Key("float", 1.0, _pos),
        "curv_flat": _Key("float", 1.0, _pos), "curv_sharp": _Key("float", 4.0, _pos),
        "barrier_flat": _Key("float", 0.5, _pos), "barrier_sharp": _Key("float", 0.5, _pos),
        "coeffs": _Key("floats", [1.0, 0.0, -2.0, 0.0, 1.0]),
        "hessian": _Key("matrix", [[1.0]]), "center": _Key("floats", None),
        "kappa": _Key("float", 1.0, _pos), "c": _Key("float", 0.0, _nonneg),
        "dim": _Key("int", 2, _ge1), "sharpness": _Key("floats", 1.0),
        "finite_sum_n": _Key("int", 0, _nonneg, doc="n > 0 wraps the landscape into a FiniteSum of n samples"),
        "finite_sum_scale": _Key("float", 0.3, _pos), "finite_sum_seed": _Key("int", 0, _nonneg),
    },
    "dynamics": {
        "mode": _Key("str", "discrete", choices=("discrete", "sde")),
        "eta": _Key("float", 0.1, _pos),
        "noise": _Key("str", "sgd-hessian", choices=("none", "white", "sgd-hessian", "minibatch")),
        "noise_std": _Key("float", 1.0, _nonneg),
        "batch_size": _Key("float", 1.0, _ge1),
        "hessian_floor": _Key("float", 1e-2, _pos),
        "optimizer": _Key("str", "sgd", choices=("sgd", "adam", "adamw"),
                          doc="torch.optim's rule: sgd (momentum, dampening, nesterov), adam, adamw"),
        "momentum": _Key("float", 0.0, _unit_open, doc="sgd: momentum in [0, 1)"),
        "dampening": _Key("float", 0.0, _unit_closed, doc="sgd: dampening in [0, 1]"),
        "nesterov": _Key("bool", False, doc="sgd: Nesterov momentum"),
        "betas": _Key("floats", [0.9, 0.999], doc="adam/adamw: (beta1, beta2), each in [0, 1)"),
        "eps": _Key("float", 1e-8, _pos, doc="adam/adamw: eps"),
        "weight_decay": _Key("float", -1.0, doc="L2 (sgd, adam) or decoupled (adamw) decay; -1: torch's "
                                               "default (0, or 0.01 for adamw)"),
    },
    "leap": {
        "sigma": _Key("sigma", 0.0),
        "mode": _Key("str", "per-coordinate", choices=("per-coordinate", "scalar")),
        "relative": _Key("bool", False),
        "variant": _Key("str", "gaussian", choices=("gaussian", "clipped", "lognormal")),
    },
    "schedule": {
        "kind": _Key("str", "constant", choices=("constant", "step", "exponential", "cosine", "cosine-restarts",
                                                  "cyclic", "inverse-time")),
        "step_size": _Key("int", 1000, _ge1), "gamma": _Key("float", 0.5, _pos),
        "T_max": _Key("int", 10000, _ge1), "eta_min": _Key("float", 0.0, _nonneg),
        "T_0": _Key("int", 1000, _ge1), "T_mult": _Key("int", 1, _ge1),
        "max_lr": _Key("float", 0.2, _pos), "step_size_up": _Key("int", 1000, _ge1),
        "step_size_down": _Key("int", 0, _nonneg, doc="0: same as step_size_up"),
        "cyclic_mode": _Key("str", "triangular", choices=("triangular", "triangular2", "exp_range")),
        "power": _Key("float", 1.0, _pos, doc="inverse-time: eta_k = eta (1 + gamma k)^-power"),
        "warmup_steps": _Key("int", 0, _nonneg), "warmup_start_factor": _Key("float", 1 / 3, _unit),
    },
    "init": {
        "x0": _Key("x0", "minimum", doc="a number, a list, or 'minimum' (then init.minimum picks which)"),
        "minimum": _Key("int", 0, _nonneg),
    },
    "exit": {
        "kind": _Key("str", "threshold", choices=("threshold", "leave-ball", "reach-ball", "none")),
        "threshold": _Key("threshold", "minimum", doc="a number, or 'minimum': coordinate exit.coord of the "
                                                      "minimum exit.target_minimum"),
        "target_minimum": _Key("int", 1, _nonneg),
        "coord": _Key("int", 0, _nonneg),
        "direction": _Key("int", 0, doc="+1, -1, or 0: away from x0"),
        "center": _Key("floats", None), "radius": _Key("float", 1.0, _pos),
        "require_barrier": _Key("bool", True, doc="false: allow a threshold / reach-ball first passage with no "
                                                  "barrier between start and exit (e.g. uphill Ornstein-Uhlenbeck); "
                                                  "rate and KS summaries are then marked not applicable"),
    },
    "run": {
        "particles": _Key("int", 2000, _ge1), "max_steps": _Key("int", 200_000, _ge1),
        "seed": _Key("int", 0, _nonneg), "threads": _Key("int", 0, _nonneg, doc="0: all cores"),
        "basins": _Key("bool", True),
        "occupation_steps": _Key("int", 0, _nonneg, doc="> 0: also run without exit for this many steps and "
                                                         "record the time in each basin"),
        "snapshots": _Key("int", 200, _nonneg, doc="number of occupation snapshots (0: none)"),
        "method": _Key("str", "brute-force", choices=("brute-force", "ams"),
                       doc="brute-force: simulate every escape; ams: adaptive multilevel splitting (leap_sde.ams) "
                           "for barriers brute force cannot reach (constant schedule, no occupation run)"),
        "replicas": _Key("int", 1000, _ge1, doc="ams: replicas per run (>= 2)"),
        "ams_runs": _Key("int", 8, _ge1, doc="ams: independent runs for the confidence interval (>= 2)"),
        "preference": _Key("bool", False, doc="also escape from the target minimum back to the start minimum "
                                              "and report the long-run preference tau_back/(tau_out + tau_back) "
                                              "with its CI (needs init.x0 = exit.threshold = 'minimum')"),
    },
}

#: The built-in default experiment: sharp-vs-flat asymmetric double well, SGD (Hessian) noise, LEAP σ grid;
#: escapes sharp → flat and flat → sharp, whose mean times give the long-run flat share τ_f/(τ_f + τ_s).
DEFAULT_CONFIG = {
    "landscape": {"kind": "sharp-flat", "curv_flat": 1.0, "curv_sharp": 4.0, "barrier_flat": 0.5,
                  "barrier_sharp": 0.5, "curv_saddle": 1.0},
    "dynamics": {"mode": "discrete", "eta": 0.1, "noise": "sgd-hessian", "batch_size": 1.0},
    "leap": {"sigma": [0.0, 0.05, 0.1, 0.15], "mode": "per-coordinate"},
    "schedule": {"kind": "constant"},
    "init": {"x0": "minimum", "minimum": 1},
    "exit": {"kind": "threshold", "threshold": "minimum", "target_minimum": 0},
    "run": {"particles": 2000, "max_steps": 200_000, "seed": 0, "preference": True},
}


def _err(key, msg):
    return ConfigError(f"{key}: {msg}")


def _number(key, v, kind):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _err(key, f"expected {'an integer' if kind == 'int' else 'a number'}, got {v!r}")
    if kind == "int":
        if isinstance(v, float):
            if not v.is_integer():
                raise _err(key, f"expected an integer, got {v!r}")
            v = int(v)
        if not -2**62 <= v <= 2**62:
            raise _err(key, f"must be in [-2^62, 2^62], got {v!r}")
        return v
    if not math.isfinite(v):
        raise _err(key, f"must be finite, got {v!r}")
    return float(v)


def coerce_value(key, spec: _Key, v):
    t = spec.type
    if t in ("float", "int"):
        v = _number(key, v, t)
    elif t == "bool":
        if not isinstance(v, bool):
            raise _err(key, f"expected true or false, got {v!r}")
    elif t == "str":
        if not isinstance(v, str):
            raise _err(key, f"expected a string, got {v!r}")
        if spec.choices and v not in spec.choices:
            raise _err(key, f"must be one of {', '.join(map(repr, spec.choices))}, got {v!r}")
    elif t == "floats":
        if v is None:
            return None
        vals = v if isinstance(v, list) else [v]
        v = [_number(key, x, "float") for x in vals] if isinstance(v, list) else _number(key, v, "float")
    elif t == "sigma":
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise _err(key, "needs at least one value")
        vals = [_number(key, x, "float") for x in vals]
        if any(x < 0 for x in vals):
            raise _err(key, f"must be >= 0, got {v!r}")
        v = vals if isinstance(v, list) else vals[0]
    elif t == "matrix":
        if not isinstance(v, list) or not v:
            raise _err(key, f"expected a list (diagonal) or a list of lists, got {v!r}")
        if all(isinstance(r, list) for r in v):
            v = [[_number(key, x, "float") for x in r] for r in v]
            if any(len(r) != len(v) for r in v):
                raise _err(key, f"a matrix must be square and non-empty (n rows of n numbers each), got rows of "
                                f"length {[len(r) for r in v]}")
        elif any(isinstance(r, list) for r in v):
            raise _err(key, f"expected a list of numbers (diagonal) or a list of lists (matrix), got {v!r}")
        else:
            v = [_number(key, x, "float") for x in v]
    elif t in ("x0", "threshold"):
        if isinstance(v, str):
            if v != "minimum":
                raise _err(key, f"must be a number, a list of numbers or 'minimum', got {v!r}")
        elif isinstance(v, list):
            v = [_number(key, x, "float") for x in v]
        else:
            v = _number(key, v, "float")
    if spec.check is not None and t in ("float", "int"):
        msg = spec.check(v)
        if msg:
            raise _err(key, f"{msg}, got {v!r}")
    return v


def load_toml(path) -> dict:
    """Read a TOML file; a syntax error becomes a :class:`ConfigError` naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); a config is TOML text") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from None


def parse_override(text: str):
    """``section.key=value`` → (section, key, value) with the value parsed as TOML (a bare word that is not
    valid TOML is taken as a string, so ``--set landscape.kind=polynomial`` works)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    lhs, raw = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section.strip(), key.strip(), value


def _shown(name) -> str:
    """A user-given name as it can be printed on one line (``repr`` when it holds control characters)."""
    return name if str(name).isprintable() else repr(name)


def resolve(user: dict | None = None, overrides=(), *, base: dict | None = None) -> dict:
    """Full validated config: schema defaults ← ``base`` (default: DEFAULT_CONFIG when ``user`` is None) ←
    ``user`` ← ``overrides`` (``section.key=value`` strings).  Raises :class:`ConfigError`."""
    layers = [DEFAULT_CONFIG if (user is None and base is None) else (base or {}), user or {}]
    layers.append(_nest(parse_override(o) for o in overrides))
    cfg = {s: {k: copy.deepcopy(spec.default) for k, spec in keys.items()} for s, keys in SCHEMA.items()}
    explicit = {s: set() for s in SCHEMA}  # keys set by the user or an override (not by the base layer)
    for i, layer in enumerate(layers):
        for section, values in layer.items():
            if section not in SCHEMA:
                raise ConfigError(f"unknown section [{_shown(section)}]; valid sections: {', '.join(SCHEMA)}")
            if not isinstance(values, dict):
                raise ConfigError(f"[{section}] must be a table of keys")
            for key, v in values.items():
                if key not in SCHEMA[section]:
                    raise ConfigError(f"unknown key {section}.{_shown(key)}; valid keys of [{section}]: "
                                      f"{', '.join(SCHEMA[section])}")
                cfg[section][key] = coerce_value(f"{section}.{key}", SCHEMA[section][key], copy.deepcopy(v))
                if i > 0:
                    explicit[section].add(key)
    kind = cfg["landscape"]["kind"]
    stray = explicit["landscape"] - set(LANDSCAPE_KINDS[kind]) - set(_COMMON_LANDSCAPE)
    if stray:
        raise ConfigError(f"landscape.{sorted(stray)[0]} is not a key of kind {kind!r}; valid keys: "
                          f"{', '.join(LANDSCAPE_KINDS[kind] + _COMMON_LANDSCAPE)}")
    # keep only the keys of the chosen landscape kind, so config.toml shows what was used
    cfg["landscape"] = {k: v for k, v in cfg["landscape"].items()
                        if k in LANDSCAPE_KINDS[kind] or k in _COMMON_LANDSCAPE}
    between_minima = (cfg["init"]["x0"] == "minimum" and cfg["exit"]["kind"] == "threshold"
                      and cfg["exit"]["threshold"] == "minimum")
    if cfg["run"]["preference"] and not between_minima and "preference" not in explicit["run"]:
        cfg["run"]["preference"] = False  # the default experiment's setting, not applicable to this escape
    from .experiment import Experiment  # imported here: experiment.py imports this module

    Experiment.from_config(cfg)  # builds every object once: range errors surface here
    return cfg


def _nest(triples):
    out: dict = {}
    for s, k, v in triples:
        out.setdefault(s, {})[k] = v
    return out
