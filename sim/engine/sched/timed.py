"""Timed mode (default): costs drive time; ties are broken by the seeded RNG.

Steps return a tuple of the events to wait for (`()` or one Timeout) unless a preemption is
due: `yield from` runs them exactly as it would a generator, with no generator to make (the
hot path). Callers delegate to a step at once, so where its decisions are taken is unchanged.
"""

from __future__ import annotations

from typing import Any

from sim.engine.env import delay

from sim.engine.limits import ZERO_STEP_YIELD
from sim.engine.task import Task
from sim.engine.sched.base import Step, Strategy


class Timed(Strategy):
    name = "timed"

    def attach(self, k: Any) -> None:
        super().attach(k)
        self.env = k.env
        self.cpus = k.cpus
        self.runqueue = k.cpus.runqueue     # the same deque for the whole run
        self.jitter = k.rng.costs.jitter
        self.clock = k.env.clock             # type: ignore[method-assign]
        # step() takes spend()'s common case itself unless a subclass overrides spend (Delays,
        # whose spend sees every step)
        self._own_spend = type(self).spend is Timed.spend

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        rq = self.runqueue
        if rq and not task.preempt_count:
            # CpuSet.should_preempt and timeslice, inline (the same arithmetic)
            if task.need_resched:
                return self._preempted(task, cost)
            cpus = self.cpus
            n = cpus.n
            per_cpu = (n - len(cpus.free) + len(rq)) / n
            ts = max(cpus.latency / per_cpu, cpus.min_gran) if per_cpu > 1 else cpus.latency
            if self.clock() - task.slice_start >= ts:
                return self._preempted(task, cost)
        if cost > 0:
            return (delay(self.env, cost),)
        if self._zero_step(task):
            return (delay(self.env, 0),)   # let the run loop check its limits
        return ()

    def _preempted(self, task: Task, cost: float) -> Step:
        yield from self.cpus.preempt(task)
        if cost > 0:
            yield delay(self.env, cost)
        elif self._zero_step(task):
            yield delay(self.env, 0)

    def _zero_step(self, task: Task) -> bool:
        """Account a step that takes no simulated time (every free step, e.g. each lock
        operation); True when the stepping task should yield to the run loop (every
        ZERO_STEP_YIELD of them), so that a loop of free steps still passes through the
        run's limit checks."""
        k = self.k
        n = k.instant_steps = k.instant_steps + 1
        k.instant_steppers.append(task.tid)
        return not n % ZERO_STEP_YIELD

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        if mean <= 0:
            # Free steps are not interleaving points, except to honour a pending preemption
            # (and, now and then, to let the run loop check its limits).
            if self.runqueue:
                return self.spend(task, 0.0)
            return (delay(self.env, 0),) if self._zero_step(task) else ()
        cost = mean * self.jitter()
        if cost > 0 and not self.runqueue and self._own_spend:
            return (delay(self.env, cost),)     # spend()'s common case, one frame fewer
        return self.spend(task, cost, obj)

    def resumed(self, task: Task, obj: Any = None, slept: bool = True) -> Step:
        cs = self.k.costs.context_switch           # try_to_wake_up to running again
        return self.spend(task, cs * self.jitter()) if slept and cs > 0 else ()
