#!/usr/bin/env python3
"""What each kind of observability costs a run, and how fast a run could be without any.

Runs hotremove-exit (seed 17 by default) in process, in fresh child processes, once as it is
and once with each of these switched off (experiments, not options: a run without them has
no diagrams and no verdicts):

    rings     the trace ring entries (Tracer.mark, .call, .wait_begin do nothing)
    stacks    the kernel-function wrappers (@kfunc returns the bare function: no stack, no
              call entries)
    lockdep   the lockdep validator (the `lockdep` parameter)
    hooks     the hook bus (Hooks.emit does nothing: no oracle sees an event)
    all       all four

Configurations alternate round by round; each child runs the workload --runs times. The
event count must not change (the same schedule, only less bookkeeping); the script says so
if it does. Reported: the median time a run and its ratio to the unchanged run.

    python benchmarks/bench_ceiling.py [--rounds 3] [--runs 3] [--seed 17]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("as is", "rings", "stacks", "lockdep", "hooks", "all")

CHILD = """
import importlib.util, sys, time, types
sys.path.insert(0, {root!r})
off = set({off!r})
if off & {{"stacks", "all"}}:
    # load the engine before the mm model decorates its kernel functions, and make @kfunc
    # return the function itself: a stand-in package keeps sim/__init__ (which imports the
    # model) from running first
    stub = types.ModuleType("sim")
    stub.__path__ = list(importlib.util.find_spec("sim").submodule_search_locations)
    sys.modules["sim"] = stub
    import sim.engine.kernel as kernel
    kernel._kfunc = lambda fn, name: fn
    del sys.modules["sim"]
import sim
from sim.engine import hooks, trace
from sim.mm import memory
# a kernel function is wrapped (functools.wraps leaves __wrapped__) unless stacks are off
assert hasattr(memory.do_anonymous_page, "__wrapped__") != bool(off & {{"stacks", "all"}})
if off & {{"rings", "all"}}:
    trace.Tracer.mark = lambda self, task, op, obj=None: None
    trace.Tracer.call = lambda self, task, name: None
    trace.Tracer.wait_begin = lambda self, task, lock: None
if off & {{"hooks", "all"}}:
    hooks.Hooks.emit = lambda self, ev: None
params = {{"lockdep": False}} if off & {{"lockdep", "all"}} else {{}}
for _ in range({runs}):
    t = time.perf_counter()
    r = sim.simulate({workload!r}, seed={seed}, params=params)
    print(time.perf_counter() - t, r.events)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="hotremove-exit")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)    # as a user's runs: bytecode cached
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    events: dict[str, set[int]] = {c: set() for c in CONFIGS}
    for i in range(a.rounds):
        for c in (CONFIGS if i % 2 == 0 else CONFIGS[::-1]):
            off = [] if c == "as is" else [c]
            code = CHILD.format(root=str(ROOT), off=off, runs=a.runs, workload=a.workload,
                                seed=a.seed)
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=env, check=True)
            for line in p.stdout.split("\n"):
                if line:
                    t, n = line.split()
                    times[c].append(float(t))
                    events[c].add(int(n))
    base = statistics.median(times["as is"])
    print(f"{a.workload} seed {a.seed}, in process: median of {a.rounds * a.runs} runs each")
    for c in CONFIGS:
        med = statistics.median(times[c])
        n = ", ".join(f"{e:,}" for e in sorted(events[c]))
        same = "" if events[c] == events["as is"] else "   (event count changed!)"
        label = "as is" if c == "as is" else f"{c} off"
        print(f"  {label:<12} {med:6.3f} s a run ({min(times[c]):.3f}-{max(times[c]):.3f})"
              f"   {base / med:4.2f}x   {n} events{same}")


if __name__ == "__main__":
    main()
