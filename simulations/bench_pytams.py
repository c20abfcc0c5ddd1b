"""Side by side with pyTAMS (trajectory-adaptive multilevel splitting, PyPI ``pytams``) on the same probability.

Problem: the double well ``(x² − 1)²``, overdamped Langevin / GD + white noise with D = 1/8 (ΔU/D = 8),
Euler–Maruyama step dt = η = 0.01, from x = −1; estimand ``P(x ≥ 0 within T = 2000 steps)``.  pyTAMS integrates
``x ← x − dt·U'(x) + √(2·dt·D)·z`` in its forward model (below), the same update as leap_sde's discrete GD with
``std = √(2D/η)``.  Rows: brute force (``leap_sde.simulate``, the reference), ``leap_sde.ams_probability``
(generalized AMS on the path maximum, the TAMS estimand) and pyTAMS (score ``x + 1``, target 1, N trajectories,
one process, asyncio runner), each repeated; wall time per estimate and the spread of the estimates.
pyTAMS is not a dependency: ``pip install pytams`` to include its row.

    python simulations/bench_pytams.py | tee simulations/results/bench_pytams.txt
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

import leap_sde as ls

D, ETA, T, N = 0.125, 0.01, 2000, 100
LAND = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])
KW = dict(eta=ETA, noise=ls.WhiteNoise(math.sqrt(2 * D / ETA)), exit=ls.Threshold(0.0))

_MODEL = '''
import time
import numpy as np
from pytams.fmodel import ForwardModelBaseClass
from pytams.tams import TAMS


class DoubleWell1D(ForwardModelBaseClass):
    def _init_model(self, m_id, params):
        self._state = np.array([-1.0])
        self._D = params["model"]["D"]
        self._rng = np.random.default_rng()

    def _advance(self, _step, _time, dt, noise, _need_end_state):
        x = self._state
        self._state = x - dt * 4.0 * x * (x * x - 1.0) + np.sqrt(2.0 * dt * self._D) * noise
        return dt

    def get_current_state(self):
        return self._state

    def set_current_state(self, state):
        self._state = state

    def score(self):
        return float(self._state[0] + 1.0)

    def make_noise(self):
        return self._rng.standard_normal(1)

    @classmethod
    def name(cls):
        return "DoubleWell1D"


t = time.perf_counter()
p = TAMS(fmodel_t=DoubleWell1D, a_args=["-i", "input.toml"]).compute_probability()
print(p, time.perf_counter() - t)
'''

_INPUT = f'''
[tams]
ntrajectories = {N}
nsplititer = 5000
loglevel = "WARNING"

[trajectory]
end_time = {T * ETA}
step_size = {ETA}
targetscore = 1.0

[model]
D = {D}

[runner]
type = "asyncio"
nworker_init = 1
nworker_iter = 1
'''


def pytams_runs(k):
    try:
        import pytams  # noqa: F401
    except ImportError:
        return None
    out = []
    for _ in range(k):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "input.toml"), "w") as f:
                f.write(textwrap.dedent(_INPUT))
            with open(os.path.join(tmp, "run.py"), "w") as f:
                f.write(_MODEL)
            r = subprocess.run([sys.executable, "run.py"], cwd=tmp, capture_output=True, text=True, check=True)
            p, wall = (float(v) for v in r.stdout.split()[-2:])
            out.append((p, wall))
    return out


def line(name, ps, walls, ref):
    ps = np.asarray(ps, dtype=float)
    m, sd = float(ps.mean()), float(ps.std(ddof=1)) if ps.size > 1 else math.nan
    se = sd / math.sqrt(ps.size)
    return (f"  {name:<34s} p = {m:.4e} ± {se:.1e} (SE of {ps.size}; relative SD of one estimate {sd / m:.2f})  "
            f"ratio to reference {m / ref:.3f}  wall per estimate {np.mean(walls):7.2f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pytams-runs", type=int, default=4)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    bf = ls.simulate(LAND, [-1.0], n_particles=1_000_000, max_steps=T, seed=1, threads=1, **KW)
    t_bf = time.perf_counter() - t
    ref = bf.n_escaped / bf.n_particles
    lines = [f"# P(x >= 0 within {T} steps), double well, D = {D} (barrier/D = 8), dt = eta = {ETA}; one thread each",
             f"  brute force (simulate, 1e6 particles)  p = {ref:.4e} ± {math.sqrt(ref * (1 - ref) / 1e6):.1e}  "
             f"wall {t_bf:.2f} s  (reference)"]
    ps, walls = [], []
    for s in range(8):  # each estimate: the mean of 2 runs of N replicas (ams_probability needs >= 2 for its CI)
        t = time.perf_counter()
        p, _, _ = ls.ams_probability(LAND, [-1.0], horizon=T, n_replicas=N, n_runs=2, seed=10 + s, threads=1, **KW)
        walls.append(time.perf_counter() - t)
        ps.append(p)
    lines.append(line(f"leap_sde.ams_probability, 2 x N = {N}", ps, walls, ref))
    runs = pytams_runs(args.pytams_runs)
    if runs is None:
        lines.append("  pytams: not installed (pip install pytams)")
    else:
        lines.append(line(f"pytams 1.0 TAMS, N = {N}", [r[0] for r in runs], [r[1] for r in runs], ref))
        lines.append(f"  wall-time ratio pytams (one run of N) / leap_sde (two runs of N): "
                     f"{np.mean([r[1] for r in runs]) / np.mean(walls):.0f}x")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
