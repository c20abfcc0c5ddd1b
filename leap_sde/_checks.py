"""Argument checks shared by the public API: each error names the argument and the valid range."""
from __future__ import annotations

import numpy as np


def check_finite(name, value):
    if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_positive(name, value):
    check_finite(name, value)
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_nonnegative(name, value):
    check_finite(name, value)
    if not np.all(np.asarray(value) >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
