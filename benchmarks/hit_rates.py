#!/usr/bin/env python3
"""How often each variant surfaces each race outcome, per workload: a sweep (sim.sweep) of
every variant with `--reps` replications per workload, one at a realistic slab packing, and a
deep cell of `--deep` replications of hotremove-exit under v2.6.33 for its rare
use-after-free.

Per cell: in how many replications a migration race window was hit, the anon_vma was freed
outside the migration's RCU section (unprotected), the slab page was destroyed before the
walk; and in how many an anon_vma access of each harm (benign, unprotected, corrupting, use_after_free),
a migration_pte_leak, a stale_stable_node or an oops was reported; each with its 95% Wilson
interval. Writes results/reference/hit-rates.json and prints Markdown tables (README.md
quotes them). Seeds derive from --seed, each cell and replication (sim.sweep).

    python benchmarks/hit_rates.py [--reps 40] [--deep 200] [--seed 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from sim.mm.checks.kasan import HARMS  # noqa: E402
from sim.engine.stats import wilson  # noqa: E402
from sim.sweep import make_sweep, run_sweep  # noqa: E402

WORKLOADS = ("hotremove-exit", "numa-exit", "ksm-fork-migrate")
PACKED = ("v2.6.33", "no-rcu", "anon-vma-refcount", "anon-vma-lock-get")   # at 128 per slab (x86_64)
OUTCOMES = ("window_hit", "freed_outside_rcu", "slab_released", "benign", "unprotected",
            "corrupting", "use_after_free", "migration_pte_leak", "stale_stable_node", "oops")
WIN = "win.migration_anon_vma."


def shows(row: dict, outcome: str) -> bool:
    if outcome == "window_hit":
        return (row.get(WIN + "hits") or 0) > 0
    if outcome in ("freed_outside_rcu", "slab_released"):
        return (row.get(WIN + f"hits.{outcome}") or 0) > 0
    if outcome in HARMS:
        return row[f"harm.{outcome}"] > 0
    return row[f"v.{outcome}"] > 0


def cell(rows: list[dict]) -> dict:
    n = len(rows)
    out = {}
    for o in OUTCOMES:
        k = sum(1 for r in rows if shows(r, o))
        out[o] = {"seeds": k, "of": n, "ci95": [round(x, 4) for x in wilson(k, n)]}
    return out


def text(c: dict) -> str:
    k, n = c["seeds"], c["of"]
    lo, hi = c["ci95"]
    return f"{k}/{n} ({100 * lo:.0f}-{100 * hi:.0f}%)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--deep", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    sweeps = [(f"{wl}", make_sweep(wl, variants=list(sim.VARIANTS), reps=a.reps, seed=a.seed))
              for wl in WORKLOADS]
    sweeps.append(("hotremove-exit/anon_vma_per_slab=128",
                   make_sweep("hotremove-exit", variants=list(PACKED), reps=a.reps,
                              seed=a.seed, overrides={"anon_vma_per_slab": 128})))
    sweeps.append(("hotremove-exit/deep", make_sweep("hotremove-exit", reps=a.deep,
                                                     seed=a.seed + 1)))
    t0 = time.perf_counter()
    cells, runs = {}, 0
    for label, sweep in sweeps:
        rows = run_sweep(sweep, jobs=a.jobs).rows
        runs += len(rows)
        for variant in sweep.variants:
            cells[f"{label}/{variant}" if "/" not in label else
                  f"{label.split('/')[0]}/{variant}/{label.split('/')[1]}"] = \
                cell([r for r in rows if r["variant"] == variant])
    wall = time.perf_counter() - t0
    command = (f"python benchmarks/hit_rates.py --reps {a.reps} --deep {a.deep} "
               f"--seed {a.seed}")
    out = ROOT / "results" / "reference"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hit-rates.json").write_text(json.dumps({
        "command": command, "reps": a.reps, "deep": a.deep, "seed": a.seed,
        "simulator_version": sim.__version__, "runs": runs, "wall_s": round(wall),
        "cells": cells}, indent=1) + "\n")
    print(f"{runs} runs, {wall:.0f} s wall on {a.jobs} jobs (`{command}`); in how many "
          "replications each outcome appeared, with its 95% Wilson interval\n")
    head = "| cell | " + " | ".join(OUTCOMES) + " |"
    print(head)
    print("|---|" + "---|" * len(OUTCOMES))
    for name, c in cells.items():
        print(f"| {name} | " + " | ".join(text(c[o]) for o in OUTCOMES) + " |")


if __name__ == "__main__":
    main()
