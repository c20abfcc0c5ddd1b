"""Config defaults, dynamics.temperature and ``leap-sde keys`` (issue 15, item 4)."""
from pathlib import Path

import numpy as np
import pytest

from leap_sde import cli, config
from leap_sde.config import SCHEMA, ConfigError, key_rows, resolve
from leap_sde.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_is_documented():
    rows = key_rows()
    assert len(rows) == sum(len(keys) for keys in SCHEMA.values())
    for r in rows:
        for field in ("type", "default", "range", "meaning"):
            assert r[field].strip(), f"{r['section']}.{r['key']}: no {field}"


def test_keys_command_lists_every_key_within_80_columns(capsys):
    assert cli.main(["keys"]) == 0
    out = capsys.readouterr().out
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in out
        for k in keys:
            assert f"  {k}  (" in out, f"{section}.{k}"
    assert max(len(line) for line in out.splitlines()) <= 80


def test_keys_section_and_formats(capsys):
    import csv
    import io
    import json

    assert cli.main(["keys", "dynamics"]) == 0
    out = capsys.readouterr().out
    assert "[dynamics]" in out and "[run]" not in out and "temperature" in out
    assert cli.main(["keys", "run", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["key"] for r in rows] == list(SCHEMA["run"])
    assert cli.main(["keys", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["section"], r["key"]) for r in rows} == {(s, k) for s, keys in SCHEMA.items() for k in keys}
    assert cli.main(["keys", "nope"]) == 2
    assert "valid sections" in capsys.readouterr().err


def test_minimal_config_runs():
    """Only a landscape, eta and an exit: every other key comes from the schema, none from the default
    experiment (no exit.target_minimum, no preference run)."""
    user = {"landscape": {"kind": "quadratic", "hessian": [1.0, 2.0]}, "dynamics": {"eta": 0.1},
            "exit": {"kind": "leave-ball", "radius": 0.5}, "run": {"particles": 20, "max_steps": 2000}}
    cfg = resolve(user)
    assert cfg["exit"]["target_minimum"] is None and cfg["run"]["preference"] is False
    out = run_experiment(cfg)
    assert len(out.runs) == 1 and out.runs[0].escape.n_particles == 20


def test_single_minimum_with_the_default_exit_says_what_to_choose():
    with pytest.raises(ConfigError) as e:
        resolve({"landscape": {"kind": "quadratic"}, "dynamics": {"eta": 0.1}})
    msg = str(e.value)
    assert "target_minimum" not in msg and "leave-ball" in msg and "1 known minimum" in msg


@pytest.mark.parametrize("init, expected", [({"minimum": 0}, 1), ({"minimum": 1}, 0), ({"x0": 0.9}, 0),
                                            ({"x0": -0.9}, 1)])
def test_default_target_minimum_is_the_other_nearest_one(init, expected):
    """The double well's minima are listed x < 0 first: the default target is the minimum on the other side."""
    cfg = resolve({"landscape": {"kind": "double-well"}, "init": init})
    assert cfg["exit"]["target_minimum"] == expected


def test_temperature_is_bit_identical_to_the_explicit_noise_scale():
    """T sets s = sqrt(2T/eta) (D = eta s²/2 = T): the same paths as noise_std = sqrt(2T/eta)."""
    T, eta = 0.3, 0.01
    base = {"landscape": {"kind": "polynomial"}, "init": {"x0": -1.0}, "exit": {"threshold": 1.0},
            "run": {"particles": 40, "max_steps": 20_000, "seed": 7}}
    a = resolve({**base, "dynamics": {"eta": eta, "temperature": T}})
    b = resolve({**base, "dynamics": {"eta": eta, "noise": "white", "noise_std": float(np.sqrt(2 * T / eta))}})
    assert a["dynamics"]["noise"] == "white"
    ra, rb = run_experiment(a).runs[0].escape, run_experiment(b).runs[0].escape
    assert ra.n_escaped > 0
    np.testing.assert_array_equal(ra.steps, rb.steps)
    np.testing.assert_array_equal(ra.status, rb.status)
    np.testing.assert_array_equal(ra.positions, rb.positions)


def test_temperature_excludes_the_noise_scale_and_other_noises():
    with pytest.raises(ConfigError, match="dynamics.temperature and dynamics.noise_std"):
        resolve({"landscape": {"kind": "polynomial"}, "dynamics": {"temperature": 0.2, "noise_std": 3.0}})
    with pytest.raises(ConfigError, match="dynamics.temperature: needs dynamics.noise = 'white'"):
        resolve({"landscape": {"kind": "polynomial"}, "dynamics": {"temperature": 0.2, "noise": "sgd-hessian"}})
    with pytest.raises(ConfigError, match="dynamics.temperature.*> 0"):
        resolve({"landscape": {"kind": "polynomial"}, "dynamics": {"temperature": -1.0}})


def test_temperature_config_round_trips_through_config_toml(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["simulate", str(ROOT / "simulations" / "configs" / "kramers.toml"), "--set", "run.particles=20",
            "--set", "run.max_steps=500", "--out", str(out), "--quiet"]
    assert cli.main(args) == 0
    text = (out / "config.toml").read_text()
    assert "temperature = 0.25" in text and "noise_std" not in text
    cfg = resolve(config.load_toml(out / "config.toml"))
    assert cfg["dynamics"]["noise_std"] == 10.0  # sqrt(2 * 0.25 / 0.005)
    capsys.readouterr()
