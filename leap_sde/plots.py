"""Figures of an experiment: survival curves with the fitted exponential, escape-time histograms and the
basin occupation over time (matplotlib, Agg backend, no display needed)."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_experiment(out, out_dir, *, save):
    """Write survival.png, histogram.png and (for runs with occupation) occupation.png into ``out_dir``."""
    plt = _plt()
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(out.runs))))

    fig, ax = plt.subplots(figsize=(6, 4))
    lowest = 1.0
    for c, r in zip(colors, out.runs):
        km = r.escape.survival()
        if km.t.size == 0:
            continue
        rate = r.escape.rate().rate
        floor = 0.5 / r.escape.n_particles  # below one particle: not resolvable on a log axis
        ok = km.survival > 0
        ax.step(km.t[ok], km.survival[ok], where="post", color=c, label=f"σ = {r.sigma:g}")
        ax.fill_between(km.t[ok], np.maximum(km.lower[ok], floor), km.upper[ok], step="post", color=c, alpha=0.2)
        ax.plot(km.t[ok], np.exp(-rate * km.t[ok]), "--", color=c, lw=1)
        lowest = min(lowest, floor)
    ax.set_yscale("log")
    ax.set_ylim(lowest, 1.05)
    ax.set_xlabel("steps")
    ax.set_ylabel("P(not escaped)")
    ax.set_title("Kaplan–Meier survival (dashed: fitted exponential)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir / "survival.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for c, r in zip(colors, out.runs):
        t = r.escape.steps[r.escape.escaped]
        if t.size < 2:
            continue
        ax.hist(t, bins=60, density=True, histtype="step", color=c, label=f"σ = {r.sigma:g} (n = {t.size})")
        rate = r.escape.rate().rate
        tt = np.linspace(0, t.max(), 200)
        ax.plot(tt, rate * np.exp(-rate * tt), "--", color=c, lw=1)
    ax.set_xlabel("escape step")
    ax.set_ylabel("density")
    ax.set_title("Escape-time histogram (dashed: fitted exponential)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir / "histogram.png", dpi=120)
    plt.close(fig)

    occ = [(c, r) for c, r in zip(colors, out.runs) if r.occupation is not None and r.occupation.snapshots is not None]
    if occ:
        fig, ax = plt.subplots(figsize=(6, 4))
        for c, r in occ:
            o = r.occupation
            k = np.arange(o.snapshots.shape[0]) * o.snapshot_every
            x = o.snapshots[:, :, 0]
            edge = o.basin_edges[0] if o.basin_edges.size else 0.0
            ax.plot(k, np.mean(x < edge, axis=1), color=c, label=f"σ = {r.sigma:g}")
        ax.set_xlabel("step")
        ax.set_ylabel("fraction in the left (x < saddle) basin")
        ax.set_ylim(0, 1)
        ax.set_title("Basin occupation over time")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        save(fig, out_dir / "occupation.png", dpi=120)
        plt.close(fig)
