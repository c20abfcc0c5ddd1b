"""Runs the ```python blocks of a Markdown file, as the README and the documentation tutorials are tested.

``python_blocks(path)`` extracts the blocks in order; ``run_blocks(blocks, ...)`` executes them in one fresh
interpreter, one after another in a shared namespace (a tutorial's later blocks use the earlier ones' names),
each compiled under the name ``<file:block N>`` so a traceback says which block failed.  The README's blocks
are independent examples and are run one per call.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUNNER = """
import json, sys
blocks = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
for name, code in blocks:
    print(f"<<<block {name}>>>", flush=True)
    exec(compile(code, f"<{name}>", "exec"), ns)
"""


def python_blocks(path) -> list[str]:
    """The ```python fenced blocks of ``path``, in order."""
    return re.findall(r"^```python\n(.*?)^```", Path(path).read_text(encoding="utf-8"), flags=re.S | re.M)


def run_blocks(blocks, *, name="block", cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Execute ``blocks`` in order in one fresh interpreter; ``cwd`` defaults to the repository root, ``env``
    entries are added to the environment (the package is importable from this checkout)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    full_env.setdefault("MPLBACKEND", "Agg")
    full_env.update(env or {})
    payload = json.dumps([(f"{name}:block {i}", code) for i, code in enumerate(blocks)])
    return subprocess.run([sys.executable, "-c", _RUNNER], input=payload, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=full_env)


def block_outputs(stdout: str) -> list[str]:
    """Split a :func:`run_blocks` stdout into the output of each block."""
    return [part.split("\n", 1)[1] if "\n" in part else "" for part in re.split(r"^<<<block ", stdout, flags=re.M)[1:]]
