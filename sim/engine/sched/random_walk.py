"""Random walk: at each choice, an actor uniformly at random.

Its random numbers are its own (not the run's): execution i of a walk seeded S draws from a
generator seeded by (S, i), so any execution can be re-run alone, in any process."""

from __future__ import annotations

from sim.engine.sched.controlled import Runnable, Seeded


class RandomWalk(Seeded):
    name = "random"

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        return runnable[int(self.rng.integers(len(runnable)))].tid

    def spec(self) -> dict:
        return {"name": self.name, "seed": self.seed, "execution": self.execution}
