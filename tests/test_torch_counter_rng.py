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
