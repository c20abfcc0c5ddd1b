"""leap-sde sweep on Dask: a LocalCluster of 2 worker processes on 127.0.0.1 (by address, as for a real
cluster, and started by the sweep itself), and a worker SIGKILLed mid-sweep: the sweep still completes with
every point present exactly once."""
import logging
import os
import signal
import time

import pytest

from leap_sde import cli
from leap_sde import sweep as sw

pytest.importorskip("distributed")

from test_sweep import SLOW, TINY, assert_each_point_once, run, table, write  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as c:
        yield c


def test_dask_cluster_by_address_gives_the_local_results(tmp_path, cluster):
    p = write(tmp_path, TINY)
    s = run(p, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address, workers=None)
    assert s.complete and s.computed == 6 and s.executor == "dask" and s.n_workers == 2
    assert_each_point_once(p, tmp_path / "dask")
    run(p, tmp_path / "inline")  # the same points in this process: identical numbers
    ref = {r["key"]: r for r in table(tmp_path / "inline")}
    for r in table(tmp_path / "dask"):
        for f in ("rate_per_step", "mean_steps", "n_escaped", "seed"):
            assert r[f] == ref[r["key"]][f]
    s = run(p, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address)
    assert (s.computed, s.skipped) == (0, 6)  # resumed: nothing to do, no cluster contacted


@pytest.mark.slow  # kills a Dask worker mid-sweep
def test_killed_dask_worker_mid_sweep(tmp_path, cluster):
    from distributed import Client

    p = write(tmp_path, SLOW, "slow.toml")
    killed = []

    def kill_a_busy_worker(n_stored):
        if n_stored == 1 and not killed:
            with Client(cluster.scheduler_address, timeout="20s") as c:
                for _ in range(100):  # a worker with a point in flight
                    busy = [a for a, keys in c.processing().items() if keys]
                    if busy:
                        break
                    time.sleep(0.02)
                assert busy, "no point in flight"
                pid = c.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    s = sw.run_sweep(sw.load_spec(p), tmp_path / "o", executor="dask", scheduler=cluster.scheduler_address,
                     progress=False, log=lambda m: None, _on_point=kill_a_busy_worker)
    assert killed and s.complete and s.computed == 8 and not s.failed
    assert_each_point_once(p, tmp_path / "o")


def test_cli_dask_without_address_starts_a_local_cluster(tmp_path, capsys):
    p = write(tmp_path, TINY.replace('landscape.curv_sharp = [2, 4.0, 8]', 'landscape.curv_sharp = [2.0]'))
    code = cli.main(["sweep", str(p), "--out", str(tmp_path / "o"), "--executor", "dask", "--workers", "2",
                     "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "2 computed now" in out and "dask worker(s)" in out
    assert_each_point_once(p, tmp_path / "o")
    assert cli.main(["sweep", str(p), "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err
