"""Experiment configuration: a TOML file with sections [landscape], [dynamics], [leap], [schedule], [init],
[exit], [run], resolved against defaults and validated once.

Every key has a type and a range; an unknown section or key, a wrong type or an out-of-range value raises
:class:`ConfigError` naming the key and listing the valid ones (the command line turns it into exit code 2).
:func:`leap_sde.experiment.build` turns a resolved config into the objects :func:`leap_sde.simulate` takes.
Defaults come from :data:`SCHEMA` alone (not from the built-in default experiment, :data:`DEFAULT_CONFIG`,
which applies only when no config is given); :func:`key_rows` / ``leap-sde keys`` list every key with its
type, default, valid range and meaning.  ``dynamics.temperature`` T is the Langevin parametrisation of white
noise: scale ``s = sqrt(2T/η)``, diffusion ``D = η s²/2 = T`` (docs/theory.md §0.2).
"""
from __future__ import annotations

import copy
import math
import sys

import numpy as np
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "DEFAULT_CONFIG", "SCHEMA", "resolve", "parse_override", "load_toml", "keys_text",
           "key_rows"]


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
    valid: str = ""  # the valid range in words where no check function or choices say it


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
        "kind": _Key("str", "sharp-flat", choices=tuple(LANDSCAPE_KINDS),
                     doc="the loss landscape; each kind takes only its own keys below (and finite_sum_*)"),
        "barrier": _Key("float", 1.0, _pos, doc="double-well: barrier height ΔU (loss at the saddle x = 0)"),
        "curv_min": _Key("float", 1.0, _pos, doc="double-well: curvature U'' at both minima"),
        "curv_saddle": _Key("float", 1.0, _pos, doc="double-well, sharp-flat: curvature -U'' at the saddle x = 0"),
        "curv_flat": _Key("float", 1.0, _pos, doc="sharp-flat: curvature of the flat minimum (x < 0)"),
        "curv_sharp": _Key("float", 4.0, _pos, doc="sharp-flat: curvature of the sharp minimum (x > 0)"),
        "barrier_flat": _Key("float", 0.5, _pos, doc="sharp-flat: barrier seen from the flat minimum"),
        "barrier_sharp": _Key("float", 0.5, _pos, doc="sharp-flat: barrier seen from the sharp minimum"),
        "coeffs": _Key("floats", [1.0, 0.0, -2.0, 0.0, 1.0],
                       doc="polynomial: coefficients c_j of L(x) = sum_j c_j x^j, ascending powers (even degree, "
                           "positive leading coefficient)"),
        "hessian": _Key("matrix", [[1.0]], doc="quadratic: Hessian H of L = (x - c)^T H (x - c)/2, a list "
                                               "(diagonal) or a list of lists (symmetric matrix); sets the dimension"),
        "center": _Key("floats", None, doc="quadratic: the minimum c (default: the origin)"),
        "kappa": _Key("float", 1.0, _pos, doc="entropic: κ in L = (x² - 1)² + κ y²/2 + c x² y²"),
        "c": _Key("float", 0.0, _nonneg, doc="entropic: coupling c in L = (x² - 1)² + κ y²/2 + c x² y²"),
        "dim": _Key("int", 2, _ge1, doc="styblinski-tang: dimension d"),
        "sharpness": _Key("floats", 1.0, doc="styblinski-tang: coordinate scale a (one number or d numbers); "
                                             "the Hessian scales by a², barriers are unchanged"),
        "finite_sum_n": _Key("int", 0, _nonneg, doc="n > 0 wraps the landscape into a FiniteSum of n samples "
                                                    "(offsets a_i, L = mean_i base(x - a_i)); 0: none"),
        "finite_sum_scale": _Key("float", 0.3, _pos, doc="finite sum: standard deviation of the Gaussian offsets a_i"),
        "finite_sum_seed": _Key("int", 0, _nonneg, doc="finite sum: seed of the offsets a_i"),
    },
    "dynamics": {
        "mode": _Key("str", "discrete", choices=("discrete", "sde"),
                     doc="discrete: the optimizer's update; sde: Euler-Maruyama of the SDE model with dt = eta_k"),
        "eta": _Key("float", 0.1, _pos, doc="learning rate η (time per step of the SDE reading, t = k η)"),
        "noise": _Key("str", "sgd-hessian", choices=("none", "white", "sgd-hessian", "minibatch"),
                      doc="gradient noise: none (GD), white N(0, noise_std² I), sgd-hessian N(0, |H|/B), "
                          "minibatch (true minibatches of a finite sum)"),
        "noise_std": _Key("float", 1.0, _nonneg, doc="white: standard deviation s of the gradient noise "
                                                     "(diffusion D = η s²/2); excludes dynamics.temperature"),
        "temperature": _Key("float", None, _pos,
                            doc="Langevin temperature T: white noise with s = sqrt(2T/η), so that D = T (the SDE's "
                                "stationary density is ∝ exp(-L/T); docs/theory.md §0.2); sets dynamics.noise = "
                                "'white' and excludes dynamics.noise_std; LEAP adds its own diffusion on top"),
        "batch_size": _Key("float", 1.0, _ge1, doc="sgd-hessian, minibatch: batch size B (an integer for "
                                                   "minibatch)"),
        "hessian_floor": _Key("float", 1e-2, _pos, doc="sgd-hessian: floor on |eigenvalues| of H in the noise "
                                                       "covariance (keeps it positive at inflection points)"),
        "optimizer": _Key("str", "sgd", choices=("sgd", "adam", "adamw"),
                          doc="torch.optim's rule: sgd (momentum, dampening, nesterov), adam, adamw"),
        "momentum": _Key("float", 0.0, _unit_open, doc="sgd: momentum μ"),
        "dampening": _Key("float", 0.0, _unit_closed, doc="sgd: dampening"),
        "nesterov": _Key("bool", False, doc="sgd: Nesterov momentum"),
        "betas": _Key("floats", [0.9, 0.999], valid="each in [0, 1)", doc="adam/adamw: (beta1, beta2), each in [0, 1)"),
        "eps": _Key("float", 1e-8, _pos, doc="adam/adamw: eps"),
        "weight_decay": _Key("float", -1.0, valid=">= 0, or -1", doc="L2 (sgd, adam) or decoupled (adamw) decay; -1: torch's "
                                               "default (0, or 0.01 for adamw)"),
    },
    "leap": {
        "sigma": _Key("sigma", 0.0, valid="each >= 0", doc="LEAP noise σ of the rate η̃ = η + ε, ε ~ N(0, σ²); a list runs one "
                                        "simulation per value (same seed); 0: no LEAP"),
        "mode": _Key("str", "per-coordinate", choices=("per-coordinate", "scalar"),
                     doc="one draw per coordinate and step, or one scalar per step"),
        "relative": _Key("bool", False, doc="ε = σ η_k z (relative to the scheduled rate) instead of σ z"),
        "variant": _Key("str", "gaussian", choices=("gaussian", "clipped", "lognormal"),
                        doc="gaussian: η + ε; clipped: max(η + ε, 0); lognormal: η exp(σ z - σ²/2)"),
    },
    "schedule": {
        "kind": _Key("str", "constant", choices=("constant", "step", "exponential", "cosine", "cosine-restarts",
                                                  "cyclic", "inverse-time"),
                     doc="learning-rate schedule η_k (torch.optim.lr_scheduler's names and values)"),
        "step_size": _Key("int", 1000, _ge1, doc="step: multiply by gamma every step_size steps"),
        "gamma": _Key("float", 0.5, _pos, doc="step, exponential: factor; cyclic exp_range: decay; "
                                              "inverse-time: rate γ"),
        "T_max": _Key("int", 10000, _ge1, doc="cosine: half period in steps"),
        "eta_min": _Key("float", 0.0, _nonneg, doc="cosine, cosine-restarts: lowest rate"),
        "T_0": _Key("int", 1000, _ge1, doc="cosine-restarts: steps to the first restart"),
        "T_mult": _Key("int", 1, _ge1, doc="cosine-restarts: period factor after each restart"),
        "max_lr": _Key("float", 0.2, _pos, doc="cyclic: upper rate (the lower one is dynamics.eta)"),
        "step_size_up": _Key("int", 1000, _ge1, doc="cyclic: steps of the rising half"),
        "step_size_down": _Key("int", 0, _nonneg, doc="cyclic: steps of the falling half; 0: same as step_size_up"),
        "cyclic_mode": _Key("str", "triangular", choices=("triangular", "triangular2", "exp_range"),
                            doc="cyclic: amplitude policy"),
        "power": _Key("float", 1.0, _pos, doc="inverse-time: eta_k = eta (1 + gamma k)^-power"),
        "warmup_steps": _Key("int", 0, _nonneg, doc="> 0: linear warm-up over this many steps before the schedule"),
        "warmup_start_factor": _Key("float", 1 / 3, _unit, doc="warm-up: first rate as a fraction of the rate"),
    },
    "init": {
        "x0": _Key("x0", "minimum", doc="a number, a list, or 'minimum' (then init.minimum picks which)"),
        "minimum": _Key("int", 0, _nonneg, doc="x0 = 'minimum': index into the landscape's known minima"),
    },
    "exit": {
        "kind": _Key("str", "threshold", choices=("threshold", "leave-ball", "reach-ball", "none"),
                     doc="when a particle has escaped: crossing x[coord] = threshold, leaving or reaching the "
                         "ball |x - center| < radius, or never (run all max_steps)"),
        "threshold": _Key("threshold", "minimum", doc="a number, or 'minimum': coordinate exit.coord of the "
                                                      "minimum exit.target_minimum"),
        "target_minimum": _Key("int", None, _nonneg,
                               doc="threshold = 'minimum': index of the target minimum; default: the known "
                                   "minimum nearest to x0 other than the one x0 starts in"),
        "coord": _Key("int", 0, _nonneg, doc="threshold: the coordinate compared with the threshold"),
        "direction": _Key("int", 0, valid="+1, -1 or 0", doc="threshold: +1 (escape at x >= threshold), -1 (<=), or 0: away from x0"),
        "center": _Key("floats", None, doc="leave-ball, reach-ball: the ball's center (default: x0)"),
        "radius": _Key("float", 1.0, _pos, doc="leave-ball, reach-ball: the ball's radius"),
        "require_barrier": _Key("bool", True, doc="false: allow a threshold / reach-ball first passage with no "
                                                  "barrier between start and exit (e.g. uphill Ornstein-Uhlenbeck); "
                                                  "rate and KS summaries are then marked not applicable"),
    },
    "run": {
        "particles": _Key("int", 2000, _ge1, doc="ensemble size N (independent particles)"),
        "max_steps": _Key("int", 200_000, _ge1, doc="step budget; particles still inside are right-censored"),
        "seed": _Key("int", 0, _nonneg, doc="seed of the run (every σ uses the same one)"),
        "threads": _Key("int", 0, _nonneg, doc="Numba threads (results do not depend on it); 0: all cores"),
        "basins": _Key("bool", True, doc="record the steps spent in each basin (landscapes with saddles)"),
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

#: the valid range of each check, as ``leap-sde keys`` prints it
_RANGES = {_pos: "> 0", _nonneg: ">= 0", _ge1: ">= 1", _unit_open: "[0, 1)", _unit_closed: "[0, 1]",
           _unit: "(0, 1]"}
#: what each value type accepts, as ``leap-sde keys`` prints it
_TYPES = {"float": "number", "int": "integer", "bool": "true/false", "str": "string",
          "floats": "number or list", "matrix": "list or list of lists", "sigma": "number or list",
          "x0": "number, list or 'minimum'", "threshold": "number or 'minimum'"}

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
                if v is None and key in SCHEMA[section]:
                    continue  # None: not set (a resolved config holds None for unset optional keys)
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
    dyn = cfg["dynamics"]
    if dyn["temperature"] is not None:
        if "noise_std" in explicit["dynamics"] and dyn["noise_std"] != white_noise_std(dyn["temperature"],
                                                                                        dyn["eta"]):
            raise ConfigError("dynamics.temperature and dynamics.noise_std: give one of them (the temperature T "
                              "sets the white-noise scale s = sqrt(2T/eta))")
        if "noise" in explicit["dynamics"] and dyn["noise"] != "white":
            raise ConfigError(f"dynamics.temperature: needs dynamics.noise = 'white' (Langevin dynamics), got "
                              f"{dyn['noise']!r}; for SGD-like noise use dynamics.batch_size")
        # the scale follows from T; kept in the resolved config (config.toml leaves it out)
        dyn["noise"], dyn["noise_std"] = "white", white_noise_std(dyn["temperature"], dyn["eta"])
    between_minima = (cfg["init"]["x0"] == "minimum" and cfg["exit"]["kind"] == "threshold"
                      and cfg["exit"]["threshold"] == "minimum")
    if cfg["run"]["preference"] and not between_minima and "preference" not in explicit["run"]:
        cfg["run"]["preference"] = False  # the default experiment's setting, not applicable to this escape
    from .experiment import Experiment  # imported here: experiment.py imports this module

    exp = Experiment.from_config(cfg)  # builds every object once: range errors surface here
    if exp.target_minimum is not None:
        cfg["exit"]["target_minimum"] = exp.target_minimum  # the chosen default, so config.toml shows it
    return cfg


def _nest(triples):
    out: dict = {}
    for s, k, v in triples:
        out.setdefault(s, {})[k] = v
    return out


def white_noise_std(temperature: float, eta: float) -> float:
    """The white-noise scale ``s = sqrt(2T/η)`` of Langevin dynamics at temperature T: the discrete update is
    then the Euler–Maruyama step of ``dx = -∇L dt + sqrt(2T) dW`` with ``dt = η`` (``D = η s²/2 = T``,
    docs/theory.md §0.2), as :meth:`leap_sde.WhiteNoise.langevin` computes it."""
    return float(np.sqrt(2.0 * temperature / eta))


def _default_text(spec: _Key) -> str:
    d = spec.default
    if d is None:
        return "unset"
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, str):
        return repr(d)
    if isinstance(d, float):
        return f"{d:.4g}"
    return str(d)


def key_rows(section: str | None = None) -> list:
    """One dict per config key (``section``, ``key``, ``type``, ``default``, ``range``, ``meaning``), generated
    from :data:`SCHEMA`; ``section`` restricts it to one section (ConfigError naming the valid ones)."""
    if section is not None and section not in SCHEMA:
        raise ConfigError(f"unknown section [{_shown(section)}]; valid sections: {', '.join(SCHEMA)}")
    rows = []
    for sec, keys in SCHEMA.items():
        if section is not None and sec != section:
            continue
        for k, spec in keys.items():
            rng = spec.valid or _RANGES.get(spec.check, "")
            if spec.choices:
                rng = "one of " + ", ".join(spec.choices)
            rows.append({"section": sec, "key": k, "type": _TYPES[spec.type], "default": _default_text(spec),
                         "range": rng or "any", "meaning": spec.doc})
    return rows


def keys_text(section: str | None = None, *, width: int = 80) -> str:
    """``leap-sde keys [SECTION]``: every key with its type, default, valid range and meaning, wrapped to
    ``width`` columns."""
    import textwrap

    lines = []
    for sec in SCHEMA if section is None else [section]:
        rows = key_rows(sec)
        if lines:
            lines.append("")
        lines.append(f"[{sec}]")
        for r in rows:
            head = f"  {r['key']}  ({r['type']}; default {r['default']}; {r['range']})"
            lines.extend(textwrap.wrap(head, width, subsequent_indent="      ", break_on_hyphens=False))
            lines.extend(textwrap.wrap(r["meaning"], width, initial_indent="      ", subsequent_indent="      ",
                                       break_on_hyphens=False))
    return "\n".join(lines)
