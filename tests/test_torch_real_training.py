"""simulations/real_training.py: the batched-replica escape machinery, and the --quick end-to-end run."""
import json

import numpy as np
import pytest

from _scripts import load_script

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
pytest.importorskip("sklearn")




rt = load_script("real_training")


def test_batched_replicas_are_independent_copies_of_the_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.Tanh(), torch.nn.Linear(8, 10)).double()
    R, B = 3, 5
    bm = rt.BatchedMLP(net, R)
    X = torch.randn(R, B, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = bm(X)
    for r in range(R):
        torch.testing.assert_close(out[r], net(X[r]))
    # the summed loss gives each replica its own gradient
    out[1].sum().backward()
    assert all(float(p.grad[0].abs().sum()) == 0 and float(p.grad[2].abs().sum()) == 0 for p in bm.ps)
    # the flat-parameter layout of a replica is the template's
    flat = torch.cat([p[2].reshape(-1) for p in bm.ps])
    assert torch.equal(flat, torch.cat([p.detach().reshape(-1) for p in net.parameters()]))


def test_first_crossing_level_and_barrier():
    a = np.linspace(0, 2, 201)
    x, barrier = rt._first_crossing(a, a ** 2, 1.0)
    assert x == pytest.approx(1.0, abs=1e-3) and not barrier
    x, barrier = rt._first_crossing(a, np.sin(3 * a) * 0.5, 1.0)  # max 0.5 < level at a = π/6
    assert barrier and x == pytest.approx(np.pi / 6, abs=0.01)


@pytest.mark.slow
def test_quick_run_writes_tables_and_figures(tmp_path):
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        report = rt.main(["--quick", "--out", str(tmp_path)])
    finally:  # main() sets 1 thread for these tiny models; give the session its threads back
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    for f in ("grid_runs.csv", "grid_summary.csv", "grid_summary.json", "grid_test_error.png",
              "grid_sharpness.png", "escape.json", "escape_table.csv", "escape_survival.png", "run_info.json"):
        assert (tmp_path / f).exists(), f
    esc = json.loads((tmp_path / "escape.json").read_text())
    assert len(esc["table"]) == 2 and esc["local"]["lambda_max"] > 0
    assert all(0 <= s["test_error_mean"] <= 1 for s in report["grid"])
