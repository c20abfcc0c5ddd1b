"""Where a result came from: package versions, the git commit of a source checkout, the command line and the
machine (recorded in ``result.json`` under ``provenance``; see docs/results-format.md)."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Optional

__all__ = ["provenance", "versions", "git_state", "machine"]

#: the packages whose versions are always recorded; torch is added when it has been imported
_PACKAGES = ("numpy", "numba", "scipy")


def versions() -> dict:
    """``{package: version}`` of leap_sde, Python, numpy, numba, scipy, and torch where it is imported (a run
    that never imported torch did not use it, and importing it here would cost seconds)."""
    from . import __version__

    out = {"leap_sde": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        out[name] = _version_of(name)
    if "torch" in sys.modules:
        out["torch"] = _version_of("torch")
    return out


def _version_of(name: str) -> Optional[str]:
    mod = sys.modules.get(name)
    v = getattr(mod, "__version__", None) if mod is not None else None
    if v is None:
        try:
            from importlib.metadata import version

            v = version(name)
        except Exception:  # noqa: BLE001 - not installed: recorded as None
            v = None
    return None if v is None else str(v)


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                           env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.rstrip("\n") if r.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> Optional[dict]:
    """The checkout leap_sde was imported from, or None when it is not a git work tree whose top level holds
    the package (an installed wheel, or a package that merely sits inside some other repository).

    ``commit`` is ``HEAD``; ``describe`` is ``git describe --always --dirty --tags``; ``dirty`` says whether
    tracked files differ from HEAD (staged or not), ``modified`` lists them (at most 50), ``n_modified``
    counts them; untracked files are not looked at.
    Read once per process (the code that runs is the code imported at start)."""
    pkg = Path(__file__).resolve().parent
    top = _git(pkg, "rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != pkg.parent:
        return None
    commit = _git(pkg.parent, "rev-parse", "HEAD")
    if commit is None:
        return None
    # untracked files are not looked at: result folders inside the checkout would make this slow
    status = _git(pkg.parent, "status", "--porcelain", "--untracked-files=no") or ""
    modified = [ln[3:] for ln in status.splitlines() if ln.strip()]
    return {"commit": commit, "describe": _git(pkg.parent, "describe", "--always", "--dirty", "--tags"),
            "dirty": bool(modified), "modified": modified[:50], "n_modified": len(modified)}


def machine() -> dict:
    """Core counts (``cpu_count``: the machine's logical cores; ``usable_cores``: those this process may run
    on), numba's thread count and the platform."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        usable = os.cpu_count()
    try:
        import numba

        nthreads = int(numba.config.NUMBA_NUM_THREADS)
    except Exception:  # noqa: BLE001 - pragma: no cover
        nthreads = None
    return {"cpu_count": os.cpu_count(), "usable_cores": usable, "numba_threads": nthreads,
            "platform": platform.platform(), "machine": platform.machine()}


def provenance() -> dict:
    """``{"versions", "git", "command", "machine"}`` of this process (``command``: ``sys.argv`` as run, the
    first entry the program; for a library call it is the calling script's command line)."""
    return {"versions": versions(), "git": git_state(), "command": [sys.executable, *sys.argv],
            "cwd": os.getcwd(), "machine": machine()}
