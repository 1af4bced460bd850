#!/usr/bin/env python3
"""Events per second and wall time of the mm model (hotremove-exit), at its default size and
with 10x the processes (memory scaled so the processes fit), same simulated duration.

    python benchmarks/bench_mm.py [--seeds 3] [--workload hotremove-exit]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402


def measure(workload: str, seed: int, **over: object) -> tuple[float, int, float, int]:
    t = time.perf_counter()
    r = sim.simulate(workload, seed=seed, **over)
    wall = time.perf_counter() - t
    tracemalloc.start()                    # a second run, traced: peak Python heap
    sim.simulate(workload, seed=seed, **over)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return wall, r.events, r.sim_time_us, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="hotremove-exit")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    _, base = sim.resolve_params(a.workload)
    sizes = {
        "default": {},
        "10x processes": {"processes": base["processes"] * 10,
                          "memory_blocks": base["memory_blocks"] * 6},
        "10x processes and cpus": {"processes": base["processes"] * 10,
                                   "memory_blocks": base["memory_blocks"] * 6,
                                   "cpus": base["cpus"] * 10},
    }
    print(f"{a.workload}: {base['duration_ms']} simulated ms per run, {a.seeds} seeds each")
    for name, over in sizes.items():
        rows = [measure(a.workload, s, **over) for s in range(a.seeds)]
        wall = statistics.mean(r[0] for r in rows)
        events = statistics.mean(r[1] for r in rows)
        peak = max(r[3] for r in rows)
        print(f"  {name:<24} wall {wall:6.2f} s   events {events:10,.0f}   "
              f"{events / wall:9,.0f} events/s   peak traced memory {peak / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main()
