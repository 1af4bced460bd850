"""Random walk: at each choice, an actor uniformly at random.

Its random numbers are its own (not the run's): execution i of a walk seeded S draws from a
generator seeded by (S, i), so any execution can be re-run alone, in any process."""

from __future__ import annotations

import numpy as np

from .controlled import Controlled, Runnable


class RandomWalk(Controlled):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.execution = -1
        super().__init__()

    def new_execution(self) -> None:
        super().new_execution()
        self.execution += 1
        self.rng = np.random.default_rng([self.seed, self.execution])

    def start_at(self, execution: int) -> None:
        """Make this execution number `execution` (as if that many had gone before)."""
        self.execution = execution - 1
        self.new_execution()

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        return runnable[int(self.rng.integers(len(runnable)))].tid

    def spec(self) -> dict:
        return {"name": self.name, "seed": self.seed, "execution": self.execution}
