"""The per-particle generator: normal law, uniform integers, SeedSequence seeding."""
import numpy as np
from scipy import stats

from leap_sde import _rng


def test_ziggurat_normals_match_the_normal_law():
    # seed 12345, n = 2e6 draws; moments within 4 standard errors, KS at level 1e-3
    n = 2_000_000
    z = np.empty(n)
    _rng.fill_normals(np.uint64(12345), z)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # tails (the ziggurat's slow branch): P(|z| > 3) within 4 binomial standard errors
    p = 2 * stats.norm.sf(3)
    assert abs(np.mean(np.abs(z) > 3) - p) < 4 * np.sqrt(p * (1 - p) / n)
    p4 = 2 * stats.norm.sf(4)
    assert abs(np.mean(np.abs(z) > 4) - p4) < 4 * np.sqrt(p4 / n)


def test_streams_are_reproducible_and_distinct():
    words = _rng.particle_seeds(3, 4)
    assert np.array_equal(words, _rng.particle_seeds(np.random.SeedSequence(3), 4))
    a, b, c = (np.empty(1000) for _ in range(3))
    _rng.fill_normals(words[0], a)
    _rng.fill_normals(words[0], b)
    _rng.fill_normals(words[1], c)
    assert np.array_equal(a, b)
    assert abs(np.corrcoef(a, c)[0, 1]) < 4 / np.sqrt(1000)


def test_uniform_ints_are_uniform():
    # seed 9, 600 000 draws over 6 cells: chi-square test at level 1e-3
    out = np.empty(600_000, dtype=np.int64)
    _rng.fill_uniform_ints(np.uint64(9), 6, out)
    assert out.min() == 0 and out.max() == 5
    assert stats.chisquare(np.bincount(out, minlength=6)).pvalue > 1e-3
