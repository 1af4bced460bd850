"""Timed mode (default): costs drive time; ties are broken by the seeded RNG."""

from __future__ import annotations

from typing import Any

from simpy.events import Timeout

from sim.engine.task import Task
from sim.engine.sched.base import Step, Strategy


class Timed(Strategy):
    name = "timed"

    def attach(self, k: Any) -> None:
        super().attach(k)
        self.env = k.env
        self.cpus = k.cpus
        self.jitter = k.rng.costs.jitter

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        cpus = self.cpus
        if cpus.runqueue and cpus.should_preempt(task):
            yield from cpus.preempt(task)
        if cost > 0:
            yield Timeout(self.env, cost)
        elif self.k.zero_step(task):
            yield Timeout(self.env, 0)       # let the run loop check its limits

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        if mean <= 0:
            # Free steps are not interleaving points, except to honour a pending preemption
            # (and, now and then, to let the run loop check its limits).
            if self.cpus.runqueue:
                return self.spend(task, 0.0)
            return self._yield() if self.k.zero_step(task) else ()
        return self.spend(task, mean * self.jitter(), obj)

    def resumed(self, task: Task, obj: Any = None, slept: bool = True) -> Step:
        cs = self.k.costs.context_switch           # try_to_wake_up to running again
        return self.spend(task, cs * self.jitter()) if slept and cs > 0 else ()

    def _yield(self) -> Step:
        yield Timeout(self.env, 0)
