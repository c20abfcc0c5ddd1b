"""simulations/bench_kernel.py: it runs (``--quick``), and every implementation it times simulates the
kernel's dynamics — pathwise on the kernel's own random streams, statistically with its own generator.
Nothing here is timed."""
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "simulations" / "bench_kernel.py"


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


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


@pytest.mark.parametrize("case", ["1-D", "2-D"])
def test_pathwise_agreement_on_kernel_streams(bk, case):
    # NumPy, PyTorch and the fused loops driven by the kernel's normals give the kernel's paths exactly
    n, steps, seed = 64, 300, 11
    out = bk.pathwise_check(bk.hot(bk.cases()[case]), n, steps, seed, use_torch=_has_torch())
    assert 0 < out["kernel_escaped"] < n  # exits happen, so the masking/compaction is exercised
    impls = [k for k, v in out.items() if isinstance(v, dict)]
    assert {"NumPy", "fused njit"} <= set(impls)
    for name in impls:
        assert out[name]["mismatched"] == 0, name
        assert out[name]["max_abs_dx"] <= 1e-12, name


@pytest.mark.parametrize("case", ["1-D", "2-D"])
def test_escape_fraction_agrees_with_own_generators(bk, case):
    n, steps, seed, z_max = 4000, 300, 12, 5.0  # |Δp| within 5 standard errors
    out = bk.statistical_check(bk.hot(bk.cases()[case]), n, steps, seed, use_torch=_has_torch())
    assert 0.05 < out["kernel"] < 0.95
    for name, v in out.items():
        if isinstance(v, dict):
            assert abs(v["z"]) < z_max, (name, v)


def test_rng_floor_draws_the_kernel_normals(bk):
    # the floor loop draws exactly the normals of the particles' streams (sums compared bit for bit)
    from leap_sde._rng import fill_normals, particle_seeds
    import leap_sde as ls

    n, draws, seed = 16, 7, 3
    out = np.empty(n)
    bk._xoshiro_floor(bk.kernel_states(seed, n), draws, out)
    words = particle_seeds(ls.normalize_seed(seed), n)
    expected = np.empty(n)
    for i in range(n):
        z = np.empty(draws)
        fill_normals(words[i], z)
        acc = 0.0
        for v in z:
            acc += v
        expected[i] = acc
    np.testing.assert_array_equal(out, expected)


def test_quick_run_prints_the_table(bk, capsys):
    # in-process (the module's compiled loops are reused); the compile-time and memory parts still run in
    # fresh interpreters, as in a full run
    text = bk.main(["--quick"])
    assert text in capsys.readouterr().out
    for needle in ("leap_sde kernel", "NumPy vectorised", "fused njit loop", "RNG floor: xoshiro256+",
                   "RNG floor: NumPy Generator", "with on-disk cache", "peak RSS", "pathwise", "escape fraction",
                   "kernel / NumPy", "kernel / RNG floor"):
        assert needle in text, needle
    assert ("torchsde Euler" in text) or ("torchsde: not installed" in text)
    # every target line's verdict follows from the goal and the value printed on it (the kernel rate and
    # ratio targets: higher is better); lines within 1% of the goal are skipped (the printed values are rounded)
    targets = [m.groups() for m in re.finditer(
        r"^(\S.*?) +(\S+) +(\S+)  (MET|MISSED) +[+-]\d+% +(\S+)  (MET|MISSED) +[+-]\d+%$", text, re.M)]
    assert targets
    for label, goal, wall, v_wall, cpu, v_cpu in targets:
        for value, verdict in ((float(wall), v_wall), (float(cpu), v_cpu)):
            if abs(value / float(goal) - 1) > 0.01:
                assert verdict == ("MET" if value > float(goal) else "MISSED"), (label, value, goal, verdict)

    mismatched = [int(m) for m in re.findall(r"(\d+) mismatched", text)]
    assert mismatched and not any(mismatched)


def test_verdict_rule(bk):
    assert bk._verdict(2.0, 1.0).split() == ["MET", "+100%"]
    assert bk._verdict(0.5, 1.0).split() == ["MISSED", "-50%"]
    assert bk._verdict(50.0, 100.0, higher=False).split() == ["MET", "+50%"]
    assert bk._verdict(150.0, 100.0, higher=False).split() == ["MISSED", "-50%"]
