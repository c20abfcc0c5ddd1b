"""The rare-event engine (generalized AMS) against exact references where brute force cannot go."""
import math

import numpy as np
import pytest

import leap_sde as ls
import leap_sde.theory as th

DW = ls.Polynomial([1.0, 0.0, -2.0, 0.0, 1.0])   # (x² − 1)²: ΔU = 1 between −1 and the saddle at 0


def _dU(x):
    return 4.0 * x * (x * x - 1.0)


def _exact_chain(eta, std, x_c=0.0):
    """Exact MFPT (steps) of the discrete chain x' = x − η(U'(x) + std·z), Richardson-extrapolated in the grid."""
    kw = dict(eta=eta, noise_var=std**2)
    t1 = th.discrete_mfpt_1d(_dU, -1.0, x_c, -3.0, n_cells=3000, **kw)
    t2 = th.discrete_mfpt_1d(_dU, -1.0, x_c, -3.0, n_cells=1500, **kw)
    return t1 + (t1 - t2) / 3, abs(t1 - t2) / 3


def test_ams_mean_escape_at_barrier_16_matches_the_exact_discrete_chain():
    """ΔU/D = 16 (E τ ≈ 5.6e8 steps, ~1e10 for a brute-force estimate): within 3 SE + 2% of the exact chain.
    seed 5, 16 runs x 400 replicas; SE from the spread of the runs."""
    eta, ratio, seed, n_rep, n_runs = 0.01, 16.0, 5, 400, 16
    std = math.sqrt(2.0 / ratio / eta)
    exact, grid_err = _exact_chain(eta, std)
    res = ls.ams(DW, [-1.0], eta=eta, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0), n_replicas=n_rep,
                 n_runs=n_runs, seed=seed)
    assert abs(res.mean_steps - exact) <= 3 * res.mean_steps_se + 0.02 * exact + grid_err, (res.mean_steps, exact)
    assert res.mean_steps_ci[0] < res.mean_steps < res.mean_steps_ci[1]
    assert res.mean_time == pytest.approx(res.mean_steps * eta) and res.rate == pytest.approx(1 / res.mean_time)
    assert res.work_steps < exact / 20  # far less work than one brute-force escape
    assert 0 < res.probability < 1e-3 and res.iterations > 0 and len(res.runs) == n_runs


def test_ams_agrees_with_brute_force_where_both_run():
    """ΔU/D = 6 with LEAP: AMS and simulate() estimate the same mean (3 combined SE + 2%); seeds 7/8."""
    eta, std, sigma = 0.01, math.sqrt(2.0 / 6.0 / 0.01), 0.005
    kw = dict(eta=eta, noise=ls.WhiteNoise(std), leap=ls.LEAP(sigma), exit=ls.Threshold(0.0))
    a = ls.ams(DW, [-1.0], n_replicas=200, n_runs=10, seed=7, **kw)
    b = ls.simulate(DW, [-1.0], n_particles=2000, max_steps=2_000_000, seed=8, **kw)
    assert b.n_escaped == 2000
    m, se = b.steps.mean(), b.steps.std(ddof=1) / math.sqrt(2000)
    assert abs(a.mean_steps - m) <= 3 * math.hypot(a.mean_steps_se, se) + 0.02 * m, (a.mean_steps, m)


def test_ams_is_reproducible_and_thread_independent():
    kw = dict(eta=0.01, noise=ls.WhiteNoise(math.sqrt(2.0 / 10.0 / 0.01)), exit=ls.Threshold(0.0), n_replicas=100,
              n_runs=2, seed=3)
    a = ls.ams(DW, [-1.0], threads=1, **kw)
    b = ls.ams(DW, [-1.0], threads=2, **kw)
    assert a.mean_steps == b.mean_steps and a.probability == b.probability and a.work_steps == b.work_steps


def test_ams_refuses_what_it_cannot_estimate():
    kw = dict(eta=0.01, noise=ls.WhiteNoise(3.0), exit=ls.Threshold(0.0))
    with pytest.raises(ValueError, match="schedule"):
        ls.ams(DW, [-1.0], schedule=ls.StepLR(100), **kw)
    with pytest.raises(ValueError, match="n_runs"):
        ls.ams(DW, [-1.0], n_runs=1, **kw)
    with pytest.raises(ValueError, match="levels"):
        ls.ams(DW, [-1.0], levels=(-0.5, -0.9), **kw)


def test_ams_from_the_command_line(tmp_path):
    """run.method = "ams" in a config: result.json keeps the escape block's fields plus the AMS diagnostics.
    The shipped config (ΔU/D = 20) against the exact chain: within 3 SE + 2% (seed 1, 8 runs x 500 replicas)."""
    import json
    from pathlib import Path

    from leap_sde.cli import main

    cfg = Path(__file__).resolve().parents[1] / "simulations" / "configs" / "ams_double_well.toml"
    assert main(["simulate", str(cfg), "--quiet", "--out", str(tmp_path / "run")]) == 0
    esc = json.loads((tmp_path / "run" / "result.json").read_text())["escape"]
    assert esc["method"] == "ams" and esc["ams"]["runs"] == 8 and esc["ams"]["work_steps"] > 0
    exact, grid_err = _exact_chain(0.01, math.sqrt(2 * 0.05 / 0.01))
    assert abs(esc["mean_steps"] - exact) <= 3 * esc["mean_steps_se"] + 0.02 * exact + grid_err


@pytest.fixture(scope="module")
def _user_score(tmp_path_factory):
    """A user's score function in an importable module: ξ(x) = x[0]³ (monotone in x, so its level sets
    separate the start minimum from the exit like the default score; only the variance may differ)."""
    import importlib
    import sys

    d = tmp_path_factory.mktemp("score")
    (d / "user_score.py").write_text("import numba as nb\n\n\n@nb.njit\ndef score(x, p):\n    return x[0] ** 3\n")
    sys.path.insert(0, str(d))
    try:
        yield importlib.import_module("user_score").score
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("user_score", None)


def test_ams_with_a_user_score_is_unbiased(_user_score):
    """Same problem as the ΔU/D = 12 reference, score x³ with levels at x = −0.9, −0.8 (as the default's):
    within 3 SE + 2% of the exact chain; seed 9, 8 runs x 300 replicas."""
    eta, ratio = 0.01, 12.0
    std = math.sqrt(2.0 / ratio / eta)
    exact, grid_err = _exact_chain(eta, std)
    res = ls.ams(DW, [-1.0], eta=eta, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0), score=_user_score,
                 levels=((-0.9) ** 3, (-0.8) ** 3), n_replicas=300, n_runs=8, seed=9)
    assert abs(res.mean_steps - exact) <= 3 * res.mean_steps_se + 0.02 * exact + grid_err, (res.mean_steps, exact)
    with pytest.raises(ValueError, match="levels"):
        ls.ams(DW, [-1.0], eta=eta, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0), score=_user_score)


def test_fixed_horizon_probability_matches_brute_force():
    """P(reach the saddle within 2000 steps) at ΔU/D = 8: AMS (seed 1, 8 runs x 300 replicas) against brute force
    (seed 2, 200 000 particles): within 3 combined SE."""
    from leap_sde.ams import ams_probability

    eta, std, T = 0.01, math.sqrt(2 * 0.125 / 0.01), 2000
    kw = dict(eta=eta, noise=ls.WhiteNoise(std), exit=ls.Threshold(0.0))
    p, ci, work = ams_probability(DW, [-1.0], horizon=T, n_replicas=300, n_runs=8, seed=1, **kw)
    bf = ls.simulate(DW, [-1.0], n_particles=200_000, max_steps=T, seed=2, **kw)
    pb = bf.n_escaped / bf.n_particles
    se = math.hypot((ci[1] - ci[0]) / (2 * 2.365), math.sqrt(pb * (1 - pb) / bf.n_particles))  # t(7) 97.5%
    assert abs(p - pb) <= 3 * se, (p, pb, se)
    assert work < 0.5 * bf.n_particles * T


def test_ams_progress_bar_counts_the_runs_and_leaves_results_unchanged(monkeypatch, capsys):
    """progress=True (forced on, as on a terminal): one "AMS" bar over n_runs; the estimate is bit-identical."""
    import leap_sde._progress as prog

    kw = dict(eta=0.01, noise=ls.WhiteNoise(math.sqrt(2.0 / 4.0 / 0.01)), exit=ls.Threshold(0.0), n_replicas=20,
              n_runs=3, seed=3)
    quiet = ls.ams(DW, [-1.0], **kw)
    monkeypatch.setattr(prog, "bars_shown", lambda: True)
    shown = ls.ams(DW, [-1.0], progress=True, **kw)
    err = capsys.readouterr().err
    assert "AMS:" in err and "0/3" in err  # labelled, with the honest total (tqdm may skip the updates)
    assert shown.mean_steps == quiet.mean_steps and shown.work_steps == quiet.work_steps
    with pytest.raises(ValueError, match="progress"):
        ls.ams(DW, [-1.0], progress="yes", **kw)
