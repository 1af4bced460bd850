"""Controlled mode: one task steps at a time, and a policy picks which.

Each choice point parks the task at a gate. Once everything else scheduled for the current
instant has run (the decision event has a lower priority than any SimPy event), the policy
picks one parked task, in tid order, and releases it; it runs to its next choice point or
until it blocks. Step costs are ignored (only sleeps advance time), CPUs are unlimited and
nothing is preempted: the policy is the scheduler. Picks are recorded, so a run is exactly
reproduced by its seed and its list of choices.
"""

from __future__ import annotations

from typing import Any

from simpy.events import Event

from ..task import Task
from .base import Step, Strategy

DECIDE = 2   # after URGENT (0) and NORMAL (1) events at the same instant


class ReplayDivergence(Exception):
    """A recorded choice does not fit the run being replayed."""


class Controlled(Strategy):
    controlled = True

    def __init__(self) -> None:
        self.gated: dict[int, tuple[Task, Event]] = {}
        self.choices: list[int] = []
        self._pending = False

    def attach(self, k: Any) -> None:
        super().attach(k)
        self.env = k.env
        k.cpus.unlimited = True

    def pick(self, tids: list[int]) -> int:
        raise NotImplementedError

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        ev = Event(self.env)
        self.gated[task.tid] = (task, ev)
        if not self._pending:
            self._schedule()
        yield ev

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        return self.spend(task, 0.0, obj)

    def _schedule(self) -> None:
        self._pending = True
        self.env.call_at_priority(self._decide, DECIDE)

    def _decide(self, _ev: Event) -> None:
        self._pending = False
        if not self.gated:
            return
        tids = sorted(self.gated)
        i = self.pick(tids)
        self.choices.append(i)
        _, ev = self.gated.pop(tids[i])
        ev.succeed()
        if self.gated:
            self._schedule()

    def record(self) -> dict[str, Any]:
        return {"strategy": self.name, "choices": list(self.choices)}


class RandomWalk(Controlled):
    """Pick uniformly among the parked tasks (the seeded scheduler stream decides)."""

    name = "random"

    def pick(self, tids: list[int]) -> int:
        return self.k.rng.sched.below(len(tids)) if len(tids) > 1 else 0


class Replay(Controlled):
    """Re-run a recorded list of picks; any mismatch raises ReplayDivergence."""

    name = "replay"

    def __init__(self, choices: list[int]) -> None:
        super().__init__()
        self.script = list(choices)
        self.pos = 0

    def pick(self, tids: list[int]) -> int:
        if self.pos >= len(self.script):
            raise ReplayDivergence(
                f"the run needs more than the {len(self.script)} recorded choices")
        i = self.script[self.pos]
        if not 0 <= i < len(tids):
            raise ReplayDivergence(
                f"choice {self.pos} is {i} but only {len(tids)} tasks are waiting")
        self.pos += 1
        return i
