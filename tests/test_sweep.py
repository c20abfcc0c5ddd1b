"""leap-sde sweep: spec parsing, per-point seeds, the crash-safe store (resume, SIGKILL, corrupt files, changed
configs, torn index lines), the local process pool (a killed worker), the resume-check cost, and leap-sde plot.

Sweeps here are tiny (a few hundred particles, a few thousand steps); points that must still be running when
something is killed use ``exit.kind = "none"`` so that their cost is fixed (particles × steps)."""
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leap_sde import cli
from leap_sde import sweep as sw
from leap_sde.sweep.store import Store, _index_line
from leap_sde.config import ConfigError

TINY = """
[sweep]
seed = 7
point_plots = false
[base.landscape]
kind = "sharp-flat"
barrier_sharp = 0.25
barrier_flat = 0.25
[base.init]
minimum = 1
[base.exit]
target_minimum = 0
[base.run]
particles = 200
max_steps = 2000
[grid]
"leap.sigma" = [0.0, 0.1]
landscape.curv_sharp = [2, 4.0, 8]
"""

# fixed-cost points (no exit: every particle runs max_steps) for the kill tests: ~0.3-0.5 s each on one core
SLOW = """
[sweep]
seed = 3
point_plots = false
[base.landscape]
kind = "double-well"
[base.exit]
kind = "none"
[base.run]
particles = 500
max_steps = 20000
basins = false
[grid]
"leap.sigma" = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def run(spec_path, out, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("progress", False)
    kw.setdefault("log", lambda m: None)
    return sw.run_sweep(sw.load_spec(spec_path), out, **kw)


def table(out):
    with open(Path(out) / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_each_point_once(spec_path, out):
    plan = sw.Plan(sw.load_spec(spec_path))
    rows = table(out)
    keys = [r["key"] for r in rows]
    assert sorted(keys) == sorted(plan.keys)  # every point, exactly once
    assert {p.name for p in (Path(out) / "points").iterdir()} == set(plan.keys)  # no .tmp / .trash left
    store = Store(out)
    idx = store.load_index()
    assert set(idx) == set(plan.keys) and store.n_superseded == 0 and store.n_bad_lines == 0
    for k in plan.keys:
        assert store.verify(k) is None
        done = json.loads((Path(out) / "points" / k / "done.json").read_text())
        assert set(done["files"]) >= {"config.toml", "result.json", "escape_times.npz"}


# ------------------------------------------------------------------------------------------------ the spec
@pytest.mark.parametrize("text, words", [
    ("[sweep]\nseed = 1\n[nope]\n", ["unknown table [nope]", "grid"]),
    ("[grid]\n\"leap.nope\" = [1]\n", ["unknown key leap.nope", "valid keys of [leap]", "sigma"]),
    ("[grid]\n\"nosec.x\" = [1]\n", ["unknown section", "dynamics"]),
    ("[grid]\n\"run.seed\" = [1, 2]\n", ["run.seed", "[sweep] seed"]),
    ("[base.run]\nseed = 4\n", ["run.seed", "[sweep] seed"]),
    ("[grid]\n\"run.threads\" = [1]\n", ["run.threads", "executor"]),
    ("[grid]\n\"dynamics.eta\" = [0.1, -0.1]\n", ["dynamics.eta", "must be > 0"]),
    ("[grid]\n\"dynamics.eta\" = [0.1, 0.1]\n", ["dynamics.eta", "duplicate"]),
    ("[grid]\n\"dynamics.eta\" = 0.1\n", ["dynamics.eta", "list"]),
    ("[base.leap]\nsigma = [0.0, 0.1]\n", ["leap.sigma", "[grid]"]),
    ("[sweep]\nseeds = 1\n", ["sweep.seeds", "replicates"]),
    ("[grid]\n\"leap.sigma\" = [0.0]\n[[plot]]\nkind = \"phase\"\nx = \"leap.sigma\"\ny = \"dynamics.eta\"\n",
     ["plot[0].y", "not a swept parameter"]),
    ("[grid]\n\"landscape.coeffs\" = [[1.0, 0.0, 1.0]]\n", ["coeffs", "not a key of kind 'sharp-flat'"]),
])
def test_bad_sweep_file_exits_2_naming_the_key(tmp_path, capsys, text, words):
    p = write(tmp_path, text)
    code = cli.main(["sweep", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    for w in words:
        assert w in err
    assert not (tmp_path / "o").exists()


def test_quick_and_set_and_points(tmp_path):
    p = write(tmp_path, TINY + """
[[points]]
"dynamics.eta" = 0.1
[[points]]
"dynamics.eta" = 0.05
"dynamics.batch_size" = 2
[quick]
grid = {"leap.sigma" = [0.0]}
base = {run = {particles = 50}}
""")
    spec = sw.load_spec(p)
    plan = sw.Plan(spec)
    assert len(plan) == 2 * 2 * 3  # explicit points x grid
    assert plan.names == ("dynamics.eta", "dynamics.batch_size", "leap.sigma", "landscape.curv_sharp")
    assert plan.params(0) == {"dynamics.eta": 0.1, "leap.sigma": 0.0, "landscape.curv_sharp": 2.0}
    assert plan.params(11) == {"dynamics.eta": 0.05, "dynamics.batch_size": 2.0, "leap.sigma": 0.1,
                               "landscape.curv_sharp": 8.0}
    q = sw.load_spec(p, quick=True, overrides=["run.max_steps=500"])
    assert len(sw.Plan(q)) == 2 * 3
    cfg = sw.point_config(q, sw.Plan(q), 0)
    assert cfg["run"]["particles"] == 50 and cfg["run"]["max_steps"] == 500
    with pytest.raises(ConfigError, match="--quick needs a \\[quick\\] table"):
        sw.load_spec(write(tmp_path, TINY, "noquick.toml"), quick=True)


def test_keys_and_seeds_depend_only_on_the_point(tmp_path):
    """Key = SHA-256 of the canonical parameters; seed from the sweep seed and the key's hash, so reordering
    the grid, adding values or other points changes nothing for an existing point; 4 and 4.0 are one point."""
    a = sw.load_spec(write(tmp_path, TINY, "a.toml"))
    other = TINY.replace('"leap.sigma" = [0.0, 0.1]\nlandscape.curv_sharp = [2, 4.0, 8]',
                         'landscape.curv_sharp = [16.0, 8.0, 4, 2.0]\n"leap.sigma" = [0.3, 0.1, 0.0]')
    b = sw.load_spec(write(tmp_path, other, "b.toml"))
    pa, pb = sw.Plan(a), sw.Plan(b)
    seeds_b = {pb.keys[i]: sw.point_config(b, pb, i)["run"]["seed"] for i in range(len(pb))}
    for i, k in enumerate(pa.keys):
        canon = json.dumps(pa.params(i), sort_keys=True, separators=(",", ":"))
        assert k == hashlib.sha256(canon.encode()).hexdigest()[:16] == sw.short_hash(pa.canonical(i))
        seed = sw.point_config(a, pa, i)["run"]["seed"]
        assert seed == sw.derive_seed(7, canon) == seeds_b[k]
    assert len({sw.point_config(a, pa, i)["run"]["seed"] for i in range(len(pa))}) == len(pa)
    c = sw.load_spec(write(tmp_path, TINY.replace("seed = 7", "seed = 8"), "c.toml"))
    assert sw.point_config(c, sw.Plan(c), 0)["run"]["seed"] != sw.point_config(a, pa, 0)["run"]["seed"]


def test_results_do_not_depend_on_order_or_executor(tmp_path):
    p = write(tmp_path, TINY)
    s1 = run(p, tmp_path / "o1")
    assert s1.complete and s1.computed == 6
    # half of the points, in reverse order, in a 2-process pool: same numbers for the same points
    rev = TINY.replace('"leap.sigma" = [0.0, 0.1]\nlandscape.curv_sharp = [2, 4.0, 8]',
                       '"leap.sigma" = [0.1]\nlandscape.curv_sharp = [8.0, 4.0, 2.0]')
    s2 = run(write(tmp_path, rev, "rev.toml"), tmp_path / "o2", workers=2)
    assert s2.complete and s2.computed == 3
    r1 = {r["key"]: r for r in table(tmp_path / "o1")}
    for r in table(tmp_path / "o2"):
        for f in ("rate_per_step", "mean_steps", "n_escaped", "seed", "ks_pvalue"):
            assert r[f] == r1[r["key"]][f]


# ------------------------------------------------------------------------------------------------ the store
def test_resume_skips_finished_points(tmp_path, capsys):
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    assert cli.main(["sweep", str(p), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "6 computed now, 0 already finished" in text
    mtimes = {f: f.stat().st_mtime_ns for f in out.glob("points/*/*")}
    assert cli.main(["sweep", str(p), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert "0 computed now, 6 already finished" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in out.glob("points/*/*")} == mtimes  # nothing rewritten
    assert cli.main(["sweep", str(p), "--out", str(out), "--dry-run"]) == 0
    assert "6 points; 6 finished, 0 to run, 0 with a changed config" in capsys.readouterr().out
    assert_each_point_once(p, out)
    # growing the grid runs only the new points
    s = run(write(tmp_path, TINY.replace("[0.0, 0.1]", "[0.0, 0.1, 0.2]"), "grown.toml"), out)
    assert (s.skipped, s.computed) == (6, 3)
    row = table(out)[0]
    assert {"key", "leap.sigma", "landscape.curv_sharp", "rate_per_step", "rate_ci_low", "rate_ci_high",
            "mean_steps", "n_escaped", "n_censored", "n_diverged", "ks_pvalue", "seed", "path"} <= set(row)


def test_corrupt_or_half_written_files_are_recomputed(tmp_path):
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    run(p, out)
    before = {r["key"]: r for r in table(out)}
    k1, k2, k3 = sorted(before)[:3]
    npz = out / "points" / k1 / "escape_times.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # half-written
    res = out / "points" / k2 / "result.json"
    res.write_bytes(res.read_bytes().replace(b"rate", b"RATE"))  # same size, wrong content
    (out / "points" / k3 / "done.json").unlink()  # done marker lost
    s = run(p, out)
    assert s.corrupt == 3 and s.computed == 3 and s.skipped == 3
    assert_each_point_once(p, out)
    after = {r["key"]: r for r in table(out)}
    for k in (k1, k2, k3):  # recomputed with the same seed: the same numbers
        assert after[k]["rate_per_step"] == before[k]["rate_per_step"]
    # a large store checks only the most recent points by default; --verify all re-hashes every point
    npz = out / "points" / sorted(before)[4] / "escape_times.npz"
    npz.write_bytes(b"garbage")
    chk = sw.check_store(Store(out), sw.load_spec(p), sw.Plan(sw.load_spec(p)), verify="none")
    assert not chk.corrupt
    chk = sw.check_store(Store(out), sw.load_spec(p), sw.Plan(sw.load_spec(p)), verify="all")
    assert [sw.Plan(sw.load_spec(p)).keys[i] for i, _ in chk.corrupt] == [sorted(before)[4]]


def test_crash_leftovers_are_repaired(tmp_path):
    """What a SIGKILL can leave: a .tmp folder, a finished folder whose index line was never appended, a torn
    last index line.  The rerun removes, adopts (without recomputing) and drops them respectively."""
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    run(p, out)
    plan = sw.Plan(sw.load_spec(p))
    store = Store(out)
    idx = store.load_index()
    dropped = plan.keys[2]
    lines = [ln for ln in (out / "index.log").read_bytes().splitlines(keepends=True)
             if not ln.startswith(dropped.encode())]
    (out / "index.log").write_bytes(b"".join(lines) + _index_line(plan.keys[0], "0" * 16, "1" * 16, "2" * 8)[:30])
    (out / "points" / f".tmp-{plan.keys[1]}-deadbeef").mkdir()
    (out / "points" / f".tmp-{plan.keys[1]}-deadbeef" / "result.json").write_text("{")
    assert len(idx) == 6
    s = run(p, out)
    assert (s.adopted, s.computed, s.skipped) == (1, 0, 6)
    assert_each_point_once(p, out)


def test_changed_config_is_refused_unless_forced(tmp_path, capsys):
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    run(p, out)
    changed = write(tmp_path, TINY.replace("particles = 200", "particles = 150"), "changed.toml")
    code = cli.main(["sweep", str(changed), "--out", str(out), "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "6 finished point(s)" in err and "run.particles: 200 -> 150" in err and "--force" in err
    assert {r["n_particles"] for r in table(out)} == {"200"}  # untouched
    # also with a --set override of the base
    assert cli.main(["sweep", str(p), "--out", str(out), "--workers", "0", "--set", "dynamics.eta=0.2"]) == 2
    assert "dynamics.eta: 0.1 -> 0.2" in capsys.readouterr().err
    assert cli.main(["sweep", str(changed), "--out", str(out), "--workers", "0", "--quiet", "--force"]) == 0
    assert "6 recomputed with --force" in capsys.readouterr().out
    assert {r["n_particles"] for r in table(out)} == {"150"}
    assert_each_point_once(changed, out)
    # a base edit that changes no point's config (leap.sigma is swept) is accepted without recomputing
    same = write(tmp_path, TINY.replace("particles = 200", "particles = 150").replace("[base.leap]", "")
                 + "[base.leap]\nsigma = 0.3\n", "same.toml")
    s = run(same, out)
    assert (s.computed, s.skipped) == (0, 6)
    assert sw.check_store(Store(out), sw.load_spec(same), sw.Plan(sw.load_spec(same))).rebased == []  # rebased


def test_second_writer_is_refused(tmp_path, capsys):
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    holder = Store(out)
    holder.lock()
    try:
        assert cli.main(["sweep", str(p), "--out", str(out), "--workers", "0"]) == 2
        assert "in use by another sweep" in capsys.readouterr().err
    finally:
        holder.close()


def test_failed_point_is_reported_and_retried_on_rerun(tmp_path, capsys):
    # init.minimum = 5 does not exist on the two-minimum well: those points fail, the others run
    text = TINY.replace('landscape.curv_sharp = [2, 4.0, 8]', '"init.minimum" = [1, 5]')
    p = write(tmp_path, text)
    code = cli.main(["sweep", str(p), "--out", str(tmp_path / "o"), "--workers", "0", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1 and "2 computed now" in out and "2 failed" in out and "init.minimum" in out


# ------------------------------------------------------------------------------------------------ crashes
def _slow_spec(tmp_path):
    return write(tmp_path, SLOW, "slow.toml")


def _index_lines(out):
    try:
        return (Path(out) / "index.log").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow  # kills a sweep or one of its workers
def test_sigkill_mid_sweep_loses_only_points_in_flight(tmp_path):
    p = _slow_spec(tmp_path)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "leap_sde", "sweep", str(p), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t0 = time.monotonic()
        while _index_lines(out) < 2 and time.monotonic() - t0 < 120 and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    n_before = _index_lines(out)
    assert 2 <= n_before < 8
    # the pool workers notice that their parent died and exit
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        r = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True)
        if not r.stdout.strip():
            break
        time.sleep(0.2)
    else:  # pragma: no cover
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("pool workers outlived the killed sweep")
    s = run(p, out, workers=2)
    assert s.complete and s.skipped >= n_before and s.skipped + s.computed == 8
    assert_each_point_once(p, out)


@pytest.mark.slow  # kills a sweep or one of its workers
def test_ctrl_c_keeps_finished_points(tmp_path):
    p = _slow_spec(tmp_path)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "leap_sde", "sweep", str(p), "--out", str(out), "--workers", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while _index_lines(out) < 1 and time.monotonic() - t0 < 120 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in stdout and "rerun the same command" in stdout
    n = len(table(out))
    assert 1 <= n < 8
    s = run(p, out)
    assert s.complete and s.skipped == n
    assert_each_point_once(p, out)


@pytest.mark.slow  # kills a sweep or one of its workers
def test_killed_pool_worker_is_replaced(tmp_path):
    import psutil

    p = _slow_spec(tmp_path)
    out = tmp_path / "o"
    killed = []

    def kill_a_worker(n_stored):
        if n_stored == 1 and not killed:
            # pool workers: this process's descendants that run multiprocessing code, except the resource
            # tracker and the fork server (the workers' parent)
            procs = [c for c in psutil.Process().children(recursive=True)
                     if "multiprocessing" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())]
            pids = {c.pid for c in procs}
            workers = [c for c in procs if not any(d.ppid() == c.pid for d in procs)]
            assert workers and pids
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    s = sw.run_sweep(sw.load_spec(p), out, workers=2, progress=False, log=lambda m: None, _on_point=kill_a_worker)
    assert killed and s.complete and s.resubmitted >= 1 and s.computed == 8
    assert_each_point_once(p, out)


# ------------------------------------------------------------------------------------------------ scale
def _synthetic_store(tmp_path, n_sigma, n_curv):
    """A store with every point of an n_sigma x n_curv sweep finished (index lines + folders; the most recent
    points also with real done.json files so that the default verification of recent points passes)."""
    text = (f"[sweep]\nseed = 1\n[grid]\n\"leap.sigma\" = {[i * 1e-3 for i in range(n_sigma)]}\n"
            f"\"landscape.curv_sharp\" = {[1.0 + i for i in range(n_curv)]}\n")
    p = write(tmp_path, text, "big.toml")
    spec = sw.load_spec(p)
    plan = sw.Plan(spec)
    out = tmp_path / "o"
    store = Store(out)
    store.points.mkdir(parents=True)
    for k in plan.keys:
        os.mkdir(store.points / k)
    base = spec.base_hash
    rows, index = _synthetic_logs(plan, base)
    (out / "rows.log").write_bytes(rows)
    (out / "index.log").write_bytes(index)
    for k in plan.keys[-sw.RECENT_VERIFY:]:
        store.write_point(k, {"result.json": b"{}"}, {})
    return p


def _synthetic_logs(plan, base):
    """rows.log and index.log as the writer appends them: one row per point (params and an empty headline)
    and an index line naming that row's CRC."""
    import zlib

    empty = {f: None for f in sw.ROW_FIELDS}
    rows, index = [], []
    for i, k in enumerate(plan.keys):
        payload = json.dumps({"params": plan.params(i), "row": empty}, sort_keys=True, separators=(",", ":")).encode()
        crc = f"{zlib.crc32(payload) & 0xFFFFFFFF:08x}"
        rows.append(f"{k} {crc} ".encode() + payload + b"\n")
        index.append(_index_line(k, "0" * 16, base, crc))
    return b"".join(rows), b"".join(index)


def _time_resume_check(p):
    out = p.parent / "o"
    t0, c0 = time.perf_counter(), time.process_time()
    spec = sw.load_spec(p)
    plan = sw.Plan(spec)
    chk = sw.check_store(Store(out), spec, plan)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(chk.done) == len(plan) and not chk.todo and not chk.conflicts
    return wall, cpu, chk


def test_resume_check_of_20k_points_verifies_only_the_recent(tmp_path):
    # its cost is measured by simulations/bench_sweep.py, not asserted here
    p = _synthetic_store(tmp_path, 200, 100)
    _, _, chk = _time_resume_check(p)
    assert chk.n_verified == sw.RECENT_VERIFY  # > 1000 points: only the recent ones are re-hashed


@pytest.mark.slow
def test_resume_check_of_100k_points(tmp_path):
    p = _synthetic_store(tmp_path, 1000, 100)
    wall, cpu, _ = _time_resume_check(p)
    print(f"resume check, 10^5 finished points: {wall:.3f} s wall, {cpu:.3f} s CPU")  # not asserted (bench_sweep.py)


# ------------------------------------------------------------------------------------------------ plots
def test_plot_command_draws_phase_preference_and_arrhenius(tmp_path, capsys):
    text = TINY.replace("max_steps = 2000", "max_steps = 20000\npreference = true") + """
[[plot]]
kind = "phase"
x = "leap.sigma"
y = "landscape.curv_sharp"
theory = "leap-xie"
boundaries = ["mean-square", "almost-sure"]
[[plot]]
kind = "preference"
x = "leap.sigma"
"""
    p = write(tmp_path, text)
    out = tmp_path / "o"
    run(p, out)
    assert cli.main(["plot", str(out)]) == 0
    names = sorted(Path(x).name for x in capsys.readouterr().out.split())
    assert names == sorted(f"{f}.{e}" for f in ("phase_leap-sigma_landscape-curv_sharp", "preference_leap-sigma")
                           for e in ("png", "pdf", "svg"))
    # the long-run flat share from the escapes both ways; 20 000 steps settle every point (issue 10 item 1)
    for r in table(out):
        lo, share, hi = (float(r[k]) for k in ("flat_share_ci_low", "flat_share", "flat_share_ci_high"))
        assert 0 < lo <= share <= hi < 1
    # Arrhenius in 1/D: white noise on the symmetric well, two noise levels
    arr = """
[sweep]
point_plots = false
[base.landscape]
kind = "double-well"
barrier = 0.25
[base.dynamics]
noise = "white"
[base.run]
particles = 200
max_steps = 4000
[grid]
"dynamics.noise_std" = [1.2, 1.5, 2.0]
[[plot]]
kind = "arrhenius"
x = "1/D"
theory = "kramers"
"""
    p2 = write(tmp_path, arr, "arr.toml")
    run(p2, tmp_path / "a")
    paths = sw.plot_sweep(tmp_path / "a")
    assert [x.name for x in paths] == [f"arrhenius_1-over-D.{e}" for e in ("png", "pdf", "svg", "txt")]
    txt = paths[-1].read_text()
    assert "fitted slope" in txt and "theory slope 0.2500" in txt  # Kramers: slope = barrier
    assert cli.main(["plot", str(tmp_path / "nothing")]) == 2


def test_theory_rates_match_the_closed_forms():
    from leap_sde import theory as th
    from leap_sde.config import resolve

    cfg = resolve({"landscape": {"kind": "sharp-flat", "curv_sharp": 4.0, "barrier_sharp": 0.5},
                   "init": {"minimum": 1}, "exit": {"target_minimum": 0}, "leap": {"sigma": 0.05}}, base={})
    tau = th.leap_xie_escape_time(0.5, 4.0, -1.0, batch_size=1.0, eta=0.1, sigma=0.05, s=1 / 5)
    assert sw.theory_log10_rate(cfg, "leap-xie") == pytest.approx(__import__("math").log10(0.1 / tau))
    q = resolve({"landscape": {"kind": "quadratic", "hessian": [30.0]}, "dynamics": {"noise": "none"},
                 "init": {"x0": 1.0}, "exit": {"kind": "leave-ball", "center": [0.0], "radius": 1e3},
                 "leap": {"sigma": 0.05}}, base={})
    lam = th.leap_lyapunov_exponent(30.0, 0.1, 0.05)
    assert lam > 0
    assert 10 ** sw.theory_log10_rate(q, "lyapunov") == pytest.approx(lam / __import__("math").log(1e3))


# ------------------------------------------------------------------------------------------------ shipped sweeps
SHIPPED = Path(__file__).resolve().parents[1] / "simulations" / "sweeps"


@pytest.mark.parametrize("name, figures", [
    ("leap_phase", [f"{f}.{e}" for f in ("phase_leap-sigma_landscape-curv_sharp", "preference_leap-sigma")
                    for e in ("png", "pdf", "svg")]),
    ("xie_arrhenius", [f"arrhenius_B-over-eta.{e}" for e in ("png", "pdf", "svg", "txt")]),
    ("leap_stability", [f"phase_leap-sigma_landscape-hessian.{e}" for e in ("png", "pdf", "svg")]),
])
def test_shipped_sweeps_run_quick(tmp_path, name, figures):
    """The CI-size variant (--quick) of every shipped sweep runs and plots; the full files parse and plan."""
    full = sw.Plan(sw.load_spec(SHIPPED / f"{name}.toml"))
    assert len(full) >= 20
    s = sw.run_sweep(sw.load_spec(SHIPPED / f"{name}.toml", quick=True), tmp_path / name, workers=0,
                     progress=False, log=lambda m: None)
    assert s.complete and 2 <= s.computed <= 8
    assert [p.name for p in sw.plot_sweep(tmp_path / name)] == figures
    _check_sweep_figures(tmp_path / name)


def _check_sweep_figures(d):
    """Every figure of a sweep: axes end within the data's range, every legend entry is drawn, and the theory
    contours' colour is their legend's colour (issue 15)."""
    from leap_sde.sweep.plots import _PLOTTERS, _Configs, auto_plots, load_results

    spec, _, rows = load_results(d)
    figs = []
    for p in list(spec.plots) or auto_plots(spec, rows):
        _PLOTTERS[p["kind"]](spec, rows, p, _Configs(spec), lambda fig, p, text=None: figs.append((p, fig)))
    assert figs
    for p, fig in figs:
        ax = fig.axes[0]
        for which in ("x", "y"):
            name = p.get(which)
            if not isinstance(name, str) or name not in spec.names:
                continue
            vals = [sw.plots._num(r[name]) for r in rows]
            lo, hi = getattr(ax, f"get_{which}lim")()
            span = max(vals) - min(vals)
            if p["kind"] == "phase":  # the cells end at the first and last grid values
                assert lo == pytest.approx(min(vals)) and hi == pytest.approx(max(vals)), (p, which, lo, hi)
            else:  # a 3% pad, never below 0 for non-negative values
                assert min(vals) - 0.031 * span <= lo <= min(vals) and max(vals) <= hi <= max(vals) + 0.031 * span
                assert not (min(vals) >= 0 > lo)
        import matplotlib.colors as mc
        from matplotlib.contour import ContourSet

        leg = ax.get_legend()
        entries = dict(zip([t.get_text() for t in leg.get_texts()], leg.legend_handles)) if leg else {}
        drawn = {ln.get_gid().split(":", 1)[1] for ln in ax.lines if (ln.get_gid() or "").startswith("boundary:")}
        listed = {t.split(" stability")[0] for t in entries if t.endswith("stability boundary")}
        assert listed == drawn, (p, listed, drawn)
        for t, h in entries.items():
            if t.startswith("theory (") and p["kind"] == "phase":
                cs = [c for c in ax.collections if isinstance(c, ContourSet)]
                assert cs and all(mc.to_hex(c.get_edgecolor()[0]) == mc.to_hex(h.get_color()) for c in cs)


def test_summary_table_fits_80_columns_with_many_swept_keys(tmp_path, capsys):
    """Four swept keys (two points): the printed table keeps every line within 80 columns and names each key."""
    text = TINY.replace('"leap.sigma" = [0.0, 0.1]\nlandscape.curv_sharp = [2, 4.0, 8]',
                        '"leap.sigma" = [0.0, 0.1]\nlandscape.curv_sharp = [2.0]\nlandscape.barrier_flat = [0.25]\n'
                        '"dynamics.eta" = [0.1]\n"dynamics.batch_size" = [1.0]')
    p = write(tmp_path, text.replace("particles = 200", "particles = 20"))
    assert cli.main(["sweep", str(p), "--out", str(tmp_path / "o"), "--workers", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = out[:next(i for i, s in enumerate(out) if s.startswith("sweep s:"))]  # the table (the summary names paths)
    assert len(lines) >= 3 and max(len(s) for s in lines) <= 80, [s for s in lines if len(s) > 80]
    text_out = "\n".join(lines)
    assert "rate/step" in text_out and all(k in text_out for k in ("sigma", "curv_sharp", "barrier_flat", "eta"))
