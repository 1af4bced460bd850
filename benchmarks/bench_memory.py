#!/usr/bin/env python3
"""Peak resident memory of one run against its simulated duration: it should stay flat for a
fixed workload (nothing kept per simulated second beyond bounded rings and statistics).

    python benchmarks/bench_memory.py [--workload hotremove-exit] [--durations 200,2000,8000]

Each run is its own process, so each peak is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import sim
t = time.perf_counter()
r = sim.simulate({workload!r}, seed=1, duration_ms={ms})
print(json.dumps({{"events": r.events, "wall_s": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="hotremove-exit")
    ap.add_argument("--durations", default="200,2000,8000", help="simulated ms, comma-separated")
    a = ap.parse_args()
    rows = []
    for ms in [float(x) for x in a.durations.split(",")]:
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT),
                                                                  workload=a.workload, ms=ms)],
                             capture_output=True, text=True, check=True).stdout
        d = json.loads(out)
        rows.append((ms, d))
        print(f"{a.workload} duration {ms / 1000:6.1f} s: peak RSS {d['peak_rss_mib']:6.1f} MiB,"
              f" {d['events']:>10,} events, {d['wall_s']:6.1f} s wall")
    lo = min(d["peak_rss_mib"] for _, d in rows)
    hi = max(d["peak_rss_mib"] for _, d in rows)
    print(f"peak RSS spread: {100 * (hi - lo) / lo:.1f}% (max over min)")


if __name__ == "__main__":
    main()
