"""Figures of single runs (leap_sde.plots): artists, legends, axis limits, at-risk counts, files in every format,
theory times against the theory module, no pyplot state left behind (issue 15 item 2).

The runs are synthetic EscapeResults (exponential escape times from a fixed seed, censored at max_steps), so
no simulation is compiled here."""
from __future__ import annotations

import math

import numpy as np
import pytest

import matplotlib

matplotlib.use("Agg")

from leap_sde import plots  # noqa: E402
from leap_sde.config import resolve  # noqa: E402
from leap_sde.simulate import EscapeResult, Status  # noqa: E402


def fake_run(mean, n=400, max_steps=20_000, seed=0, eta=0.01):
    """N particles with Geometric-like escape steps ceil(Exp(mean)), censored at max_steps (seeded)."""
    rng = np.random.default_rng(seed)
    steps = np.ceil(rng.exponential(mean, n)).astype(np.int64) if np.isfinite(mean) else np.full(n, max_steps)
    status = np.where(steps < max_steps, Status.ESCAPED, Status.CENSORED).astype(np.int8)
    steps = np.minimum(steps, max_steps)
    return EscapeResult(status=status, steps=steps, times=steps * eta, positions=np.zeros((n, 1)),
                        max_steps=max_steps, eta=eta, seed_entropy=seed)


RUNS = [fake_run(100.0, seed=1), fake_run(10_000.0, seed=2), fake_run(math.inf, n=300, seed=3)]
LABELS = ["fast", "slow", "stuck"]
THEORY = [(plots.TheoryTime("A", "ref a", 110.0), plots.TheoryTime("B", "ref b", 90.0)),
          (plots.TheoryTime("A", "ref a", 9000.0),), ()]


def test_survival_figure_artists_legend_and_limits():
    import matplotlib.pyplot as plt

    fig = plots.survival_figure(RUNS, LABELS, theory=THEORY)
    ax = fig.axes[0]
    # one line per run (KM step or the flat zero-escape line) + one per theory time
    assert len(ax.lines) == len(RUNS) + sum(len(t) for t in THEORY)
    text = [t.get_text() for t in ax.get_legend().get_texts()]
    for lab in LABELS:
        assert any(t.startswith(lab + ":") for t in text), (lab, text)
    assert any("stuck: 0/300 escaped" in t for t in text)
    assert sum(t.startswith("theory: ") for t in text) == 2  # one entry per theory name
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    d_min = min(float(r.steps[r.escaped].min()) for r in RUNS if r.n_escaped)
    d_max = max(float(r.steps.max()) for r in RUNS)
    assert d_min / 2.01 <= lo <= d_min and d_max <= hi <= 1.06 * d_max
    assert ax.get_ylim() == (0, 1.04)
    assert plt.get_fignums() == []  # no pyplot figure was created


def test_survival_at_risk_table_counts():
    ticks = [10.0, 100.0, 1000.0, 10_000.0]
    fig = plots.survival_figure(RUNS, LABELS, at_risk_times=ticks)
    tab = fig.axes[1]
    for i, r in enumerate(RUNS):
        shown = [int(t.get_text()) for t in tab.texts if t.get_position()[1] == i + 1 and t.get_text().isdigit()]
        expected = [int(np.sum(r.steps >= t)) for t in ticks]  # at risk just before t
        assert shown == expected, (LABELS[i], shown, expected)


def test_survival_band_and_zero_escape_line():
    fig = plots.survival_figure(RUNS[:1] + RUNS[2:], ["fast", "stuck"], at_risk=False)
    ax = fig.axes[0]
    km, flat = ax.lines[0], ax.lines[1]
    assert np.all(np.asarray(flat.get_ydata()) == 1.0)
    assert flat.get_xdata()[-1] == RUNS[2].max_steps
    # the log-log Greenwood band stays inside [0, 1] and contains the KM estimate
    band = ax.collections[0].get_paths()[0].vertices
    assert np.all((band[:, 1] >= 0) & (band[:, 1] <= 1))
    assert np.all(np.diff(np.asarray(km.get_ydata())) <= 0)


def test_survival_scaled_axis_and_ax_argument():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = plots.survival_figure(RUNS, LABELS, ax=ax, x="scaled", theory=THEORY, at_risk=False)
    assert out is fig
    assert ax.get_yscale() == "log" and ax.get_xlim()[0] == 0
    # runs + theory (the zero-escape run has no τ̂ to scale by, and no theory) + the common e^(−t/τ̂) line
    assert len(ax.lines) == len(RUNS) + 3 + 1
    x, y = ax.lines[-1].get_data()
    np.testing.assert_allclose(y, np.exp(-np.asarray(x)))
    assert any("0/300 escaped" in t.get_text() for t in ax.get_legend().get_texts())
    # into a caller's axes with the at-risk table: one extra axes under it, the same Figure
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plots.survival_figure(RUNS, LABELS, ax=ax2) is fig2 and len(fig2.axes) == 2


def test_survival_argument_errors():
    with pytest.raises(ValueError, match="labels"):
        plots.survival_figure(RUNS, ["a"])
    with pytest.raises(ValueError, match="x must be"):
        plots.survival_figure(RUNS, LABELS, x="loglog")
    with pytest.raises(ValueError, match="theory"):
        plots.survival_figure(RUNS, LABELS, theory=[()])
    with pytest.raises(ValueError, match="results"):
        plots.survival_figure([], [])


def test_histogram_small_multiples_and_overlay():
    fig = plots.histogram_figure(RUNS, LABELS, theory=THEORY)
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == len(RUNS)
    assert all(a.get_xscale() == "log" for a in panels)
    assert "0/300 escaped" in " ".join(t.get_text() for t in panels[2].texts)
    # per decade: bar heights sum (× bin width in decades) to the escaped fraction
    stairs = panels[0].patches[0]
    vals, edges = stairs.get_data()[:2]
    assert np.sum(vals * np.diff(np.log10(edges))) == pytest.approx(RUNS[0].n_escaped / RUNS[0].n_particles)
    fig2 = plots.histogram_figure(RUNS, LABELS, layout="overlay")
    assert len([a for a in fig2.axes if a.get_visible()]) == 1
    text = [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    assert all(any(t.startswith(lab) for t in text) for lab in LABELS)
    with pytest.raises(ValueError, match="layout"):
        plots.histogram_figure(RUNS, LABELS, layout="grid")


def test_save_figure_writes_every_format(tmp_path):
    fig = plots.survival_figure(RUNS[:1], ["one"])
    paths = plots.save_figure(fig, tmp_path / "s.png")
    assert [p.name for p in paths] == ["s.png", "s.pdf", "s.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in paths[2].read_bytes()[:2000]
    assert [p.name for p in plots.save_figure(fig, tmp_path / "t", formats="svg")] == ["t.svg"]
    with pytest.raises(ValueError, match="formats"):
        plots.check_formats("png,bmpx")
    with pytest.raises(ValueError, match="formats"):
        plots.check_formats([])


KRAMERS = {"landscape": {"kind": "polynomial", "coeffs": [1.0, 0.0, -2.0, 0.0, 1.0]},
           "dynamics": {"mode": "discrete", "eta": 0.005, "noise": "white", "noise_std": 10.0},
           "init": {"x0": -1.0}, "exit": {"kind": "threshold", "threshold": 1.0}, "leap": {"sigma": 0.0}}


def test_theory_times_match_the_theory_module():
    from leap_sde import theory as th

    cfg = resolve(KRAMERS, base={})
    got = {t.name: t.steps for t in plots.theory_escape_times(cfg, 0.0)}
    D = 0.005 * 10.0 ** 2 / 2  # Langevin temperature of the white noise: D = η std²/2 = 0.25
    U = lambda x: (x * x - 1.0) ** 2  # noqa: E731
    assert got["exact MFPT (quadrature)"] == pytest.approx(th.mfpt_1d(U, D, -1.0, 1.0, -3.0) / 0.005, rel=1e-6)
    assert got["Kramers"] == pytest.approx(th.kramers_time(1.0, 8.0, -4.0, D) / 0.005, rel=1e-9)
    # no formula for GD + LEAP leaving a ball on a quadratic
    q = resolve({"landscape": {"kind": "quadratic", "hessian": [1.5]}, "dynamics": {"eta": 1.0, "noise": "white",
                 "noise_std": 0.1}, "init": {"x0": 0.0},
                 "exit": {"kind": "leave-ball", "center": [0.0], "radius": 10.0}}, base={})
    assert plots.theory_escape_times(q, 0.3) == ()


def test_theory_times_xie_on_the_sharp_flat_well():
    from leap_sde import theory as th

    cfg = resolve({"landscape": {"kind": "sharp-flat", "curv_sharp": 4.0, "barrier_sharp": 0.5},
                   "init": {"minimum": 1}, "exit": {"target_minimum": 0}, "leap": {"sigma": 0.05}}, base={})
    got = {t.name: t.steps for t in plots.theory_escape_times(cfg, 0.05)}
    tau = th.leap_xie_escape_time(0.5, 4.0, -1.0, batch_size=1.0, eta=0.1, sigma=0.05, s=1 / 5)
    assert got["Xie et al. + LEAP"] == pytest.approx(tau / 0.1, rel=1e-9)
    assert "exact MFPT (quadrature)" in got and "Kramers" not in got  # Kramers needs constant (white) noise


def test_plot_experiment_writes_all_figures(tmp_path):
    from leap_sde.experiment import ExperimentOutput, RunOutput

    cfg = resolve(KRAMERS, base={})
    out = ExperimentOutput(config=cfg, runs=[RunOutput(sigma=0.0, escape=fake_run(13_000.0, max_steps=200_000,
                                                                                 eta=0.005))])
    paths = plots.plot_experiment(out, tmp_path, formats=("png", "svg"))
    assert sorted(p.name for p in paths) == ["histogram.png", "histogram.svg", "survival.png", "survival.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_cli_figure_formats_option(tmp_path, capsys):
    from leap_sde import cli

    out = tmp_path / "run"
    small = ["--set", "run.particles=50", "--set", "run.max_steps=3000", "--set", "leap.sigma=[0.0, 0.1]"]
    assert cli.main(["simulate", "--out", str(out), "--quiet", "--figure-formats", "svg,pdf", *small]) == 0
    figs = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".pdf", ".svg"))
    # the default experiment has run.preference: the escape back has its own survival figure
    assert figs == sorted(f"{f}.{e}" for f in ("histogram", "survival", "survival_back") for e in ("pdf", "svg"))
    with pytest.raises(SystemExit) as e:
        cli.main(["simulate", "--out", str(tmp_path / "x"), "--figure-formats", "gif", *small])
    assert e.value.code == 2 and "formats" in capsys.readouterr().err


def test_diverged_particles_are_named_in_the_legend():
    r = fake_run(100.0, n=200, seed=4)
    status = r.status.copy()
    status[:5] = Status.DIVERGED
    r = EscapeResult(status=status, steps=r.steps, times=r.times, positions=r.positions, max_steps=r.max_steps,
                     eta=r.eta, seed_entropy=4)
    text = [t.get_text() for t in plots.survival_figure([r], ["d"]).axes[0].get_legend().get_texts()]
    assert text[0].startswith(f"d: {r.n_escaped}/200 escaped, 5 diverged")


def test_sweep_line_plot_keeps_zero_escape_points(tmp_path):
    """A point with no escape has rate 0 (not drawable on the log axis): it is drawn as its 95% upper bound."""
    from leap_sde.sweep import load_spec
    from leap_sde.sweep.plots import _Configs, _plot_line

    (tmp_path / "s.toml").write_text('[sweep]\nname = "t"\n[grid]\n"leap.sigma" = [0.0, 0.3, 0.6]\n')
    spec = load_spec(tmp_path / "s.toml")
    rows = [{"leap.sigma": 0.0, "rate_per_step": 0.0, "rate_ci_low": 0.0, "rate_ci_high": 1e-6},
            {"leap.sigma": 0.3, "rate_per_step": 2e-4, "rate_ci_low": 1e-4, "rate_ci_high": 3e-4},
            {"leap.sigma": 0.6, "rate_per_step": 1e-2, "rate_ci_low": 9e-3, "rate_ci_high": 1.1e-2}]
    figs = []
    _plot_line(spec, rows, {"kind": "line", "x": "leap.sigma"}, _Configs(spec), lambda f, p: figs.append(f))
    ax = figs[0].axes[0]
    bounds = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert len(bounds) == 1 and list(bounds[0].get_xdata()) == [0.0] and list(bounds[0].get_ydata()) == [1e-6]
    assert "no escape: 95% upper bound" in [t.get_text() for t in ax.get_legend().get_texts()]
    lo, hi = ax.get_xlim()
    assert lo == 0.0 and 0.6 <= hi <= 0.6 * 1.031


SHARP_FLAT = {"landscape": {"kind": "sharp-flat", "curv_sharp": 4.0, "barrier_sharp": 0.5, "barrier_flat": 0.5},
              "init": {"x0": "minimum", "minimum": 1}, "exit": {"threshold": "minimum", "target_minimum": 0},
              "leap": {"sigma": 0.05}, "run": {"preference": True}}


def test_theory_times_of_the_escape_back_and_its_figure(tmp_path):
    from leap_sde import theory as th
    from leap_sde.experiment import ExperimentOutput, RunOutput

    cfg = resolve(SHARP_FLAT, base={})
    back = {t.name: t.steps for t in plots.theory_escape_times(cfg, 0.05, back=True)}
    # flat minimum (h = 1) over the saddle (h_b = 1) back to the sharp side: s = h_b/(h + h_b) = 1/2
    tau = th.leap_xie_escape_time(0.5, 1.0, -1.0, batch_size=1.0, eta=0.1, sigma=0.05, s=0.5)
    assert back["Xie et al. + LEAP"] == pytest.approx(tau / 0.1, rel=1e-9)
    out = ExperimentOutput(config=cfg, runs=[RunOutput(sigma=0.05, escape=fake_run(2000.0, eta=0.1),
                                                       reverse=fake_run(math.inf, eta=0.1))])
    names = sorted(p.name for p in plots.plot_experiment(out, tmp_path, formats="png"))
    assert names == ["histogram.png", "survival.png", "survival_back.png"]


def test_chain_auto_rule(tmp_path, monkeypatch):
    """chain="auto": the discrete-chain theory only for runs of >= CHAIN_AUTO_STEPS simulated particle-steps."""
    from leap_sde.experiment import ExperimentOutput, RunOutput

    seen = []
    monkeypatch.setattr(plots, "theory_escape_times", lambda cfg, s, chain=False, back=False: seen.append(chain)
                        or ())
    cfg = resolve(KRAMERS, base={})
    for mean, n in ((100.0, 50), (10_000.0, 400)):  # ~5e3 and ~4e6 particle-steps
        r = fake_run(mean, n=n, max_steps=200_000, eta=0.005)
        seen.clear()
        plots.plot_experiment(ExperimentOutput(config=cfg, runs=[RunOutput(sigma=0.0, escape=r)]), tmp_path,
                              formats="png")
        assert seen == [float(r.steps.sum()) >= plots.CHAIN_AUTO_STEPS]
    assert seen == [True]
    with pytest.raises(ValueError, match="chain"):
        plots.plot_experiment(ExperimentOutput(config=cfg, runs=[RunOutput(sigma=0.0, escape=r)]), tmp_path,
                              chain="yes")
