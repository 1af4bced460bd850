"""Running a sweep: what is not yet in the store is run, in batches, on a backend; each
finished batch is committed by this (the coordinating) process at once. The library never
prints: progress goes to a callback."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.sweep.backends import Batch, make_backend
from sim.sweep.grid import SweepDef
from sim.sweep.store import DATABASE, Store, check_dir

Progress = Callable[[int, int, float], None]     # (runs done, runs in all, runs per second)


@dataclass
class SweepOutcome:
    total: int
    skipped: int           # already in the store when this call began
    ran: int
    rows: list[dict[str, Any]]
    interrupted: bool = False


def run_key(cell_key: str, rep: int) -> str:
    return hashlib.sha256(f"{cell_key}#{rep}".encode()).hexdigest()[:20]


def plan(sweep: SweepDef) -> list[dict[str, Any]]:
    """Every run of the sweep, as the items the backends run."""
    return [{"spec": spec.to_dict(), "cell": cell.index, "cell_key": cell.key, "rep": rep,
             "swept": dict(cell.values), "run_key": run_key(cell.key, rep)}
            for cell, rep, spec in sweep.specs()]


def batches_of(items: list[dict[str, Any]], jobs: int, batch: int | None) -> list[Batch]:
    """Short runs go several to a task; about eight tasks per job keep the load even."""
    size = batch or max(1, min(16, math.ceil(len(items) / (jobs * 8))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_sweep(sweep: SweepDef, out: str | os.PathLike | None = None, *,
              backend: str = "local", jobs: int | None = None, address: str | None = None,
              batch: int | None = None, progress: Progress | None = None) -> SweepOutcome:
    """Run every cell x replication not yet stored in `out` (None: keep rows in memory).
    Returns the rows of the whole sweep, in cell and replication order."""
    jobs = jobs or os.cpu_count() or 1
    d = check_dir(out, sweep) if out is not None else None
    items = plan(sweep)
    done = already_done(d) if d is not None else set()
    todo = [it for it in items if it["run_key"] not in done]
    rows: dict[str, tuple] = {}
    interrupted = False
    be = make_backend(backend, jobs, address) if todo else None   # may refuse: nothing written
    store = Store(d, sweep) if d is not None else None
    t0 = time.monotonic()
    finished = len(items) - len(todo)
    try:
        if progress:
            progress(finished, len(items), 0.0)
        if be is not None:
            for result in be.map(batches_of(todo, be.jobs, batch)):
                if store is not None:
                    store.add(result)
                for r in result:
                    rows[r[0]] = r
                finished += len(result)
                if progress:
                    progress(finished, len(items),
                             (finished - (len(items) - len(todo))) /
                             max(time.monotonic() - t0, 1e-9))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if be is not None:
            be.close()
    if store is not None:
        all_rows = store.rows()
        store.close()
    else:
        import json
        all_rows = [json.loads(r[4]) for r in sorted(rows.values(), key=lambda r: (r[1], r[2]))]
    return SweepOutcome(len(items), len(items) - len(todo), len(rows), all_rows, interrupted)


def already_done(d: Path) -> set[str]:
    if not (d / DATABASE).exists():
        return set()
    store = Store(d)
    try:
        return store.done()
    finally:
        store.close()


def stored_rows(out: str | os.PathLike) -> list[dict[str, Any]]:
    store = Store(check_dir(out))
    try:
        return store.rows()
    finally:
        store.close()


__all__ = ["run_sweep", "stored_rows", "SweepOutcome", "Path"]
