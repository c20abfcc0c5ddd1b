"""simulations/bench_kernel.py: every NumPy implementation it times simulates the kernel's own dynamics
(pathwise, on the kernel's per-particle streams), and the quick run prints every row.  Nothing is timed."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "simulations" / "bench_kernel.py"


@pytest.fixture(scope="module")
def bk():
    spec = importlib.util.spec_from_file_location("bench_kernel", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_kernel"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_kernel", None)


def test_numpy_rows_follow_the_kernel_pathwise(bk):
    rows = [r for r in bk.rows(quick=True) if r.extra.get("pathwise", True)]
    assert len(rows) >= 7
    for row in rows:
        # the same normals give the same path; only the summation order of matrix products differs
        assert bk.pathwise(row, n=8, steps=100) <= 1e-12 * max(1.0, float(np.abs(row.x0).max())), row.name


def test_minibatch_row_has_the_kernel_s_statistics(bk):
    """The minibatch row draws its own indices: compare the mean step against the kernel's (5 SE)."""
    import leap_sde as ls

    (row,) = [r for r in bk.rows(quick=True) if r.name.startswith("Minibatch")]
    n, seed = 4000, 7
    res = ls.simulate(row.land, row.x0, n_particles=n, max_steps=1, seed=seed, **row.kw)
    X = np.tile(row.x0, (n, 1))
    row.numpy_step(X, np.random.default_rng(seed).standard_normal((n, row.normals_per_step)))
    a, b = res.positions[:, 0] - row.x0[0], X[:, 0] - row.x0[0]
    se = np.sqrt(a.var() / n + b.var() / n)
    assert abs(a.mean() - b.mean()) < 5 * se
    assert abs(a.std() / b.std() - 1) < 5 * np.sqrt(2.0 / n)


@pytest.mark.slow
def test_quick_run_prints_every_row(bk, capsys):
    text = bk.main(["--quick"])
    assert text in capsys.readouterr().out
    for row in bk.rows(quick=True):
        assert row.name in text
    for needle in ("2 threads / 1 thread", "simulate, d = 10 quadratic", "CustomLandscape", "pathwise"):
        assert needle in text
