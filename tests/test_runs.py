"""Results as data (load_run, to_frame, load_sweep, results.csv without JSON cells) and comparing runs
(compare_runs / leap-sde compare: exact rate-ratio CI, log-rank test, config diff)."""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import leap_sde as ls
from leap_sde import cli
from leap_sde.config import resolve
from leap_sde.experiment import run_experiment, write_outputs
from leap_sde.runs import SCHEMA_VERSION, STATUS_NAMES, rate_ratio_ci

ROOT = Path(__file__).resolve().parents[1]
V01 = Path(__file__).parent / "data" / "v0_1"  # folders written by leap_sde 0.1.0 (see its README.md)

SMALL = ["--set", "run.particles=40", "--set", "run.max_steps=3000", "--set", "run.occupation_steps=500",
         "--set", "leap.sigma=[0.0, 0.1]", "--set", "run.seed=3"]


def _npz(folder):
    with np.load(Path(folder) / "escape_times.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _check_against_npz(run, z, *, back_positions=True):
    """Every loaded per-particle array equals the one in the npz."""
    assert run.sigmas == tuple(z["sigma"].tolist())
    for i, (res, rev) in enumerate(zip(run.results, run.reverse)):
        np.testing.assert_array_equal(res.steps, z[f"steps_{i}"])
        np.testing.assert_array_equal(res.times, z[f"times_{i}"])
        np.testing.assert_array_equal(res.status, z[f"status_{i}"])
        np.testing.assert_array_equal(res.positions, z[f"exit_points_{i}"])
        if f"back_steps_{i}" in z:
            np.testing.assert_array_equal(rev.steps, z[f"back_steps_{i}"])
            np.testing.assert_array_equal(rev.status, z[f"back_status_{i}"])
            if back_positions:
                np.testing.assert_array_equal(rev.positions, z[f"back_exit_points_{i}"])
            else:
                assert np.isnan(rev.positions).all()  # 0.1 did not store them


# ------------------------------------------------------------------------------------- the done-when test
def test_cli_run_loads_back_with_steps_frame_and_versions(tmp_path):
    """`leap-sde simulate` (a separate process, so the command line is its own), then load_run: per-particle
    steps equal the npz arrays, the DataFrame holds them, result.json records the versions."""
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "leap_sde", "simulate", "--out", str(out), "--quiet", *SMALL],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    run = ls.load_run(out)
    z = _npz(out)
    _check_against_npz(run, z)
    assert run.config["run"]["particles"] == 40 and run.config["leap"]["sigma"] == [0.0, 0.1]
    assert all(isinstance(res, ls.EscapeResult) for res in run.results)
    df = run.to_frame()
    assert len(df) == 80 and list(df.columns[:6]) == ["run", "leap.sigma", "particle", "status", "steps", "time"]
    for i in range(2):
        part = df[df["run"] == i]
        np.testing.assert_array_equal(part["steps"].to_numpy(), z[f"steps_{i}"])
        np.testing.assert_array_equal(part["x0"].to_numpy(), z[f"exit_points_{i}"][:, 0])
        assert (part["status"] == "escaped").sum() == int(np.sum(z[f"status_{i}"] == 1))
        assert (part["leap.sigma"] == z["sigma"][i]).all()
    assert list(df["status"].cat.categories) == ["escaped", "censored", "diverged"]
    # exits at x <= -1.414 lie left of the saddle at 0 (basin 0); the basin counts are the npz's
    assert (df.loc[df["status"] == "escaped", "basin"] == 0).all()
    np.testing.assert_array_equal(df.loc[df["run"] == 1, "steps_in_basin_1"].to_numpy(), z["basin_steps_1"][:, 1])
    res = json.loads((out / "result.json").read_text())
    v = res["provenance"]["versions"]
    import numba
    import scipy

    assert v["leap_sde"] == ls.__version__ and v["numpy"] == np.__version__
    assert v["numba"] == numba.__version__ and v["scipy"] == scipy.__version__
    assert run.meta.versions == v and run.meta.schema_version == SCHEMA_VERSION == res["schema_version"]
    assert "simulate" in res["provenance"]["command"] and "--out" in res["provenance"]["command"]
    assert res["provenance"]["machine"]["cpu_count"] == os.cpu_count()
    t = res["timings_s"]
    assert t["total"] > 0 and [x["leap.sigma"] for x in t["runs"]] == [0.0, 0.1]
    assert all(x["escape"] > 0 and x["escape_back"] > 0 and x["occupation"] > 0 for x in t["runs"])
    assert t["total"] >= sum(x["escape"] + x["escape_back"] + x["occupation"] for x in t["runs"])
    git = res["provenance"]["git"]
    import shutil

    if (ROOT / ".git").exists() and shutil.which("git"):  # a checkout (this repository, or a worktree of it)
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert git["commit"] == head.stdout.strip() and isinstance(git["dirty"], bool)
    # the npz describes itself
    assert int(z["schema_version"]) == SCHEMA_VERSION
    assert dict(zip(z["status_codes"].tolist(), z["status_names"].tolist())) == STATUS_NAMES
    meta = json.loads(str(z["metadata"]))
    assert meta["status_codes"] == {"1": "escaped", "2": "censored", "3": "diverged"}
    assert meta["schema_version"] == SCHEMA_VERSION and "steps_{i}" in meta["keys"]
    assert {int(s) for s in ls.Status} == set(STATUS_NAMES)


def test_status_codes_match_the_enum():
    assert STATUS_NAMES == {1: "escaped", 2: "censored", 3: "diverged"}
    assert (int(ls.Status.ESCAPED), int(ls.Status.CENSORED), int(ls.Status.DIVERGED)) == (1, 2, 3)


# -------------------------------------------------------------------------------------- 0.1 folders load
def test_folder_written_by_0_1_loads():
    run = ls.load_run(V01 / "run")
    assert run.meta.schema_version == 1 and run.meta.version == "0.1.0" and run.meta.versions is None
    z = _npz(V01 / "run")
    assert "schema_version" not in z
    _check_against_npz(run, z, back_positions=False)
    res = json.loads((V01 / "run" / "result.json").read_text())
    for i, r in enumerate(run.results):
        e = res["runs"][i]["escape"]
        assert r.n_escaped == e["n_escaped"] and r.n_censored == e["n_censored"] and r.max_steps == e["max_steps"]
        assert r.rate().rate == pytest.approx(e["rate_per_step"], rel=1e-12)
        assert r.eta == run.config["dynamics"]["eta"] and r.seed_entropy == 7
    assert run.config["run"]["particles"] == 40 and run.config["run"]["seed"] == 7
    back = run.to_frame(which="escape_back")
    assert len(back) == 80 and back["x0"].isna().all()
    # the result file as loaded equals the result of the resolved config's escape summary
    from leap_sde.experiment import escape_summary

    assert escape_summary(run.results[1])["mean_steps"] == pytest.approx(res["runs"][1]["escape"]["mean_steps"])


def test_sweep_written_by_0_1_loads():
    sweep = ls.load_sweep(V01 / "sweep")
    df = sweep.to_frame()
    assert len(df) == 2 and sweep.names == ("leap.sigma", "init.x0")
    assert "init.x0[0]" in df.columns and "init.x0" not in df.columns
    assert sorted(df["init.x0[0]"].tolist()) == [1.1, 1.2]
    for col in df.columns:
        assert not df[col].map(lambda v: isinstance(v, (list, dict)) or str(v).startswith(("[", "{"))).any(), col
    # the old results.csv (JSON cells) reads back to the same lists
    old = ls.sweep.read_table(V01 / "sweep" / "results.csv")
    assert [r["init.x0"] for r in old] == [[1.1], [1.2]]
    assert [r["rate_per_step"] for r in old] == df["rate_per_step"].tolist()
    run = sweep.run(0)
    assert run.meta.schema_version == 1 and run.results[0].n_particles == 30


# ------------------------------------------------------------------------------------------ to_frame
def test_to_frame_of_a_simulation_in_two_dimensions():
    land = ls.Quadratic(np.diag([1.0, 2.0]))
    res = ls.simulate(land, [0.0, 0.0], eta=0.1, noise=ls.WhiteNoise(0.5), exit=ls.LeaveBall([0.0, 0.0], 1.0),
                      n_particles=64, max_steps=200, seed=11)
    df = res.to_frame()
    assert list(df.columns[:6]) == ["particle", "status", "steps", "time", "x0", "x1"]
    np.testing.assert_array_equal(df["steps"].to_numpy(), res.steps)
    np.testing.assert_array_equal(df[["x0", "x1"]].to_numpy(), res.positions)
    np.testing.assert_array_equal(df["time"].to_numpy(), res.times)
    assert (df["status"] == "escaped").sum() == res.n_escaped and (df["status"] == "censored").sum() == res.n_censored
    assert df["particle"].tolist() == list(range(64))


# -------------------------------------------------------------------------------------------- sweeps
SWEEP = """
[sweep]
name = "tiny"
seed = 5
point_plots = false
[base.run]
particles = 20
max_steps = 1500
occupation_steps = 0
[base.exit]
kind = "threshold"
threshold = -1.414
[grid]
"leap.sigma" = [0.1]
"init.x0" = [[1.1], [1.2]]
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    spec_path = d / "s.toml"
    spec_path.write_text(SWEEP)
    out = d / "out"
    summary = ls.sweep.run_sweep(ls.sweep.load_spec(spec_path), out, workers=0, progress=False, log=lambda m: None)
    assert summary.complete
    return out


def test_results_csv_has_no_json_cells(tiny_sweep):
    with open(tiny_sweep / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    assert "init.x0[0]" in head and "init.x0" not in head
    assert len(body) == 2
    # no occupation run: basin_fractions is missing in every row, one empty column
    assert [row[head.index("basin_fractions")] for row in body] == ["", ""]
    for row in body:
        assert len(row) == len(head)
        assert not any(cell.startswith(("[", "{")) for cell in row), row
    back = ls.sweep.read_table(tiny_sweep / "results.csv")
    assert sorted(r["init.x0"] for r in back) == [[1.1], [1.2]]


def test_results_csv_round_trip_of_list_values(tmp_path):
    """Rows with a 2-vector parameter and 2- or 3-basin fractions (and one without): one column per element,
    missing elements empty, read_table gives the lists back."""
    from types import SimpleNamespace

    store = ls.sweep.Store(tmp_path)
    store.lock()
    recs = {"a" * 16: ({"init.x0": [1.0, 2.0]}, [0.25, 0.75]), "b" * 16: ({"init.x0": [3.0, 4.5]}, [0.1, 0.2, 0.7]),
            "c" * 16: ({"init.x0": [5.0, 6.0]}, None)}
    for key, (params, fr) in recs.items():
        store.append(key, "0" * 16, "0" * 16, {"params": params, "row": {"basin_fractions": fr, "n_escaped": 3}})
    plan = SimpleNamespace(keys=list(recs), names=("init.x0",))
    path = ls.sweep.write_table(store, plan)
    store.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    assert head[:3] == ["key", "init.x0[0]", "init.x0[1]"]
    assert [c for c in head if c.startswith("basin")] == ["basin_fractions[0]", "basin_fractions[1]",
                                                          "basin_fractions[2]"]
    assert not any(cell.startswith(("[", "{")) for row in rows[1:] for cell in row)
    back = ls.sweep.read_table(path)
    assert [r["init.x0"] for r in back] == [[1.0, 2.0], [3.0, 4.5], [5.0, 6.0]]
    assert [r["basin_fractions"] for r in back] == [[0.25, 0.75], [0.1, 0.2, 0.7], None]
    assert [r["n_escaped"] for r in back] == [3, 3, 3]


def test_load_sweep_is_one_tidy_frame(tiny_sweep):
    sweep = ls.load_sweep(tiny_sweep)
    df = sweep.to_frame()
    assert len(df) == 2 and df["key"].is_unique
    assert list(df.columns[:3]) == ["key", "leap.sigma", "init.x0[0]"]
    assert df["rate_per_step"].dtype == np.float64 and df["n_escaped"].dtype == np.int64
    for col in df.columns:
        assert not df[col].map(lambda v: isinstance(v, (list, dict))).any(), col
    store = ls.sweep.Store(tiny_sweep)
    recs = store.load_rows(store.load_index())
    for _, row in df.iterrows():
        rec = recs[row["key"]]
        assert row["init.x0[0]"] == rec["params"]["init.x0"][0]
        assert row["n_escaped"] == rec["row"]["n_escaped"]
        run = sweep.run(row["key"])
        assert run.results[0].n_escaped == row["n_escaped"]
        assert run.results[0].rate().rate == pytest.approx(row["rate_per_step"], rel=1e-12)


def test_sweep_to_parquet_round_trip(tiny_sweep, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    sweep = ls.load_sweep(tiny_sweep)
    path = sweep.to_parquet(tmp_path / "s.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, sweep.to_frame(), check_dtype=False)
    run_path = sweep.run(0).to_parquet(tmp_path / "r.parquet")
    assert len(pd.read_parquet(run_path)) == 20


def test_to_parquet_without_pyarrow_names_the_install(tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(ImportError, match="pip install pyarrow"):
        ls.load_sweep(tiny_sweep).to_parquet(tmp_path / "x.parquet")


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ls.load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="result.json"):
        ls.load_run(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="sweep.toml"):
        ls.load_sweep(tmp_path / "empty")
    new = tmp_path / "new"
    new.mkdir()
    (new / "result.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match="upgrade leap_sde"):
        ls.load_run(new)


# ------------------------------------------------------------------------------------------ comparing
def _geometric_result(p, n, max_steps, rng):
    """N exact geometric escape steps with per-step escape probability p (the censored MLE d/Σk estimates
    p), censored at max_steps: built by hand, no simulator involved."""
    k = rng.geometric(p, size=n)
    esc = k <= max_steps
    steps = np.minimum(k, max_steps).astype(np.int64)
    status = np.where(esc, int(ls.Status.ESCAPED), int(ls.Status.CENSORED)).astype(np.int8)
    return ls.EscapeResult(status=status, steps=steps, times=steps * 0.1, positions=np.zeros((n, 1)),
                           max_steps=max_steps, eta=0.1, seed_entropy=0)


def test_rate_ratio_ci_endpoints_solve_the_binomial_tail_equations():
    """Clopper-Pearson endpoints π_L, π_U (mapped to the ratio) are where P(X ≥ d_a) = α/2 and
    P(X ≤ d_a) = α/2 for X ~ Binomial(n, π), π = R t_a/(R t_a + t_b): checked with scipy's binomial."""
    for d_a, t_a, d_b, t_b in ((12, 3000.0, 30, 5000.0), (1, 100.0, 7, 80.0), (250, 1e5, 180, 2e5)):
        ratio, (lo, hi), p = rate_ratio_ci(d_a, t_a, d_b, t_b)
        n = d_a + d_b
        assert ratio == pytest.approx((d_a / t_a) / (d_b / t_b))
        assert lo < ratio < hi

        def pi(r):
            return r * t_a / (r * t_a + t_b)

        assert stats.binom.sf(d_a - 1, n, pi(lo)) == pytest.approx(0.025, rel=1e-8)
        assert stats.binom.cdf(d_a, n, pi(hi)) == pytest.approx(0.025, rel=1e-8)
        assert 0 < p <= 1
    assert rate_ratio_ci(0, 10.0, 5, 10.0)[1][0] == 0.0
    assert rate_ratio_ci(5, 10.0, 0, 10.0)[1][1] == math.inf
    with pytest.raises(ValueError, match="exposures"):
        rate_ratio_ci(1, 0.0, 1, 1.0)


def test_rate_ratio_ci_covers_the_truth():
    """Two geometric samples with known per-step probabilities (ratio 2), censored at 800 steps:
    coverage of the 95% CI over M = 400 replicates (seed 2024, N = 150 each) within 3 binomial SE of 0.95
    (SE = √(0.95·0.05/400) = 0.011; the exact interval is conservative, so coverage ≥ 0.95 − 3 SE)."""
    rng = np.random.default_rng(np.random.SeedSequence(2024))
    m, n, truth = 400, 150, 2.0
    hits = 0
    for _ in range(m):
        a = _geometric_result(2e-3, n, 800, rng)
        b = _geometric_result(1e-3, n, 800, rng)
        lo, hi = ls.compare_results(a, b).rate_ratio_ci
        hits += lo <= truth <= hi
    se = math.sqrt(0.95 * 0.05 / m)
    assert abs(hits / m - 0.95) < 3 * se, hits / m


def test_logrank_is_a_proper_test_on_exact_samples():
    """H0 (equal probabilities 1.5e-3, N = 150 each, censored at 800, M = 400 replicates, seed 7): the
    fraction of log-rank p < 0.05 is 0.05 within 3 SE (SE = √(0.05·0.95/400) = 0.011).  A 2× rate with
    N = 300 each: p < 1e-3 and the ratio CI holds 2."""
    rng = np.random.default_rng(np.random.SeedSequence(7))
    m = 400
    small = 0
    for _ in range(m):
        c = ls.compare_results(_geometric_result(1.5e-3, 150, 800, rng), _geometric_result(1.5e-3, 150, 800, rng))
        small += c.logrank_pvalue < 0.05
    assert abs(small / m - 0.05) < 3 * math.sqrt(0.05 * 0.95 / m), small / m
    c = ls.compare_results(_geometric_result(2e-3, 300, 800, rng), _geometric_result(1e-3, 300, 800, rng))
    assert c.logrank_pvalue < 1e-3 and c.rate_pvalue < 1e-3 and c.logrank_statistic > 0
    assert c.rate_ratio_ci[0] <= 2.0 <= c.rate_ratio_ci[1]


def _write_run(folder, *, seed, sigma=0.1, particles=300, eta=None):
    user = {"leap": {"sigma": sigma}, "run": {"particles": particles, "max_steps": 4000, "occupation_steps": 0,
                                              "preference": False, "seed": seed}}
    if eta is not None:
        user["dynamics"] = {"eta": eta}
    out = run_experiment(resolve(user))
    write_outputs(folder, out, plots=False)
    return folder


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    return _write_run(d / "a", seed=1), _write_run(d / "b", seed=2)


def test_compare_same_config_different_seeds(two_seeds):
    """H0 holds (same config, seeds 1 and 2, N = 300 each): neither test rejects at the 1% level, the ratio
    CI holds 1, and the config diff is exactly the seed."""
    a, b = two_seeds
    c = ls.compare_runs(a, b)
    (p,) = c.pairs
    assert p.logrank_pvalue > 0.01 and p.rate_pvalue > 0.01
    assert p.rate_ratio_ci[0] <= 1.0 <= p.rate_ratio_ci[1]
    assert p.rate_a.n_escaped > 100 and p.rate_b.n_escaped > 100
    assert c.config_diff == {"run.seed": (1, 2)}


def test_compare_cli_writes_report_json_and_figure(two_seeds, tmp_path, capsys):
    a, b = two_seeds
    out = tmp_path / "cmp"
    code = cli.main(["compare", str(a), str(b), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "rate ratio A/B" in text and "log-rank test" in text and "run.seed: 1 -> 2" in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith(("A = ", "B = ", "written")))
    d = json.loads((out / "comparison.json").read_text())
    ref = ls.compare_runs(a, b).pairs[0]
    assert d["pairs"][0]["logrank_pvalue"] == pytest.approx(ref.logrank_pvalue, rel=1e-12)
    assert d["pairs"][0]["rate_ratio_ci"] == pytest.approx(list(ref.rate_ratio_ci), rel=1e-12)
    assert d["config_diff"] == {"run.seed": [1, 2]}
    for fmt in ("png", "pdf", "svg"):
        assert (out / f"survival.{fmt}").stat().st_size > 0
    fig = ls.compare_runs(a, b).plot()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    texts = [t.get_text() for lg in legends for t in lg.get_texts()]
    assert sum(t.startswith("A: σ = 0.1") for t in texts) == 1 and sum(t.startswith("B: σ = 0.1") for t in texts) == 1


def test_compare_cli_errors(two_seeds, tmp_path, capsys):
    a, b = two_seeds
    assert cli.main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(b), "--sigma", "x"]) == 2
    assert "--sigma" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(b), "--sigma", "0.3"]) == 2
    assert "σ in [0.1]" in capsys.readouterr().err


def test_compare_several_sigmas_pairs_matching_ones(tmp_path):
    """Runs with σ = [0, 0.1] and [0.1, 0.2]: only σ = 0.1 is compared by default; --sigma 0:0.2 picks a
    pair; without a common σ, sigma= is required."""
    ra = run_experiment(resolve({"leap": {"sigma": [0.0, 0.1]}, "run": {"particles": 60, "max_steps": 2000,
                                                                          "occupation_steps": 0, "seed": 4}}))
    rb = run_experiment(resolve({"leap": {"sigma": [0.1, 0.2]}, "run": {"particles": 60, "max_steps": 2000,
                                                                          "occupation_steps": 0, "seed": 5}}))
    a, b = write_outputs(tmp_path / "a", ra, plots=False), write_outputs(tmp_path / "b", rb, plots=False)
    c = ls.compare_runs(a, b)
    assert [(p.sigma_a, p.sigma_b) for p in c.pairs] == [(0.1, 0.1)]
    assert c.config_diff["leap.sigma"] == ([0.0, 0.1], [0.1, 0.2])
    c = ls.compare_runs(a, b, sigma=(0.0, 0.2))
    assert [(p.sigma_a, p.sigma_b) for p in c.pairs] == [(0.0, 0.2)]
    # the σ = 0 run escapes far less often than σ = 0.2 (N = 60, 2000 steps)
    assert c.pairs[0].logrank_pvalue < 1e-3 and c.pairs[0].rate_ratio < 1
    # same η and a constant schedule: times are steps·η, so per-time and per-step ratios agree
    t = ls.compare_runs(a, b, sigma=(0.0, 0.2), unit="time").pairs[0]
    assert t.rate_ratio == pytest.approx(c.pairs[0].rate_ratio, rel=1e-12)
    assert t.rate_ratio_ci == pytest.approx(c.pairs[0].rate_ratio_ci, rel=1e-12)
    rc = run_experiment(resolve({"leap": {"sigma": [0.3, 0.4]}, "run": {"particles": 10, "max_steps": 500,
                                                                          "occupation_steps": 0, "seed": 6}}))
    cdir = write_outputs(tmp_path / "c", rc, plots=False)
    with pytest.raises(ValueError, match="no σ in common"):
        ls.compare_runs(a, cdir)


def test_new_names_are_public():
    for name in ("load_run", "load_sweep", "compare_runs", "compare_results", "SavedRun", "SavedSweep", "RunMeta",
                 "RunComparison", "RateComparison"):
        assert name in ls.__all__ and getattr(ls, name) is not None


def test_ams_run_loads_back(tmp_path):
    """run.method = "ams": no per-particle arrays; the AMSResult is rebuilt from result.json with every field
    of every AMS run (schema 2), equal to the one the run returned."""
    from leap_sde.config import load_toml

    user = load_toml(ROOT / "simulations" / "configs" / "ams_double_well.toml")
    user["run"].update(replicas=20, ams_runs=2)
    out = run_experiment(resolve(user))
    folder = write_outputs(tmp_path / "ams", out, plots=False)
    run = ls.load_run(folder)
    got, want = run.results[0], out.runs[0].escape
    assert isinstance(got, ls.AMSResult)
    assert got.runs == want.runs and got.levels == tuple(want.levels) and got.n_replicas == want.n_replicas
    for f in ("mean_steps", "mean_steps_se", "mean_time", "rate", "probability", "work_steps", "iterations", "eta"):
        assert getattr(got, f) == pytest.approx(getattr(want, f), rel=1e-12), f
    df = run.to_frame()
    assert len(df) == 2 and df["mean_steps"].tolist() == [r.mean_steps for r in want.runs]
    with pytest.raises(ValueError, match="run.method = 'ams'"):
        ls.compare_runs(folder, folder)
