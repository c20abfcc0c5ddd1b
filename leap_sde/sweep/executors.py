"""Running points: one point on a worker, and the executors (inline, local process pool, Dask).

An executor offers ``submit(task) -> future``, ``wait(futures, timeout) -> done``, ``result(future) -> dict``."""
from __future__ import annotations

import copy
import os
import signal
import threading
import time
from pathlib import Path

from .. import __version__
from .spec import SweepError, config_hash

__all__ = ["make_runner"]

def _run_point(task: dict) -> dict:
    """Simulate one point and return its result folder's files as bytes (the writer stores them).

    Runs in a worker process (local pool or Dask worker); writes only into a private temporary folder.
    """
    import socket
    import tempfile
    import warnings

    import numba

    from ..experiment import result_dict, run_experiment, write_outputs

    cfg = copy.deepcopy(task["cfg"])
    threads = int(task.get("threads") or 0)
    cfg["run"]["threads"] = min(threads, numba.config.NUMBA_NUM_THREADS) if threads else 0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # the simulation's warnings go into done.json
        warnings.simplefilter("always")
        out = run_experiment(cfg)
        result = result_dict(out)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="leap-sde-point-") as tmp:
        warnings.simplefilter("ignore")  # matplotlib chatter from the point's plots
        write_outputs(tmp, out, plots=task.get("plots", True))
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())
                 if p.is_file() and not p.name.startswith(".")}
    return {"key": task["key"], "files": files, "result": result, "host": socket.gethostname(), "pid": os.getpid(),
            "version": __version__, "wall_s": time.perf_counter() - t0,
            "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught})}


def _worker_version() -> str:
    return __version__


class WorkerLost(RuntimeError):
    """The process running a point died (the point is resubmitted)."""


class _InlineRunner:
    """Runs points in this process, one at a time (``--workers 0``: debugging, tiny sweeps, tests)."""

    name = "inline"

    def __init__(self, threads):
        self.threads = threads
        self.slots = 1
        self.n_workers = 1

    def submit(self, task):
        from concurrent.futures import Future

        fut = Future()
        try:
            fut.set_result(_run_point(task))
        except Exception as e:  # noqa: BLE001 - reported as a failed point
            fut.set_exception(e)
        return fut

    def wait(self, futures, timeout):
        return {f for f in futures if f.done()}

    def result(self, fut):
        return fut.result()

    def close(self, cancel=False):
        pass


def _local_worker_init() -> None:
    """Pool workers ignore Ctrl-C (the writer handles it) and exit as soon as the writer process dies, even by
    SIGKILL and even while it stays an unreaped zombie.

    The watch is a pipe, not a PID: ``multiprocessing.parent_process().sentinel`` is the read end of a pipe whose
    write end only the writer holds (with the forkserver start method the workers are the fork server's
    children, but the pipe is the writer's); the kernel closes it when the writer dies, which wakes the
    blocking wait below.  A PID check cannot see a zombie die (its /proc entry and PID remain)."""
    import multiprocessing
    from multiprocessing.connection import wait

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - not started by multiprocessing
        return

    def watch():
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="leap-sde-writer-watch").start()


def _mp_context():
    """Workers are forked from a fork server that has imported leap_sde once (fast starts and restarts, no
    fork of a process with threads); ``spawn`` where there is no fork server (Windows)."""
    import multiprocessing as mp

    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(["leap_sde.experiment", "leap_sde.sweep"])
    return ctx


class _LocalRunner:
    """``concurrent.futures.ProcessPoolExecutor``; a dead worker breaks the pool, which is then restarted and
    the points in flight resubmitted."""

    name = "local"

    def __init__(self, workers: int, threads: int):
        self.n_workers = workers
        self.threads = threads
        self.slots = workers + max(1, workers // 2)  # a little queue so no worker waits for the writer
        self._pool = None
        self._start()

    def _start(self):
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=self.n_workers, mp_context=_mp_context(),
                                         initializer=_local_worker_init)

    def submit(self, task):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_run_point, task)
        except BrokenProcessPool:
            self.restart()
            return self._pool.submit(_run_point, task)

    def wait(self, futures, timeout):
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return done

    def result(self, fut):
        from concurrent.futures.process import BrokenProcessPool

        try:
            return fut.result()
        except BrokenProcessPool as e:
            raise WorkerLost(str(e) or "a worker process died") from None

    def restart(self):
        from concurrent.futures.process import BrokenProcessPool

        try:
            self._pool.shutdown(wait=False, cancel_futures=True)
        except BrokenProcessPool:  # pragma: no cover
            pass
        self._start()

    def close(self, cancel=False):
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskRunner:
    """``dask.distributed``: ``Client(scheduler)``, or a ``LocalCluster`` of worker processes on 127.0.0.1."""

    name = "dask"

    def __init__(self, scheduler, workers: int, threads: int):
        try:
            import logging

            from distributed import Client, LocalCluster
        except ImportError:
            raise SweepError("--executor dask needs dask.distributed: pip install 'leap_sde[dask]'") from None
        self.threads = threads
        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise SweepError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        try:
            self._check_workers(workers if not scheduler else 1)
        except BaseException:
            self.close()
            raise
        self._sized = 0.0
        self._resize()

    def _resize(self):
        """Points in flight follow the cluster's size (workers may join or leave while the sweep runs)."""
        nthreads = self.client.nthreads()
        self.n_workers = max(getattr(self, "n_workers", 0), len(nthreads))
        total = sum(nthreads.values())
        self.slots = max(2, total + max(1, total // 2))
        self._sized = time.monotonic()

    def _check_workers(self, n_min):
        try:
            self.client.wait_for_workers(n_min, timeout=120)
        except TimeoutError:
            raise SweepError(f"no Dask worker joined the scheduler {self.client.scheduler.address} within 120 s") \
                from None
        try:
            versions = self.client.run(_worker_version)
        except Exception as e:  # noqa: BLE001 - ModuleNotFoundError on the workers, pickling errors ...
            raise SweepError(f"the Dask workers cannot run leap_sde ({type(e).__name__}: {e}); install leap_sde "
                             f"{__version__} on every worker") from None
        bad = {w: v for w, v in versions.items() if v != __version__}
        if bad:
            raise SweepError(f"Dask workers run another leap_sde version than this client ({__version__}): "
                             + ", ".join(f"{w}: {v}" for w, v in sorted(bad.items())))

    def submit(self, task):
        # the key names the point and its config: two sweeps sharing a cluster never share a result wrongly
        key = f"leap-sde-point-{task['key']}-{config_hash(task['cfg'])}-{task['attempt']}"
        return self.client.submit(_run_point, task, key=key, pure=False)

    def wait(self, futures, timeout):
        from distributed import wait

        if time.monotonic() - self._sized > 10.0:
            self._resize()
        try:
            done, _ = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def result(self, fut):
        from distributed import KilledWorker

        try:
            return fut.result()
        except KilledWorker as e:
            raise WorkerLost(f"Dask gave up on the point after its workers died: {e}") from None
        finally:
            fut.release()

    def close(self, cancel=False):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def make_runner(executor: str = "local", *, workers=None, scheduler=None, threads=None):
    """The executor: ``"local"`` (process pool, ``workers=0`` runs in this process) or ``"dask"``."""
    if executor == "local":
        if scheduler:
            raise SweepError("--scheduler needs --executor dask")
        n = _cores() if workers is None else int(workers)
        if n < 0:
            raise SweepError(f"--workers: must be >= 0, got {n}")
        t = threads if threads is not None else (0 if n <= 1 else max(1, _cores() // n))
        return _InlineRunner(t) if n == 0 else _LocalRunner(n, t)
    if executor == "dask":
        n = _cores() if workers is None else int(workers)
        if n < 1:
            raise SweepError(f"--workers: must be >= 1 with --executor dask, got {n}")
        t = threads if threads is not None else (1 if scheduler else max(1, _cores() // n))
        return _DaskRunner(scheduler, n, t)
    raise SweepError(f"--executor: must be 'local' or 'dask', got {executor!r}")
