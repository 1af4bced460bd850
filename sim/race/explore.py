"""Exhaustive search of a small configuration within a preemption bound (sim.engine.sched.DFS).

Every schedule with at most `max_preemptions` preemptions is run once (up to the sleep-set
reduction, which skips schedules equivalent to one already run). The outcome counts the
executions, those stopped as redundant (pruned), and the distinct terminal states (the
scenario's `digest` of the machine at the end); `complete` is True when the tree was
exhausted within the budget. Each distinct violation (kind, harm, site) comes with a
reproducer. With several jobs, the subtrees of the first decision run in parallel (on a local
pool or a Dask cluster), merged in the serial search's order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sim.engine.interrupt import sigint_flag
from sim.result import Result
from sim.engine.sched import DFS
from sim.engine.sched.coverage import merge
from sim.spec import RunSpec
from sim.sweep.backends import Backend, make_backend
from sim.race.repro import Reproducer
from sim.race.runs import refuse_controlled, run_spec
from sim.race.target import Target, signature


@dataclass
class ExploreOutcome:
    executions: int = 0
    pruned: int = 0
    states: set[str] = field(default_factory=set)
    complete: bool = False
    violations: dict[str, Reproducer] = field(default_factory=dict)
    wall_s: float = 0.0
    max_preemptions: int = 2
    interrupted: bool = False          # Ctrl-C: what ran so far (not complete)
    coverage: dict[str, Any] | None = None   # sim.engine.sched.coverage, summed over executions

    def merge(self, other: "ExploreOutcome") -> None:
        self.executions += other.executions
        self.pruned += other.pruned
        self.states |= other.states
        self.complete = self.complete and other.complete
        self.interrupted = self.interrupted or other.interrupted
        self.coverage = merge(self.coverage, other.coverage)
        for key, rep in other.violations.items():
            self.violations.setdefault(key, rep)

    def to_dict(self) -> dict[str, Any]:
        return {"executions": self.executions, "pruned": self.pruned,
                "distinct_terminal_states": len(self.states), "complete": self.complete,
                "interrupted": self.interrupted,
                "max_preemptions": self.max_preemptions, "wall_s": round(self.wall_s, 3),
                "violations": [r.to_dict() for r in self.violations.values()]}


def digest(result: Result) -> str:
    return str(result.extra.get("mm", {}).get("digest") or
               sorted(result.violation_counts.items()))


def _search(spec: RunSpec, dfs: DFS, budget: int | None, target: Target | None,
            stop_at_first: bool) -> ExploreOutcome:
    out = ExploreOutcome(max_preemptions=dfs.bound)
    try:
        _walk(spec, dfs, budget, target, stop_at_first, out)
    except KeyboardInterrupt:
        out.interrupted, out.complete = True, False
    out.pruned = dfs.pruned
    return out


def _walk(spec: RunSpec, dfs: DFS, budget: int | None, target: Target | None,
          stop_at_first: bool, out: ExploreOutcome) -> None:
    """Run the DFS's executions into `out` until the tree, the budget or the first hit ends."""
    while True:
        result = run_spec(spec, strategy=dfs)
        out.executions += 1
        out.coverage = merge(out.coverage, result.schedule.get("coverage"))
        if not dfs.blocked:
            out.states.add(digest(result))
            for v in result.violations:
                if target is not None and not target.match(v):
                    continue
                sig = signature(v)
                key = f"{sig['kind']}/{sig['harm']}/{sig['via']}"
                if key not in out.violations:
                    out.violations[key] = Reproducer(
                        spec, {"name": "dfs", "max_preemptions": dfs.bound},
                        list(result.schedule["choices"]), result.events, sig)
        if stop_at_first and out.violations:
            break
        if not dfs.backtrack():
            out.complete = True
            break
        if budget is not None and out.executions >= budget:
            break
        dfs.new_execution()


def _subtree(job: tuple[dict[str, Any], int, bool, int, set[int], int | None, Any]
             ) -> ExploreOutcome:
    """One subtree, in a worker. Ctrl-C (passed on by the coordinator, or from the terminal)
    ends it with what it found, marked interrupted, rather than losing it."""
    spec_d, bound, reduction, first, asleep, budget, target = job
    # Ctrl-C only sets a flag: each run checks it and the search stops at the next
    # execution (sim.race.runs), so no KeyboardInterrupt can land between this worker's
    # code and the pool's, which would lose the subtree and the worker with it.
    with sigint_flag():
        dfs = DFS(bound, reduction, prefix=[first], prefix_sleep=asleep)
        return _search(RunSpec.from_dict(spec_d), dfs, budget, target, False)


def explore(spec: RunSpec, max_preemptions: int = 2, *, reduction: bool = True,
            budget: int | None = None, jobs: int = 1, backend: "str | Backend" = "local",
            address: str | None = None, target: Target | None = None,
            stop_at_first: bool = False) -> ExploreOutcome:
    """Every schedule of `spec` within `max_preemptions`; with several jobs (on a backend of
    sim.sweep.backends: local, dask or serial) the first decision's subtrees in parallel."""
    refuse_controlled(spec, "dfs")
    t0 = time.monotonic()
    if (jobs <= 1 and backend != "dask") or backend == "serial" or stop_at_first:
        out = _search(spec, DFS(max_preemptions, reduction), budget, target, stop_at_first)
        out.wall_s = time.monotonic() - t0
        return out
    probe = DFS(max_preemptions, reduction)
    run_spec(spec, strategy=probe)
    if not probe.stack:                     # no choice at all: one schedule
        out = _search(spec, DFS(max_preemptions, reduction), budget, target, False)
        out.wall_s = time.monotonic() - t0
        return out
    root = probe.stack[0]
    firsts = [r.tid for r in root.runnable]
    share = None if budget is None else max(1, budget // len(firsts))
    jobs_ = [(spec.to_dict(), max_preemptions, reduction, tid,
              set(firsts[:i]) if reduction else set(), share, target)
             for i, tid in enumerate(firsts)]
    parts: dict[int, ExploreOutcome] = {}
    out = ExploreOutcome(complete=True, max_preemptions=max_preemptions)
    with make_backend(backend, min(jobs, len(jobs_)), address) as be:
        try:
            for i, part in be.run(_subtree, jobs_, drain=True):
                parts[i] = part
        except KeyboardInterrupt:
            out.interrupted, out.complete = True, False
    for i in sorted(parts):                 # in the serial search's order, whatever finished first
        out.merge(parts[i])
    out.wall_s = time.monotonic() - t0
    return out
