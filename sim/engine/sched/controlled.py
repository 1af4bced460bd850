"""Controlled mode: one actor steps at a time, and a policy picks which.

Each choice point parks its task at a gate. Once everything else scheduled for the current
instant has run (the decision event has a lower priority than any SimPy event), the policy
is asked to choose among the runnable actors: the parked tasks, and `rcu` (RCU_TID) when a
grace period has no reader left holding it up, so that when the grace period ends (and its
callbacks run: a slab page returned to the page allocator) is a choice too. The chosen task
runs to its next choice point or until it blocks; a task woken from a sleep parks again
before it runs, so wake-ups are choices as well. A task at yield() with no one else able to
run lets the clock reach the next event first (time passes while it polls). Step costs are ignored (only sleeps advance
time), and the policy is the scheduler: it may switch tasks at any step, except that tasks
are pinned to CPUs (task i on CPU i mod cpus) and a task with preemption off keeps its CPU
(`_on_cpu`), as on the real machine.

Only real choices (two or more runnable actors) are recorded, as actor ids: a run is exactly
reproduced by its seed and its list of choices (Replay). Each decision also keeps what a
search needs: the runnable actors with the object each is about to touch, and the actor that
ran last (`current`), so that choosing another while it is runnable is a preemption.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from simpy.events import Event

from sim.engine.cpu import may_preempt
from sim.engine.task import Task
from sim.engine.sched.base import YIELD, Step, Strategy
from sim.engine.sched.coverage import Coverage

DECIDE = 2        # after URGENT (0) and NORMAL (1) events at the same instant
RCU_TID = -1      # the RCU grace-period machinery, as an actor


class Runnable(NamedTuple):
    tid: int
    name: str
    obj: Any              # what its next step touches (None: unknown, so anything)


class Decision(NamedTuple):
    index: int            # among all decisions of the execution (forced ones included)
    runnable: tuple[Runnable, ...]
    current: int | None
    chosen: int


class Controlled(Strategy):
    controlled = True

    def __init__(self) -> None:
        self.new_execution()

    def new_execution(self) -> None:
        self.gated: dict[int, tuple[Task, Event, Any]] = {}
        self.choices: list[int] = []
        self.decisions: list[Decision] = []
        self.current: int | None = None
        self.count = 0                   # decisions so far, forced ones included
        self._pending = False

    def attach(self, k: Any) -> None:
        super().attach(k)
        self.env = k.env
        k.cpus.pinned = True
        k.rcu.controlled = True
        self.cov = Coverage(k)

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        """The policy: the id of one of `runnable` (two or more, in id order)."""
        raise NotImplementedError

    def clock(self) -> float:
        """Steps take no time here: reports are stamped with the decision index (`step`)."""
        return float(self.count)

    def forced(self, only: Runnable) -> None:
        """One actor can run: no choice, but a search may still track what it touches."""

    # --- gates ------------------------------------------------------------------------------
    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        ev = Event(self.env)
        self.gated[task.tid] = (task, ev, obj)
        self.poke()
        yield ev

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        return self.spend(task, 0.0, obj)

    def resumed(self, task: Task, obj: Any = None, slept: bool = True) -> Step:
        return self.spend(task, 0.0, obj)

    def poke(self) -> None:
        """Something became runnable: decide once this instant's events have run."""
        if not self._pending:
            self._pending = True
            self.env.call_at_priority(self._decide, DECIDE)

    def _decide(self, _ev: Event) -> None:
        self._pending = False
        rcu = self.k.rcu
        runnable = self._on_cpu(tuple(Runnable(t, task.name, obj)
                                      for t, (task, _, obj) in sorted(self.gated.items())))
        if rcu.completable():
            if not runnable and self.env.next_time() is not None:
                return          # nothing else now: the grace period may end later
            runnable = (Runnable(RCU_TID, "rcu", rcu),) + runnable
        if not runnable:
            return
        tasks = [r for r in runnable if r.tid != RCU_TID]
        if len(tasks) == 1 and tasks[0].obj is YIELD:
            t = self.env.next_time()
            if t is not None:
                # yield() with no other task to run: on the machine the task goes on polling
                # (lru_add_drain_all, a rescan), and time passes; here steps take none, so
                # let the clock reach the next event (a sleeper's wake-up), then decide
                # (else offline_pages' retry loop spins at one instant and never times out)
                self._pending = True
                self.env.call_at_priority(self._decide, DECIDE, t - self.env.now)
                return
        if len(runnable) == 1:
            tid = runnable[0].tid
            self.forced(runnable[0])
        else:
            tid = self.choose(runnable, self.current)
            if tid not in [r.tid for r in runnable]:
                raise ValueError(f"{self.name} chose {tid}, not runnable")
            self.choices.append(tid)
            self.decisions.append(Decision(self.count, runnable, self.current, tid))
            cov = self.cov
            for r in runnable:          # a window holder at a candidate site: another could run
                if r.tid >= 0:
                    c = cov.candidate(self.gated[r.tid][0])
                    if c is not None:
                        cov.reached(*c)
        self.count += 1
        self.k.instant_steps += 1           # a step takes no time here: livelock accounting
        if tid == RCU_TID:
            rcu.complete()
        else:
            self.current = tid
            _, ev, _ = self.gated.pop(tid)
            ev.succeed()
        if self.gated or rcu.completable():
            self.poke()

    def _on_cpu(self, runnable: tuple[Runnable, ...]) -> tuple[Runnable, ...]:
        """Tasks are pinned, task i to CPU i mod cpus. A task with preemption off (holding a
        spinlock or spinning for one, in an RCU read-side section, in an mmu_gather) keeps
        its CPU: no other task of that CPU may run until it turns preemption back on or
        dies. (Only a task that sleeps while atomic, itself a lock_misuse, could leave no
        task able to run: then the CPUs are not enforced.)"""
        n = self.k.cpus.n
        holder: dict[int, int] = {}
        for t in self.k.tasks:
            if t is not None and t.state != "dead" and not may_preempt(t):
                holder.setdefault(t.tid % n, t.tid)
        if not holder:
            return runnable
        ok = tuple(r for r in runnable if holder.get(r.tid % n, r.tid) == r.tid)
        return ok if ok else runnable

    def record(self) -> dict[str, Any]:
        return {"strategy": self.name, "choices": list(self.choices),
                "decisions": self.count, "coverage": self.cov.summary()}


class Seeded(Controlled):
    """A randomised strategy whose executions are numbered: execution i draws only from a
    generator seeded by (seed, i, *SALT), so that any execution can be re-run alone, in any
    process (a hunt spreads them over jobs)."""

    SALT: tuple[int, ...] = ()

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.execution = -1
        super().__init__()

    def new_execution(self) -> None:
        super().new_execution()
        self.execution += 1
        self.rng = np.random.default_rng([self.seed, self.execution, *self.SALT])

    def start_at(self, execution: int) -> None:
        """Make this execution number `execution` (as if that many had gone before)."""
        self.execution = execution - 1
        self.new_execution()


def yielding(runnable: tuple[Runnable, ...], current: int | None) -> bool:
    """The actor that ran last is at yield(), polling: it offers its CPU."""
    return any(r.tid == current and r.obj is YIELD for r in runnable)


def default_choice(runnable: tuple[Runnable, ...], current: int | None,
                   asleep: frozenset[int] = frozenset()) -> int | None:
    """No preemption: the actor that ran last if it is runnable, else the lowest task id (the
    grace period last); but at a voluntary yield, the next task after it (round robin), so
    that a task waiting in a loop for another's progress lets it run. None if every runnable
    actor is asleep."""
    ids = [r.tid for r in runnable if r.tid not in asleep]
    if not ids:
        return None
    tasks = [t for t in ids if t != RCU_TID]
    if current in ids and yielding(runnable, current) and len(tasks) > 1:
        later = [t for t in tasks if t > current]
        return later[0] if later else tasks[0] if tasks[0] != current else tasks[1]
    if current in ids:
        return current
    return tasks[0] if tasks else RCU_TID
