"""simulations/real_training_study.py: its statistics (Holm, paired t, power), the paired design, the --quick run."""
import json
import math

import numpy as np
import pytest

from _scripts import load_script

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
pytest.importorskip("sklearn")




st = load_script("real_training_study")


def test_holm_step_down_by_hand():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone: 0.06
    adj = st.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    assert st.holm([0.9, 0.8])[0] == 1.0  # capped at 1


def test_paired_matches_scipy_one_sample_t():
    from scipy import stats

    d = np.random.default_rng(3).normal(0.4, 1.0, size=9)
    r = st.paired(d)
    ref = stats.ttest_1samp(d, 0.0)
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert (r["ci_lo"], r["ci_hi"]) == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_mde_has_80_percent_power_by_monte_carlo():
    # seed 11, 40 000 simulated designs of n = 10 paired differences N(δ, 1), two-sided t-test at α = 0.005;
    # the rejection rate must be 0.8 within 3 binomial SE (3·sqrt(0.8·0.2/40000) = 0.006)
    from scipy import stats

    n, alpha, reps = 10, 0.005, 40_000
    delta = st.mde(1.0, n, alpha)
    d = np.random.default_rng(11).normal(delta, 1.0, size=(reps, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    power = float((np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)).mean())
    assert abs(power - 0.8) < 3 * math.sqrt(0.8 * 0.2 / reps)
    # the closed-form approximation (t_{1−α/2} + t_{0.8})/√n is close to the exact value
    approx = (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(0.8, n - 1)) / math.sqrt(n)
    assert delta == pytest.approx(approx, rel=0.1)


def test_pairs_share_init_and_batch_order():
    """Only the perturbation differs: a LEAP run with a vanishing σ reproduces the baseline run of its seed."""
    cfg = st.StudyConfig(epochs={"mnist1d": 1, "teacher": 2, "digits": 1}, ts_train=256, ts_test=256,
                         hessian_subset=256, hutchinson=4)
    data = st.load_task("teacher", cfg)
    base = st.train_one("teacher", data, "momentum", "cosine", 0.0, "per-coordinate", 0, cfg)
    tiny = st.train_one("teacher", data, "momentum", "cosine", 1e-7, "per-coordinate", 0, cfg)
    other_seed = st.train_one("teacher", data, "momentum", "cosine", 0.0, "per-coordinate", 1, cfg)
    assert tiny["train_loss"] == pytest.approx(base["train_loss"], rel=1e-4)
    assert tiny["lambda_max"] == pytest.approx(base["lambda_max"], rel=1e-3)
    assert abs(other_seed["train_loss"] - base["train_loss"]) > 1e-3 * base["train_loss"]  # seeds do differ


def test_quick_run_writes_tables_and_verdicts(tmp_path):
    pytest.importorskip("mnist1d")
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        summary = st.main(["--quick", "--out", str(tmp_path)])
    finally:  # main() sets 1 thread; give the session its threads back
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    for f in ("runs.csv", "pooled.csv", "cells.csv", "simulator.csv", "stability.csv", "summary.json", "report.md",
              "study_effects.png"):
        assert (tmp_path / f).exists(), f
    js = json.loads((tmp_path / "summary.json").read_text())
    assert set(js["verdicts"]) == {"LEAP lowers lambda_max", "LEAP lowers the Hessian trace",
                                   "LEAP improves (lowers) test error",
                                   "scalar LEAP lowers lambda_max under SGD+momentum (the lead)"}
    assert all(v["verdict"] in ("confirmed", "refuted", "mixed", "undetectable") for v in js["verdicts"].values())
    # one pooled comparison per metric × task × optimizer × mode × σ, each with its MDE
    assert len(js["pooled"]) == 3 * 2 * 2 * 2 * 1 and all(c["mde"] > 0 for c in js["pooled"])
    assert summary["n_runs"] == 2 * 2 * 1 * 3 * 3  # tasks × optimizers × schedules × seeds × settings
    # the simulator's rows: per optimizer, the no-LEAP baseline and 3 LEAP variants per σ
    assert len(js["simulator"]) == 2 * (1 + 3)
