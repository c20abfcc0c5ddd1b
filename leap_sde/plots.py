"""Figures of an experiment: Kaplan–Meier survival with theory curves, escape-time histograms, basin occupation.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, no display needed: safe
under the Agg backend and in tests), takes ``ax=`` (or ``fig=``) to draw into an existing figure, and returns
the Figure.  :func:`save_figure` writes one figure in several formats (PNG, PDF, SVG by default), atomically.

Survival (:func:`survival_figure`)
    Kaplan–Meier estimate ``Ŝ(t) = Π_{t_i ≤ t} (1 − d_i/n_i)`` (``d_i`` escapes at ``t_i``, ``n_i`` at risk just
    before it; censored and diverged particles leave the risk set without an event) with pointwise
    ``confidence`` bands from Greenwood's variance on the log(−log) scale (Kalbfleisch & Prentice 2002, §1.4;
    ``scipy.stats.ecdf`` ``method="log-log"``), which keeps the band inside (0, 1) on a log axis.  The number
    at risk at chosen times is printed in a table under the axis.  Theory curves are the exponential law
    ``S(t) = exp(−t/τ_theory)`` with the mean escape times of :func:`theory_escape_times` (docs/theory.md §1.1,
    §1.3, §4.1, §8.2–8.4).  A run with no escape is drawn as a flat line at ``S = 1`` over its observation
    window and named "0/N escaped" in the legend (never dropped).

Histogram (:func:`histogram_figure`)
    Escape times in logarithmic bins, as the fraction of *all* N particles per decade, with step outlines;
    the exponential law with mean τ has the density ``ln(10)·(t/τ)·e^{−t/τ}`` per decade of ``t`` (drawn for
    the fitted ``τ̂`` and the theory τ).  Several runs: one panel per run (small multiples, shared axes).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = ["FORMATS", "TheoryTime", "theory_escape_times", "save_figure", "survival_figure",
           "histogram_figure", "occupation_figure", "plot_experiment"]

#: default output formats of every figure the package writes
FORMATS = ("png", "pdf", "svg")
_VALID_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")
#: grid of the discrete-chain theory curve (800 cells: within 1% of 2000 cells on the shipped configs, ~4x faster)
CHAIN_CELLS = 800
#: ``chain="auto"`` draws the discrete-chain curve for runs of at least this many simulated particle-steps
CHAIN_AUTO_STEPS = 1e6
#: line styles of the theory curves, in the order of :func:`theory_escape_times`
_THEORY_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


@dataclass(frozen=True)
class TheoryTime:
    """A theoretical mean escape time: ``name`` (legend text), ``source`` (formula and reference) and the
    mean escape time in ``steps`` (continuous time ``steps · η`` at a constant learning rate)."""

    name: str
    source: str
    steps: float


# --------------------------------------------------------------------------------------------------
# figures and files
def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def check_formats(formats) -> tuple:
    """``formats`` as a tuple of lower-case extensions (a string "png,pdf" or a sequence); ValueError if empty
    or unknown."""
    if isinstance(formats, str):
        formats = [f for f in formats.replace(" ", "").split(",") if f]
    out = tuple(str(f).lower().lstrip(".") for f in formats)
    bad = [f for f in out if f not in _VALID_FORMATS]
    if not out or bad:
        raise ValueError(f"formats: expected one or more of {', '.join(_VALID_FORMATS)}, got {formats!r}")
    return tuple(dict.fromkeys(out))


def save_figure(fig, path, *, formats=FORMATS, dpi: int = 150) -> list:
    """Write ``fig`` as ``path`` with each suffix of ``formats`` (``path``'s own suffix is replaced), each
    file atomically; returns the written paths.  The Figure is left open (the caller owns it)."""
    from ._io import atomic_write_bytes

    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lstrip(".").lower() in _VALID_FORMATS else path
    written = []
    for fmt in check_formats(formats):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        target = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_bytes(target, buf.getvalue())
        written.append(target)
    return written


def _metadata(fmt):
    # reproducible files: no creation date in PDF/SVG (matplotlib's default stamps the time)
    if fmt == "pdf":
        return {"CreationDate": None}
    if fmt == "svg":
        return {"Date": None}
    return None


def _colors(n):
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return list(colormaps["viridis"](np.linspace(0, 0.9, n)))


def _check_runs(results, labels, theory):
    from .ams import AMSResult

    results = list(results)
    if not results:
        raise ValueError("results: expected at least one EscapeResult, got none")
    for i, r in enumerate(results):
        if isinstance(r, AMSResult):
            raise ValueError(f"results[{i}]: an AMS result has no per-particle escape times to plot")
        if not hasattr(r, "status") or not hasattr(r, "steps"):
            raise ValueError(f"results[{i}]: expected an EscapeResult, got {type(r).__name__}")
    labels = [f"run {i}" for i in range(len(results))] if labels is None else [str(v) for v in labels]
    if len(labels) != len(results):
        raise ValueError(f"labels: expected {len(results)} labels (one per result), got {len(labels)}")
    if theory is None:
        theory = [()] * len(results)
    theory = [tuple(t) for t in theory]
    if len(theory) != len(results):
        raise ValueError(f"theory: expected {len(results)} sequences of TheoryTime (one per result), "
                         f"got {len(theory)}")
    return results, labels, theory


def _durations(r, unit):
    if unit == "steps":
        return r.steps.astype(np.float64)
    if unit == "time":
        return np.asarray(r.times, dtype=np.float64)
    raise ValueError(f"unit must be 'steps' or 'time', got {unit!r}")


def _unit_factor(r, unit):
    """Multiplier from steps to ``unit`` (theory times are in steps)."""
    return 1.0 if unit == "steps" else float(r.eta)


def _km(t, e, confidence):
    """Kaplan–Meier ``(times, S, lower, upper)`` at the distinct escape times, log-log Greenwood bands."""
    import warnings

    from scipy import stats

    res = stats.ecdf(stats.CensoredData(uncensored=t[e], right=t[~e]))
    with warnings.catch_warnings():  # undefined where S = 0 or 1: NaN, handled by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = res.sf.confidence_interval(confidence, method="log-log")
    lo = np.asarray(ci.low.probabilities, dtype=float)
    hi = np.asarray(ci.high.probabilities, dtype=float)
    s = np.asarray(res.sf.probabilities, dtype=float)
    lo = np.where(np.isfinite(lo), lo, np.where(s >= 1, 1.0, 0.0))
    hi = np.where(np.isfinite(hi), hi, np.where(s <= 0, np.nan, 1.0))
    return np.asarray(res.sf.quantiles, dtype=float), s, lo, hi


def _fmt(v):
    if not np.isfinite(v):
        return "∞" if v > 0 else "nan"
    if v == 0:
        return "0"
    s = f"{v:.3g}"
    if "e" in s:  # one exponent style: 2.43e4, 1.17e5, 1.5e-4
        mantissa, exponent = s.split("e")
        s = f"{mantissa}e{int(exponent)}"
    return s


def _run_stats(r, unit, confidence):
    return r.rate(unit=unit, confidence=confidence)


def _log_ticks(lo, hi, nmax=7):
    """Tick positions 10^k (and 2·10^k, 5·10^k when few decades) inside [lo, hi]."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mult in ((1,), (1, 3), (1, 2, 5)):
        ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in mult if lo <= m * 10.0 ** k <= hi]
        if len(ticks) >= 4:
            break
    while len(ticks) > nmax:
        ticks = ticks[::2]
    return ticks


def _at_risk(t, when):
    """Number at risk just before each time in ``when``: particles whose duration is ≥ that time."""
    st = np.sort(t)
    return st.size - np.searchsorted(st, np.asarray(when, dtype=float), side="left")


def survival_figure(results, labels=None, *, ax=None, x: str = "log", unit: str = "steps", theory=None,
                    confidence: float = 0.95, at_risk: bool = True, at_risk_times=None, fit: Optional[bool] = None,
                    title: Optional[str] = None, colors=None):
    """Kaplan–Meier survival ``P(not escaped by t)`` of several runs in one axes; returns the Figure.

    Maths and bands: see the module docstring (Kaplan–Meier, Greenwood log-log bands at ``confidence``).

    Parameters
    ----------
    results : sequence of EscapeResult
        The runs (one curve each; :class:`~leap_sde.ams.AMSResult` is refused: no per-particle times).
    labels : sequence of str, optional
        One legend label per run (default "run i").
    ax : matplotlib Axes, optional
        Draw into it (its Figure is returned); default a new Figure.
    x : ``"log"`` | ``"scaled"`` | ``"linear"``
        ``"log"``: log-time axis, linear ``S`` (curves whose means differ 100× stay apart);
        ``"scaled"``: time over each run's fitted mean ``t/τ̂`` (censored MLE) on a linear axis with log ``S``,
        where the exponential law is the single line ``e^{−t/τ̂}``; ``"linear"``: raw time, log ``S``.
    unit : ``"steps"`` | ``"time"``
        Steps, or continuous time ``t = Σ η_k``.
    theory : sequence (one per run) of sequences of :class:`TheoryTime`, optional
        Theory curves ``exp(−t/τ)`` drawn next to each run in its colour, one line style per theory name.
    at_risk : bool
        Print the number at risk under the axis (``at_risk_times``: where, in ``unit``; default: the ticks;
        in ``"scaled"`` mode the times are multiples of each run's τ̂).
    fit : bool, optional
        Also draw each run's fitted exponential ``exp(−t/τ̂)`` (default: in ``"scaled"`` mode only, as one line).
    """
    if x not in ("log", "scaled", "linear"):
        raise ValueError(f"x must be 'log', 'scaled' or 'linear', got {x!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    results, labels, theory = _check_runs(results, labels, theory)
    from matplotlib.lines import Line2D

    n = len(results)
    tab = None
    if ax is None:
        fig = _figure((9.5, 4.2 + (0.2 * (n + 1) + 0.4 if at_risk else 0.0)))
        if at_risk:  # the table as a second grid row: the layout engine makes room for its labels
            ax, tab = fig.subplots(2, 1, sharex=True, height_ratios=[4.0, 0.2 * (n + 1) + 0.1])
        else:
            ax = fig.add_subplot()
    fig = ax.figure
    cols = list(colors) if colors is not None else _colors(n)
    fit = (x == "scaled") if fit is None else bool(fit)
    uname = "steps" if unit == "steps" else "time units"
    xname = "steps" if unit == "steps" else "continuous time t = Σ η_k"

    stats = [_run_stats(r, unit, confidence) for r in results]
    dur = [_durations(r, unit) for r in results]
    # x-range of the data: first escape (or first observed duration) to the longest observation
    ends = [float(d.max()) for d in dur]
    starts = [float(d[r.escaped].min()) if r.n_escaped else float(d.max()) for r, d in zip(results, dur)]
    scale = [s.mean if (x == "scaled" and s.n_escaped) else 1.0 for s in stats]
    if x == "log":
        pos = [v for v in starts if v > 0] or [1.0]
        lo_x, hi_x = max(min(pos) / 2.0, 0.5 if unit == "steps" else 1e-12), max(ends) * 1.05
    else:
        sc = [e / s for e, s, st in zip(ends, scale, stats) if x != "scaled" or st.n_escaped]
        lo_x, hi_x = 0.0, (max(sc) if sc else 1.0) * 1.02
    lowest = 1.0
    n_zero = sum(1 for st in stats if st.n_escaped == 0)
    zero_seen = 0
    style_of = {}
    handles = []
    for i, (r, lab, th, c) in enumerate(zip(results, labels, theory, cols)):
        st, d = stats[i], dur[i]
        N, k = r.n_particles, st.n_escaped
        e = r.escaped
        div = f", {st.n_diverged} diverged (censored)" if st.n_diverged else ""
        if k == 0:
            # interleaved dashes: several zero-escape runs on the same line S = 1 all stay visible
            dash = (6.0 * zero_seen, (6.0, 6.0 * (n_zero - 1) + 1e-9)) if n_zero > 1 else (0, (6, 2))
            zero_seen += 1
            if x == "scaled":
                ax.axhline(1.0, color=c, lw=2.0, ls=dash, zorder=3)
            else:
                ax.plot([lo_x, ends[i]], [1.0, 1.0], color=c, lw=2.0, ls=dash, zorder=3)
            bound = _fmt(st.mean_ci[0])
            handles.append(Line2D([], [], color=c, lw=2.0, ls=(0, (6, 2)),
                                  label=f"{lab}: 0/{N} escaped{div} (τ > {bound} {uname}, {confidence:.0%})"))
        else:
            t, s, lo, hi = _km(d, e, confidence)
            t = t / scale[i]
            t0 = lo_x if x == "log" else 0.0
            tt = np.concatenate([[t0], t, [ends[i] / scale[i]]])
            ss = np.concatenate([[1.0], s, [s[-1]]])
            ll = np.concatenate([[1.0], lo, [lo[-1]]])
            hh = np.concatenate([[1.0], hi, [hi[-1]]])
            if x != "log":  # log S axis: S = 0 cannot be drawn
                keep = ss > 0
                tt, ss, ll, hh = tt[keep], ss[keep], ll[keep], hh[keep]
                ll = np.maximum(ll, 0.5 / N)
                lowest = min(lowest, 0.5 / N, float(np.min(ss)))
            ax.step(tt, ss, where="post", color=c, lw=1.6, zorder=3)
            ax.fill_between(tt, ll, hh, step="post", color=c, alpha=0.18, lw=0)
            handles.append(Line2D([], [], color=c, lw=1.6,
                                  label=f"{lab}: {k}/{N} escaped{div}, τ̂ = {_fmt(st.mean)} {uname}"))
            if fit and x != "scaled":
                g = _grid(lo_x, hi_x, x)
                ax.plot(g, np.exp(-g / st.mean), color=c, lw=0.8, alpha=0.7)
        fac = _unit_factor(r, unit)
        for tt_ in th:
            tau = tt_.steps * fac
            if not (np.isfinite(tau) and tau > 0):
                continue
            if x == "scaled" and k == 0:
                continue
            ls_ = style_of.setdefault(tt_.name, _THEORY_STYLES[len(style_of) % len(_THEORY_STYLES)])
            g = _grid(lo_x, hi_x, x)
            ax.plot(g, np.exp(-g * scale[i] / tau), color=c, lw=1.2, ls=ls_, zorder=2)
            if x != "log":
                lowest = min(lowest, max(float(np.exp(-hi_x * scale[i] / tau)), 0.5 / N))
    if fit and x == "scaled" and any(s.n_escaped for s in stats):
        g = _grid(lo_x, hi_x, x)
        ax.plot(g, np.exp(-g), color="k", lw=1.0, zorder=4)
        handles.append(Line2D([], [], color="k", lw=1.0, label="fitted exponential law e^(−t/τ̂)"))
    for name, ls_ in style_of.items():
        src = next(t.source for th in theory for t in th if t.name == name)
        handles.append(Line2D([], [], color="0.35", lw=1.2, ls=ls_, label=f"theory: {name}  [{src}]"))
    if x == "log":
        ax.set_xscale("log")
        ax.set_ylim(0, 1.04)
    else:
        ax.set_yscale("log")
        ax.set_ylim(lowest * 0.8, 1.2)
    ax.set_xlim(lo_x, hi_x)
    ax.set_xlabel({"log": f"{xname} (log scale)", "linear": xname,
                   "scaled": f"{xname} / τ̂ (each run's fitted mean escape time)"}[x])
    ax.set_ylabel("P(not escaped)")
    band = f"{confidence:.0%} pointwise band: Greenwood, log-log"
    ax.set_title(title if title is not None else f"Kaplan–Meier survival ({band})", fontsize=9)
    # outside the axes, to the right: the curves of runs with very different means fill every corner
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False)
    if at_risk:
        _at_risk_table(ax, results, labels, cols, dur, scale, x, lo_x, hi_x, at_risk_times, tab)
    return fig


def _grid(lo, hi, x):
    return np.geomspace(lo, hi, 300) if x == "log" else np.linspace(lo, hi, 300)


def _at_risk_table(ax, results, labels, cols, dur, scale, x, lo_x, hi_x, when, tab=None):
    """Number at risk at the times ``when`` in ``tab`` (default: a new axes under ``ax``)."""

    if when is None:
        if x == "log":
            when = _log_ticks(lo_x, hi_x)
        else:
            from matplotlib.ticker import MaxNLocator

            when = [v for v in MaxNLocator(6).tick_values(lo_x, hi_x) if lo_x <= v <= hi_x]
    when = [float(w) for w in when]
    n = len(results)
    if tab is None:
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        tab = make_axes_locatable(ax).append_axes("bottom", size=0.2 * (n + 1), pad=0.55, sharex=ax)
    tab.set_ylim(n + 0.5, -0.5)
    tab.set_yticks([])
    for s in tab.spines.values():
        s.set_visible(False)
    tab.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    tab.text(0.0, 0.0, "number at risk", transform=tab.get_yaxis_transform(), fontsize=7, ha="left",
             va="center", style="italic")
    for i, (lab, c, d, sc) in enumerate(zip(labels, cols, dur, scale)):
        counts = _at_risk(d / sc, when)
        for w, m in zip(when, counts):
            tab.text(w, i + 1, f"{m}", ha="center", va="center", fontsize=7, color=c)
    # run labels as y tick labels: the layout engine then makes room for them
    tab.set_yticks(np.arange(1, n + 1), labels, fontsize=7)
    tab.tick_params(axis="y", which="both", left=False, pad=14)
    for tl, c in zip(tab.get_yticklabels(), cols):
        tl.set_color(c)
    if x == "log":
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xticks(when)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lo_x, hi_x)
    ax.tick_params(axis="x", labelbottom=True)
    return tab


def histogram_figure(results, labels=None, *, fig=None, ax=None, layout: Optional[str] = None, unit: str = "steps",
                     theory=None, bins: int = 30, title: Optional[str] = None, colors=None):
    """Escape-time histograms in log bins (fraction of all N particles per decade, step outlines) with the
    fitted exponential law (solid grey) and the theory laws (dashed) as densities per decade; returns the
    Figure.

    ``layout="multiples"`` (default for several runs): one panel per run, shared axes, in ``fig`` (a new
    Figure by default); ``"overlay"``: all runs in one axes (``ax``, default new).  Maths: module docstring.
    """
    results, labels, theory = _check_runs(results, labels, theory)
    if layout is None:
        layout = "overlay" if (ax is not None or len(results) == 1) else "multiples"
    if layout not in ("multiples", "overlay"):
        raise ValueError(f"layout must be 'multiples' or 'overlay', got {layout!r}")
    if layout == "multiples" and ax is not None:
        raise ValueError("ax: only with layout='overlay' (pass fig= for small multiples)")
    if not (isinstance(bins, (int, np.integer)) and bins >= 2):
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    n = len(results)
    cols = list(colors) if colors is not None else _colors(n)
    dur = [_durations(r, unit) for r in results]
    esc = [d[r.escaped] for r, d in zip(results, dur)]
    pos = np.concatenate([t[t > 0] for t in esc] + [np.zeros(0)])
    hi = max(float(d.max()) for d in dur)
    lo = float(pos.min()) if pos.size else max(hi / 1e3, 1e-12)
    edges = np.geomspace(lo * 0.95, max(hi, lo * 1.5) * 1.05, bins + 1)
    dec = np.diff(np.log10(edges))
    if layout == "overlay":
        if ax is None:
            fig = _figure((6.4, 4.2))
            ax = fig.add_subplot()
        fig = ax.figure
        axes = [ax] * n
    else:
        ncol = min(3, n)
        nrow = math.ceil(n / ncol)
        if fig is None:
            fig = _figure((3.3 * ncol + 0.6, 2.6 * nrow + 0.5))
        axs = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)).ravel()
        for a in axs[n:]:
            a.set_visible(False)
        axes = list(axs[:n])
    styles = {}
    labelled = set()
    legend_done = False
    g = np.geomspace(edges[0], edges[-1], 300)
    ymax = 0.0
    for i, (r, lab, th, c, a) in enumerate(zip(results, labels, theory, cols, axes)):
        t = esc[i]
        N = r.n_particles
        cnt, _ = np.histogram(t, bins=edges)
        y = cnt / (N * dec)
        ymax = max(ymax, float(y.max()) if y.size else 0.0)
        rate = r.rate(unit=unit)
        txt = f"{lab}: {t.size}/{N} escaped"
        a.stairs(y, edges, color=c, lw=1.5, label=txt)
        if t.size:
            tau = rate.mean
            a.plot(g, math.log(10) * (g / tau) * np.exp(-g / tau), color="0.4", lw=1.0,
                   label="fitted exponential" if layout == "multiples" or i == 0 else None)
        fac = _unit_factor(r, unit)
        for tt in th:
            tau = tt.steps * fac
            if not (np.isfinite(tau) and tau > 0):
                continue
            ls_ = styles.setdefault(tt.name, _THEORY_STYLES[len(styles) % len(_THEORY_STYLES)])
            first = layout == "multiples" or tt.name not in labelled
            labelled.add(tt.name)
            a.plot(g, math.log(10) * (g / tau) * np.exp(-g / tau), color=c, lw=1.1, ls=ls_,
                   label=f"theory: {tt.name}" if first else None)
        if t.size == 0 and layout == "multiples":
            a.text(0.5, 0.5, f"0/{N} escaped\nwithin {_fmt(float(dur[i].max()))} "
                   f"{'steps' if unit == 'steps' else 'time units'}", transform=a.transAxes,
                   ha="center", va="center", fontsize=9, color=c)
        a.set_xscale("log")
        if layout == "multiples":
            a.set_title(txt, fontsize=8, color=c)
            a.tick_params(axis="x", labelbottom=True)
            extra = a.get_legend_handles_labels()[0][1:]  # the curves besides the histogram itself
            if extra and not legend_done:  # the same curve kinds in every panel: one legend
                a.legend(handles=extra, fontsize=6, loc="upper left", framealpha=0.6)
                legend_done = True
    for a in set(axes):
        a.set_ylim(0, max(ymax, 1e-3) * 1.25)
        a.set_xlim(edges[0], edges[-1])
    if layout == "overlay":
        ax.set_xlabel(f"escape time ({'steps' if unit == 'steps' else 'continuous time'}, log bins)")
        ax.set_ylabel("fraction of particles per decade")
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title(title if title is not None else "Escape-time histogram (grey: fitted exponential law)",
                     fontsize=9)
    else:
        fig.supxlabel(f"escape time ({'steps' if unit == 'steps' else 'continuous time'}, log bins)", fontsize=9)
        fig.supylabel("fraction of particles per decade", fontsize=9)
        fig.suptitle(title if title is not None else "Escape-time histograms (grey: fitted exponential law; "
                     "density per decade ln10·(t/τ)·e^(−t/τ))", fontsize=9)
    return fig


def occupation_figure(results, labels=None, *, ax=None, title: Optional[str] = None, colors=None):
    """Fraction of particles left of the first basin edge (coordinate 0) at each snapshot of occupation runs
    (:class:`EscapeResult` with ``snapshots``); returns the Figure."""
    results, labels, _ = _check_runs(results, labels, None)
    for i, r in enumerate(results):
        if r.snapshots is None:
            raise ValueError(f"results[{i}]: no snapshots recorded (an occupation run has them)")
    if ax is None:
        fig = _figure((6.4, 4.0))
        ax = fig.add_subplot()
    fig = ax.figure
    cols = list(colors) if colors is not None else _colors(len(results))
    edge = None
    for r, lab, c in zip(results, labels, cols):
        k = np.arange(r.snapshots.shape[0]) * r.snapshot_every
        edge = float(r.basin_edges[0]) if r.basin_edges.size else 0.0
        ax.plot(k, np.mean(r.snapshots[:, :, 0] < edge, axis=1), color=c, label=lab)
    ax.set_xlabel("step")
    ax.set_ylabel(f"fraction with x < {edge:.3g} (left basin)")
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.set_title(title if title is not None else "Basin occupation over time", fontsize=9)
    ax.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------------------------------
# theory
def theory_escape_times(config, sigma: float, *, chain: bool = False, back: bool = False) -> tuple:
    """Theoretical mean escape times (in steps) for one σ of a resolved experiment config, where they apply
    (``back``: of the escape back, target → start minimum, of a ``run.preference`` experiment).

    Applies to a 1-D landscape with a threshold exit, a constant learning rate, plain SGD (no momentum or
    weight decay), Gaussian LEAP (or none) and white or SGD-like (``|U''|/B``) gradient noise, started at a
    minimum-side point with the LEAP well mean-square stable there (``U''(h)(η² + σ²) < 2η``):

    * **exact MFPT (quadrature)**: ``T = ∫_{x0}^{x_c} e^{Φ(y)} ∫^{y} e^{−Φ(z)}/D(z) dz dy`` of the LEAP
      diffusion ``D(θ) = ((η² + σ²)C(θ) + σ²U'(θ)²)/(2η)`` (:func:`leap_sde.theory.leap_mfpt_1d`,
      docs/theory.md §1.3, §8.2); the continuous model, exact up to O(η);
    * **discrete chain** (``chain=True``, ``dynamics.mode = "discrete"``; ~1 s): the exact mean step count of
      the simulated chain, :func:`leap_sde.theory.discrete_mfpt_1d` on :data:`CHAIN_CELLS` cells
      (docs/theory.md §2.4);
    * **Kramers** (white noise): ``2π/√(U''(a)|U''(b)|)·e^{ΔU/D}`` with LEAP's diffusion at the minimum
      (:func:`leap_sde.theory.kramers_time`, docs/theory.md §1.1), for an exit past the saddle;
    * **Xie et al.** (SGD-like noise on a piecewise-quadratic well, exit past the saddle): Xie's law with
      LEAP's effective batch, :func:`leap_sde.theory.leap_xie_escape_time` (docs/theory.md §4.1, §8.4).

    Returns a tuple of :class:`TheoryTime` (empty where nothing applies).  Continuous times τ become steps
    ``τ/η``.
    """
    try:
        return _theory_times(config, float(sigma), chain, back)
    except (ValueError, ZeroDivisionError, OverflowError, FloatingPointError, KeyError, TypeError):
        return ()


def _theory_times(cfg, sigma, chain, back=False):
    import warnings

    from . import dynamics as dyn
    from . import landscapes as lands
    from . import theory as th
    from .experiment import build
    from .optimizers import SGD
    from .schedules import Constant
    from .validate._np import funcs_1d

    exp = build(cfg)
    land, ex, noise = exp.landscape, exp.exit, exp.noise
    start = exp.x0
    if back:
        if exp.reverse_exit is None:
            return ()
        ex, start = exp.reverse_exit, exp.reverse_x0
    if land.dim != 1 or not isinstance(ex, dyn.Threshold) or not isinstance(exp.schedule, Constant):
        return ()
    if not (isinstance(exp.optimizer, SGD) and exp.optimizer.momentum == 0 and exp.optimizer.weight_decay == 0):
        return ()
    if sigma > 0 and exp.leap_kwargs.get("variant", "gaussian") != "gaussian":
        return ()
    relative = bool(exp.leap_kwargs.get("relative") or False)
    eta = float(exp.eta)
    x0, xc = float(np.asarray(start).ravel()[0]), float(ex.value)
    if ex.direction * (xc - x0) <= 0:
        return ()
    U, dU, d2U = funcs_1d(land)
    if isinstance(noise, dyn.WhiteNoise):
        C = float(noise.std) ** 2
        noise_var = C
    elif isinstance(noise, dyn.HessianNoise):
        B, floor = float(noise.batch_size), float(noise.floor)
        C = None
        noise_var = lambda x: np.maximum(np.abs(d2U(x)), floor) / B  # noqa: E731
    else:
        return ()
    if C == 0.0:
        return ()
    # the start minimum (nearest to x0) and the saddle between it and the exit
    mins = [m for m in land.minima]
    if not mins:
        return ()
    a = min(mins, key=lambda m: abs(float(m.x[0]) - x0))
    xa, ha = float(a.x[0]), float(a.hessian[0, 0])
    sig_abs = sigma * eta if relative else sigma
    if not ha * (eta ** 2 + sig_abs ** 2) < 2 * eta:  # not mean-square stable: no diffusion picture
        return ()
    out = []
    # reflecting end on the far side of the start minimum, where the chain essentially never goes
    xl = x0 - ex.direction * max(2.0, 4.0 * abs(xc - x0))

    def attempt(f):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return float(f())
        except (ValueError, ZeroDivisionError, OverflowError, FloatingPointError):
            return math.nan

    tq = attempt(lambda: th.leap_mfpt_1d(U, dU, x0, xc, xl, eta=eta, sigma=sigma, noise_var=noise_var,
                                         relative=relative))
    if np.isfinite(tq) and tq > 0:
        out.append(TheoryTime("exact MFPT (quadrature)", "LEAP diffusion, docs/theory.md §1.3, §8.2", tq / eta))
    if chain and exp.mode == "discrete":
        tc = attempt(lambda: th.discrete_mfpt_1d(dU, x0, xc, xl, eta=eta, noise_var=noise_var, sigma=sigma,
                                                 relative=relative, n_cells=CHAIN_CELLS))
        if np.isfinite(tc) and tc > 0:
            out.append(TheoryTime("discrete chain (exact)", "docs/theory.md §2.4", tc))
    sad = [s for s in land.saddles if min(x0, xc) < float(s.x[0]) < max(x0, xc)]
    if not sad:
        return tuple(out)
    b = min(sad, key=lambda s: abs(float(s.x[0]) - xa))
    dU_b = float(b.loss - a.loss)
    hb = abs(float(b.hessian[0, 0]))
    if isinstance(noise, dyn.WhiteNoise) and dU_b > 0:
        Dm = float(th.leap_diffusion(0.0, C, eta, sigma, relative=relative))
        tk = attempt(lambda: th.kramers_time(dU_b, ha, hb, Dm))
        if np.isfinite(tk):
            out.append(TheoryTime("Kramers", "docs/theory.md §1.1", tk / eta))
    if isinstance(noise, dyn.HessianNoise) and isinstance(land, lands.PiecewiseQuadraticWell) and dU_b > 0:
        mode = exp.leap_kwargs.get("mode", "per-coordinate")
        tx = attempt(lambda: th.leap_xie_escape_time(dU_b, ha, -hb, batch_size=B, eta=eta, sigma=sigma,
                                                     s=hb / (ha + hb), mode=mode, relative=relative))
        if np.isfinite(tx):
            out.append(TheoryTime("Xie et al. + LEAP", "LEAP effective batch, docs/theory.md §4.1, §8.4", tx / eta))
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# the result folder
def _names(cfg):
    try:
        from .experiment import build

        return build(cfg).names
    except Exception:  # noqa: BLE001 - only a title
        return ("start", "target")


def plot_experiment(out, out_dir, *, save=None, formats=FORMATS, x: str = "log", chain="auto") -> list:
    """Write survival, histogram, (``run.preference``) survival_back and (for runs with occupation snapshots)
    occupation figures of an :class:`~leap_sde.experiment.ExperimentOutput` into ``out_dir`` in each of
    ``formats``; returns the paths.

    The theory curves come from :func:`theory_escape_times` of the run's config.  ``chain``: also the exact
    discrete chain (~1 s per σ and direction); ``"auto"`` (default): where the run simulated at least
    :data:`CHAIN_AUTO_STEPS` particle-steps, so that its cost is small next to the simulation's (a rule on the
    results, not on timings: the figures of a run are reproducible).  ``save`` is accepted for backward
    compatibility and ignored (files are always written atomically by :func:`save_figure`).
    """
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    runs = list(out.runs)
    if chain == "auto":
        done = sum(float(np.sum(e.steps)) for r in runs for e in (r.escape, r.reverse) if e is not None)
        chain = done >= CHAIN_AUTO_STEPS
    elif not isinstance(chain, bool):
        raise ValueError(f"chain must be True, False or 'auto', got {chain!r}")
    labels = [f"σ = {r.sigma:g}" for r in runs]
    results = [r.escape for r in runs]
    theory = [theory_escape_times(out.config, r.sigma, chain=chain) for r in runs]
    written = []
    written += save_figure(survival_figure(results, labels, x=x, theory=theory), out_dir / "survival",
                           formats=formats)
    written += save_figure(histogram_figure(results, labels, theory=theory), out_dir / "histogram",
                           formats=formats)
    back = [(r.reverse, lab, theory_escape_times(out.config, r.sigma, chain=chain, back=True))
            for r, lab in zip(runs, labels) if r.reverse is not None]
    if back:
        names = _names(out.config)
        ttl = f"Escape back ({names[1]} → {names[0]} minimum)\nKaplan–Meier survival (95% pointwise band: Greenwood, log-log)"
        written += save_figure(survival_figure([b[0] for b in back], [b[1] for b in back], x=x,
                                               theory=[b[2] for b in back], title=ttl),
                               out_dir / "survival_back", formats=formats)
    occ = [(r.occupation, lab) for r, lab in zip(runs, labels)
           if r.occupation is not None and r.occupation.snapshots is not None]
    if occ:
        written += save_figure(occupation_figure([o for o, _ in occ], [lab for _, lab in occ]),
                               out_dir / "occupation", formats=formats)
    return written
