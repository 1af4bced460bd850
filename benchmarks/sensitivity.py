#!/usr/bin/env python3
"""How the headline rates depend on the two settings the model cannot source exactly: the
grace period's length (`rcu_gp_us`) and the anon_vma slab packing (`anon_vma_per_slab`).

A sweep (sim.sweep) of hotremove-exit under v2.6.33 over rcu_gp_us x anon_vma_per_slab, with
`--reps` replications per cell: in how many a migration window was hit, and an anon_vma
access of harm benign, unprotected or use_after_free was reported, each with its 95% Wilson
interval. Writes results/reference/sensitivity.json and prints a Markdown table (README.md
quotes it).

    python benchmarks/sensitivity.py [--reps 40] [--seed 0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import sim  # noqa: E402
from hit_rates import cell, text  # noqa: E402
from sim.sweep import make_sweep, run_sweep  # noqa: E402

GP_US = (1000.0, 3000.0, 10000.0, 30000.0)
PER_SLAB = (2, 16, 128)
SHOWN = ("window_hit", "benign", "unprotected", "use_after_free")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    sweep = make_sweep("hotremove-exit", variants=["v2.6.33"], reps=a.reps, seed=a.seed,
                       grid=[("rcu_gp_us", list(GP_US)), ("anon_vma_per_slab", list(PER_SLAB))])
    t0 = time.perf_counter()
    rows = run_sweep(sweep, jobs=a.jobs).rows
    wall = time.perf_counter() - t0
    cells = {}
    for gp in GP_US:
        for per in PER_SLAB:
            mine = [r for r in rows if r["params.rcu_gp_us"] == gp
                    and r["params.anon_vma_per_slab"] == per]
            cells[f"rcu_gp_us={gp:g}/anon_vma_per_slab={per}"] = cell(mine)
    command = f"python benchmarks/sensitivity.py --reps {a.reps} --seed {a.seed}"
    out = ROOT / "results" / "reference"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sensitivity.json").write_text(json.dumps({
        "command": command, "reps": a.reps, "seed": a.seed, "workload": "hotremove-exit",
        "variant": "v2.6.33", "simulator_version": sim.__version__, "runs": len(rows),
        "wall_s": round(wall), "cells": cells}, indent=1) + "\n")
    print(f"{len(rows)} runs, {wall:.0f} s wall on {a.jobs} jobs (`{command}`): hotremove-exit "
          "under v2.6.33, replications showing each outcome, with 95% Wilson intervals\n")
    print("| rcu_gp_us | anon_vma_per_slab | " + " | ".join(SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for gp in GP_US:
        for per in PER_SLAB:
            c = cells[f"rcu_gp_us={gp:g}/anon_vma_per_slab={per}"]
            print(f"| {gp / 1000:g} ms | {per} | " + " | ".join(text(c[o]) for o in SHOWN)
                  + " |")


if __name__ == "__main__":
    main()
