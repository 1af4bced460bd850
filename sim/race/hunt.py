"""Hunting a violation: run executions until one shows the target, or the budget is spent.

Strategies (names are contract; sim.engine.sched.REGISTRY): `random` (a random walk over choice
points), `pct` (probabilistic concurrency testing, depth `depth`), `dfs` (bounded exhaustive
search, at most `depth` preemptions), `seeds` (seeds of the timed model: each seed is its own
reproducer), `delays` (seeds of the timed model with preemptions and interrupts injected at
race candidates, sim.engine.sched.delays). Execution i of random or delays draws only from (seed,
i), and seeds and delays run spec seed + i; PCT's k grows between blocks of executions
(block_end). So executions can run in any process: with several jobs (on a local pool or a
Dask cluster) they run in parallel, and the hunt reports the first execution, in order, that
found the target, whatever the backend and job count. A controlled strategy (random, pct,
dfs) on a workload driven by timed sleeps is refused with one line naming delays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sim.errors import InputError
from sim.result import Result
from sim.engine.sched import HUNT_STRATEGIES, PCT, Delays, RandomWalk, Replay
from sim.engine.sched.coverage import merge
from sim.engine.sched.pct import DEPTH as PCT_DEPTH
from sim.spec import RunSpec
from sim.sweep.backends import Backend, make_backend
from sim.race.explore import explore
from sim.race.profile import delay_profile
from sim.race.repro import Reproducer
from sim.race.runs import refuse_controlled, run_spec
from sim.race.target import Target, signature

STRATEGIES = HUNT_STRATEGIES


@dataclass
class HuntOutcome:
    found: Reproducer | None
    result: Result | None
    executions: int
    wall_s: float
    strategy: str
    interrupted: bool = False          # Ctrl-C: `executions` ran, none showed the target
    coverage: dict[str, Any] | None = None   # sim.engine.sched.coverage, summed up to the hit


def _strategy(name: str, seed: int, depth: int, steps: int, i: int,
              profile: dict[str, Any]) -> Any:
    if name == "delays":
        s: Any = Delays(seed, occurrences=profile.get("occurrences", 0),
                        generic=profile.get("generic", ()), profile=profile.get("sites"),
                        **profile.get("options", {}))
    elif name == "random":
        s = RandomWalk(seed)
    else:
        s = PCT(seed, depth, steps)
    s.start_at(i)
    return s


def _spec_of(name: str, spec: RunSpec, i: int) -> RunSpec:
    """Execution i of a timed hunt runs seed spec.seed + i (seeds, delays)."""
    return replace(spec, seed=spec.seed + i) if name in TIMED else spec


TIMED = ("seeds", "delays")

# Executions per task when several jobs share a hunt: enough to amortise sending the task.
CHUNK = 8


def _run(name: str, spec: RunSpec, seed: int, depth: int, steps: int, i: int,
         profile: dict[str, Any]) -> Result:
    """Execution i of a hunt."""
    if name == "seeds":
        return run_spec(_spec_of(name, spec, i))
    return run_spec(_spec_of(name, spec, i),
                    strategy=_strategy(name, seed, depth, steps, i, profile))


def _chunk(job: tuple[str, dict[str, Any], int, int, int, dict[str, Any], int, int, Target]
           ) -> tuple[int | None, int, dict[str, Any] | None]:
    """Executions lo..hi-1 (in a worker): the first that shows the target (or None), the
    most real choices any made (PCT's k grows with it), and their coverage up to the hit."""
    name, spec_d, seed, depth, steps, profile, lo, hi, target = job
    spec = RunSpec.from_dict(spec_d)
    longest, cov = 0, None
    for i in range(lo, hi):
        result = _run(name, spec, seed, depth, steps, i, profile)
        longest = max(longest, len(result.schedule.get("choices", ())))
        cov = merge(cov, result.schedule.get("coverage"))
        if any(target.match(v) for v in result.violations):
            return i, longest, cov
    return None, longest, cov


def block_end(i: int) -> int:
    """PCT's k may grow only between blocks of executions [0], [1, 2], [3..6], [7..14], ...
    (doubling): the same blocks whatever the number of jobs, so a hunt's answer is too.
    The end (exclusive) of the block holding execution i."""
    return (1 << (i + 1).bit_length()) - 1


def _waves(be: Backend, budget: int, progress: Callable[[int, int], None] | None,
           head: tuple[str, dict[str, Any], int, int], steps: int, profile: dict[str, Any],
           target: Target, done: list[int], cov: list[Any]) -> tuple[int | None, int]:
    """Executions 0.. in waves of chunks over the backend's jobs: the first that shows the
    target, in execution order, or None; and the k PCT used for it. The first hit of a wave
    is final once every chunk before it is done, so the answer is the same whatever the
    backend and jobs; `done[0]` counts the executions known to have run, `cov[0]` sums their
    coverage. For PCT a wave never crosses a block boundary (block_end), and k grows to the
    longest execution of the blocks before."""
    size = 1 if be.jobs == 1 else CHUNK
    pct = head[0] == "pct"
    lo = 0
    seen = steps                    # the most real choices of any execution run so far
    while lo < budget:
        hi = min(lo + size * be.jobs * 4, budget)
        if pct:
            if lo == 0 or block_end(lo - 1) == lo:      # a new block: k grows now only
                steps = seen
            hi = min(hi, block_end(lo))
        items = [(*head, steps, profile, a, min(a + size, hi), target)
                 for a in range(lo, hi, size)]
        got: dict[int, tuple[int | None, int, Any]] = {}
        first = None
        for j, h in be.run(_chunk, items):
            got[j] = h
            if h[0] is not None and (first is None or j < first):
                first = j
            if progress:
                progress(min(lo + len(got) * size, budget), budget)
            if first is not None and all(x in got for x in range(first)):
                for x in range(first + 1):
                    cov[0] = merge(cov[0], got[x][2])
                hit = got[first][0]
                assert hit is not None
                done[0] = hit + 1
                return hit, steps
        for x in range(len(items)):
            cov[0] = merge(cov[0], got[x][2])
        if pct:
            seen = max([seen] + [got[x][1] for x in range(len(items))])
        done[0] = lo = hi
    return None, steps


def hunt(spec: RunSpec, strategy: str = "pct", budget: int = 1000, *,
         target: Target = Target(), depth: int | None = None, seed: int = 0, jobs: int = 1,
         backend: "str | Backend" = "local", address: str | None = None,
         progress: Callable[[int, int], None] | None = None,
         options: dict[str, Any] | None = None) -> HuntOutcome:
    """Hunt for `target` in up to `budget` executions of `spec`, on `jobs` processes of a
    backend (sim.sweep.backends: local, dask or serial). `options` are the delays strategy's
    (scheme, rate, count, preempt_us, irq_us)."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; valid: " + ", ".join(STRATEGIES))
    refuse_controlled(spec, strategy)
    t0 = time.monotonic()
    if strategy == "dfs":
        out = explore(spec, max_preemptions=2 if depth is None else depth, budget=budget,
                      target=target, stop_at_first=True)
        found = next(iter(out.violations.values()), None)
        result = _rerun(found) if found else None
        return HuntOutcome(found, result, out.executions, time.monotonic() - t0, strategy,
                           interrupted=out.interrupted and found is None,
                           coverage=out.coverage)
    d = PCT_DEPTH if depth is None else depth
    if strategy == "pct" and d < 1:
        raise InputError(f"pct needs a bug depth (--depth) of at least 1, got {d}")
    spec_d = spec.to_dict()
    done = [0]                                  # executions known to have run
    cov: list[Any] = [None]
    try:
        profile = delay_profile(spec, options or {}) if strategy == "delays" else {}
        with make_backend(backend, jobs, address) as be:
            hit, steps = _waves(be, budget, progress, (strategy, spec_d, seed, d), 0,
                                profile, target, done, cov)
    except KeyboardInterrupt:
        return HuntOutcome(None, None, done[0], time.monotonic() - t0, strategy,
                           interrupted=True, coverage=cov[0])
    if hit is None:
        return HuntOutcome(None, None, done[0], time.monotonic() - t0, strategy,
                           coverage=cov[0])
    found_spec = _spec_of(strategy, spec, hit)
    if strategy == "seeds":
        result = run_spec(found_spec)
        how: dict[str, Any] = {"name": "seeds", "seed": found_spec.seed, "execution": hit}
        choices: list[int] = []
    else:
        strat = _strategy(strategy, seed, d, steps, hit, profile)
        result = run_spec(found_spec, strategy=strat)
        how = strat.spec()
        choices = [] if strategy == "delays" else list(result.schedule["choices"])
    v = next(v for v in result.violations if target.match(v))
    rep = Reproducer(found_spec, how, choices, result.events, signature(v),
                     timed=strategy in TIMED)
    return HuntOutcome(rep, result, done[0], time.monotonic() - t0, strategy,
                       coverage=cov[0])


def _rerun(rep: Reproducer) -> Result:
    return run_spec(rep.spec, strategy=Replay(rep.choices))
