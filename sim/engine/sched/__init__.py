"""How ties and choice points are decided: one strategy per module, one interface (base).

- timed (default): costs drive simulated time; simultaneous events run in seeded order;
- controlled (one actor steps at a time, a policy picks which):
  random (a random walk), pct (probabilistic concurrency testing), replay (recorded choices,
  strictly or as a prefix), dfs (bounded exhaustive search with sleep-set reduction).
A run is reproduced exactly by its seed and its recorded choices.
"""

from typing import Any

from sim.errors import InputError
from sim.engine.sched.base import YIELD, Strategy
from sim.engine.sched.controlled import RCU_TID, Controlled, Decision, Runnable, default_choice
from sim.engine.sched.dfs import DFS, NonDeterminism
from sim.engine.sched.pct import PCT
from sim.engine.sched.random_walk import RandomWalk
from sim.engine.sched.replay import Replay, ReplayDivergence
from sim.engine.sched.timed import Timed

__all__ = ["Strategy", "Timed", "Controlled", "RandomWalk", "PCT", "Replay", "DFS",
           "ReplayDivergence", "NonDeterminism", "Runnable", "Decision", "RCU_TID",
           "default_choice", "make_strategy", "STRATEGIES", "YIELD"]

STRATEGIES = ("timed", "random", "pct", "replay", "dfs")


def make_strategy(spec: dict[str, Any]) -> Strategy:
    """A strategy from its spec (plain data), e.g. {"name": "timed"},
    {"name": "pct", "seed": 3, "depth": 3, "steps": 2000, "execution": 17},
    {"name": "replay", "choices": [...], "prefix": false}."""
    if not isinstance(spec, dict):
        raise InputError(f"a strategy spec is a table with a name, got {spec!r}")
    name = spec.get("name")
    try:
        if name == "timed":
            return Timed()
        if name in ("random", "pct"):
            s: Any = RandomWalk(spec.get("seed", 0)) if name == "random" else \
                PCT(spec.get("seed", 0), spec.get("depth", 3), spec.get("steps", 1000))
            s.start_at(spec.get("execution", 0))
            return s
        if name == "replay":
            return Replay(list(spec.get("choices", [])), bool(spec.get("prefix", False)),
                          {int(k): v for k, v in spec.get("overrides", {}).items()})
        if name == "dfs":
            return DFS(spec.get("max_preemptions", 2), spec.get("reduction", True))
    except (TypeError, ValueError) as e:
        raise InputError(f"bad {name} strategy spec: {e}") from None
    raise InputError(f"unknown strategy {name!r}; valid: " + ", ".join(STRATEGIES))
