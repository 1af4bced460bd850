"""The one small interface every scheduling strategy implements.

A strategy decides the run's choice points. One strategy object can serve many executions
(a hunt or a search): it is ready for one when made, `new_execution()` readies it for the
next, `attach(k)` binds it to that execution's Kernel, and `finished()` is called after. Every kernel step goes through `step` (a mean cost, jittered) or
`spend` (an exact cost); a task that wakes from a sleep resumes through `resumed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel

Step = Iterable[Event]

# The `obj` of yield(): a task polling for another's progress offers its CPU.
YIELD = "yield"


class Strategy:
    name = "base"
    controlled = False

    def new_execution(self) -> None:
        """Called before each execution this object decides (persisting state is its own)."""

    def attach(self, k: "Kernel") -> None:
        self.k = k

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        """A choice point that takes exactly `cost` simulated microseconds of CPU."""
        raise NotImplementedError

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        """A choice point for one kernel step whose mean cost is `mean` (jittered)."""
        raise NotImplementedError

    def resumed(self, task: Task, obj: Any = None, slept: bool = True) -> Step:
        """A woken task runs again: after a sleep (its wake-up latency), or, not `slept`,
        a spinning waiter that was handed its lock (nothing, in timed mode)."""
        raise NotImplementedError

    def clock(self) -> float:
        """When, for reports (traces, diagrams, object histories, violations): simulated
        microseconds here; controlled strategies count decisions instead."""
        return self.k.now

    def finished(self) -> None:
        """Called after the execution ends (a strict replay checks it used every choice)."""

    def record(self) -> dict[str, Any]:
        """What, beyond the seed, reproduces this execution."""
        return {"strategy": self.name}
