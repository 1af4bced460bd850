#!/usr/bin/env python3
"""Lock acquire/release pairs per second: rmapsim's instrumented locks vs a bare SimPy Resource.

Both sides do the same work in the same process: N processes each think Exp(10 us), take one
lock, hold it Exp(2 us), release, until `pairs` pairs in total. The bare side is simpy.Resource
with numpy draws taken from the same kind of buffered stream; the rmapsim side goes through the
kernel engine (seeded tie order, choice points, CPUs, lock_stat, lockdep, trace ring).

    python benchmarks/bench_locks.py [--pairs 200000] [--cpus 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402


def bare_simpy(pairs: int, cpus: int, seed: int) -> float:
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=1)
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    left = [pairs]

    def exp(mean: float) -> float:
        if not draws:
            draws.extend(rng.standard_exponential(4096).tolist())
        return mean * draws.pop()

    def cpu(env):
        while left[0] > 0:
            yield env.timeout(exp(10.0))
            left[0] -= 1
            req = res.request()
            yield req
            yield env.timeout(exp(2.0))
            res.release(req)

    for _ in range(cpus):
        env.process(cpu(env))
    t = time.perf_counter()
    env.run()
    return time.perf_counter() - t


def rmapsim(pairs: int, cpus: int, seed: int, lock: str) -> float:
    t = time.perf_counter()
    sim.simulate("lock-calibration", seed=seed, cpus=cpus, acquisitions=pairs, lock=lock)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200_000)
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    bare = min(bare_simpy(a.pairs, a.cpus, s) for s in range(a.repeat))
    print(f"bare SimPy Resource : {a.pairs / bare:12,.0f} pairs/s  ({bare:.3f} s)")
    for lock in ("spinlock", "mutex", "rwsem"):
        ours = min(rmapsim(a.pairs, a.cpus, s, lock) for s in range(a.repeat))
        print(f"rmapsim {lock:<12}: {a.pairs / ours:12,.0f} pairs/s  ({ours:.3f} s)  "
              f"cost vs bare SimPy: {ours / bare:.2f}x")


if __name__ == "__main__":
    main()
