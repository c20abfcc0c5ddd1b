"""The plain-text tables of ``leap-sde simulate`` (at most 80 columns) and its CSV rows."""
from __future__ import annotations

import numpy as np

from . import dynamics as dyn
from .experiment import ExperimentOutput, _occupation_summary, build, escape_summary, preference_summary

__all__ = ["format_table", "result_rows", "WIDTH"]


def _g(x) -> str:
    """A number in at most 7 characters with 4 significant digits: ``14403``, ``262.3``, ``0.5012``,
    ``1.235e6``, ``6.946e-5``; ``inf``, ``n/a`` for None."""
    if x is None:
        return "n/a"
    x = float(x)
    if not np.isfinite(x):
        return "inf" if x > 0 else "-inf" if x < 0 else "nan"
    a = abs(x)
    if a == 0:
        return "0"
    if 1e-3 <= a < 1e5:
        digits = max(0, 3 - int(np.floor(np.log10(a))))
        return f"{x:.{digits}f}"
    m, e = f"{x:.3e}".split("e")
    return f"{m}e{int(e)}"


def _ci(v, lo, hi, fmt=None):
    if v is None:
        return "n/a"
    if fmt is not None:
        return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"
    return f"{_g(v)} [{_g(lo)}, {_g(hi)}]"


#: the simulate tables' width (terminal columns)
WIDTH = 80


def _wrap(text, indent="") -> list:
    import textwrap

    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False)


def _escape_rows(runs, pick):
    head = (f"{'sigma':>6} {'mean steps [95% CI]':>26} {'rate/step':>9} {'escaped':>7} {'cens':>6} {'div':>6} "
            f"{'unst':>6} {'KS p':>5}")
    lines = [head, "-" * len(head)]
    for r in runs:
        res = pick(r)
        if res is None:
            continue
        e = escape_summary(res)
        if e.get("method") == "ams":
            e = dict(e, n_escaped="ams", n_censored="-", n_diverged="-", n_unstable="-")
        mci = _ci(e["mean_steps"], *(e["mean_steps_ci"] or (0, 0)))
        rate = _g(e["rate_per_step"])
        ks = f"{e['ks_pvalue']:.3f}" if e["ks_pvalue"] is not None else ("n/a" if not e["exponential_law"] else "-")
        lines.append(f"{r.sigma:>6.4g} {mci:>26} {rate:>9} {e['n_escaped']!s:>7} {e['n_censored']!s:>6} "
                     f"{e['n_diverged']!s:>6} {e['n_unstable']!s:>6} {ks:>5}")
    return lines


_LEGEND = ("rate/step: censored exponential MLE (its CI is the inverse of the mean's); cens: still inside at "
           "run.max_steps; div: diverged; unst: escapes while GD's step was linearly unstable; KS p: test of the "
           "exponential exit law")


def format_table(out: ExperimentOutput) -> str:
    """Plain-text tables, at most 80 columns (long notes wrap onto indented lines): the escape (one row per
    σ); with ``run.preference`` the escape back and the long-run preference; with an occupation run its two
    halves and whether it settled."""
    exp = build(out.config)
    a, b = exp.names
    r0 = out.config["run"]
    both = exp.reverse_exit is not None
    lines = _wrap(f"Escape{f' from the {a} minimum' if both else ''} (x0 = {_pt(exp.x0)}, exit "
                  f"{_exit_text(exp.exit)}; {r0['particles']} particles, at most {r0['max_steps']} steps):")
    lines += _escape_rows(out.runs, lambda r: r.escape)
    if both and any(r.reverse is not None for r in out.runs):
        lines += [""] + _wrap(f"Escape back from the {b} minimum (x0 = {_pt(exp.reverse_x0)}, exit "
                              f"{_exit_text(exp.reverse_exit)}):")
        lines += _escape_rows(out.runs, lambda r: r.reverse)
        lines += [""] + _wrap(f"Long-run preference: share of time whose last-visited minimum is the {b} one, "
                              f"tau_{b}/(tau_{a} + tau_{b}) (tau: mean escape steps):")
        head = f"{'sigma':>6} {f'tau_{b}/tau_{a} [95% CI]':>28} {f'{b} share [95% CI]':>22}"
        lines += [head, "-" * len(head)]
        for r in out.runs:
            if r.reverse is None:
                continue
            p = preference_summary(exp, r.escape, r.reverse)
            if p["settled"]:
                ratio = _ci(p["tau_ratio"], *p["tau_ratio_ci"])
                share = _ci(p[f"{b}_share"], *p[f"{b}_share_ci"], ".3f")
                lines.append(f"{r.sigma:>6.4g} {ratio:>28} {share:>22}")
            else:
                lines.append(f"{r.sigma:>6.4g} {'not settled':>28} {'not settled':>22}")
                lines += _wrap(p["note"], "       ")
    occ = [(r, _occupation_summary(exp, r)) for r in out.runs]
    occ = [(r, o) for r, o in occ if o is not None]
    if occ:
        nb = len(occ[0][1]["first_half_fractions"])
        lines += [""] + _wrap(f"Occupation without exit ({occ[0][1]['steps']} steps from x0; fraction of time in "
                              f"each basin along coordinate 0, split at {occ[0][1]['basin_edges']}; first half = "
                              "burn-in, the second half gives the long-run value if its two quarters agree):")
        w = max(8 * nb, 11)
        head = f"{'sigma':>6} {'1st half':>{w}} {'2nd half':>{w}} {'long-run':>{w}}"
        lines += [head, "-" * len(head)]
        for r, o in occ:
            f = lambda v: "[" + ", ".join(f"{x:.3f}" for x in v) + "]"  # noqa: E731
            lr = f(o["basin_fractions"]) if o["settled"] else "not settled"
            lines.append(f"{r.sigma:>6.4g} {f(o['first_half_fractions']):>{w}} "
                         f"{f(o['second_half_fractions']):>{w}} {lr:>{w}}")
            if o["note"]:
                lines += _wrap(o["note"], "       ")
    lines += [""] + _wrap(_LEGEND)
    return "\n".join(lines)


def result_rows(out: ExperimentOutput) -> list:
    """One flat dict per σ and direction (``run`` = "escape" or "escape back"): the escape summary's numbers
    (CIs as ``_low``/``_high`` columns) and, on the "escape" row, the long-run share of the target minimum
    with its CI where ``run.preference`` was run and settled.  What ``leap-sde simulate --format csv`` prints."""
    exp = build(out.config)
    rows = []
    for r in out.runs:
        for label, res in (("escape", r.escape), ("escape back", r.reverse)):
            if res is None:
                continue
            e = escape_summary(res)
            row = {"sigma": r.sigma, "run": label, "method": e.get("method", "brute-force")}
            for k in ("mean_steps", "rate_per_step", "mean_time", "rate_per_time"):
                ci = e.get(k + "_ci") if k != "rate_per_step" else e.get("rate_ci")
                row[k] = e.get(k)
                row[k + "_ci_low"], row[k + "_ci_high"] = ci if ci else (None, None)
            for k in ("n_particles", "n_escaped", "n_censored", "n_diverged", "n_unstable", "ks_pvalue"):
                row[k] = e.get(k)
            row["target_share"] = row["target_share_ci_low"] = row["target_share_ci_high"] = None
            if label == "escape" and r.reverse is not None:
                p = preference_summary(exp, r.escape, r.reverse)
                if p["settled"]:
                    b = exp.names[1]
                    row["target_share"] = p[f"{b}_share"]
                    row["target_share_ci_low"], row["target_share_ci_high"] = p[f"{b}_share_ci"]
            rows.append(row)
    return rows


def _exit_text(e):
    if isinstance(e, dyn.Threshold):
        return f"x[{e.coord}] {'>=' if e.direction > 0 else '<='} {e.value:.4g}"
    if isinstance(e, dyn.LeaveBall):
        return f"|x - {_pt(e.center)}| >= {e.radius:g}"
    if isinstance(e, dyn.ReachBall):
        return f"|x - {_pt(e.center)}| < {e.radius:g}"
    return "none"


def _pt(x):
    x = np.asarray(x).ravel()
    return f"{x[0]:.4g}" if x.size == 1 else "[" + ", ".join(f"{v:.4g}" for v in x) + "]"
