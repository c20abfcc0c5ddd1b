"""The sweep store under damage that a crash or a full disk can leave (issue 10, item 6): a torn last line of
the append-only logs must not make a finished point disappear, and a SIGKILLed sweep whose process stays a
zombie must not leave its pool workers running."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leap_sde import cli
from leap_sde import sweep as sw
from leap_sde.sweep.store import Store
from test_sweep import SLOW, TINY, assert_each_point_once, run, table, write


def _finished(tmp_path):
    p = write(tmp_path, TINY)
    out = tmp_path / "o"
    run(p, out)
    return p, out, {r["key"]: r for r in table(out)}


def _tear_last_line(path: Path, n: int = 20):
    data = path.read_bytes()
    path.write_bytes(data[:-n])


def test_torn_last_rows_line_is_rebuilt_from_the_point_folder(tmp_path, capsys):
    """rows.log holds the results-table row of each point; a torn last line used to drop that point from
    results.csv on every later run, while resume and --verify all reported nothing to do."""
    p, out, before = _finished(tmp_path)
    last = (out / "rows.log").read_bytes().splitlines()[-1][:16].decode()
    _tear_last_line(out / "rows.log")
    assert cli.main(["sweep", str(p), "--out", str(out), "--dry-run", "--verify", "all"]) == 0
    text = capsys.readouterr().out
    assert "6 finished" in text and "1 row to rebuild" in text
    s = run(p, out, verify="all")
    assert (s.computed, s.skipped, s.rebuilt) == (0, 6, 1)
    assert "1 table row rebuilt from its point folder" in s.text()
    assert_each_point_once(p, out)
    after = {r["key"]: r for r in table(out)}
    assert after[last] == before[last]  # the same row, not a recomputation
    assert run(p, out).rebuilt == 0  # repaired for good


def test_torn_last_index_line_is_readopted_and_reported(tmp_path, capsys):
    p, out, before = _finished(tmp_path)
    last = (out / "index.log").read_bytes().splitlines()[-1][:16].decode()
    _tear_last_line(out / "index.log")
    assert cli.main(["sweep", str(p), "--out", str(out), "--dry-run", "--verify", "all"]) == 0
    assert "1 recoverable" in capsys.readouterr().out
    assert cli.main(["sweep", str(p), "--out", str(out), "--workers", "0", "--verify", "all", "--quiet"]) == 0
    assert "0 computed now, 6 already finished" in capsys.readouterr().out
    assert_each_point_once(p, out)
    assert {r["key"]: r for r in table(out)}[last] == before[last]


def test_row_that_cannot_be_rebuilt_is_recomputed(tmp_path):
    """A lost row whose done.json has no record (written by hand, or damaged) is recomputed, not dropped."""
    import json

    p, out, before = _finished(tmp_path)
    last = (out / "rows.log").read_bytes().splitlines()[-1][:16].decode()
    done_path = out / "points" / last / "done.json"
    done = json.loads(done_path.read_text())
    del done["record"]
    done_path.write_text(json.dumps(done))  # still a valid done.json for the files' checksums
    _tear_last_line(out / "rows.log")
    s = run(p, out)
    assert (s.computed, s.skipped) == (1, 5)
    assert_each_point_once(p, out)
    assert {r["key"]: r for r in table(out)}[last]["rate_per_step"] == before[last]["rate_per_step"]


def _session(pid):
    r = subprocess.run(["pgrep", "-s", str(pid)], capture_output=True, text=True)
    return {int(x) for x in r.stdout.split()}


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return None


@pytest.mark.slow  # kills a sweep
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and pgrep")
def test_workers_exit_when_the_killed_sweep_stays_a_zombie(tmp_path):
    """SIGKILL the sweep and do not reap it (its parent, this test, does not wait): the writer is a zombie,
    whose /proc entry and PID stay, so workers that watch the PID never notice.  They must exit anyway."""
    p = write(tmp_path, SLOW, "slow.toml")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "leap_sde", "sweep", str(p), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.monotonic()
        while (out / "index.log").exists() is False or (out / "index.log").read_bytes().count(b"\n") < 1:
            assert time.monotonic() - t0 < 120 and _state(proc.pid) not in (None, "Z"), "sweep did not start"
            time.sleep(0.05)
        assert len(_session(proc.pid) - {proc.pid}) >= 2  # the pool workers (and the fork server) run
        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        while _state(proc.pid) != "Z":  # not reaped: a zombie
            assert time.monotonic() - t0 < 10
            time.sleep(0.02)
        t0 = time.monotonic()
        while _session(proc.pid) - {proc.pid}:
            if time.monotonic() - t0 > 20:
                left = _session(proc.pid) - {proc.pid}
                for pid in left:
                    os.kill(pid, signal.SIGKILL)
                pytest.fail(f"{len(left)} process(es) of the sweep outlived it while it was a zombie")
            time.sleep(0.2)
        assert _state(proc.pid) == "Z"  # still unreaped: the workers did not rely on it disappearing
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    s = run(p, out, workers=2)
    assert s.complete
    assert_each_point_once(p, out)
