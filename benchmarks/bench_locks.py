#!/usr/bin/env python3
"""Lock acquire/release pairs: rmapsim's instrumented locks vs a bare SimPy Resource, each side
measured as a whole process, with bytecode cached (one warm-up run first).

Both sides do the same work: N CPUs each think Exp(10 us), take one lock, hold it Exp(2 us),
release, until `pairs` pairs in total (the M/M/1//N loop). The bare side is simpy.Resource
with numpy draws from a buffered stream, in its own process (`--side bare`); the rmapsim side
is `run.py run lock-calibration --json` (seeded tie order, choice points, CPUs, lock_stat with
p50/p99, lockdep, the deadlock detector, limits, trace rings, the calibration verdict). Each
pair runs the two processes one after the other (alternating which goes first); the ratio
reported is the median over the pairs of rmapsim wall / bare wall, with the spread (min-max).

    python benchmarks/bench_locks.py [--pairs 300000] [--cpus 4] [--repeat 5]
                                     [--locks spinlock,mutex,rwsem]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bare_simpy(pairs: int, cpus: int, seed: int) -> None:
    import numpy as np
    import simpy

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
    env.run()


# Both sides run with their bytecode cached, as any run after the first does: where the
# environment sets PYTHONDONTWRITEBYTECODE, rmapsim's side would otherwise compile its ~90
# modules in every process (about 0.1 s) and bare SimPy's installed, precompiled modules not.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=300_000)
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5, help="pairs of processes per lock kind")
    ap.add_argument("--locks", default="spinlock,mutex,rwsem")
    ap.add_argument("--side", choices=("bare",), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side == "bare":
        bare_simpy(a.pairs, a.cpus, a.seed)
        return
    py = sys.executable
    print(f"{a.pairs:,} acquire/release pairs on {a.cpus} CPUs, whole processes, "
          f"median of {a.repeat} pairs (min-max)")
    wall([py, "run.py", "run", "lock-calibration", "--json", "--set", "acquisitions=1"])
    for lock in a.locks.split(","):
        bare_t, ours_t, ratios = [], [], []
        for s in range(a.repeat):
            bare = [py, str(Path(__file__).resolve()), "--side", "bare", "--pairs",
                    str(a.pairs), "--cpus", str(a.cpus), "--seed", str(s)]
            ours = [py, "run.py", "run", "lock-calibration", "--json", "--seed", str(s),
                    "--set", f"acquisitions={a.pairs}", "--set", f"cpus={a.cpus}",
                    "--set", f"lock={lock}"]
            if s % 2:
                o, b = wall(ours), wall(bare)
            else:
                b, o = wall(bare), wall(ours)
            bare_t.append(b)
            ours_t.append(o)
            ratios.append(o / b)
        print(f"  {lock:<9} rmapsim {statistics.median(ours_t):6.2f} s "
              f"({min(ours_t):.2f}-{max(ours_t):.2f})   bare SimPy "
              f"{statistics.median(bare_t):6.2f} s ({min(bare_t):.2f}-{max(bare_t):.2f})   "
              f"ratio {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})",
              flush=True)


if __name__ == "__main__":
    main()
