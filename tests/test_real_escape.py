"""simulations/real_escape.py --quick end to end: rows, fields and files of the predicted-vs-observed study."""
import json
import math

import numpy as np
import pytest

from _scripts import load_script

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("mnist1d")
pytestmark = pytest.mark.torch




FIELDS = {"model", "dataset", "sigma_over_lr", "exit_level", "observed_mean_steps", "observed_ci", "observed_method",
          "predicted_mean_steps", "predicted_ci"}


def test_quick_run_writes_one_row_per_setting_level_and_method(tmp_path):
    re_ = load_script("real_escape")
    rows = re_.main(["--quick", "--out", str(tmp_path)])
    cfg = re_.QUICK
    n_settings = len(cfg.settings) * len(cfg.sigmas)
    assert len(rows) == n_settings * (len(cfg.levels) + 1)  # AMS at every level + brute force at the lowest
    on_disk = json.loads((tmp_path / "escape_prediction_quick.json").read_text())
    assert len(on_disk) == len(rows)
    assert (tmp_path / "escape_prediction_quick.png").stat().st_size > 0
    info = json.loads((tmp_path / "escape_prediction_quick_info.json").read_text())
    assert len(info["settings"]) == n_settings
    for r in on_disk:
        assert FIELDS <= set(r)
        assert r["observed_method"] == "AMS" or r["observed_method"].startswith("brute force")
        assert r["dataset"] in re_.DATASETS and r["model"] in re_.MODELS
        assert r["predicted_mean_steps"] > 0 and math.isfinite(r["predicted_mean_steps"])
        o = float(r["observed_mean_steps"])
        if math.isfinite(o):
            assert r["ratio_observed_over_predicted"] == pytest.approx(o / r["predicted_mean_steps"])
    for (m, d) in cfg.settings:
        for s in cfg.sigmas:
            mine = [r for r in on_disk if (r["model"], r["dataset"], r["sigma_over_lr"]) == (m, d, s)]
            levels = sorted({r["exit_level"] for r in mine})
            assert len(levels) == len(cfg.levels)
            low = [r for r in mine if r["exit_level"] == levels[0]]
            assert {r["observed_method"].split(" (")[0] for r in low} == {"AMS", "brute force"}
            # one prediction per exit level, the same for both observation methods
            assert len({r["predicted_mean_steps"] for r in low}) == 1
            # higher exits take longer in the reduced chain fitted from the same pre-escape runs
            preds = [next(r["predicted_mean_steps"] for r in mine if r["exit_level"] == a) for a in levels]
            assert np.all(np.diff(preds) > 0)


def test_quick_predict_only_empirical_writes_both_kernels(tmp_path):
    """--predict-only --empirical (one quick setting): rows with the Gaussian and both empirical predictions (pooled
    and per side of θ*), finite and positive, in escape_prediction_empirical_quick.json; nothing else written."""
    re_ = load_script("real_escape")
    rows = re_.main(["--quick", "--predict-only", "--empirical", "--models", "tanh_mlp", "--datasets", "digits",
                     "--out", str(tmp_path)])
    assert [p.name for p in tmp_path.iterdir()] == ["escape_prediction_empirical_quick.json"]
    on_disk = json.loads((tmp_path / "escape_prediction_empirical_quick.json").read_text())
    assert len(on_disk) == len(rows) == len(re_.QUICK.levels) * len(re_.QUICK.sigmas)
    for r in on_disk:
        for k in ("predicted_mean_steps", "predicted_mean_steps_empirical", "predicted_mean_steps_empirical_split"):
            assert r[k] > 0 and math.isfinite(r[k]), (k, r[k])
        lo, hi = r["predicted_ci_empirical"]
        assert lo <= r["predicted_mean_steps_empirical"] <= hi
        assert r["n_residuals"] == r["fit_pairs"]
