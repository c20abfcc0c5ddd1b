"""The resume check: which planned points a store already holds, which to run, which conflict."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..config import ConfigError
from .spec import Plan, SweepSpec, config_hash, point_config
from .store import Store

__all__ = ["CheckResult", "check_store"]

FULL_VERIFY_MAX = 1000  # --verify auto: hash every finished point up to this many, else the recent ones

RECENT_VERIFY = 32


@dataclass
class CheckResult:
    """What the store holds for a plan: indices into the plan."""

    done: list = field(default_factory=list)
    todo: list = field(default_factory=list)
    conflicts: list = field(default_factory=list)  # (i, differences text)
    corrupt: list = field(default_factory=list)  # (i, problem)
    adopted: list = field(default_factory=list)  # (i, record) complete folders without an index line
    rebased: list = field(default_factory=list)  # i: base changed, config did not
    missing: list = field(default_factory=list)  # i: index line but no folder
    rebuilt: list = field(default_factory=list)  # (i, record) finished points whose rows.log line is lost
    n_orphans: int = 0
    n_verified: int = 0
    seconds: float = 0.0


def check_store(store: Store, spec: SweepSpec, plan: Plan, *, verify: str = "auto", entries=None) -> CheckResult:
    """Classify every planned point: finished (index line + folder, same config), to do, or conflicting.

    Cost: one read of the index, one listing of ``points/``, string comparisons per point; configs are resolved
    only for points whose sweep base changed and folders hashed only as ``verify`` asks.
    """
    t0 = time.perf_counter()
    if verify not in ("auto", "all", "recent", "none"):
        raise ValueError(f"verify must be 'auto', 'all', 'recent' or 'none', got {verify!r}")
    res = CheckResult()
    entries = store.load_index() if entries is None else entries
    listing = store.listing()
    base = spec.base_hash
    suspect = []
    for i, key in enumerate(plan.keys):
        line = entries.get(key)  # "key cfg base row"
        if line is not None and key in listing:
            if line[34:50] == base:
                res.done.append(i)
            else:
                suspect.append(i)
        elif key in listing:
            res.adopted.append((i, None))
        else:
            if line is not None:
                res.missing.append(i)
            res.todo.append(i)
    res.n_orphans = len(set(entries) - set(plan.keys))
    for i in suspect:  # the base table or seed changed: compare the point's resolved config
        key = plan.keys[i]
        try:
            cfg = point_config(spec, plan, i)
        except ConfigError as e:
            res.conflicts.append((i, f"the new config is invalid: {e}"))
            continue
        if config_hash(cfg) == entries.entry(key).cfg:
            res.done.append(i)
            res.rebased.append(i)
        else:
            res.conflicts.append((i, _config_diff(store, key, cfg)))
    adopted = []
    for i, _ in res.adopted:  # complete folders written just before a crash, not yet indexed
        key = plan.keys[i]
        problem = store.verify(key)
        done = store.read_done(key) if problem is None else None
        if problem is None and isinstance(done, dict) and "record" in done:
            try:
                cfg_h = config_hash(point_config(spec, plan, i))
            except ConfigError:
                cfg_h = None
            if cfg_h == done.get("cfg_hash"):
                adopted.append((i, done))
                continue
        res.todo.append(i)
    res.adopted = adopted
    done_set = set(res.done)
    if verify == "all" or (verify == "auto" and len(done_set) <= FULL_VERIFY_MAX):
        to_verify = sorted(done_set)
    elif verify in ("auto", "recent"):
        pos = {k: i for i, k in enumerate(plan.keys)}
        recent = [pos[k] for k in list(entries)[-RECENT_VERIFY:] if k in pos]
        to_verify = [i for i in recent if i in done_set]
    else:
        to_verify = []
    bad = set()
    for i in to_verify:
        problem = store.verify(plan.keys[i])
        if problem is not None:
            res.corrupt.append((i, problem))
            bad.add(i)
    res.n_verified = len(to_verify)
    _check_rows(store, plan, entries, res, bad, full=verify == "all" or len(to_verify) == len(done_set))
    if bad:
        res.done = [i for i in res.done if i not in bad]
        res.todo.extend(sorted(bad))
    res.done.sort()
    res.todo.sort()
    res.seconds = time.perf_counter() - t0
    return res


def _check_rows(store: Store, plan: Plan, entries, res: CheckResult, bad: set, *, full: bool) -> None:
    """Finished points whose results-table row (the rows.log line named by their index line) is lost: rebuilt
    from the record in their done.json when it is there, else recomputed (``bad``).  ``full`` checks every
    finished point, otherwise those among the most recently indexed (the end of an append-only log is what a
    crash or a full disk damages); a row missing from the file's tail triggers a full read."""
    done = [i for i in res.done if i not in bad]
    if not done:
        return
    if full:
        crcs, _ = store.row_crcs()
        check = done
    else:
        recent = set(list(entries)[-RECENT_VERIFY:])
        check = [i for i in done if plan.keys[i] in recent]
        crcs, complete = store.row_crcs(tail_bytes=1 << 20)
        if not complete and any(crcs.get(plan.keys[i]) != entries.entry(plan.keys[i]).row for i in check):
            crcs, _ = store.row_crcs()
    for i in check:
        key = plan.keys[i]
        if crcs.get(key) == entries.entry(key).row:
            continue
        rec = store.read_done(key)
        rec = rec.get("record") if isinstance(rec, dict) else None
        if isinstance(rec, dict) and rec.get("params") == plan.params(i) and isinstance(rec.get("row"), dict):
            res.rebuilt.append((i, rec))
        else:
            res.corrupt.append((i, "its results-table row is lost and done.json holds no record to rebuild it"))
            bad.add(i)


def _config_diff(store: Store, key: str, cfg: dict) -> str:
    from ..config import tomllib

    try:
        old = tomllib.loads((store.points / key / "config.toml").read_text("utf-8"))
    except (OSError, ValueError):
        return "config changed (stored config.toml unreadable)"
    diffs = []
    for s in sorted(set(old) | set(cfg)):
        a, b = old.get(s, {}), cfg.get(s, {})
        for k in sorted(set(a) | set(b)):
            if s == "run" and k == "threads":
                continue
            if a.get(k) != b.get(k):
                diffs.append(f"{s}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return "; ".join(diffs[:4]) + (" ..." if len(diffs) > 4 else "") if diffs else "config changed"
