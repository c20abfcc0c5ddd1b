"""leap-sde simulate: config parsing and errors (exit code 2), overrides, result files, atomic writes, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from leap_sde import cli, config

SMALL = ["--set", "run.particles=50", "--set", "run.max_steps=3000", "--set", "run.occupation_steps=500",
         "--set", "leap.sigma=[0.0, 0.1]"]


def run_cli(args, capsys):
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("override, words", [
    ("landscape.nope=1", ["unknown key landscape.nope", "valid keys of [landscape]", "curv_flat"]),
    ("nosection.eta=1", ["unknown section [nosection]", "dynamics"]),
    ("dynamics.eta=-0.1", ["dynamics.eta", "must be > 0"]),
    ("dynamics.eta=\"fast\"", ["dynamics.eta", "expected a number"]),
    ("dynamics.eta=inf", ["dynamics.eta", "finite"]),
    ("dynamics.noise=pink", ["dynamics.noise", "'white'", "'sgd-hessian'"]),
    ("dynamics.mode=ode", ["dynamics.mode", "'discrete'", "'sde'"]),
    ("dynamics.batch_size=0.5", ["dynamics.batch_size", ">= 1"]),
    ("leap.sigma=-0.1", ["leap.sigma", ">= 0"]),
    ("leap.mode=rows", ["leap.mode", "'per-coordinate'", "'scalar'"]),
    ("leap.relative=1", ["leap.relative", "true or false"]),
    ("run.particles=0", ["run.particles", ">= 1"]),
    ("run.particles=2.5", ["run.particles", "integer"]),
    ("run.seed=-3", ["run.seed", ">= 0"]),
    ("schedule.kind=linear", ["schedule.kind", "'cosine'"]),
    ("init.x0=[1.0, 2.0]", ["init.x0", "1 coordinate"]),
    ("exit.target_minimum=1", ["already satisfies"]),
    ("landscape.coeffs=[0, 1]", ["landscape", "not a key of kind 'sharp-flat'"]),
    ("dynamics.noise=minibatch", ["finite_sum_n"]),
    ("nodot=1", ["section.key=value"]),
])
def test_bad_config_exits_2_naming_the_key(override, words, capsys, tmp_path):
    code, out, err = run_cli(["simulate", "--set", override, "--out", str(tmp_path / "r")], capsys)
    assert code == 2
    for w in words:
        assert w in err
    assert not (tmp_path / "r").exists()  # nothing written for a rejected config


def test_exit_without_barrier_exits_2(capsys, tmp_path):
    # start at x = 0.5 on the sharp side's slope: x = 1.0 is downhill with no saddle in between
    code, _, err = run_cli(["simulate", "--set", "init.x0=0.5", "--set", "exit.threshold=1.0", "--out",
                            str(tmp_path / "r")], capsys)
    assert code == 2 and "no barrier" in err


def test_bad_toml_file_exits_2(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text("[dynamics\neta = 1\n")
    code, _, err = run_cli(["simulate", str(p)], capsys)
    assert code == 2 and "invalid TOML" in err
    code, _, err = run_cli(["simulate", str(tmp_path / "missing.toml")], capsys)
    assert code == 2 and "cannot read" in err


def test_overrides_are_toml_values_and_win_over_the_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[landscape]\nkind = "polynomial"\ncoeffs = [1, 0, -2, 0, 1]\n[dynamics]\neta = 0.02\n'
                 'noise = "white"\n[run]\nparticles = 10\n')
    cfg = config.resolve(config.load_toml(p), ["dynamics.eta=0.05", "leap.sigma=[0, 0.01]", "landscape.kind=polynomial",
                                               "run.basins=false"])
    assert cfg["dynamics"]["eta"] == 0.05 and cfg["leap"]["sigma"] == [0.0, 0.01]
    assert cfg["run"]["particles"] == 10 and cfg["run"]["basins"] is False
    assert cfg["landscape"]["coeffs"] == [1.0, 0.0, -2.0, 0.0, 1.0]
    assert "curv_flat" not in cfg["landscape"]  # only the chosen kind's keys are kept


def test_simulate_writes_all_result_files(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["simulate", "--out", str(out), "--quiet", *SMALL], capsys)
    assert code == 0
    assert "rate/step" in stdout and "flat share" in stdout and "Occupation" in stdout
    for f in ("config.toml", "result.json", "escape_times.npz", "survival.png", "histogram.png", "occupation.png"):
        assert (out / f).stat().st_size > 0, f
    assert not list(out.glob(".*tmp"))  # no temporary file left behind
    res = json.loads((out / "result.json").read_text())
    assert res["seed"] == 0 and res["version"] and res["wall_time_s"] > 0
    assert [r["leap.sigma"] for r in res["runs"]] == [0.0, 0.1]
    for r in res["runs"]:
        e = r["escape"]
        for key in ("rate_per_step", "rate_ci", "mean_steps", "mean_steps_ci", "n_escaped", "n_censored",
                    "n_diverged", "ks_pvalue"):
            assert key in e
        assert len(e["rate_ci"]) == 2 and e["rate_ci"][0] <= e["rate_per_step"] <= e["rate_ci"][1]
        assert e["n_escaped"] + e["n_censored"] + e["n_diverged"] == 50
        occ = r["occupation"]
        assert all(0 <= f <= 1 for f in occ["first_half_fractions"] + occ["second_half_fractions"])
        # a 500-step occupation run from the sharp minimum has not settled: no long-run number is reported
        assert occ["settled"] is False and occ["flat_fraction"] is None and "not settled" in occ["note"]
        assert r["preference"]["start"] == "sharp" and r["preference"]["target"] == "flat"
    z = np.load(out / "escape_times.npz")
    assert z["steps_1"].shape == (50,) and list(z["sigma"]) == [0.0, 0.1]
    assert res["runs"][1]["escape"]["n_escaped"] == int(np.sum(z["status_1"] == 1))


def test_config_toml_repeats_the_run_exactly(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(["simulate", "--out", str(a), "--quiet", *SMALL], capsys)[0] == 0
    assert run_cli(["simulate", str(a / "config.toml"), "--out", str(b), "--quiet"], capsys)[0] == 0
    za, zb = np.load(a / "escape_times.npz"), np.load(b / "escape_times.npz")
    for k in za.files:
        np.testing.assert_array_equal(za[k], zb[k])


def test_single_sigma_has_top_level_escape_block(tmp_path, capsys):
    out = tmp_path / "one"
    args = ["simulate", "--out", str(out), "--quiet", "--set", "leap.sigma=0.05", "--set", "run.particles=30",
            "--set", "run.max_steps=2000"]
    assert run_cli(args, capsys)[0] == 0
    res = json.loads((out / "result.json").read_text())
    assert "runs" not in res and res["escape"]["n_particles"] == 30


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    from leap_sde._io import atomic_write_json

    p = tmp_path / "r.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"a": object()})  # serialisation fails before anything is replaced
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.slow  # interrupts a subprocess
def test_ctrl_c_saves_partial_results(tmp_path):
    """SIGINT to a running `leap-sde simulate`: exit 130, files written, unfinished particles censored."""
    out = tmp_path / "int"
    cmd = [sys.executable, "-m", "leap_sde", "simulate", "--out", str(out), "--set", "leap.sigma=0.0",
           "--set", "dynamics.batch_size=30", "--set", "run.particles=4000", "--set", "run.max_steps=100000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = proc.stdout.readline()  # the banner is printed when the run starts
    assert "running" in line
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=max(10, deadline - time.time()))
    assert proc.returncode == 130, stderr
    assert "Interrupted" in stderr and "censored" in stderr
    res = json.loads((out / "result.json").read_text())
    assert res["interrupted"] is True and res["escape"]["interrupted"] is True
    assert res["escape"]["n_censored"] > 0
    assert res["escape"]["n_escaped"] + res["escape"]["n_censored"] + res["escape"]["n_diverged"] == 4000
    assert (out / "escape_times.npz").exists() and (out / "config.toml").exists()


def test_python_dash_m_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "simulate" in capsys.readouterr().out
