#!/usr/bin/env python3
"""How often each variant surfaces each race outcome, per workload, over N seeds.

Per cell (workload, variant): in how many seeds a migration race window was hit, the
anon_vma was freed outside the migration's RCU section (unprotected), the slab page was
destroyed before the walk; and in how many seeds an anon_vma access of each harm (benign,
corrupting, use_after_free), a migration_pte_leak, a stale_stable_node or an oops was
reported. Every count comes with its 95% Wilson interval. Writes
results/reference/hit-rates.json and prints Markdown tables (README.md quotes them).

    python benchmarks/hit_rates.py [--seeds 40] [--start 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from sim.stats import wilson  # noqa: E402

WORKLOADS = ("hotremove-exit", "numa-exit", "ksm-fork-migrate")
PACKED = ("v2.6.33", "no-rcu", "anon-vma-refcount", "anon-vma-lock-get")   # at 170 per slab
OUTCOMES = ("window_hit", "freed_outside_rcu", "slab_released", "benign", "corrupting",
            "use_after_free", "migration_pte_leak", "stale_stable_node", "oops")


def outcomes(r: sim.Result) -> dict[str, int]:
    """What one run shows, as counts (a seed 'shows' an outcome if its count is > 0)."""
    w = r.windows.get("migration_anon_vma", {})
    out = {"window_hit": w.get("hits", 0), **w.get("hit_classes", {})}
    out.update(r.harm_counts)
    for kind in ("migration_pte_leak", "stale_stable_node", "oops"):
        out[kind] = r.violation_counts.get(kind, 0)
    other = set(r.violation_counts) - {"anon_vma_stale", "anon_vma_use_after_free",
                                        "migration_pte_leak", "stale_stable_node", "oops"}
    out.update({k: r.violation_counts[k] for k in other})
    out["windows"] = w.get("count", 0)
    return out


def one(job: tuple[str, str, int, tuple]) -> tuple[tuple, dict[str, int]]:
    wl, v, s, over = job
    return job, outcomes(sim.simulate(wl, variant=v, seed=s, **dict(over)))


def cell_text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k}/{n} ({100 * lo:.0f}-{100 * hi:.0f}%)"


def table(cells: dict[tuple[str, str], list[dict[str, int]]], title: str) -> list[str]:
    lines = [title, "", "| workload | variant | " + " | ".join(OUTCOMES) + " |",
             "|---|---|" + "---|" * len(OUTCOMES)]
    for (wl, v), runs in cells.items():
        n = len(runs)
        row = [cell_text(sum(1 for r in runs if r.get(o, 0) > 0), n) for o in OUTCOMES]
        lines.append(f"| {wl} | {v} | " + " | ".join(row) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    seeds = range(a.start, a.start + a.seeds)
    jobs = [(w, v, s, ()) for w in WORKLOADS for v in sim.VARIANTS for s in seeds]
    packed = (("anon_vma_per_slab", 170),)
    jobs += [("hotremove-exit", v, s, packed) for v in PACKED for s in seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(one, jobs, chunksize=4))
    wall = time.perf_counter() - t0
    cells: dict[tuple[str, str], list[dict[str, int]]] = {}
    packed_cells: dict[tuple[str, str], list[dict[str, int]]] = {}
    for (w, v, s, over), res in results:
        (packed_cells if over else cells).setdefault((w, v), []).append(res)
    command = f"python benchmarks/hit_rates.py --seeds {a.seeds} --start {a.start}"
    summary = {
        f"{w}/{v}" + ("/anon_vma_per_slab=170" if c is packed_cells else ""): {
            o: {"seeds": sum(1 for r in runs if r.get(o, 0) > 0), "of": len(runs),
                "ci95": [round(x, 4) for x in wilson(sum(1 for r in runs
                                                          if r.get(o, 0) > 0), len(runs))]}
            for o in OUTCOMES}
        for c in (cells, packed_cells) for (w, v), runs in c.items()}
    out = ROOT / "results" / "reference"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hit-rates.json").write_text(json.dumps({
        "command": command, "seeds": [seeds.start, seeds.stop - 1],
        "simulator_version": sim.__version__, "cells": summary,
        "runs": [{"workload": w, "variant": v, "seed": s, "params": dict(over), **res}
                 for (w, v, s, over), res in results]}, indent=1) + "\n")
    print(f"seeds {seeds.start}-{seeds.stop - 1}: in how many seeds each outcome appeared, "
          f"with its 95% Wilson interval ({len(jobs)} runs, {wall:.0f} s wall on "
          f"{a.jobs} jobs; `{command}`)\n")
    print("\n".join(table(cells, "At each workload's defaults (2 anon_vmas per slab page):")))
    print()
    print("\n".join(table(packed_cells, "hotremove-exit at a realistic slab packing "
                                        "(`--set anon_vma_per_slab=170`):")))


if __name__ == "__main__":
    main()
