"""Hunting a violation: run executions until one shows the target, or the budget is spent.

Strategies (names are contract): `random` (a random walk over choice points), `pct`
(probabilistic concurrency testing, depth `depth`), `dfs` (bounded exhaustive search, at most
`depth` preemptions), `seeds` (seeds of the timed model: each seed is its own reproducer).
Execution i of random or pct draws only from (seed, i), and seeds tries spec seed + i, so
executions can run in any process: with several jobs they run in parallel, and the hunt
reports the first execution, in order, that found the target, whatever the job count.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..api import run_spec
from ..errors import InputError
from ..result import Result
from ..sched import PCT, RandomWalk, Replay
from ..spec import RunSpec
from .explore import explore
from .repro import Reproducer
from .target import Target, signature

STRATEGIES = ("random", "pct", "dfs", "seeds")


@dataclass
class HuntOutcome:
    found: Reproducer | None
    result: Result | None
    executions: int
    wall_s: float
    strategy: str


def steps_estimate(spec: RunSpec) -> int:
    """PCT's k: the decisions of one execution (the default, non-preemptive schedule)."""
    probe = run_spec(spec, strategy=Replay(prefix=True))
    return max(int(probe.schedule.get("decisions", 1)), 1)


def _strategy(name: str, seed: int, depth: int, steps: int, i: int) -> Any:
    s: Any = RandomWalk(seed) if name == "random" else PCT(seed, depth, steps)
    s.start_at(i)
    return s


def _one(job: tuple[str, dict[str, Any], int, int, int, int, Target]) -> tuple[int, bool]:
    """Execution i of a hunt (in a worker): did it show the target?"""
    name, spec_d, seed, depth, steps, i, target = job
    spec = RunSpec.from_dict(spec_d)
    if name == "seeds":
        result = run_spec(replace(spec, seed=spec.seed + i))
    else:
        result = run_spec(spec, strategy=_strategy(name, seed, depth, steps, i))
    return i, any(target.match(v) for v in result.violations)


def hunt(spec: RunSpec, strategy: str = "pct", budget: int = 1000, *,
         target: Target = Target(), depth: int | None = None, seed: int = 0, jobs: int = 1,
         progress: Callable[[int, int], None] | None = None) -> HuntOutcome:
    """Hunt for `target` in up to `budget` executions of `spec`."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; valid: " + ", ".join(STRATEGIES))
    t0 = time.monotonic()
    if strategy == "dfs":
        out = explore(spec, max_preemptions=2 if depth is None else depth, budget=budget,
                      target=target, stop_at_first=True)
        found = next(iter(out.violations.values()), None)
        result = _rerun(found) if found else None
        return HuntOutcome(found, result, out.executions, time.monotonic() - t0, strategy)
    d = 3 if depth is None else depth
    steps = steps_estimate(spec) if strategy == "pct" else 0
    jobs_ = [(strategy, spec.to_dict(), seed, d, steps, i, target) for i in range(budget)]
    hit = None
    done = 0
    pool = multiprocessing.get_context().Pool(jobs) if jobs > 1 else None
    try:
        # in execution order whatever the job count: the first hit is the same one
        results = pool.imap(_one, jobs_, chunksize=4) if pool else map(_one, jobs_)
        for i, ok in results:
            done = i + 1
            if progress:
                progress(done, budget)
            if ok:
                hit = i
                break
    finally:
        if pool:
            pool.terminate()
            pool.join()
    if hit is None:
        return HuntOutcome(None, None, done, time.monotonic() - t0, strategy)
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
    return HuntOutcome(rep, result, done, time.monotonic() - t0, strategy)


def _rerun(rep: Reproducer) -> Result:
    return run_spec(rep.spec, strategy=Replay(rep.choices))
