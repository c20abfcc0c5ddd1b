"""The writer loop: runs a sweep's unfinished points and stores each result, and the results table."""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write_text
from .._progress import bars_shown
from ..config import ConfigError
from .check import check_store
from .executors import WorkerLost, _LocalRunner, make_runner
from .spec import Plan, SweepConflict, SweepError, SweepSpec, config_hash, point_config
from .store import Store, StoreBusy, canonical_json

__all__ = ["headline", "SweepSummary", "write_table", "read_table", "run_sweep"]

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a point whose worker died is resubmitted at most this often in total

TABLE_EVERY_S = 60.0


def _flat_share(pref) -> tuple:
    """(share, CI low, CI high) of the flat minimum from a settled ``preference`` block, else Nones."""
    if not pref or not pref.get("settled"):
        return None, None, None
    if pref.get("target") == "flat":
        ci = pref["flat_share_ci"]
        return pref["flat_share"], ci[0], ci[1]
    if pref.get("start") == "flat":
        s, ci = pref[f"{pref['target']}_share"], pref[f"{pref['target']}_share_ci"]
        return 1.0 - s, 1.0 - ci[1], 1.0 - ci[0]
    return None, None, None


def headline(result: dict) -> dict:
    """The results-table numbers of one point's result.json.  ``flat_share`` (with its CI) is the long-run
    preference τ_flat/(τ_flat + τ_sharp) from the escapes both ways (``run.preference``); ``flat_fraction``
    the occupation run's second-half fraction, present only once that run has settled."""
    e = result.get("escape") or {}
    occ = result.get("occupation") or {}
    share, share_lo, share_hi = _flat_share(result.get("preference"))

    def f(x):
        return None if x is None else float(x)

    ci = e.get("rate_ci") or [None, None]
    mci = e.get("mean_steps_ci") or [None, None]
    tci = e.get("mean_time_ci") or [None, None]
    return {
        "rate_per_step": f(e.get("rate_per_step")), "rate_ci_low": f(ci[0]), "rate_ci_high": f(ci[1]),
        "mean_steps": f(e.get("mean_steps")), "mean_steps_ci_low": f(mci[0]), "mean_steps_ci_high": f(mci[1]),
        "rate_per_time": f(e.get("rate_per_time")), "mean_time": f(e.get("mean_time")),
        "mean_time_ci_low": f(tci[0]), "mean_time_ci_high": f(tci[1]),
        "n_particles": e.get("n_particles"), "n_escaped": e.get("n_escaped"), "n_censored": e.get("n_censored"),
        "n_diverged": e.get("n_diverged"), "exposure_steps": f(e.get("exposure_steps")),
        "ks_pvalue": f(e.get("ks_pvalue")),
        "flat_share": f(share), "flat_share_ci_low": f(share_lo), "flat_share_ci_high": f(share_hi),
        "flat_fraction": f(occ.get("flat_fraction")),
        "basin_fractions": occ.get("basin_fractions"),
        "seed": result.get("seed"), "wall_time_s": f(result.get("wall_time_s")), "version": result.get("version"),
    }


ROW_FIELDS = tuple(headline({}).keys())


@dataclass
class SweepSummary:
    out_dir: Path
    name: str
    total: int = 0
    skipped: int = 0  # finished before this run
    computed: int = 0
    failed: list = field(default_factory=list)  # (params, error)
    corrupt: int = 0
    forced: int = 0
    adopted: int = 0
    rebuilt: int = 0  # finished points whose lost results-table row was rebuilt from their done.json
    resubmitted: int = 0
    orphans: int = 0
    check_s: float = 0.0
    startup_s: float = 0.0  # starting the pool / connecting to or starting the Dask cluster
    wall_s: float = 0.0
    executor: str = ""
    n_workers: int = 0
    interrupted: bool = False
    warnings: dict = field(default_factory=dict)  # message -> count

    @property
    def complete(self) -> bool:
        return not self.failed and not self.interrupted and self.skipped + self.computed == self.total

    def text(self) -> str:
        lines = [f"sweep {self.name}: {self.total} points: {self.computed} computed now, {self.skipped} already "
                 f"finished, {len(self.failed)} failed"
                 + (f", {self.corrupt} corrupt recomputed" if self.corrupt else "")
                 + (f", {self.forced} recomputed with --force" if self.forced else "")
                 + (f", {self.adopted} recovered after a crash (intact folder, index line torn or missing)"
                    if self.adopted else "")
                 + (f", {self.rebuilt} table row{'s' if self.rebuilt != 1 else ''} rebuilt from "
                    f"{'their point folders' if self.rebuilt != 1 else 'its point folder'}" if self.rebuilt else "")
                 + (f", {self.resubmitted} resubmitted after a worker died" if self.resubmitted else "")
                 + f"; {self.wall_s:.1f} s on {self.n_workers} {self.executor} worker(s)"
                 + f" (resume check {self.check_s * 1e3:.0f} ms)"]
        if self.orphans:
            lines.append(f"  {self.orphans} finished point(s) in {self.out_dir} are not in this sweep (kept, not in "
                         f"the table)")
        for params, err in self.failed[:10]:
            lines.append(f"  FAILED {params}: {err}")
        for msg, n in sorted(self.warnings.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"  warning in {n} point(s): {msg}")
        if self.interrupted:
            lines.append("  interrupted: finished points are saved; rerun the same command to resume")
        lines.append(f"  results: {self.out_dir / 'results.csv'}; plot with: leap-sde plot {self.out_dir}")
        return "\n".join(lines)


def write_table(store: Store, plan: Plan, entries=None) -> Path:
    """Rebuild ``results.csv`` (one row per finished planned point, plan order) atomically from the store.

    Every cell holds one number or string: a list value (a vector parameter such as ``init.x0``, the
    ``basin_fractions``) becomes one column per element, ``name[i]`` (nested lists ``name[i][j]``); an empty
    cell is a missing value.  :func:`read_table` puts such columns back together into lists."""
    import csv
    import io

    entries = store.load_index() if entries is None else entries
    rows = store.load_rows(entries)
    recs = [(key, rows[key]) for key in plan.keys if key in rows]
    groups = [("params", n) for n in plan.names] + [("row", f) for f in ROW_FIELDS]
    cols = {g: flat_columns(g[1], [rec.get(g[0], {}).get(g[1]) for _, rec in recs]) for g in groups}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *(c for g in groups for c in cols[g]), "path"])
    for key, rec in recs:
        cells = []
        for g in groups:
            flat = flatten_value(g[1], rec.get(g[0], {}).get(g[1]))
            cells.extend(_cell(flat.get(c)) for c in cols[g])
        w.writerow([key, *cells, f"points/{key}"])
    path = store.root / "results.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def flatten_value(name: str, v) -> dict:
    """``{column: scalar}`` of one value: a scalar (or None) is ``{name: v}``; a list gives ``name[i]`` per
    element (recursively: ``name[i][j]``), a dict ``name.key``."""
    if isinstance(v, (list, tuple)):
        out = {}
        for i, x in enumerate(v):
            out.update(flatten_value(f"{name}[{i}]", x))
        return out
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            out.update(flatten_value(f"{name}.{k}", x))
        return out
    return {name: v}


_INDEX = re.compile(r"\[(\d+)\]")


def flat_columns(name: str, values) -> list:
    """The columns of :func:`flatten_value` over ``values`` (their union; list elements in index order)."""
    seen = {}
    for v in values:
        if v is None:
            continue
        for c in flatten_value(name, v):
            seen.setdefault(c, len(seen))
    if not seen:
        return [name]
    return sorted(seen, key=lambda c: (tuple(int(i) for i in _INDEX.findall(c[len(name):])), seen[c]))


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, dict)):  # not written since schema 2 (flattened into columns); kept for safety
        return canonical_json(v)
    if isinstance(v, float):
        return repr(v)
    return v


_INDEXED = re.compile(r"^(?P<base>.+?)(?P<idx>(\[\d+\])+)$")


def read_table(path) -> list:
    """``results.csv`` as a list of dicts (numbers parsed; the ``name[i]`` columns of a list value put back
    together into the list ``name``; JSON list cells, which 0.1 wrote, parsed too)."""
    import csv

    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append(_unflatten({k: _parse_cell(v) for k, v in r.items()}))
    return rows


def _parse_cell(v: str):
    if v == "":
        return None
    if v[0] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v in ("True", "False"):
        return v == "True"
    return v


def _unflatten(row: dict) -> dict:
    out, lists = {}, {}
    for k, v in row.items():
        m = _INDEXED.match(k)
        if m is None or m.group("base") in row:
            out[k] = v
            continue
        base = m.group("base")
        if base not in lists:
            lists[base] = {}
            out[base] = None  # keeps the column order
        lists[base][tuple(int(i) for i in _INDEX.findall(m.group("idx")))] = v
    for base, cells in lists.items():
        if all(v is None for v in cells.values()):
            continue
        out[base] = _nested(cells)
    return out


def _nested(cells: dict):
    """Nested lists from ``{(i, j, ...): value}`` (missing elements None; trailing all-missing dropped)."""
    cells = {k: v for k, v in cells.items() if v is not None}
    if not cells:
        return None
    if any(len(k) == 1 for k in cells):
        n = max(k[0] for k in cells) + 1
        return [cells.get((i,)) for i in range(n)]
    n = max(k[0] for k in cells) + 1
    return [_nested({k[1:]: v for k, v in cells.items() if k[0] == i}) for i in range(n)]


def run_sweep(spec, out_dir=None, *, quick: bool = False, overrides=(), executor: str = "local", workers=None,
              scheduler=None, threads=None, force: bool = False, verify: str = "auto", progress: bool = False,
              log=None, _on_point=None) -> SweepSummary:
    """Run every unfinished point of ``spec`` and store it in ``out_dir`` (see the module docstring).

    ``spec`` is a :class:`SweepSpec`, the path of a SWEEP.toml or a dict with its tables (``{"sweep": {...},
    "base": {...}, "grid": {...}}``); for the last two ``quick`` and ``overrides`` are applied as by
    :func:`load_spec`.  ``out_dir`` defaults to ``runs/sweeps/<name>[-quick]``, as on the command line.
    ``progress``: a tqdm bar over the points (on a terminal or in a notebook).  Messages go to the
    ``leap_sde.sweep`` logger (or to ``log(message)`` if given); nothing is printed.

    Raises :class:`SweepConflict` when finished points' configs changed (unless ``force``),
    :class:`SweepError` when the store is busy or the executor cannot start, ConfigError for an invalid
    spec.  ``_on_point(n_finished)`` is called after each point is stored (tests use it to kill a worker
    mid-sweep).
    """
    if not isinstance(spec, SweepSpec):
        from .spec import load_spec

        spec = load_spec(spec, quick=quick, overrides=overrides)
    elif quick or overrides:
        raise ValueError("quick, overrides: apply them when loading the spec (load_spec), or pass its path or dict")
    log = log or _logger.info
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / "sweeps" / (spec.name + ("-quick" if quick
                                                                                                 else ""))
    plan = Plan(spec)
    store = Store(out_dir)
    try:
        store.lock()
    except StoreBusy as e:
        raise SweepError(str(e)) from None
    summary = SweepSummary(out_dir=out_dir, name=spec.name, total=len(plan))
    t0 = time.perf_counter()
    runner = None
    try:
        store.clean()
        entries = store.load_index()
        chk = check_store(store, spec, plan, verify=verify, entries=entries)
        summary.check_s = chk.seconds
        summary.orphans = chk.n_orphans
        if chk.conflicts and not force:
            lines = [f"  {plan.params(i)}: {d}" for i, d in chk.conflicts[:5]]
            more = f"\n  ... and {len(chk.conflicts) - 5} more" if len(chk.conflicts) > 5 else ""
            raise SweepConflict(f"{len(chk.conflicts)} finished point(s) in {out_dir} were computed with another "
                                f"config:\n" + "\n".join(lines) + more + "\nrerun with --force to recompute them, "
                                f"or use another --out")
        todo = list(chk.todo) + [i for i, _ in chk.conflicts]
        summary.forced = len(chk.conflicts)
        summary.corrupt = len(chk.corrupt)
        for i, problem in chk.corrupt:
            log(f"point {plan.keys[i]} {plan.params(i)}: {problem}; recomputing")
        # repair the index: adopted folders, rebased lines, torn / superseded lines
        base = spec.base_hash
        if chk.adopted:
            for i, done in chk.adopted:
                store.append(plan.keys[i], done["cfg_hash"], base, done["record"])
            summary.adopted = len(chk.adopted)
        for i, record in chk.rebuilt:  # the row is lost, the folder and its index line are intact
            e = entries.entry(plan.keys[i])
            store.append(e.key, e.cfg, e.base, record)
            log(f"point {e.key} {plan.params(i)}: results-table row lost (torn rows.log); rebuilt from done.json")
        summary.rebuilt = len(chk.rebuilt)
        if chk.rebased or store.n_bad_lines or store.n_superseded:
            store.compact(store.load_index(), rebase={plan.keys[i]: base for i in chk.rebased})
        done_now = len(plan) - len(todo)
        summary.skipped = done_now
        atomic_write_text(out_dir / "sweep.toml", _toml_dumps(spec.to_toml_dict()))
        if todo:
            t_start = time.perf_counter()
            runner = make_runner(executor, workers=workers, scheduler=scheduler, threads=threads)
            summary.startup_s = time.perf_counter() - t_start
            summary.executor, summary.n_workers = runner.name, runner.n_workers
            log(f"sweep {spec.name}: {len(todo)} of {len(plan)} points to run on {runner.n_workers} "
                f"{runner.name} worker(s); results in {out_dir}")
            _loop(runner, store, spec, plan, todo, summary, progress=progress, log=log, on_point=_on_point)
        else:
            summary.executor, summary.n_workers = executor, 0
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if runner is not None:
            try:
                runner.close(cancel=summary.interrupted or bool(summary.failed))
            except Exception:  # noqa: BLE001 - closing a broken pool/cluster must not hide the result
                pass
        try:
            entries = store.load_index()
            if store.n_superseded or store.n_bad_lines:
                store.compact(entries)
            write_table(store, plan, entries)
        finally:
            store.close()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _loop(runner, store, spec, plan, todo, summary, *, progress, log, on_point):
    from tqdm.auto import tqdm

    base = spec.base_hash
    queue = list(reversed(todo))  # pop() from the end: plan order
    inflight: dict = {}  # future -> (i, task)
    attempts: dict = {}
    bar = tqdm(total=len(plan), initial=summary.skipped, unit="pt", desc=f"sweep {spec.name}", dynamic_ncols=True,
               disable=not (progress and bars_shown()), smoothing=0.1)
    last_table = time.monotonic()
    n_stored = 0
    try:
        while queue or inflight:
            while queue and len(inflight) < runner.slots:
                i = queue.pop()
                try:
                    cfg = point_config(spec, plan, i)
                except ConfigError as e:
                    summary.failed.append((plan.params(i), f"invalid config: {e}"))
                    continue
                attempts[i] = attempts.get(i, 0) + 1
                task = {"key": plan.keys[i], "cfg": cfg, "threads": runner.threads, "plots": spec.point_plots,
                        "attempt": attempts[i]}
                inflight[runner.submit(task)] = (i, task)
            done = runner.wait(set(inflight), timeout=1.0)
            lost = False
            for fut in done:
                i, task = inflight.pop(fut)
                try:
                    res = runner.result(fut)
                except WorkerLost as e:
                    lost = True
                    if attempts[i] >= MAX_ATTEMPTS:
                        summary.failed.append((plan.params(i), f"worker died {attempts[i]} times: {e}"))
                    else:
                        summary.resubmitted += 1
                        queue.append(i)
                    continue
                except Exception as e:  # noqa: BLE001 - the point's own error: record it, go on
                    summary.failed.append((plan.params(i), f"{type(e).__name__}: {e}"))
                    continue
                _store_point(store, plan, i, task, res, base)
                for w in {_NUMBER.sub("…", w) for w in res.get("warnings", ())}:
                    summary.warnings[w] = summary.warnings.get(w, 0) + 1
                summary.computed += 1
                n_stored += 1
                bar.set_postfix_str(_point_label(plan.params(i)), refresh=False)
                bar.update(1)
                if on_point is not None:
                    on_point(n_stored)
            if lost and isinstance(runner, _LocalRunner):
                # every future of a broken pool fails: resubmit the rest of the points in flight too
                for fut, (i, task) in list(inflight.items()):
                    inflight.pop(fut)
                    summary.resubmitted += 1
                    queue.append(i)
                runner.restart()
                log("a worker process died; pool restarted, points in flight resubmitted")
            if time.monotonic() - last_table > TABLE_EVERY_S:
                write_table(store, plan)
                last_table = time.monotonic()
    finally:
        bar.close()


def _point_label(params: dict) -> str:
    """The last finished point, short: ``sigma=0.1 curv_sharp=4`` (section names dropped)."""
    return " ".join(f"{k.split('.', 1)[-1]}={_fmt(v)}" for k, v in params.items())


_NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?")  # warnings are grouped with their numbers blanked


def _store_point(store, plan, i, task, res, base):
    key = plan.keys[i]
    cfg_h = config_hash(task["cfg"])
    record = {"params": plan.params(i), "row": headline(res["result"])}
    done = {"params": plan.params(i), "cfg_hash": cfg_h, "base_hash": base, "seed": task["cfg"]["run"]["seed"],
            "version": res.get("version"), "host": res.get("host"), "pid": res.get("pid"),
            "wall_s": res.get("wall_s"), "warnings": res.get("warnings", []), "record": record,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    store.write_point(key, res["files"], done)
    store.append(key, cfg_h, base, record)


def _toml_dumps(d) -> str:
    import tomli_w

    return tomli_w.dumps(d)


def _summary_table(out_dir: Path, plan: Plan, limit: int = 40) -> str:
    try:
        rows = read_table(out_dir / "results.csv")
    except OSError:
        return ""
    if not rows or len(rows) > limit:
        return ""
    names = list(plan.names)
    cells = [[_fmt(r.get(n)) for n in names] for r in rows]
    fixed = f"  {'rate/step':>10} {'mean steps':>11} {'escaped':>8} {'flat share':>10}"

    def widths(labels):
        return [max([len(lab)] + [len(c[j]) for c in cells]) for j, lab in enumerate(labels)]

    labels = [n.rsplit(".", 1)[-1] for n in names]  # the key's last part, unless two parameters share it
    if len(set(labels)) < len(labels):
        labels = list(names)
    legend = []
    if sum(widths(labels)) + 2 * (len(names) - 1) + len(fixed) > 80:  # still too wide: p1, p2, ... + legend
        legend = _wrap_legend([f"p{j + 1} = {n}" for j, n in enumerate(names)])
        labels = [f"p{j + 1}" for j in range(len(names))]
    w = widths(labels)
    lines = legend + ["  ".join(f"{lab:>{wj}}" for lab, wj in zip(labels, w)) + fixed]
    for r, c in zip(rows, cells):
        flat = r.get("flat_share") if r.get("flat_share") is not None else r.get("flat_fraction")
        lines.append("  ".join(f"{v:>{wj}}" for v, wj in zip(c, w)) +
                     f"  {_fmt(r.get('rate_per_step')):>10} {_fmt(r.get('mean_steps')):>11} "
                     f"{r.get('n_escaped')!s:>8} {(_fmt(flat) if flat is not None else '-'):>10}")
    return "\n".join(lines)


def _wrap_legend(items, width: int = 80) -> list:
    lines, cur = [], ""
    for it in items:
        if cur and len(cur) + 2 + len(it) > width:
            lines.append(cur)
            cur = it
        else:
            cur = f"{cur}, {it}" if cur else it
    return lines + ([cur] if cur else [])


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return canonical_json(v)
    return "" if v is None else str(v)
