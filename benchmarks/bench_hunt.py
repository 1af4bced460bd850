#!/usr/bin/env python3
"""Race-hunting effort: executions and wall time to the first v2.6.33 use-after-free on
hotremove-exit-mini, for PCT and a random walk (over `--hunts` strategy seeds: median and
range), for the bounded exhaustive search (deterministic), and for seeds of the timed model
(with memcg reclaim on, as timed runs need); then the exhaustive search's throughput on the
repaired kernel (a complete proof at 2 preemptions).

    python benchmarks/bench_hunt.py [--hunts 20] [--budget 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402
from sim.race import Target, explore, hunt  # noqa: E402

UAF = Target(kind="anon_vma_use_after_free")


def row(name: str, execs: list[int], walls: list[float], missed: int, budget: int) -> str:
    found = len(execs)
    if not found:
        return f"  {name:<22} none in {budget} executions, {missed} hunts"
    return (f"  {name:<22} median {statistics.median(execs):7.0f}  "
            f"range {min(execs)}-{max(execs)}  median {statistics.median(walls):6.2f} s"
            f"  ({found} found, {missed} missed at {budget})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hunts", type=int, default=20)
    ap.add_argument("--budget", type=int, default=5000)
    a = ap.parse_args()
    spec = sim.spec_for("hotremove-exit-mini")
    print(f"executions to the first {UAF.describe()}, hotremove-exit-mini v2.6.33, "
          f"{a.hunts} hunts each, 1 job:")
    for strategy in ("pct", "random"):
        execs, walls, missed = [], [], 0
        for s in range(a.hunts):
            out = hunt(spec, strategy, a.budget, target=UAF, seed=s)
            if out.found is None:
                missed += 1
            else:
                execs.append(out.executions)
                walls.append(out.wall_s)
        print(row(strategy, execs, walls, missed, a.budget), flush=True)
    out = hunt(spec, "dfs", a.budget * 10, target=UAF, depth=2)
    print(f"  {'dfs (bound 2)':<22} {out.executions:7d}  (deterministic)  "
          f"{out.wall_s:6.2f} s", flush=True)
    timed = sim.spec_for("hotremove-exit-mini", params={"memcg_reclaim_prob": 0.3})
    out = hunt(timed, "seeds", a.budget, target=UAF)
    print(f"  {'seeds (timed, memcg)':<22} "
          + (f"{out.executions:7d}" if out.found else f"none in {out.executions}")
          + f"  {out.wall_s:6.2f} s", flush=True)
    for jobs in (1, 2):
        t = time.perf_counter()
        e = explore(sim.spec_for("hotremove-exit-mini", variant="anon-vma-lock-get"), 2,
                    jobs=jobs)
        dt = time.perf_counter() - t
        print(f"explore anon-vma-lock-get, bound 2, {jobs} job(s): {e.executions} executions "
              f"({e.pruned} pruned), complete={e.complete}, violations={len(e.violations)}, "
              f"{dt:.1f} s, {e.executions / dt:.0f} executions/s", flush=True)


if __name__ == "__main__":
    main()
