"""The one small interface every scheduling strategy implements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from ..task import Task

if TYPE_CHECKING:
    from ..engine import Kernel

Step = Iterable[Event]


class Strategy:
    name = "base"
    controlled = False

    def attach(self, k: "Kernel") -> None:
        self.k = k

    def spend(self, task: Task, cost: float, obj: Any = None) -> Step:
        """A choice point that takes exactly `cost` simulated microseconds of CPU."""
        raise NotImplementedError

    def step(self, task: Task, mean: float, obj: Any = None) -> Step:
        """A choice point for one kernel step whose mean cost is `mean` (jittered)."""
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        """What, beyond the seed, reproduces this run."""
        return {"strategy": self.name}
