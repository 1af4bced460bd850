"""Delays: directed preemptions and interrupts at race candidates, in the timed model.

Kernel race finders direct schedules at race candidates (Razzer's candidate pairs,
Snowboard's shared-memory pairs) and delay-injection testers (Coyote) stall a thread where a
delay can matter. Here:

- A *candidate occurrence* is a choice point (k.step / k.spend) of a task that holds a
  declared race window open (sim.engine.stats.Windows, keyed by task id) while inside one of the
  kernel functions the window names as its candidate sites (sim.engine.sched.coverage); or a choice point at a *generic*
  site: a kernel function in which, in a profile run, a task stepped on an anon_vma (or its
  lock) that another task freed later. The strategy knows no kernel function by name.
- At an occurrence it may inject one delay, of a kind the kernel allows there
  (sim.engine.cpu.may_preempt, sim.engine.cpu.irqs_enabled, which read only the task's state):
  a *preemption* (the task gives its CPU up for `us` microseconds, then queues for one:
  not under a spinlock or with preemption otherwise off, e.g. in an RCU read-side section
  of non-preemptible RCU; up to `preempt_us`, by default one CFS latency period) or an
  *interrupt* (the task keeps its CPU and preemption state while a handler runs for `us`:
  anywhere interrupts are on, spinlocks and RCU readers included; up to `irq_us`, 100 us by
  default: a long softirq or a burst of device interrupts). Other tasks run meanwhile on
  the other CPUs, and on this one after a preemption; sleeps proceed and grace periods end.
- An execution is the run's seed plus its *picks*: (occurrence index, kind, length). Picks
  are drawn, by default, occurrence by occurrence (scheme `each`: at a site met `c` times in
  the profile run, with probability per_site / c, so that each site gets about `per_site`
  delays an execution however often it occurs; where both kinds are legal, a preemption
  with probability `preempt_share`, else an interrupt), or as `count` occurrence indices uniform among `occurrences` (scheme `uniform`);
  README explains the default from a measurement. Its random numbers are its own: execution
  i of a strategy seeded S draws from a generator seeded by (S, i), never from the run's.
  Given picks (`picks=`), it injects exactly those: a replay is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sim.engine.cpu import irqs_enabled, may_preempt
from sim.engine.env import delay
from sim.engine.task import Task
from sim.engine.sched.base import Step
from sim.engine.sched.coverage import Coverage
from sim.engine.sched.timed import Timed

PREEMPT = "preempt"
IRQ = "irq"
KINDS = (PREEMPT, IRQ)
IRQ_US = 100.0              # default bound of an injected interrupt (module doc)
PER_SITE = 64.0             # scheme `each`: delays per candidate site an execution (README)
RATE = 0.01                 # ... at a site the profile run did not meet: per occurrence
PREEMPT_SHARE = 0.125       # where a preemption is legal, the share of delays that are one
COUNT = 3                   # scheme `uniform`: occurrences delayed per execution
SCHEMES = ("each", "uniform")


def describe(kind: str, us: float) -> str:
    """How a report or diagram shows an injected delay."""
    what = "preempted" if kind == PREEMPT else "interrupted"
    return f"{what} (injected) {us:.0f} us"


class Delays(Timed):
    name = "delays"
    SALT = (0xDE1A,)

    def __init__(self, seed: int = 0, *, scheme: str = "each", per_site: float = PER_SITE,
                 rate: float = RATE, preempt_share: float = PREEMPT_SHARE, profile: dict[str, int] | None = None, count: int = COUNT, occurrences: int = 0, preempt_us: float | None = None,
                 irq_us: float = IRQ_US, generic: Iterable[str] = (),
                 picks: list[list[Any]] | None = None) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
        if not 0 <= rate <= 1 or per_site < 0 or count < 0 or irq_us < 0 or \
                (preempt_us is not None and preempt_us < 0):
            raise ValueError("rate in [0, 1]; per_site, count, irq_us and preempt_us >= 0")
        self.seed = seed
        self.scheme = scheme
        self.rate = rate
        self.per_site = per_site
        self.preempt_share = preempt_share
        self.profile = dict(profile or {})      # site -> occurrences in the profile run
        self.count = count
        self.occurrences = occurrences
        self.preempt_us = preempt_us
        self.irq_us = irq_us
        self.generic = frozenset(generic)
        self.script = None if picks is None else {
            int(p[0]): (str(p[1]), float(p[2])) for p in picks}
        self.execution = -1
        self.new_execution()

    def new_execution(self) -> None:
        self.execution += 1
        self.rng = np.random.default_rng([self.seed, self.execution, *self.SALT])
        self.n = 0                              # candidate occurrences so far
        self.picks: list[list[Any]] = []        # [occurrence, kind, us, site]
        self.site_counts: dict[str, int] = {}   # occurrences by candidate site
        self.chosen: frozenset[int] = frozenset()
        if self.script is None and self.scheme == "uniform" and self.occurrences:
            self.chosen = frozenset(int(x) for x in self.rng.integers(
                0, self.occurrences, size=self.count))

    def start_at(self, execution: int) -> None:
        self.execution = execution - 1
        self.new_execution()

    def attach(self, k: Any) -> None:
        super().attach(k)
        if self.preempt_us is None:
            self.preempt_us = k.cpus.latency     # one CFS latency period (as scaled)
        self.cov = Coverage(k, self.generic)

    # --- choice points ----------------------------------------------------------------------
    def _pick(self, task: Task, site: str) -> tuple[str, float] | None:
        n = self.n
        self.n += 1
        if self.script is not None:
            return self.script.get(n)
        rng = self.rng
        if self.scheme == "each":
            # each site gets about `per_site` delays an execution: at an occurrence, a delay
            # with chance per_site / (its occurrences in the profile run)
            seen = self.profile.get(site)
            p = min(1.0, self.per_site / seen) if seen else self.rate
            if float(rng.random()) >= p:
                return None
        elif n not in self.chosen:
            return None
        legal = [kd for kd, ok in ((PREEMPT, may_preempt(task)), (IRQ, irqs_enabled(task)))
                 if ok]
        if not legal:
            return None
        # where both are legal, a preemption (long: it stalls the task for milliseconds)
        # with chance preempt_share, else an interrupt (short)
        kind = legal[0] if len(legal) == 1 or float(rng.random()) < self.preempt_share \
            else legal[1]
        bound = self.preempt_us if kind == PREEMPT else self.irq_us
        us = round(float(rng.uniform(0.0, bound)), 3)        # as recorded: replay is exact
        return (kind, us) if us > 0 else None

    def _maybe_delay(self, task: Task, c: tuple[str, Any]) -> Step:
        site, ow = c
        self.cov.sites.add(site)
        self.site_counts[site] = self.site_counts.get(site, 0) + 1
        pick = self._pick(task, site)
        if pick is None:
            return
        kind, us = pick
        if kind == PREEMPT and not may_preempt(task) or kind == IRQ and not irqs_enabled(task):
            return              # an edited pick the kernel cannot take here: not injected
        self.picks.append([self.n - 1, kind, us, site])
        self.cov.reached(site, ow)
        yield from self._inject(task, kind, us)

    def _inject(self, task: Task, kind: str, us: float) -> Step:
        k = self.k
        k.tracer.mark(task, describe(kind, us))
        k.count(f"injected {'preemptions' if kind == PREEMPT else 'interrupts'}")
        if kind == IRQ:
            yield delay(self.env, us)
            return
        cpus = self.cpus
        cpus.preemptions += 1
        cpus.release(task)
        task.state = "runnable"
        yield delay(self.env, us)
        ev = cpus.acquire(task, wakeup=False)
        if ev is not None:
            yield ev
        k.tracer.mark(task, f"runs again (CPU {task.cpu})")

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        c = self.cov.candidate(task)
        if c is not None:
            yield from self._maybe_delay(task, c)
        yield from Timed.spend(self, task, cost, obj)

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        c = self.cov.candidate(task)
        if c is not None:
            yield from self._maybe_delay(task, c)
        yield from Timed.step(self, task, mean, obj)

    # --- what reproduces it -------------------------------------------------------------------
    def coverage(self) -> dict[str, Any]:
        return {**self.cov.summary(), "occurrences": self.n}

    def spec(self) -> dict[str, Any]:
        """How this execution is made again: its picks (with the site each was at)."""
        return {"name": self.name, "picks": [list(p) for p in self.picks],
                "generic": sorted(self.generic), "preempt_us": self.preempt_us,
                "irq_us": self.irq_us, "seed": self.seed, "execution": self.execution,
                "scheme": self.scheme, "per_site": self.per_site, "rate": self.rate,
                "preempt_share": self.preempt_share,
                "count": self.count,
                "occurrences": self.occurrences, "profile": dict(self.profile)}

    def record(self) -> dict[str, Any]:
        return {"strategy": self.name, "picks": [list(p) for p in self.picks],
                "coverage": self.coverage()}
