"""``leap-sde validate [--quick | --full] [--only NAME ...] [--seed N] [--out DIR] [--threads N]``.

Runs the validation cases, writes ``<out>/report.md`` with the summary table, the details of every check
and the figures beside it, prints the table and returns a non-zero exit code if any check FAILS
(REFUTED and OUTSIDE are results, not failures).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import logging
import platform
import sys
import time
import traceback
from pathlib import Path

from ._core import Case, Config, Verdict, clear_cache, make_case

__all__ = ["main", "run_suite", "all_cases", "write_report", "summary_line", "terminal_table", "check_records"]

_log = logging.getLogger(__name__)


def all_cases():
    """The registered cases, in order."""
    from . import ams, convergence, eyring, indicator, langevin, leap_escape, minibatch, optimizers, quadratic, sgd_noise

    cases = []
    for mod in (langevin, eyring, quadratic, sgd_noise, leap_escape, convergence, minibatch, indicator, optimizers, ams):
        cases.extend(mod.CASES)
    return sorted(cases, key=lambda c: c.number)


def _seed_arg(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _select(names):
    cases = all_cases()
    if not names:
        return cases
    chosen = []
    for n in names:
        hit = [c for c in cases if n == str(c.number) or n == c.name]
        if not hit:
            valid = ", ".join(f"{c.number}/{c.name}" for c in cases)
            raise SystemExit(f"--only: unknown case {n!r}; valid: {valid}")
        chosen.extend(h for h in hit if h not in chosen)
    return sorted(chosen, key=lambda c: c.number)


def _table(rows):
    head = ["case", "check", "theory", "simulation ± SE", "model tol", "verdict"]
    body = [r.row() for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


#: terminal output: verdict groups in this order (what needs attention first)
_GROUP_ORDER = ("FAIL", "REFUTED", "INCONCLUSIVE", "OUTSIDE", "PASS")
WIDTH = 80


def summary_line(rows) -> str:
    """``N checks: PASS a, FAIL b, ...`` (every verdict, in the report's order)."""
    return f"{len(rows)} checks: " + ", ".join(f"{v.value} {sum(r.verdict == v for r in rows)}" for v in Verdict)


def terminal_table(rows, width: int = WIDTH) -> str:
    """The checks for a ``width``-column terminal, grouped by verdict (FAIL, REFUTED, INCONCLUSIVE, OUTSIDE,
    PASS), within a group by case; a check's label takes the columns the numbers leave and wraps onto
    indented lines."""
    import textwrap

    cells = [r.row() for r in rows]
    w_th = max([len("theory")] + [len(c[2]) for c in cells])
    w_est = max([len("simulation ± SE")] + [len(c[3]) for c in cells])
    w_tol = max([len("tol")] + [len(c[4]) for c in cells])
    w_name = max(20, width - 2 - w_th - w_est - w_tol - 3)
    head = f"  {'check':<{w_name}} {'theory':>{w_th}} {'simulation ± SE':>{w_est}} {'tol':>{w_tol}}"
    out = []
    for v in _GROUP_ORDER:
        rs = [(r, c) for r, c in zip(rows, cells) if r.verdict.value == v]
        if not rs:
            continue
        if out:
            out.append("")
        out += [f"{v}: {len(rs)} check{'s' if len(rs) != 1 else ''}", head]
        case = None
        for r, c in rs:
            if r.case != case:
                case = r.case
                out.append(f"case {case}")
            name = textwrap.wrap(c[1], w_name, break_on_hyphens=False) or [""]
            out.append(f"  {name[0]:<{w_name}} {c[2]:>{w_th}} {c[3]:>{w_est}} {c[4]:>{w_tol}}")
            if name[1:]:
                out += [f"    {line}" for line in textwrap.wrap(" ".join(name[1:]), w_name - 2)]
    return "\n".join(out)


def check_records(rows) -> list:
    """One flat dict per check (numbers as numbers): what ``--format csv|json`` prints."""
    recs = []
    for r in rows:
        lo, hi = r.ci if r.ci else (None, None)
        recs.append({"case": r.case, "check": r.name, "verdict": r.verdict.value, "kind": r.kind, "sided": r.sided,
                     "theory": _num(r.theory), "estimate": _num(r.estimate), "se": _num(r.se),
                     "ci_low": _num(lo), "ci_high": _num(hi), "model_tol": _num(r.model_tol),
                     "source": r.source})
    return recs


def _num(x):
    """A finite float, or None (NaN/inf and missing values: JSON has no NaN)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def write_report(cfg: Config, rows, timings, wall, argv) -> Path:
    """Write ``report.md`` and return its path."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {v: sum(r.verdict == v for r in rows) for v in Verdict}
    import leap_sde

    lines = [
        "# leap_sde validation report",
        "",
        f"- mode: {'quick' if cfg.quick else 'full'}; command: `leap-sde validate {' '.join(argv)}`",
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}; leap_sde {leap_sde.__version__}; "
        f"python {platform.python_version()}; {platform.machine()}",
        f"- wall time: {wall:.0f} s; threads: {cfg.threads or 'all'}",
        "- seed: " + ("each case's own fixed seed (no --seed)" if cfg.seed is None else
                      f"{cfg.seed} (--seed: every case reseeded, case seed s → SeedSequence([{cfg.seed}, s]))"),
        "- verdicts: " + ", ".join(f"{v.value} {counts[v]}" for v in Verdict),
        "",
        "Verdict rule: agree ⟺ |simulation − theory| ≤ model tol + 3 SE (one-sided where marked). "
        "exact → PASS/FAIL, asymptotic → PASS/OUTSIDE (formula outside its regime), claim → PASS/REFUTED, "
        "context → OUTSIDE; significance claims (\"c > 0\") are INCONCLUSIVE when neither confirmed nor "
        "contradicted at 3 SE. Model tolerances are computed numerical/discretisation errors or, for asymptotic "
        "laws, a nominal 10% fixed in advance; none is tuned to the simulation.",
        "",
        "## Summary",
        "",
        _table(rows),
        "",
        "## Details",
        "",
    ]
    by_case = {}
    for r in rows:
        by_case.setdefault(r.case, []).append(r)
    for cid, rs in by_case.items():
        lines.append(f"### Case {cid} ({timings.get(cid, float('nan')):.0f} s)")
        lines.append("")
        figs = []
        for r in rs:
            if r.figure and r.figure not in figs:
                figs.append(r.figure)
        for f in figs:
            lines.append(f"![{cid}]({f})")
            lines.append("")
        for r in rs:
            side = {"upper": " (one-sided: simulation ≤ theory)", "lower": " (one-sided: simulation ≥ theory)",
                    "greater": " (significance: simulation > theory + tol + 3 SE)",
                    "less": " (significance: simulation < theory − tol − 3 SE)"}
            lines.append(f"- **{r.name}** — {r.verdict.value} ({r.kind}{side.get(r.sided, '')})")
            lines.append(f"  - claim: {r.claim}")
            lines.append(f"  - source: {r.source}")
            lines.append(f"  - theory {r.theory:.6g}; simulation {r.estimate:.6g} ± {r.se:.3g} "
                         f"(95% CI {r.ci[0]:.6g} – {r.ci[1]:.6g}); model tol {r.model_tol:.3g} ({r.tol_note})")
            if r.params:
                lines.append("  - parameters: " + ", ".join(f"{k}={v}" for k, v in r.params.items()))
            if r.note:
                lines.append(f"  - note: {r.note}")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_suite(argv=None) -> int:
    """Parse ``argv``, run the selected cases, write the report, print the table; exit code 1 on FAIL."""
    p = argparse.ArgumentParser(
        prog="leap-sde validate",
        description="Run the numerical validation suite: write report.md and the figures to --out, print the "
                    "summary table, exit 1 if any check FAILS (REFUTED/OUTSIDE/INCONCLUSIVE are results).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="fewer particles; every case in CI time (default)")
    g.add_argument("--full", action="store_true", help="tight confidence intervals (tens of minutes)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None, help="case numbers or names")
    p.add_argument("--out", default=None, help="output directory (default: validation/reports/<mode>)")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--seed", type=_seed_arg, default=None, metavar="N",
                   help="reseed every case with fresh randomness derived from N >= 0 (default: the cases' own "
                        "fixed seeds, as in the committed reports); the report records it")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default: summary line, then the checks grouped by verdict, 80 columns), csv or "
                        "json (one record per check); csv/json print only the data on stdout")
    argv = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(argv)
    if a.list:
        for c in all_cases():
            print(f"{c.number:>2}  {c.name:<16} {c.title}")
        return 0
    quick = not a.full
    out = Path(a.out) if a.out else Path("validation") / "reports" / ("quick" if quick else "full")
    cfg = Config(quick=quick, out=out, threads=a.threads, seed=a.seed)
    chosen = _select(a.only)
    rows, timings = [], {}
    t_all = time.perf_counter()
    clear_cache()
    for c in chosen:
        cid = f"{c.number} {c.name}"
        t0 = time.perf_counter()
        _log.info("case %s ...", cid)
        try:
            got = c.run(cfg)
        except Exception as exc:  # a crash is a FAIL of that case, reported with its traceback
            tb = traceback.format_exc(limit=6)
            got = [make_case(cid, "case crashed", claim=c.title, source="–", kind="exact", theory=0.0,
                             estimate=float("nan"), se=float("nan"), model_tol=0.0, tol_note="–",
                             note=f"{type(exc).__name__}: {exc}\n```\n{tb}```")]
        timings[cid] = time.perf_counter() - t0
        _log.info("case %s: %d checks in %.1f s", cid, len(got), timings[cid])
        rows.extend(got)
    wall = time.perf_counter() - t_all
    path = write_report(cfg, rows, timings, wall, argv)
    n_fail = sum(r.verdict == Verdict.FAIL for r in rows)
    seed = "" if cfg.seed is None else f"; seed {cfg.seed}"
    tail = [f"wall {wall:.0f} s{seed}", f"report: {path}"]
    if a.format == "table":
        print(summary_line(rows))
        print("; ".join(tail))
        print()
        print(terminal_table(rows))
        print()
        print(summary_line(rows))
    else:
        _log.info("%s; %s", summary_line(rows), "; ".join(tail))
        recs = check_records(rows)
        if a.format == "json":
            import json

            print(json.dumps({"summary": {v.value: sum(r.verdict == v for r in rows) for v in Verdict},
                              "checks": recs}, indent=1, ensure_ascii=False))
        else:
            import csv

            w = csv.DictWriter(sys.stdout, fieldnames=list(recs[0]) if recs else [], lineterminator="\n")
            w.writeheader()
            w.writerows(recs)
    return 1 if n_fail else 0


def main(argv=None) -> int:
    """Console entry point (``leap-sde validate ...``): the log lines and warnings on stderr, one line each."""
    from ..cli import cli_output

    with cli_output():
        return run_suite(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
