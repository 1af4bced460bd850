#!/usr/bin/env python3
"""Sweep throughput: runs per second of a sweep of short runs with 1 and 2 jobs on the local
pool (the speed-up of the second core), and the per-run overhead of a Dask LocalCluster
against the same pool.

    python benchmarks/bench_sweep.py [--reps 48] [--duration-ms 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.sweep import make_sweep, run_sweep  # noqa: E402


def timed(sweep, **kw) -> float:
    t = time.perf_counter()
    out = run_sweep(sweep, **kw)
    assert len(out.rows) == out.total
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=48)
    ap.add_argument("--duration-ms", type=float, default=20.0)
    a = ap.parse_args()
    sweep = make_sweep("hotremove-exit", variants=["v2.6.33", "no-rcu"], reps=a.reps // 2,
                       overrides={"duration_ms": a.duration_ms})
    n = len(sweep.specs())
    timed(sweep, backend="serial")                      # warm caches and imports
    one = timed(sweep, backend="local", jobs=1)
    two = timed(sweep, backend="local", jobs=2)
    dask = timed(sweep, backend="dask", jobs=2)
    print(f"{n} runs of hotremove-exit, {a.duration_ms:g} simulated ms each")
    print(f"  local, 1 job : {one:6.2f} s  {n / one:6.2f} runs/s")
    print(f"  local, 2 jobs: {two:6.2f} s  {n / two:6.2f} runs/s  speed-up {one / two:.2f}x")
    print(f"  dask LocalCluster, 2 workers: {dask:6.2f} s  {n / dask:6.2f} runs/s  "
          f"overhead {1000 * (dask - two) / n:+.1f} ms per run against the local pool "
          f"(cluster start-up included)")


if __name__ == "__main__":
    main()
