"""PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010).

Each actor gets a random priority when it is first seen; the highest-priority runnable actor
always runs. Before the run, d-1 change points are drawn uniformly among the first k real
choices (decisions with two or more runnable actors: a forced decision is no place to change
anything); at change point i (i = 1..d-1, in no particular order of time) the actor chosen to
run gets priority i (lower than every initial priority, which are all above d), so others
overtake it. A yield demotes the yielder below the other runnable actors (fairness: a poller
must not starve the actor it waits for).

For a program of n actors and at most k steps, a bug of depth d (d ordering constraints
between steps must hold for it to show) is found by one execution with probability at least
1 / (n * k**(d-1)). Here n counts tasks and the `rcu` grace-period actor, and k counts real
choices. As in Shuttle's PCT scheduler, k is not estimated up front: it is the number of real
choices of the longest execution seen so far (`steps` gives the first executions' value; 0:
the first execution has no change point), and grows as longer executions are seen
(`observe`). A hunt makes k grow only between blocks of executions whose boundaries do not
depend on the number of jobs (sim.race.hunt), and records the k each execution used.
"""

from __future__ import annotations

from sim.engine.sched.controlled import Runnable, Seeded, yielding


# The default bug depth, from a measurement on the mini workloads (README, Strategies).
DEPTH = 5


class PCT(Seeded):
    name = "pct"
    SALT = (0x9C7,)

    def __init__(self, seed: int = 0, depth: int = DEPTH, steps: int = 0) -> None:
        if depth < 1 or steps < 0:
            raise ValueError("PCT needs depth >= 1 and steps >= 0")
        self.depth = depth
        self.steps = steps
        super().__init__(seed)

    def observe(self, real_choices: int) -> None:
        """An execution made this many real choices: k grows to the longest seen."""
        self.steps = max(self.steps, real_choices)

    def new_execution(self) -> None:
        if getattr(self, "choices", None):       # the execution just run (if any)
            self.observe(len(self.choices))
        super().new_execution()
        self.priority: dict[int, float] = {}
        self.applied = 0                          # change points that took effect
        self.k_used = self.steps
        points = self.rng.integers(0, self.steps, size=self.depth - 1) if self.steps else ()
        # change point i (drawn in no order) demotes to priority i, as in the paper: a later
        # change point may demote below an earlier one
        self.changes = {int(p): i + 1 for i, p in enumerate(points)}

    @staticmethod
    def bound(n: int, k: int, d: int) -> float:
        """The guaranteed probability of finding a depth-d bug in one execution."""
        return 1.0 / (n * k ** (d - 1))

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        for r in runnable:
            if r.tid not in self.priority:        # initial priorities: above d, distinct
                self.priority[r.tid] = self.depth + float(self.rng.random())
        if yielding(runnable, current):
            # A voluntary yield demotes the yielder below every other runnable actor, as a
            # fair scheduler would; else a task polling for a lower-priority one's progress
            # would spin until the run's livelock bound.
            others = [self.priority[r.tid] for r in runnable if r.tid != current]
            if others and self.priority[current] >= min(others):
                self.priority[current] = min(others) - 1e-6
        tid = max(runnable, key=lambda r: self.priority[r.tid]).tid
        change = self.changes.get(len(self.choices))   # the index of this real choice
        if change is not None:
            self.applied += 1
            self.priority[tid] = float(change)
            tid = max(runnable, key=lambda r: self.priority[r.tid]).tid
        return tid

    def spec(self) -> dict:
        return {"name": self.name, "seed": self.seed, "depth": self.depth,
                "steps": self.k_used, "execution": self.execution}
