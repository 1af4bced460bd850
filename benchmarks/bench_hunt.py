#!/usr/bin/env python3
"""Race-hunting effort: executions and wall time to the first hit, per strategy, on the full
workload (timed strategies: delays, seeds) and on the mini (controlled: pct, random, dfs;
timed: seeds with memcg reclaim, delays), over `--hunts` hunts with different --seed (and
strategy seeds): median and range of executions to the first hit, hunts that found it, and
median wall time. Targets (issue 16), with --set anon_vma_per_slab=2 --set rcu_gp_us=1000:

- full hotremove-exit v2.6.33 anon_vma_use_after_free: median <= 5 executions;
- anon-vma-refcount and anon-vma-lock-get-no-recheck: their corrupting access in >= 18/20;
- anon-vma-lock-get: no anon_vma violation of any harm.

    python benchmarks/bench_hunt.py [--hunts 20] [--budget 200] [--only full|mini]
        [--strategies delays,seeds] [--variants v2.6.33,...] [--scheme each|uniform]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402
from sim.mm.checks.kasan import HARMS  # noqa: E402
from sim.race import Target, hunt  # noqa: E402

UAF = Target(kind="anon_vma_use_after_free")
CORRUPTING = Target(harms=("corrupting",))
ANY = Target(harms=HARMS)          # any harm at all, benign included
FULL = {"anon_vma_per_slab": 2, "rcu_gp_us": 1000}
TARGETS = {"v2.6.33": UAF, "anon-vma-refcount": CORRUPTING,
           "anon-vma-lock-get-no-recheck": CORRUPTING, "anon-vma-lock-get": ANY,
           "no-rcu": UAF}


def row(name: str, execs: list[int], walls: list[float], hunts: int, budget: int) -> str:
    found = len(execs)
    wall = f"median {statistics.median(walls):7.1f} s/hunt" if walls else ""
    if not found:
        return f"  {name:<40} none in {hunts} x {budget} executions  {wall}"
    return (f"  {name:<40} median {statistics.median(execs):6.1f}  range {min(execs)}-"
            f"{max(execs)}  found {found}/{hunts}  {wall}")


def series(label: str, spec, strategy: str, target: Target, hunts: int, budget: int,
           scheme: str = "each", first: int = 0, **kw) -> None:
    if strategy == "delays" and scheme != "each":
        kw["options"] = {"scheme": scheme}
        label += f" ({scheme})"
    execs, walls = [], []
    for s in range(first, first + hunts):
        sp = replace(spec, seed=spec.seed + 1000 * s)
        out = hunt(sp, strategy, budget, target=target, seed=s, **kw)
        walls.append(out.wall_s)
        if out.found is not None:
            execs.append(out.executions)
        print(f"    {label} hunt {s}: {out.executions} executions, "
              f"{'found' if out.found else 'none'}, {out.wall_s:.1f} s", file=sys.stderr,
              flush=True)
    print(row(label, execs, walls, hunts, budget), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hunts", type=int, default=20)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--mini-budget", type=int, default=5000)
    ap.add_argument("--only", choices=("full", "mini"), default=None)
    ap.add_argument("--strategies", default="delays,seeds")
    ap.add_argument("--variants", default=",".join(TARGETS))
    ap.add_argument("--first", type=int, default=0,
                    help="the first hunt's number (hunt s has --seed 1000*s and strategy seed s):"
                         " a series split over processes")
    ap.add_argument("--scheme", default="each", choices=("each", "uniform"),
                    help="the delays strategy's pick scheme (README: Race hunting)")
    a = ap.parse_args()
    if a.only != "mini":
        print(f"full hotremove-exit, --set anon_vma_per_slab=2 --set rcu_gp_us=1000, "
              f"{a.hunts} hunts (--seed {1000 * a.first}, {1000 * (a.first + 1)}, ...), "
              f"budget {a.budget}:")
        for variant in a.variants.split(","):
            spec = sim.spec_for("hotremove-exit", variant=variant, params=FULL)
            t = TARGETS[variant]
            for strategy in a.strategies.split(","):
                series(f"{variant} {t.describe()} [{strategy}]", spec, strategy, t, a.hunts,
                       a.budget, a.scheme, a.first)
        print("  random, pct, dfs: refused on this workload (driven by timed sleeps)")
    if a.only != "full":
        print(f"hotremove-exit-mini v2.6.33 {UAF.describe()}, {a.hunts} hunts, "
              f"budget {a.mini_budget}:")
        mini = sim.spec_for("hotremove-exit-mini")
        for strategy in ("pct", "random"):
            series(f"[{strategy}]", mini, strategy, UAF, a.hunts, a.mini_budget)
        t0 = time.monotonic()
        out = hunt(mini, "dfs", a.mini_budget * 10, target=UAF, depth=2)
        print(f"  {'[dfs] (bound 2, deterministic)':<40} {out.executions}  "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        series("[seeds] (memcg_reclaim_prob=0.3)", sim.spec_for(
            "hotremove-exit-mini", params={"memcg_reclaim_prob": 0.3}), "seeds", UAF,
            a.hunts, a.mini_budget)
        series("[delays]", mini, "delays", UAF, a.hunts, a.mini_budget, a.scheme)


if __name__ == "__main__":
    main()
