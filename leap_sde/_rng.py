"""Counter-free per-particle random streams for the compiled kernels.

Each particle owns a xoshiro256+ generator (Blackman & Vigna, "Scrambled linear pseudorandom number
generators", ACM TOMS 2021) whose 256-bit state is filled by splitmix64 from one 64-bit word.  The words
come from ``numpy.random.SeedSequence(seed).generate_state(n_particles)``, so particle ``i`` draws the same
numbers whatever the thread count or the order in which particles are scheduled.

Standard normals use the 256-layer ziggurat of Marsaglia & Tsang (J. Stat. Softw. 5(8), 2000) in the
52-bit integer form also used by NumPy: one 64-bit draw gives the layer (8 bits), the sign (1 bit) and the
abscissa (52 bits), and 99% of draws return after a table look-up, a multiply and a compare.

The tables are built here at import from the closed-form recursion (no hard-coded constants); the
kernels see them as compile-time constant arrays.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["particle_seeds"]

_N_LAYERS = 256
_R = 3.6541528853610088  # right-most layer edge for 256 layers (Marsaglia & Tsang 2000)


def _ziggurat_tables():
    """Layer widths ``W`` (scaled by 2^-52), accept bounds ``K`` and densities ``FLO``/``FHI``.

    Layers i = 1..255 are rectangles [0, x_i] x [f(x_i), f(x_{i+1})] of equal area v with
    f(x) = exp(-x^2/2), x_1 = R, x_{i+1} = f^{-1}(v/x_i + f(x_i)), x_256 = 0.  Layer 0 is the base
    rectangle [0, R] x [0, f(R)] plus the tail beyond R, of the same area v, drawn with width v/f(R).
    """
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    v = _R * f(_R) + math.sqrt(math.pi / 2) * math.erfc(_R / math.sqrt(2))
    x = np.zeros(_N_LAYERS + 1)
    x[1] = _R
    for i in range(1, _N_LAYERS - 1):
        y = v / x[i] + f(x[i])
        x[i + 1] = math.sqrt(-2.0 * math.log(y)) if y < 1.0 else 0.0
    x[_N_LAYERS] = 0.0
    two52 = float(1 << 52)
    width = np.empty(_N_LAYERS)
    inner = np.empty(_N_LAYERS)
    width[0] = v / f(_R)
    inner[0] = _R
    width[1:] = x[1:_N_LAYERS]
    inner[1:] = x[2:]
    W = width / two52
    K = np.floor(two52 * inner / width).astype(np.uint64)
    FLO = np.array([0.0] + [f(x[i]) for i in range(1, _N_LAYERS)])
    FHI = np.array([f(_R)] + [f(x[i + 1]) for i in range(1, _N_LAYERS)])
    return W, K, FLO, FHI


_W, _K, _FLO, _FHI = _ziggurat_tables()
_W.setflags(write=False)
_K.setflags(write=False)
_FLO.setflags(write=False)
_FHI.setflags(write=False)


def particle_seeds(seed, n: int) -> np.ndarray:
    """One 64-bit seed word per particle, ``(n,) uint64``, from ``SeedSequence(seed)``."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return ss.generate_state(n, dtype=np.uint64)


@nb.njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@nb.njit(cache=True)
def seed_state(word, s):
    """Fill the xoshiro256+ state ``s`` (4,) uint64 from one word with splitmix64."""
    z = word
    for i in range(4):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        t = z
        t = (t ^ (t >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        t = (t ^ (t >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        s[i] = t ^ (t >> np.uint64(31))


@nb.njit(inline="always")
def next_t(s0, s1, s2, s3):
    """xoshiro256+ on a state held in four scalars: returns ``(output, s0, s1, s2, s3)``.

    The kernels keep the state in registers this way; only bits 8..63 of the output are used (the low
    bits of xoshiro256+ are weaker, Blackman & Vigna 2021)."""
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@nb.njit(inline="always")
def next_u64(s):
    """Next output of the stream whose state is the (4,) uint64 array ``s`` (updated in place)."""
    r, s[0], s[1], s[2], s[3] = next_t(s[0], s[1], s[2], s[3])
    return r


@nb.njit(inline="always")
def _to_double(r):
    return np.float64(r >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@nb.njit(inline="always")
def next_double(s):
    """Uniform on [0, 1) with 53 random bits."""
    return _to_double(next_u64(s))


@nb.njit(cache=True)
def _normal_slow_t(s0, s1, s2, s3, idx, x, rabs):
    """Rejection branch of the ziggurat (about 1% of draws): tail or wedge."""
    while True:
        if idx == 0:
            while True:
                r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
                xx = -math.log1p(-_to_double(r)) / _R
                r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
                yy = -math.log1p(-_to_double(r))
                if yy + yy > xx * xx:
                    return (-(_R + xx) if (rabs & np.uint64(1)) else _R + xx), s0, s1, s2, s3
        r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
        if _FLO[idx] + _to_double(r) * (_FHI[idx] - _FLO[idx]) < math.exp(-0.5 * x * x):
            return x, s0, s1, s2, s3
        r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
        idx, rabs, x = _layer_point(r)
        if rabs < _K[idx]:
            return x, s0, s1, s2, s3


@nb.njit(inline="always")
def _layer_point(r):
    """Split one 64-bit draw into layer (8 bits), sign (1 bit) and abscissa (52 bits): ``(idx, rabs, x)``."""
    idx = np.int64(r & np.uint64(0xFF))
    rabs = r >> np.uint64(12)
    x = np.float64(rabs) * _W[idx]
    if (r >> np.uint64(8)) & np.uint64(1):
        x = -x
    return idx, rabs, x


@nb.njit(inline="always")
def normal_t(s0, s1, s2, s3):
    """Standard normal (ziggurat) from a scalar-held state: returns ``(z, s0, s1, s2, s3)``."""
    r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
    idx, rabs, x = _layer_point(r)
    if rabs < _K[idx]:
        return x, s0, s1, s2, s3
    return _normal_slow_t(s0, s1, s2, s3, idx, x, rabs)


@nb.njit(inline="always")
def normal(s):
    """Standard normal variate from the stream with array state ``s`` (4,) uint64."""
    z, s[0], s[1], s[2], s[3] = normal_t(s[0], s[1], s[2], s[3])
    return z


@nb.njit(inline="always")
def uniform_int_t(s0, s1, s2, s3, n):
    """Uniform integer in [0, n) from a scalar-held state (Lemire's multiply-shift on the top 32 bits; bias
    < n / 2^32): returns ``(i, s0, s1, s2, s3)``."""
    r, s0, s1, s2, s3 = next_t(s0, s1, s2, s3)
    return np.int64(((r >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)), s0, s1, s2, s3


@nb.njit(inline="always")
def uniform_int(s, n):
    """:func:`uniform_int_t` on the stream with array state ``s`` (4,) uint64."""
    i, s[0], s[1], s[2], s[3] = uniform_int_t(s[0], s[1], s[2], s[3], n)
    return i


@nb.njit(cache=True)
def fill_normals(word, out):
    """Write standard normals from the stream seeded by ``word`` into ``out`` (1-D); for tests."""
    s = np.empty(4, np.uint64)
    seed_state(word, s)
    for i in range(out.shape[0]):
        out[i] = normal(s)


@nb.njit(cache=True)
def fill_uniform_ints(word, n, out):
    """Write uniform integers in [0, n) from the stream seeded by ``word`` into ``out``; for tests."""
    s = np.empty(4, np.uint64)
    seed_state(word, s)
    for i in range(out.shape[0]):
        out[i] = uniform_int(s, n)
