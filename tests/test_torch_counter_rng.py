"""The counter-based normal stream lives in ``leap_sde._counter_rng`` and needs no torch.

The stream's values are pinned by ``tests/test_torch_leap.py`` (update rule against the stream, thread
independence, dtype independence); here: it imports and runs without torch, and the plug-in uses it.
"""
import subprocess
import sys

import numpy as np
import pytest


def test_counter_rng_imports_and_runs_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
            "from leap_sde._counter_rng import counter_normal, stream_key\n"
            "z = counter_normal(stream_key(1, 2, 3), 5)\n"
            "assert z.shape == (5,) and z.dtype.name == 'float64'\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_plugin_reexports_the_same_stream():
    pytest.importorskip("torch")
    import leap_sde._counter_rng as cr
    import leap_sde.torch as lt

    assert lt.counter_normal is cr.counter_normal and lt.stream_key is cr.stream_key
    key = cr.stream_key(7, 0, 0)
    assert np.array_equal(lt.counter_normal(key, 100), cr.counter_normal(key, 100))


def _reference_stream(key, n):
    """The module docstring's element-by-element definition, in plain Python integers (independent of
    the blocked Numba kernels): SplitMix64 words, then the Marsaglia–Tsang ziggurat per element."""
    import math

    from leap_sde._counter_rng import _FN, _KN, _R, _WN

    mask, phi, block = (1 << 64) - 1, 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03

    def word(i, a):
        x = ((key ^ ((a >> 4) * block)) & mask) + ((16 * i + (a % 16)) + 1) * phi
        x &= mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    def uniform(w):
        return ((w >> 11) + 0.5) / 2.0**53

    def signed32(w):
        h = w >> 32
        return h - (1 << 32) if h >= 1 << 31 else h

    out = []
    for i in range(n):
        w, a = word(i, 0), 1
        iz, hz = w & 127, signed32(w)
        while True:
            if abs(hz) < _KN[iz]:
                out.append(hz * _WN[iz])
                break
            x = hz * _WN[iz]
            if iz == 0:
                while True:
                    x = -math.log(uniform(word(i, a))) / _R
                    y = -math.log(uniform(word(i, a + 1)))
                    a += 2
                    if y + y >= x * x:
                        break
                out.append(_R + x if hz > 0 else -_R - x)
                break
            if _FN[iz] + uniform(word(i, a)) * (_FN[iz - 1] - _FN[iz]) < math.exp(-0.5 * x * x):
                out.append(x)
                break
            w = word(i, a + 1)
            a += 2
            iz, hz = w & 127, signed32(w)
    return np.array(out)


@pytest.mark.parametrize("key", [0, 12345, (1 << 64) - 3])
def test_blocked_kernel_equals_element_by_element_definition(key):
    """3000 elements (≈ 83 through the slow path, several blocks of 1024, a partial last block)."""
    from leap_sde._counter_rng import counter_normal, fused_leap_update

    ref = _reference_stream(key, 3000)
    z = counter_normal(key, 3000)
    assert np.array_equal(z, ref)
    # the fused update in float64 is exactly p + (c z)(p − old)
    rng = np.random.default_rng(0)
    old = rng.standard_normal(3000)
    p = old + 0.01 * rng.standard_normal(3000)
    want = p + (0.3 * ref) * (p - old)
    fused_leap_update(p, old, key, 0.3)
    assert np.array_equal(p, want)
