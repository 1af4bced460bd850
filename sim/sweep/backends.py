"""Where a sweep's runs execute, behind one small interface: `map(batches)` yields each
batch's rows as soon as that batch is done (in any order). The rows are the same whichever
backend, and whatever the number of jobs, ran them.

- `serial`: in this process, one batch after another;
- `local` (default): a pool of worker processes on this machine;
- `dask`: a Dask distributed cluster: a LocalCluster of `jobs` worker processes, or an
  existing scheduler at `address` (its workers must have rmapsim installed). Needs the
  `dask` extra (`pip install rmapsim[dask]`).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from typing import Any

from ..api import run_spec
from ..errors import InputError
from ..spec import RunSpec
from .row import encode, row_of

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


class Serial:
    name = "serial"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = 1

    def map(self, batches: list[Batch]) -> Iterator[Done]:
        for b in batches:
            yield run_batch(b)

    def close(self) -> None:
        pass


class LocalPool:
    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = multiprocessing.get_context().Pool(jobs, initializer=_ignore_sigint)

    def map(self, batches: list[Batch]) -> Iterator[Done]:
        yield from self.pool.imap_unordered(run_batch, batches)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class DaskCluster:
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
        except (OSError, TimeoutError) as e:
            raise InputError(f"no Dask scheduler answers at {address}: {e}; start one with "
                             "`dask scheduler` and workers with `dask worker ADDRESS`") from None
        self.jobs = max(1, sum(w.get("nthreads", 1) for w in
                               self.client.scheduler_info().get("workers", {}).values()))

    def map(self, batches: list[Batch]) -> Iterator[Done]:
        from distributed import as_completed
        futures = [self.client.submit(run_batch, b, pure=False) for b in batches]
        for f in as_completed(futures):
            yield f.result()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(name: str, jobs: int, address: str | None = None) -> Any:
    if name == "serial":
        return Serial()
    if name == "local":
        return Serial() if jobs == 1 else LocalPool(jobs)
    if name == "dask":
        return DaskCluster(jobs, address)
    raise InputError(f"unknown backend {name!r}; valid: local, dask, serial")
