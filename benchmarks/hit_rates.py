#!/usr/bin/env python3
"""How often each variant surfaces each violation, per workload, over N seeds.

Writes results/reference/hit-rates.json and prints a Markdown table (README.md quotes it).

    python benchmarks/hit_rates.py [--seeds 20] [--jobs 2]
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

WORKLOADS = ("hotremove-exit", "numa-exit", "ksm-fork-migrate")


def one(job: tuple[str, str, int]) -> tuple[tuple[str, str, int], dict, float]:
    t = time.perf_counter()
    r = sim.simulate(job[0], variant=job[1], seed=job[2])
    races = {}
    for v in r.violations:
        if v.kind.startswith("anon_vma"):
            races[v.detail["race"]] = races.get(v.detail["race"], 0) + 1
    w = r.windows.get("migration_anon_vma", {})
    return job, {"counts": r.violation_counts, "races": races,
                 "window_hits": w.get("hits", 0), "windows": w.get("count", 0),
                 "events": r.events}, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    jobs = [(w, v, s) for w in WORKLOADS for v in sim.VARIANTS for s in range(a.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(one, jobs))
    wall = time.perf_counter() - t0
    table: dict[str, dict[str, dict[str, int]]] = {}
    for (w, v, s), res, _ in results:
        cell = table.setdefault(w, {}).setdefault(v, {})
        for kind in res["counts"]:
            cell[kind] = cell.get(kind, 0) + 1
    out = ROOT / "results" / "reference"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hit-rates.json").write_text(json.dumps({
        "command": f"python benchmarks/hit_rates.py --seeds {a.seeds}",
        "seeds": a.seeds, "table": table,
        "runs": [{"workload": w, "variant": v, "seed": s, **res}
                 for (w, v, s), res, _ in results]}, indent=1))
    kinds = sorted({k for w in table.values() for c in w.values() for k in c})
    print(f"seeds with each violation, out of {a.seeds} per cell "
          f"({len(jobs)} runs, {wall:.0f} s wall on {a.jobs} jobs)\n")
    print("| workload | variant | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for w in WORKLOADS:
        for v in sim.VARIANTS:
            c = table[w].get(v, {})
            print(f"| {w} | {v} | " + " | ".join(str(c.get(k, 0)) for k in kinds) + " |")


if __name__ == "__main__":
    main()
