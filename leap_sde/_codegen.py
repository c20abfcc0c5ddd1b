"""Compile generated kernel modules once per machine.

The simulation kernels are specialised per configuration: :mod:`leap_sde._kernels` writes the Python source
of one kernel module from the components' own definitions (their compiled functions and ``_kernel_*``
code), and this module turns that source into compiled code:

* the source is written to ``<cache>/leap_sde_kernel_<hash>.py`` (atomically) and imported from there, so
  Numba's on-disk cache (``cache=True``) works for it and later processes, sweep workers included, load the
  machine code instead of compiling it again;
* ``<hash>`` covers the source, the Numba version and a fingerprint of every module whose compiled functions
  the kernel calls (leap_sde's own, and a user's module for a :class:`~leap_sde.CustomLandscape`), so a changed
  formula never reuses a stale kernel;
* functions that cannot be imported by name from a module file (defined in ``__main__``, a notebook or a
  closure) are injected into the module instead, and that module is compiled in memory once per process.

``<cache>`` is ``$LEAP_SDE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/leap_sde`` (``~/.cache/leap_sde``); an
unwritable location falls back to a per-process temporary folder.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import numba as nb

_OWN_MODULES = ("_codegen", "_kernels", "_rng", "landscapes", "dynamics", "schedules")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Layout:
    """How a kernel holds one particle's state; the ``_kernel_*`` methods of the components write code for it.

    ``reg``: the position is held in scalars ``x0, x1, ...`` and the gradient in ``g0, g1, ...`` (d ≤ 2, a
    landscape of form "1d"/"2d"); else in arrays ``x``, ``g`` (d,) with scratch ``xt``, ``gt`` (d,), ``C``
    (d, d), ``mean`` (d,), ``G`` (n, d) and ``d`` bound.  Always bound: the random stream ``s0, s1, s2, s3``
    (draw with ``z, s0, s1, s2, s3 = normal_t(s0, s1, s2, s3)`` or ``uniform_int_t``), the rate ``eta_k``, the
    parameter arguments ``lp`` (landscape), ``nz`` (noise), ``lv`` (LEAP), ``ep`` (exit), the finite-sum
    offsets ``off`` (n, d), the landscape functions ``L_grad``/``L_hess`` (their own form) and, in array
    layout, ``GRAD(x, lp, out)``/``HESS(x, lp, out)``, ``RATE(sigma, eta_k, z)`` for LEAP, the step count
    ``k``, the optimizer's parameters ``op`` and its state (``state``: scalars ``m0, m1`` or arrays ``m``).
    """

    reg: bool
    d: int
    form: str
    constant_hessian: bool = False
    state: tuple = ()      # the optimizer's per-coordinate state names (e.g. ("m", "v"))

    def grad_call(self, xs: str) -> str:
        """Expression for the gradient at the coordinates ``xs`` (register layout)."""
        return f"L_grad({xs}, lp)"


def cache_dir() -> Path:
    """The folder holding generated kernel modules and their Numba cache (created on first use)."""
    return _cache_dir()


@functools.lru_cache(maxsize=1)
def _cache_dir() -> Path:
    env = os.environ.get("LEAP_SDE_CACHE_DIR")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leap_sde"
    root = root / f"kernels-numba{nb.__version__}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return root
    except OSError:
        return Path(tempfile.mkdtemp(prefix="leap_sde_kernels_"))


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _fingerprint(extra_files=()) -> str:
    here = Path(__file__).parent
    files = [str(here / f"{m}.py") for m in _OWN_MODULES] + sorted(set(extra_files))
    return hashlib.sha256("".join(_file_digest(f) for f in files).encode()).hexdigest()


def importable(fn) -> bool:
    """Whether compiled function ``fn`` can be imported by name from a module file (then cacheable)."""
    py = getattr(fn, "py_func", fn)
    mod = sys.modules.get(getattr(py, "__module__", None) or "")
    return (mod is not None and mod.__name__ != "__main__" and getattr(mod, "__file__", None) is not None
            and "<" not in py.__qualname__ and getattr(mod, py.__qualname__, None) is fn)


def compile_module(body: list, functions: dict, *, tag: str) -> types.ModuleType:
    """Import (generating it if needed) the module whose code is ``body`` (lines), after import lines for
    ``functions`` (alias -> compiled function).  Every ``@nb.njit(cache=True`` in ``body`` is rewritten to
    ``cache=False`` when some function is not importable.  ``tag`` is a readable name for the header."""
    cacheable = all(importable(f) for f in functions.values())
    imports, inject, extra = [], {}, []
    for alias, fn in sorted(functions.items()):
        py = getattr(fn, "py_func", fn)
        if cacheable:
            imports.append(f"from {py.__module__} import {py.__qualname__} as {alias}")
            extra.append(sys.modules[py.__module__].__file__)
        else:
            inject[alias] = fn
    lines = ["import math", "", "import numba as nb", "import numpy as np", "", *imports, "", *body]
    source = "\n".join(lines) + "\n"
    if not cacheable:
        source = source.replace("cache=True", "cache=False")
    digest = hashlib.sha256((source + _fingerprint(extra)).encode()).hexdigest()[:24]
    name = f"leap_sde_kernel_{digest}"
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        header = f"# Generated by leap_sde._codegen ({tag}); do not edit.\n"
        if cacheable:
            path = _cache_dir() / f"{name}.py"
            if not path.exists():
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(header + source)
                os.replace(tmp, path)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = types.ModuleType(name)
            module.__dict__.update(inject)
            exec(compile(header + source, f"<{name}>", "exec"), module.__dict__)
            sys.modules[name] = module
    return module


def _schedule_module(schedule):
    return _schedule_module_for(schedule.key, tuple(schedule._kernel_source()))


@functools.lru_cache(maxsize=None)
def _schedule_module_for(key, source):
    body = [*source, "", "",
            "@nb.njit(cache=True)", "def values(sp, eta0, out):",
            "    for k in range(out.shape[0]):", "        out[k] = S_eta(sp, eta0, k)", "", "",
            "@nb.njit(cache=True)", "def elapsed(sp, eta0, sorted_steps, out):",
            "    t = 0.0", "    k = 0", "    for j in range(sorted_steps.shape[0]):",
            "        while k < sorted_steps[j]:", "            t += S_eta(sp, eta0, k)", "            k += 1",
            "        out[j] = t"]
    return compile_module(body, {}, tag=f"schedule {key}")


def schedule_values(schedule):
    """Compiled ``values(sp, eta0, out)`` writing ``η_k`` for k = 0..len(out)−1 (the kernels' code)."""
    return _schedule_module(schedule).values


def schedule_elapsed(schedule):
    """Compiled ``elapsed(sp, eta0, sorted_steps, out)``: ``out[j] = Σ_{k < sorted_steps[j]} η_k``, one
    running sum in step order."""
    return _schedule_module(schedule).elapsed
