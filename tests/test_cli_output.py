"""Terminal output (issue 15, items 3 and 5): 80 columns, --format table|csv|json, the validate summary,
one-line warnings, labelled progress bars, and no output from the library with progress=False."""
import csv
import io
import json
import warnings

import numpy as np
import pytest

import leap_sde as ls
from leap_sde import cli
from leap_sde.validate import run_suite

SMALL = ["--set", "run.particles=50", "--set", "run.max_steps=3000", "--set", "run.occupation_steps=500",
         "--set", "leap.sigma=[0.0, 0.1]"]
TINY = {"landscape": {"kind": "double-well", "barrier": 0.3}, "dynamics": {"eta": 0.05, "temperature": 0.1},
        "leap": {"sigma": [0.0, 0.05]}, "run": {"particles": 30, "max_steps": 4000, "occupation_steps": 400}}


def _width(text):
    return max((len(line) for line in text.splitlines()), default=0)


@pytest.mark.parametrize("args", [pytest.param([], marks=pytest.mark.slow, id="default"),
                                  pytest.param(SMALL, id="small")])
def test_simulate_fits_80_columns(args, tmp_path, monkeypatch, capsys):
    """The default experiment (about a minute: slow tier) and a small variant with the same tables."""
    monkeypatch.chdir(tmp_path)  # a short --out, so that the path printed does not decide the width
    assert cli.main(["simulate", "--out", "r", *args]) == 0
    out, err = capsys.readouterr()
    assert "rate/step" in out and "flat share" in out
    assert _width(out) <= 80, max(out.splitlines(), key=len)
    assert _width(err) <= 80, err


def test_simulate_csv_and_json_parse_back(tmp_path, capsys):
    assert cli.main(["simulate", "--out", str(tmp_path / "c"), "--quiet", "--format", "csv", *SMALL]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["sigma"], r["run"]) for r in rows] == [("0.0", "escape"), ("0.0", "escape back"),
                                                       ("0.1", "escape"), ("0.1", "escape back")]
    z = np.load(tmp_path / "c" / "escape_times.npz")
    assert [int(r["n_escaped"]) for r in rows[::2]] == [int(np.sum(z[f"status_{i}"] == 1)) for i in (0, 1)]
    assert cli.main(["simulate", "--out", str(tmp_path / "j"), "--format", "json", *SMALL]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads((tmp_path / "j" / "result.json").read_text())


def test_validate_summary_first_grouped_80_columns_and_formats(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_suite(["--quick", "--only", "sgd-variance", "--out", "v"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("11 checks: PASS ") and "FAIL 0" in lines[0]
    assert _width(out) <= 80, max(lines, key=len)
    groups = [line.split(":")[0] for line in lines if line.endswith(" checks") or line.endswith(" check")]
    assert groups == [g for g in ("FAIL", "REFUTED", "INCONCLUSIVE", "OUTSIDE", "PASS") if g in groups]
    counts = dict(part.rsplit(" ", 1) for part in lines[0].split(": ", 1)[1].split(", "))
    for g in groups:
        assert f"{g}: {counts[g]} check" in out
    assert run_suite(["--quick", "--only", "sgd-variance", "--out", "v", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["checks"]) == 11 and data["summary"]["FAIL"] == 0
    assert sum(c["verdict"] == "PASS" for c in data["checks"]) == data["summary"]["PASS"]
    assert run_suite(["--quick", "--only", "sgd-variance", "--out", "v", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["check"] for r in rows] == [c["check"] for c in data["checks"]]
    assert float(rows[0]["theory"]) == data["checks"][0]["theory"]


def test_cli_warnings_are_one_clean_line(capsys):
    with cli.cli_output():
        warnings.warn("first part\n  second part", UserWarning)
        warnings.warn("unstable step", ls.StabilityWarning)
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: first part second part", "warning: StabilityWarning: unstable step"]


def test_library_writes_nothing_with_progress_false(capfd, tmp_path):
    out = ls.run_experiment(TINY, out=tmp_path / "r", progress=False)
    assert len(out.runs) == 2 and (tmp_path / "r" / "result.json").exists()
    spec = {"sweep": {"name": "t", "point_plots": False},
            "base": {"landscape": {"kind": "double-well", "barrier": 0.3}, "dynamics": {"eta": 0.05},
                     "run": {"particles": 20, "max_steps": 2000}},
            "grid": {"leap.sigma": [0.0, 0.05]}}
    summary = ls.run_sweep(spec, tmp_path / "sw", workers=0)
    assert summary.complete and summary.computed == 2
    assert capfd.readouterr() == ("", "")


def test_run_experiment_takes_a_path_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[landscape]\nkind = "double-well"\nbarrier = 0.3\n[dynamics]\neta = 0.05\ntemperature = 0.1\n'
                 '[run]\nparticles = 30\nmax_steps = 4000\n')
    a = ls.run_experiment(p, overrides=["leap.sigma=0.05"])
    b = ls.run_experiment({**TINY, "leap": {"sigma": 0.05}, "run": {"particles": 30, "max_steps": 4000}})
    assert a.config == b.config
    np.testing.assert_array_equal(a.runs[0].escape.steps, b.runs[0].escape.steps)
    with pytest.raises(ValueError, match="out"):
        ls.run_experiment(p, out=tmp_path)  # not empty: refused before anything is simulated


def test_progress_bars_have_one_label_per_phase(monkeypatch, capsys):
    """Forced on (as on a terminal): each phase has its σ label; the occupation phase has no escape count."""
    import leap_sde._progress as prog

    monkeypatch.setattr(prog, "bars_shown", lambda: True)
    seen = []
    real = prog.PhaseBar

    class Spy(real):
        def __init__(self, label, total, *, escapes=True):
            super().__init__(label, total, escapes=escapes)
            seen.append((label, total, escapes))

    monkeypatch.setattr(prog, "PhaseBar", Spy)
    ls.run_experiment(TINY, progress=True)
    assert seen == [("σ=0 [1/2] escape", 4000, True), ("σ=0 [1/2] occupation", 400, False),
                    ("σ=0.05 [2/2] escape", 4000, True), ("σ=0.05 [2/2] occupation", 400, False)]
    err = capsys.readouterr().err
    assert "σ=0.05 [2/2] escape" in err


def test_progress_callable_gets_every_simulate_call():
    calls = []
    ls.run_experiment({**TINY, "leap": {"sigma": 0.0}}, progress=lambda k, m, e, n: calls.append((k, m, n)))
    assert calls and all(n == 30 for _, _, n in calls)
    assert {m for _, m, _ in calls} >= {4000}  # the escape run's budget; occupation segments have their own
