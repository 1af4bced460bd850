"""Where work executes, behind one small interface: `run(fn, items)` yields `(i, fn(items[i]))`
as each item is done, in any order (`fn` a module-level function, so that it can be sent to
another process); `map(batches)` runs a sweep's batches and yields their rows. Sweeps, hunts
and explores use it; their results are the same whichever backend, and whatever the number
of jobs, ran them.

- `serial`: in this process, one batch after another;
- `local` (default): a pool of worker processes on this machine;
- `dask`: a Dask distributed cluster: a LocalCluster of `jobs` worker processes, or an
  existing scheduler at `address` (its workers must have rmapsim installed). Needs the
  `dask` extra (`pip install rmapsim[dask]`).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sim.api import run_spec
from sim.errors import InputError
from sim.spec import RunSpec
from sim.sweep.row import encode, row_of

Batch = list[dict[str, Any]]          # [{"spec": ..., "cell": i, "cell_key": k, "rep": r,
                                      #   "swept": {...}, "run_key": ...}]
Done = list[tuple[str, int, int, int, str]]


def run_batch(batch: Batch) -> Done:
    """Run each item of a batch (in a worker) and return its store rows."""
    out = []
    for item in batch:
        spec = RunSpec.from_dict(item["spec"])
        result = run_spec(spec)
        if result.truncated == "interrupted":       # never store half a run
            raise KeyboardInterrupt
        row = row_of(result, item["cell"], item["cell_key"], item["rep"], item["swept"])
        out.append((item["run_key"], item["cell"], item["rep"], spec.seed, encode(row)))
    return out


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the coordinator's to handle


def _indexed(job: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    fn, i, item = job
    return i, fn(item)


class Backend:
    name = "base"
    jobs = 1

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any],
            drain: bool = False) -> Iterator[tuple[int, Any]]:
        """With drain=True, Ctrl-C is passed on to the items running (fn must then return
        what it has so far, not raise) and their results are still yielded before
        KeyboardInterrupt is raised; where that is impossible, it is raised at once."""
        raise NotImplementedError

    def map(self, batches: list[Batch]) -> Iterator[Done]:
        for _, rows in self.run(run_batch, batches):
            yield rows

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Serial(Backend):
    name = "serial"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = 1

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any],
            drain: bool = False) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(item)


class LocalPool(Backend):
    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = multiprocessing.get_context().Pool(jobs, initializer=_ignore_sigint)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any],
            drain: bool = False) -> Iterator[tuple[int, Any]]:
        it = self.pool.imap_unordered(_indexed, [(fn, i, x) for i, x in enumerate(items)])
        if not drain:
            yield from it
            return
        interrupted = False
        for _ in range(len(items)):
            while True:
                try:
                    got = it.next(timeout=0.2) if interrupted else it.next()
                    break
                except KeyboardInterrupt:
                    interrupted = True
                    self._interrupt_workers()
                except multiprocessing.TimeoutError:
                    self._interrupt_workers()      # items that started after the first
            yield got
        if interrupted:
            raise KeyboardInterrupt

    def _interrupt_workers(self) -> None:
        """SIGINT to each worker (Ctrl-C on a terminal does that too; `kill -INT` of this
        process does not); a worker outside fn ignores it (_ignore_sigint)."""
        for proc in getattr(self.pool, "_pool", []):      # the Pool's worker processes
            if proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGINT)
                except OSError:
                    pass

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class DaskCluster(Backend):
    name = "dask"

    def __init__(self, jobs: int, address: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--backend dask needs Dask: pip install 'rmapsim[dask]'") from None
        self.cluster = None
        try:
            if address:
                self.client = Client(address, timeout="10s")
            else:
                self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1,
                                            processes=True, dashboard_address=None)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"no Dask scheduler answers at {address}: {e}; start one with "
                             "`dask scheduler` and workers with `dask worker ADDRESS`") from None
        self.jobs = max(1, sum(w.get("nthreads", 1) for w in
                               self.client.scheduler_info().get("workers", {}).values()))

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any],
            drain: bool = False) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed
        futures = {self.client.submit(fn, x, pure=False): i for i, x in enumerate(items)}
        for f in as_completed(list(futures)):
            yield futures[f], f.result()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


BACKENDS = ("local", "dask", "serial")
_ADDRESS = re.compile(r"([a-z]+://)?(\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):[0-9]{1,5}/?", re.ASCII)


def check_backend(name: "str | Backend", address: str | None) -> None:
    """Refuse, before any work, an address the backend would ignore or could not parse."""
    if isinstance(name, Backend):
        return
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; valid: " + ", ".join(BACKENDS))
    if address is None:
        return
    if name != "dask":
        raise InputError(f"--address is for --backend dask; the {name} backend would ignore "
                         f"it (give --backend dask --address {address}, or no --address)")
    if not _ADDRESS.fullmatch(address):
        raise InputError(f"--address {address!r} is not a scheduler address; give "
                         "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)")


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usable_jobs(jobs: int | None, backend: "str | Backend" = "local") -> int:
    """Worker processes to start on this machine: the CPU count by default, and never more
    (more processes than CPUs only cost memory). A Dask scheduler elsewhere is not capped."""
    cpus = machine_cpus()
    if jobs is None:
        return cpus
    return jobs if backend == "dask" or isinstance(backend, Backend) else min(jobs, cpus)


def make_backend(name: "str | Backend", jobs: int, address: str | None = None) -> Backend:
    if isinstance(name, Backend):       # one made already (or a test's own)
        return name
    check_backend(name, address)
    jobs = usable_jobs(jobs, name)
    if name == "serial":
        return Serial()
    if name == "local":
        return Serial() if jobs == 1 else LocalPool(jobs)
    if name == "dask":
        return DaskCluster(jobs, address)
    raise InputError(f"unknown backend {name!r}; valid: local, dask, serial")
