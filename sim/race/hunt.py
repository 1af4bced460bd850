"""Hunting a violation: run executions until one shows the target, or the budget is spent.

Strategies (names are contract): `random` (a random walk over choice points), `pct`
(probabilistic concurrency testing, depth `depth`), `dfs` (bounded exhaustive search, at most
`depth` preemptions), `seeds` (seeds of the timed model: each seed is its own reproducer).
Execution i of random or pct draws only from (seed, i), and seeds tries spec seed + i, so
executions can run in any process: with several jobs (on a local pool or a Dask cluster)
they run in parallel, and the hunt reports the first execution, in order, that found the
target, whatever the backend and job count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sim.errors import InputError
from sim.result import Result
from sim.engine.sched import PCT, RandomWalk, Replay
from sim.spec import RunSpec
from sim.sweep.backends import Backend, make_backend
from sim.race.explore import explore
from sim.race.repro import Reproducer
from sim.race.runs import run_spec
from sim.race.target import Target, signature

STRATEGIES = ("random", "pct", "dfs", "seeds")


@dataclass
class HuntOutcome:
    found: Reproducer | None
    result: Result | None
    executions: int
    wall_s: float
    strategy: str
    interrupted: bool = False          # Ctrl-C: `executions` ran, none showed the target


def steps_estimate(spec: RunSpec) -> int:
    """PCT's k: the decisions of one execution (the default, non-preemptive schedule)."""
    probe = run_spec(spec, strategy=Replay(prefix=True))
    return max(int(probe.schedule.get("decisions", 1)), 1)


def _strategy(name: str, seed: int, depth: int, steps: int, i: int) -> Any:
    s: Any = RandomWalk(seed) if name == "random" else PCT(seed, depth, steps)
    s.start_at(i)
    return s


# Executions per task when several jobs share a hunt: enough to amortise sending the task.
CHUNK = 8


def _shows(name: str, spec: RunSpec, seed: int, depth: int, steps: int, i: int,
           target: Target) -> bool:
    """Execution i of a hunt: did it show the target?"""
    if name == "seeds":
        result = run_spec(replace(spec, seed=spec.seed + i))
    else:
        result = run_spec(spec, strategy=_strategy(name, seed, depth, steps, i))
    return any(target.match(v) for v in result.violations)


def _chunk(job: tuple[str, dict[str, Any], int, int, int, int, int, Target]) -> int | None:
    """Executions lo..hi-1 (in a worker): the first that shows the target, or None."""
    name, spec_d, seed, depth, steps, lo, hi, target = job
    spec = RunSpec.from_dict(spec_d)
    return next((i for i in range(lo, hi) if _shows(name, spec, seed, depth, steps, i, target)),
                None)


def _waves(be: Backend, budget: int, progress: Callable[[int, int], None] | None,
           head: tuple[str, dict[str, Any], int, int, int], target: Target,
           done: list[int]) -> int | None:
    """Executions 0.. in waves of chunks over the backend's jobs: the first that shows the
    target, in execution order, or None. The first hit of a wave is final once every chunk
    before it is done, so the answer is the same whatever the backend and jobs; `done[0]`
    counts the executions known to have run."""
    size = 1 if be.jobs == 1 else CHUNK
    lo = 0
    while lo < budget:
        hi = min(lo + size * be.jobs * 4, budget)
        items = [(*head, a, min(a + size, hi), target) for a in range(lo, hi, size)]
        got: dict[int, int | None] = {}
        first = None
        for j, h in be.run(_chunk, items):
            got[j] = h
            if h is not None and (first is None or j < first):
                first = j
            if progress:
                progress(min(lo + len(got) * size, budget), budget)
            if first is not None and all(k in got for k in range(first)):
                done[0] = got[first] + 1
                return got[first]
        done[0] = lo = hi
    return None


def hunt(spec: RunSpec, strategy: str = "pct", budget: int = 1000, *,
         target: Target = Target(), depth: int | None = None, seed: int = 0, jobs: int = 1,
         backend: "str | Backend" = "local", address: str | None = None,
         progress: Callable[[int, int], None] | None = None) -> HuntOutcome:
    """Hunt for `target` in up to `budget` executions of `spec`, on `jobs` processes of a
    backend (sim.sweep.backends: local, dask or serial)."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; valid: " + ", ".join(STRATEGIES))
    t0 = time.monotonic()
    if strategy == "dfs":
        out = explore(spec, max_preemptions=2 if depth is None else depth, budget=budget,
                      target=target, stop_at_first=True)
        found = next(iter(out.violations.values()), None)
        result = _rerun(found) if found else None
        return HuntOutcome(found, result, out.executions, time.monotonic() - t0, strategy,
                           interrupted=out.interrupted and found is None)
    d = 3 if depth is None else depth
    if strategy == "pct" and d < 1:
        raise InputError(f"pct needs a bug depth (--depth) of at least 1, got {d}")
    steps = steps_estimate(spec) if strategy == "pct" else 0
    spec_d = spec.to_dict()
    done = [0]                                  # executions known to have run
    with make_backend(backend, jobs, address) as be:
        try:
            hit = _waves(be, budget, progress, (strategy, spec_d, seed, d, steps), target,
                         done)
        except KeyboardInterrupt:
            return HuntOutcome(None, None, done[0], time.monotonic() - t0, strategy,
                               interrupted=True)
    if hit is None:
        return HuntOutcome(None, None, done[0], time.monotonic() - t0, strategy)
    if strategy == "seeds":
        found_spec = replace(spec, seed=spec.seed + hit)
        result = run_spec(found_spec)
        how = {"name": "seeds", "seed": found_spec.seed, "execution": hit}
        choices: list[int] = []
    else:
        strat = _strategy(strategy, seed, d, steps, hit)
        found_spec = spec
        result = run_spec(spec, strategy=strat)
        how = strat.spec()
        choices = list(result.schedule["choices"])
    v = next(v for v in result.violations if target.match(v))
    rep = Reproducer(found_spec, how, choices, result.events, signature(v),
                     timed=strategy == "seeds")
    return HuntOutcome(rep, result, done[0], time.monotonic() - t0, strategy)


def _rerun(rep: Reproducer) -> Result:
    return run_spec(rep.spec, strategy=Replay(rep.choices))
