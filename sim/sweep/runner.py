"""Running a sweep: what is not yet in the store is run, in batches, on a backend; each
finished batch is committed by this (the coordinating) process at once. The library never
prints: progress goes to a callback."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.sweep.backends import Batch, check_backend, make_backend, usable_jobs
from sim.sweep.grid import SweepDef
from sim.sweep.store import DATABASE, Store, check_dir

WINDOW_PER_JOB = 4       # batches per job handed to the backend at a time

Progress = Callable[[int, int, float], None]     # (runs done, runs in all, runs per second)


@dataclass
class SweepOutcome:
    total: int
    skipped: int           # already in the store when this call began
    ran: int
    rows: list[dict[str, Any]]
    interrupted: bool = False
    stored: int = 0        # runs in the store (or kept) at the end


def run_key(cell_key: str, rep: int) -> str:
    return hashlib.sha256(f"{cell_key}#{rep}".encode()).hexdigest()[:20]


def plan(sweep: SweepDef) -> Iterator[dict[str, Any]]:
    """Every run of the sweep, as the items the backends run, made one at a time."""
    for cell, rep, spec in sweep.iter_specs():
        yield {"spec": spec.to_dict(), "cell": cell.index, "cell_key": cell.key, "rep": rep,
               "swept": dict(cell.values), "run_key": run_key(cell.key, rep)}


def batch_size(n: int, jobs: int, batch: int | None) -> int:
    """Short runs go several to a task; about eight tasks per job keep the load even."""
    return batch or max(1, min(16, math.ceil(n / (jobs * 8))))


def batches_of(items: Iterable[dict[str, Any]], size: int) -> Iterator[Batch]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def windows(batches: Iterator[Batch], n: int) -> Iterator[list[Batch]]:
    """A few batches per job at a time: what waits to run is bounded, whatever the sweep."""
    while window := list(itertools.islice(batches, n)):
        yield window


def run_sweep(sweep: SweepDef, out: str | os.PathLike | None = None, *,
              backend: str = "local", jobs: int | None = None, address: str | None = None,
              batch: int | None = None, progress: Progress | None = None,
              keep_rows: bool = True) -> SweepOutcome:
    """Run every cell x replication not yet stored in `out` (None: keep rows in memory).
    Returns the rows of the whole sweep, in cell and replication order. Runs are made and
    sent a window at a time (never the whole grid at once); `jobs` beyond the machine's
    CPUs is capped (sim.sweep.backends.usable_jobs). keep_rows=False (the command line)
    returns no rows, only their count: a large stored sweep is not read back into memory."""
    check_backend(backend, address)
    jobs = usable_jobs(jobs, backend)
    d = check_dir(out, sweep) if out is not None else None
    total = sweep.n_runs()
    rows: dict[str, tuple] = {}
    interrupted = False
    be = None
    # A new sweep: the backend first (it may refuse), so a refusal writes nothing. A stored
    # one: the store first, to know what is left.
    if d is None or not (d / DATABASE).exists():
        be = make_backend(backend, min(jobs, total), address)
    try:
        store = Store(d, sweep) if d is not None else None
    except BaseException:
        if be is not None:
            be.close()
        raise
    try:
        done = store.done() if store is not None else set()
        todo_n = total - len(done)
        if todo_n and be is None:
            be = make_backend(backend, min(jobs, todo_n), address)
        t0 = time.monotonic()
        finished = total - todo_n
        if progress:
            progress(finished, total, 0.0)
        if be is not None:
            todo = (it for it in plan(sweep) if it["run_key"] not in done)
            size = batch_size(todo_n, be.jobs, batch)
            for window in windows(batches_of(todo, size), be.jobs * WINDOW_PER_JOB):
                for result in be.map(window):
                    if store is not None:
                        store.add(result)
                    for r in result:
                        rows[r[0]] = r
                    finished += len(result)
                    if progress:
                        progress(finished, total, (finished - (total - todo_n)) /
                                 max(time.monotonic() - t0, 1e-9))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if be is not None:
            be.close()
        if store is not None:
            try:
                stored = store.count()
                all_rows = store.rows() if keep_rows else []
            finally:
                store.close()
    if store is None:
        all_rows = [json.loads(r[4]) for r in sorted(rows.values(), key=lambda r: (r[1], r[2]))]
        stored = len(all_rows)
    return SweepOutcome(total, total - todo_n, len(rows), all_rows, interrupted, stored)


def stored_rows(out: str | os.PathLike) -> list[dict[str, Any]]:
    store = Store(check_dir(out))
    try:
        return store.rows()
    finally:
        store.close()


__all__ = ["run_sweep", "stored_rows", "SweepOutcome", "Path"]
