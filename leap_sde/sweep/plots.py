"""Plots of a sweep's results (``leap-sde plot DIR``): phase diagrams, Arrhenius plots, preference and line plots."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from ..config import resolve
from .run import read_table
from .spec import Plan, REPLICATE, SweepError, SweepSpec, _as_list, _with_params, load_spec
from .store import Store, canonical_json

__all__ = ["load_results", "theory_log10_rate", "auto_plots", "plot_sweep"]

def _new_figure(figsize, nrows=1, ncols=1):
    """A pyplot-free Figure (no global state; Agg-safe) and its axes grid."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _line(**kw):
    from matplotlib.lines import Line2D

    return Line2D([], [], **kw)


def _contour_effects():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.6, foreground="black")]


def load_results(sweep_dir):
    """``(spec, plan, rows)`` of a sweep folder; rows from results.csv, or from the store when it is missing."""
    d = Path(sweep_dir)
    spec = load_spec(d / "sweep.toml")
    plan = Plan(spec)
    path = d / "results.csv"
    if path.is_file():
        rows = read_table(path)
    else:
        store = Store(d)
        idx = store.load_index()
        recs = store.load_rows(idx)
        rows = [{"key": k, **recs[k]["params"], **recs[k]["row"]} for k in plan.keys if k in recs]
    return spec, plan, rows


class _Configs:
    """Resolved config of a row (memoised): the theory curves read η, B, curvatures ... from it."""

    def __init__(self, spec):
        self.spec = spec
        self._memo = {}

    def __call__(self, params: dict) -> dict:
        k = canonical_json(params)
        if k not in self._memo:
            self._memo[k] = resolve(_with_params(self.spec.base, params), base={})
        return self._memo[k]


def _num(v):
    """A plottable number from a parameter value (one-element lists such as a 1-D Hessian included)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, (int, float)):
        return float(v)
    a = np.asarray(v, dtype=float).ravel() if isinstance(v, list) else np.array([math.nan])
    return float(a[0]) if a.size == 1 else math.nan


def _escape_side(cfg):
    """(barrier, curvature at the start minimum, saddle curvature) of a 1-D double well, or None."""
    L = cfg["landscape"]
    if L["kind"] == "double-well":
        return L["barrier"], L["curv_min"], L["curv_saddle"]
    if L["kind"] == "sharp-flat":
        if cfg["init"]["x0"] != "minimum":
            return None
        side = "sharp" if cfg["init"]["minimum"] == 1 else "flat"
        return L[f"barrier_{side}"], L[f"curv_{side}"], L["curv_saddle"]
    return None


def theory_log10_rate(cfg: dict, kind: str) -> float:
    """log10 of the theory's escape rate per step for a resolved config (nan where the theory does not apply).

    ``"leap-xie"`` / ``"xie"``: Xie et al.'s SGD law with LEAP's effective batch
    (:func:`leap_sde.theory.leap_xie_escape_time`; sgd-hessian noise on a 1-D double well);
    ``"kramers"``: Kramers' law with LEAP's effective diffusion at the minimum (white noise);
    ``"lyapunov"``: GD + LEAP leaving a ball on a quadratic, rate ≈ λ/log(R/|x0|) for Lyapunov exponent λ > 0.
    """
    from .. import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    eta, sigma = D["eta"], P["sigma"]
    if isinstance(sigma, list) or P["variant"] != "gaussian" and kind != "lyapunov":
        return math.nan
    try:
        if kind in ("leap-xie", "xie"):
            side = _escape_side(cfg)
            if side is None or D["noise"] != "sgd-hessian":
                return math.nan
            dU, ha, hb = side
            log_tau = th.leap_xie_escape_time(dU, ha, -hb, batch_size=D["batch_size"], eta=eta, sigma=sigma,
                                              s=hb / (ha + hb), mode=P["mode"], relative=P["relative"], log=True)
        elif kind == "kramers":
            side = _escape_side(cfg)
            if side is None or D["noise"] != "white":
                return math.nan
            dU, ha, hb = side
            Dm = float(th.leap_diffusion(0.0, D["noise_std"] ** 2, eta, sigma, mode=P["mode"],
                                         relative=P["relative"]))
            log_tau = th.kramers_time(dU, ha, hb, Dm, log=True)
        elif kind == "lyapunov":
            L, E = cfg["landscape"], cfg["exit"]
            if L["kind"] != "quadratic" or E["kind"] != "leave-ball" or D["noise"] != "none":
                return math.nan
            h = float(np.max(np.abs(np.asarray(L["hessian"], dtype=float))))
            lam = th.leap_lyapunov_exponent(h, eta, sigma, relative=P["relative"], variant=P["variant"])
            x0 = cfg["init"]["x0"]
            r0 = float(np.linalg.norm(np.atleast_1d(x0))) if x0 != "minimum" else 0.0
            if not (lam > 0 and 0 < r0 < E["radius"]):
                return math.nan
            return math.log10(lam / math.log(E["radius"] / r0))
        else:
            return math.nan
    except (ValueError, ZeroDivisionError, OverflowError):
        return math.nan
    return (math.log(eta) - log_tau) / math.log(10)  # rate per step = η/τ (τ in continuous time)


def _boundary(kind: str, cfg: dict, sigma: float) -> float:
    from .. import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    if kind == "gd":
        return th.gd_stability_threshold(D["eta"])
    if kind == "mean-square":
        return th.leap_mean_square_threshold(D["eta"], sigma, relative=P["relative"], variant=P["variant"])
    return th.leap_almost_sure_threshold(D["eta"], sigma, relative=P["relative"], variant=P["variant"])


def _edges(v):
    """Cell edges of grid values ``v``: the midpoints (geometric on a log axis) between neighbours, and the
    first and last values themselves, so the axis ends at the data (no σ < 0 or h < 0 beyond the grid); the
    outer cells are half cells.  One value: a cell of ±20% (±0.5 around 0)."""
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if v[0] == 0 else np.sort([v[0] * 0.8, v[0] * 1.25])
    if _logscale(v):
        lv = np.log(v)
        mid = np.exp((lv[1:] + lv[:-1]) / 2)
    else:
        mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0]], mid, [v[-1]]])


def _centres(edges, v):
    """Where a cell's text goes: its centre (inner cells: the grid value; outer half cells: their middle)."""
    e = np.asarray(edges, dtype=float)
    if len(v) == 1:
        return np.asarray(v, dtype=float)
    if _logscale(v):
        return np.sqrt(e[1:] * e[:-1])
    return (e[1:] + e[:-1]) / 2


def _axis_scale(ax, which, values):
    """Log axis for positive values spanning more than a factor 15, labelled with plain numbers."""
    if not _logscale(values):
        return
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    v = np.asarray(values, dtype=float)
    ticks = v if v.size <= 8 else v[:: math.ceil(v.size / 8)]
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())
    getattr(ax, f"set_{which}ticks")(ticks)
    axis.set_major_formatter(ScalarFormatter())


def _logscale(v) -> bool:
    v = np.asarray(v, dtype=float)
    return bool(v.size > 2 and np.all(v > 0) and v.max() / v.min() > 15)


def _pooled_log10_rate(rows):
    """log10 of Σ escapes / Σ exposure over rows (replicates pooled); -inf with no escape, nan without data."""
    n = sum(r.get("n_escaped") or 0 for r in rows)
    expo = sum(r.get("exposure_steps") or 0.0 for r in rows)
    if expo <= 0:
        rates = [r.get("rate_per_step") for r in rows if r.get("rate_per_step") is not None]
        return math.log10(np.mean(rates)) if rates and np.mean(rates) > 0 else (-math.inf if rates else math.nan)
    return math.log10(n / expo) if n > 0 else -math.inf


def _groups(rows, names):
    """``{key: rows}`` grouped by the values of ``names`` (keys: canonical JSON), in numeric order."""
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(canonical_json(r.get(n)) for n in names), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(key):
    return tuple((0, _num(json.loads(k)), k) if np.isfinite(_num(json.loads(k))) else (1, 0.0, k) for k in key)


def _label(name: str) -> str:
    return {"leap.sigma": "LEAP σ", "landscape.curv_sharp": "sharp curvature h", "landscape.hessian": "curvature h",
            "landscape.curv_min": "curvature at the minimum", "dynamics.eta": "η",
            "dynamics.batch_size": "batch size B"}.get(name, name)


def _varying(rows, names):
    return [n for n in names if len({canonical_json(r.get(n)) for r in rows}) > 1]


def _plot_phase(spec, rows, p, cfgs, save):
    from matplotlib import colormaps

    x, y = p["x"], p["y"]
    others = [n for n in _varying(rows, spec.names) if n not in (x, y, REPLICATE)]
    panels = _groups(rows, others) if others else {(): rows}
    keys = list(panels)[:6]
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = _new_figure((6.4 * ncol, 4.8 * nrow), nrow, ncol)
    finite = [v for r in rows if (v := _pooled_log10_rate([r])) is not None and np.isfinite(v)]
    vmin, vmax = (min(finite), max(finite)) if finite else (-6, 0)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    theory = p.get("theory", "none")
    bounds = _as_list(p.get("boundaries", []))
    for ax, k in zip(axes.ravel(), keys):
        prow = panels[k]
        xs = sorted({_num(r[x]) for r in prow})
        ys = sorted({_num(r[y]) for r in prow})
        Z = np.full((len(ys), len(xs)), np.nan)
        for (xv, yv), cell in _groups(prow, [x, y]).items():
            xi = xs.index(_num(json.loads(xv)))
            yi = ys.index(_num(json.loads(yv)))
            Z[yi, xi] = _pooled_log10_rate(cell)
        none = np.isneginf(Z)
        Zp = np.where(np.isfinite(Z), Z, np.nan)
        xe, ye = _edges(xs), _edges(ys)
        xc, yc = _centres(xe, xs), _centres(ye, ys)
        ax.set_facecolor("0.85")
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(Zp), cmap=colormaps["viridis"], vmin=vmin, vmax=vmax,
                             shading="flat")
        if len(xs) * len(ys) <= 100:
            for yi, yv in enumerate(yc):
                for xi, xv in enumerate(xc):
                    txt = "none" if none[yi, xi] else (f"{Z[yi, xi]:.1f}" if np.isfinite(Z[yi, xi]) else "")
                    ax.text(xv, yv, txt, ha="center", va="center", fontsize=7,
                            color="black" if (not np.isfinite(Zp[yi, xi]) or Zp[yi, xi] > (vmin + vmax) / 2)
                            else "white")
        _axis_scale(ax, "x", xs)
        _axis_scale(ax, "y", ys)
        handles = []
        ref = prow[0]
        base_params = {n: ref[n] for n in spec.names if n in ref and ref[n] is not None}
        if theory != "none":
            gx = np.geomspace(xe[0], xe[-1], 60) if _logscale(xs) else np.linspace(xe[0], xe[-1], 60)
            gy = np.geomspace(ye[0], ye[-1], 60) if _logscale(ys) else np.linspace(ye[0], ye[-1], 60)
            gx = gx[gx >= 0] if x == "leap.sigma" else gx
            TZ = np.full((gy.size, gx.size), np.nan)
            c0 = cfgs(base_params)
            for j, yv in enumerate(gy):
                for i, xv in enumerate(gx):
                    c = _set_params(c0, {x: _like(ref[x], xv), y: _like(ref[y], yv)})
                    TZ[j, i] = theory_log10_rate(c, theory)
            if np.any(np.isfinite(TZ)):
                levels = np.arange(math.floor(vmin * 2) / 2, math.ceil(vmax * 2) / 2 + 0.01, 0.5)
                cs = ax.contour(gx, gy, TZ, levels=levels, colors="white", linewidths=1.2, linestyles="--")
                cs.set(path_effects=_contour_effects())
                ax.clabel(cs, fmt="%.1f", fontsize=7, colors="white")
                handles.append(_line(color="white", ls="--", lw=1.2, path_effects=_contour_effects(),
                                     label=f"theory ({theory}): log10 escape rate per step"))
        if bounds:
            sig_axis = x if x == "leap.sigma" else (y if y == "leap.sigma" else None)
            if sig_axis is not None:
                sv = np.linspace(min(xs if sig_axis == x else ys), max(xs if sig_axis == x else ys), 31)
                c0 = cfgs({**base_params})
                styles = {"mean-square": ("tab:red", "-"), "almost-sure": ("tab:orange", "-."), "gd": ("k", ":")}
                other = (ye[0], ye[-1]) if sig_axis == x else (xe[0], xe[-1])
                for b in bounds:
                    hv = np.array([_boundary(b, c0, float(sg)) for sg in sv])
                    col, ls = styles[b]
                    inside = np.isfinite(hv) & (hv >= other[0]) & (hv <= other[1])
                    if not inside.any():  # outside the plotted range: neither drawn nor in the legend
                        continue
                    if sig_axis == x:
                        ax.plot(sv, hv, color=col, ls=ls, lw=2, gid=f"boundary:{b}")
                    else:
                        ax.plot(hv, sv, color=col, ls=ls, lw=2, gid=f"boundary:{b}")
                    handles.append(_line(color=col, ls=ls, lw=2, label=f"{b} stability boundary"))
        ax.set_xlim(xe[0], xe[-1])  # the axes end at the data (first and last grid values)
        ax.set_ylim(ye[0], ye[-1])
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y))
        if others:
            ax.set_title(", ".join(f"{n} = {json.loads(v)}" for n, v in zip(others, k)), fontsize=9)
        fig.colorbar(mesh, ax=ax, label="log10 escape rate per step (grey: no escape)")
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.suptitle(p.get("title") or f"{spec.name}: escape-rate phase diagram", fontsize=10)
    return save(fig, p)


def _set_params(cfg: dict, params: dict) -> dict:
    """A resolved config with some values replaced, unvalidated (for theory curves between the grid points)."""
    out = dict(cfg)
    for name, v in params.items():
        section, key = name.split(".", 1)
        out[section] = {**out[section], key: v}
    return out


def _like(template, v):
    """``v`` in the shape of a parameter value (a 1-D Hessian is a one-element list)."""
    if isinstance(template, list):
        return [float(v)] if not isinstance(template[0], list) else [[float(v)]]
    return float(v)


def _arrhenius_x(cfg, xkind):
    from .. import theory as th

    D, P = cfg["dynamics"], cfg["leap"]
    if xkind == "B/eta":
        return D["batch_size"] / D["eta"]
    C = D["noise_std"] ** 2 if D["noise"] == "white" else math.nan
    return 1.0 / float(th.leap_diffusion(0.0, C, D["eta"], P["sigma"], mode=P["mode"], relative=P["relative"]))


def _plot_arrhenius(spec, rows, p, cfgs, save):
    from ..estimates import arrhenius_fit

    from matplotlib import colormaps

    xkind = p.get("x", "B/eta")
    theory = p.get("theory", "leap-xie" if xkind == "B/eta" else "kramers")
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names)
                                              if n not in ("dynamics.batch_size", "dynamics.eta",
                                                           "dynamics.noise_std", REPLICATE)]
    fig, axes = _new_figure((6.4, 4.6))
    ax = axes[0, 0]
    colors = [colormaps["tab10"](i) for i in range(10)]
    lines = []
    for c, (k, grp) in zip(colors, _groups(rows, by).items()):
        pts = []
        for r in grp:
            params = {n: r[n] for n in spec.names if n in r and r[n] is not None}
            cfg = cfgs(params)
            X = _arrhenius_x(cfg, xkind)
            if r.get("mean_time") is None or not np.isfinite(r["mean_time"]):
                continue
            weight = r.get("n_escaped")  # the fit's weight: SE(log τ) = 1/√n
            lo, hi = r.get("mean_time_ci_low"), r.get("mean_time_ci_high")
            if not weight and lo and hi and 0 < lo < hi < math.inf:  # AMS rows: n_eff = 1/SE(ln τ)² from the
                weight = (2 * 1.96 / math.log(hi / lo)) ** 2  # log-scale CI τ·exp(±t·SE/τ), t ≈ 1.96
            if not weight:
                continue
            th_log = theory_log10_rate(cfg, theory)
            # log τ in continuous time: τ = η / rate_per_step
            th_tau = math.log(cfg["dynamics"]["eta"]) - th_log * math.log(10) if np.isfinite(th_log) else math.nan
            pts.append((X, r["mean_time"], r.get("mean_time_ci_low"), r.get("mean_time_ci_high"), weight, th_tau))
        if not pts:
            continue
        pts.sort()
        X, T, lo, hi, n, th_tau = (np.array(v, dtype=float) for v in zip(*pts))
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        yerr = np.vstack([np.log(T) - np.log(np.where(np.isfinite(lo), lo, T)),
                          np.log(np.where(np.isfinite(hi), hi, T)) - np.log(T)])
        ax.errorbar(X, np.log(T), yerr=yerr, fmt="o", color=c, ms=4, capsize=2, label=lab)
        line = f"{lab}:"
        if len(X) >= 2:
            fit = arrhenius_fit(X, T, n)
            xx = np.linspace(X.min(), X.max(), 50)
            ax.plot(xx, fit.intercept + fit.slope * xx, "-", color=c, lw=1.2,
                    label=f"  fit: slope {fit.slope:.3f} [{fit.slope_ci[0]:.3f}, {fit.slope_ci[1]:.3f}]")
            line += f" fitted slope {fit.slope:.4f} (95% CI {fit.slope_ci[0]:.4f}..{fit.slope_ci[1]:.4f})"
        ok = np.isfinite(th_tau)
        if ok.sum() >= 2:
            slope_th = float(np.polyfit(X[ok], th_tau[ok], 1)[0])
            w = n / n.sum()
            xc, yc = float(np.sum(w * X)), float(np.sum(w * np.log(T)))
            xx = np.linspace(X.min(), X.max(), 50)
            ax.plot(xx, yc + slope_th * (xx - xc), ":", color=c, lw=1.5,
                    label=f"  theory slope {slope_th:.3f} ({theory}, through the data)")
            ax.plot(X[ok], th_tau[ok], "--", color=c, lw=0.8, alpha=0.6,
                    label=f"  theory incl. prefactor ({theory})")
            line += f", theory slope {slope_th:.4f}"
        lines.append(line)
    ax.set_xlabel({"B/eta": "B / η", "1/D": "1 / D"}[xkind])
    ax.set_ylabel("ln τ  (natural log of the mean escape time, continuous time t = kη)", fontsize=9)
    ax.set_title(p.get("title") or f"{spec.name}: Arrhenius plot (dashed: theory incl. prefactor)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return save(fig, p, text="\n".join(lines))


def _plot_preference(spec, rows, p, cfgs, save):
    from .. import theory as th

    from matplotlib import colormaps

    x = p.get("x", "leap.sigma")
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names) if n not in (x, REPLICATE)]
    fig, axes = _new_figure((6.4, 4.4))
    ax = axes[0, 0]
    colors = colormaps["viridis"](np.linspace(0, 0.9, max(1, len(_groups(rows, by)))))
    xs_all = []
    drew_theory = False
    for c, (k, grp) in zip(colors, _groups(rows, by).items()):
        pts = sorted(_preference_point(r, x) for r in grp if _preference_point(r, x) is not None)
        if not pts:
            continue
        X, F, lo, hi = np.array(pts).T
        xs_all += list(X)
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        ax.errorbar(X, F, yerr=[F - lo, hi - F], fmt="o-", color=c, ms=4, capsize=2, label=lab, clip_on=False)
        ref = grp[0]
        params = {n: ref[n] for n in spec.names if n in ref and ref[n] is not None}
        xx = np.linspace(X.min(), X.max(), 60)
        pf = []
        c0 = cfgs(params)
        for xv in xx:
            cfg = _set_params(c0, {x: float(xv)})
            L, D, P = cfg["landscape"], cfg["dynamics"], cfg["leap"]
            if L["kind"] != "sharp-flat" or D["noise"] != "sgd-hessian":
                pf.append(math.nan)
                continue
            lt = []
            for side in ("flat", "sharp"):
                ha, hb = L[f"curv_{side}"], L["curv_saddle"]
                lt.append(th.leap_xie_escape_time(L[f"barrier_{side}"], ha, -hb, batch_size=D["batch_size"],
                                                  eta=D["eta"], sigma=P["sigma"], s=hb / (ha + hb), mode=P["mode"],
                                                  relative=P["relative"], log=True))
            pf.append(1.0 / (1.0 + math.exp(lt[1] - lt[0])))  # τ_flat / (τ_flat + τ_sharp)
        if np.any(np.isfinite(pf)):
            ax.plot(xx, pf, "--", color=c, lw=1)
            drew_theory = True
    ax.set_ylim(0, 1.02)
    _data_xlim(ax, xs_all)
    ax.set_xlabel(_label(x))
    ax.set_ylabel("long-run flat share τ_flat/(τ_flat+τ_sharp)")
    ttl = p.get("title") or f"{spec.name}: flat-vs-sharp preference"
    ttl += "\npoints: escapes both ways, 95% CI (unsettled points left out)"
    if drew_theory:
        ttl += "\ndashed: τ_flat/(τ_flat+τ_sharp) of Xie et al. + LEAP"
    ax.set_title(ttl, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return save(fig, p)


def _preference_point(r, x):
    """(x, flat share, CI low, CI high) of one row: the long-run share from the escapes both ways, or else a
    settled occupation run's flat fraction (no CI); None for a point with neither (not settled)."""
    if r.get("flat_share") is not None:
        return _num(r[x]), r["flat_share"], r["flat_share_ci_low"], r["flat_share_ci_high"]
    if r.get("flat_fraction") is not None:
        return _num(r[x]), r["flat_fraction"], r["flat_fraction"], r["flat_fraction"]
    return None


def _data_xlim(ax, xs):
    """x-limits at the data with a 3% pad that never crosses zero for non-negative data (σ ≥ 0)."""
    xs = np.asarray([v for v in xs if np.isfinite(v)], dtype=float)
    if xs.size == 0:
        return
    lo, hi = float(xs.min()), float(xs.max())
    if ax.get_xscale() == "log":
        ax.set_xlim(lo / 1.08, hi * 1.08)
        return
    pad = 0.03 * (hi - lo) if hi > lo else max(abs(lo) * 0.1, 0.5)
    left = lo - pad
    if lo >= 0 > left:
        left = lo
    ax.set_xlim(left, hi + pad)


def _plot_line(spec, rows, p, cfgs, save):
    """Escape rate per step (95% CI) against one parameter, one line per value of the others; points with no
    escape are drawn as their 95% upper bound (open downward triangle), never dropped."""
    x = p.get("x") or (_varying(rows, spec.names) or spec.names)[0]
    by = _as_list(p["by"]) if "by" in p else [n for n in _varying(rows, spec.names) if n not in (x, REPLICATE)]
    theory = p.get("theory", "none")
    fig, axes = _new_figure((6.4, 4.4))
    ax = axes[0, 0]
    xs_all = []
    any_zero = False
    for k, grp in _groups(rows, by).items():
        pts = sorted(((_num(r[x]), r["rate_per_step"], r.get("rate_ci_low"), r.get("rate_ci_high"), i)
                      for i, r in enumerate(grp) if r.get("rate_per_step") is not None), key=lambda q: q[:2])
        if not pts:
            continue
        X = np.array([q[0] for q in pts])
        R = np.array([q[1] for q in pts], dtype=float)
        lo = np.array([q[2] if q[2] is not None else q[1] for q in pts], dtype=float)
        hi = np.array([q[3] if q[3] is not None else q[1] for q in pts], dtype=float)
        xs_all += list(X)
        lab = ", ".join(f"{_label(nm)} = {json.loads(v)}" for nm, v in zip(by, k)) or "data"
        pos = R > 0
        eb = ax.errorbar(X[pos], R[pos], yerr=[R[pos] - lo[pos], hi[pos] - R[pos]], fmt="o-", ms=4, capsize=2,
                         label=lab, clip_on=False)
        col = eb[0].get_color()
        zero = ~pos & np.isfinite(hi) & (hi > 0)
        if zero.any():
            any_zero = True
            ax.plot(X[zero], hi[zero], "v", ms=6, mfc="none", color=col, clip_on=False)
        if theory != "none":
            params = [{n: grp[q[4]][n] for n in spec.names if n in grp[q[4]] and grp[q[4]][n] is not None}
                      for q in pts]
            T = [10 ** theory_log10_rate(cfgs(pp), theory) for pp in params]
            ax.plot(X, T, "--", color=col, lw=1)
    ax.set_yscale("log")
    if _logscale(sorted({_num(r[x]) for r in rows})):
        ax.set_xscale("log")
    _data_xlim(ax, xs_all)
    handles, labels = ax.get_legend_handles_labels()
    if any_zero:
        handles.append(_line(marker="v", ls="none", mfc="none", color="0.3", label="no escape: 95% upper bound"))
    if theory != "none":
        handles.append(_line(ls="--", color="0.3", label=f"theory ({theory})"))
    ax.set_xlabel(_label(x))
    ax.set_ylabel("escape rate per step (95% CI, log scale)")
    ax.set_title(p.get("title") or f"{spec.name}: escape rate", fontsize=10)
    if handles:
        ax.legend(handles=handles, fontsize=7)
    return save(fig, p)


_PLOTTERS = {"phase": _plot_phase, "arrhenius": _plot_arrhenius, "preference": _plot_preference,
             "line": _plot_line}


def auto_plots(spec: SweepSpec, rows) -> list:
    """Plot hints chosen from the swept parameters when the sweep file has no ``[[plot]]``."""
    vary = [n for n in _varying(rows, spec.names) if n != REPLICATE
            and all(np.isfinite(_num(r.get(n))) for r in rows)]
    out = []
    if len(vary) >= 2:
        out.append({"kind": "phase", "x": vary[0], "y": vary[1]})
    elif vary:
        out.append({"kind": "line", "x": vary[0]})
    if "leap.sigma" in vary and any(_preference_point(r, "leap.sigma") is not None for r in rows):
        out.append({"kind": "preference", "x": "leap.sigma"})
    return out


def plot_sweep(sweep_dir, *, out_dir=None, formats=("png", "pdf", "svg")) -> list:
    """Draw the sweep's figures (its ``[[plot]]`` hints, or :func:`auto_plots`) into ``out_dir`` (default
    ``DIR/figures``), each in every one of ``formats``; returns the written paths (per figure its files in the
    order of ``formats``, then a .txt with the fitted slopes for Arrhenius plots)."""
    from ..plots import check_formats, save_figure

    formats = check_formats(formats)

    spec, plan, rows = load_results(sweep_dir)
    if not rows:
        raise SweepError(f"{sweep_dir}: no finished points to plot")
    out = Path(out_dir) if out_dir else Path(sweep_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    cfgs = _Configs(spec)
    written = []
    hints = list(spec.plots) or auto_plots(spec, rows)
    used = set()

    def save(fig, p, text=None):
        name = p.get("name") or "_".join([p["kind"]] + [p[k].replace(".", "-").replace("/", "-over-")
                                                        for k in ("x", "y") if isinstance(p.get(k), str)])
        while name in used:
            name += "_"
        used.add(name)
        paths = save_figure(fig, out / name, formats=formats, dpi=130)
        written.extend(paths)
        path = paths[0]
        if text:
            atomic_write_text(out / f"{name}.txt", text + "\n")
            written.append(out / f"{name}.txt")
        return path

    for p in hints:
        _PLOTTERS[p["kind"]](spec, rows, p, cfgs, save)
    return written
