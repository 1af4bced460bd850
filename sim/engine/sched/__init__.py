"""How ties and choice points are decided: one strategy per module, one interface (base).

- timed (default): costs drive simulated time; simultaneous events run in seeded order;
  delays: the timed model with preemptions and interrupts injected at race candidates;
- controlled (one actor steps at a time, a policy picks which):
  random (a random walk), pct (probabilistic concurrency testing), replay (recorded choices,
  strictly or as a prefix), dfs (bounded exhaustive search with sleep-set reduction).
A run is reproduced exactly by its seed and its recorded choices (or picks). REGISTRY is the
one list of strategies: name, CLI choice, factory, and the name reproducers record.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.errors import InputError
from sim.engine.sched.base import YIELD, Strategy
from sim.engine.sched.controlled import RCU_TID, Controlled, Decision, Runnable, default_choice
from sim.engine.sched.delays import COUNT, IRQ_US, PER_SITE, PREEMPT_SHARE, RATE, Delays
from sim.engine.sched.dfs import DFS, NonDeterminism
from sim.engine.sched.pct import DEPTH as PCT_DEPTH, PCT
from sim.engine.sched.random_walk import RandomWalk
from sim.engine.sched.replay import Replay, ReplayDivergence
from sim.engine.sched.timed import Timed

__all__ = ["Strategy", "Timed", "Controlled", "RandomWalk", "PCT", "Replay", "DFS",
           "ReplayDivergence", "NonDeterminism", "Runnable", "Decision", "RCU_TID",
           "default_choice", "make_strategy", "STRATEGIES", "HUNT_STRATEGIES", "REGISTRY",
           "StrategyInfo", "Delays", "IRQ_US", "YIELD"]

@dataclass(frozen=True)
class StrategyInfo:
    """One strategy, registered once: its name (also its CLI choice and the name its
    reproducers record), what it is, how to make it from a spec (plain data), and where it
    may be used."""

    name: str
    doc: str
    factory: Callable[[dict[str, Any]], Strategy]
    hunt: bool = False            # a `hunt --strategy` choice
    controlled: bool = False      # decides choice points in controlled mode


def _seeded(cls: Any, *keys: tuple[str, Any]) -> Callable[[dict[str, Any]], Strategy]:
    def make(spec: dict[str, Any]) -> Strategy:
        s = cls(spec.get("seed", 0), *(spec.get(k, d) for k, d in keys))
        s.start_at(spec.get("execution", 0))
        return s
    return make


def _delays(spec: dict[str, Any]) -> Strategy:
    s = Delays(spec.get("seed", 0), scheme=spec.get("scheme", "each"),
               per_site=spec.get("per_site", PER_SITE), rate=spec.get("rate", RATE),
               preempt_share=spec.get("preempt_share", PREEMPT_SHARE),
               profile=spec.get("profile"), count=spec.get("count", COUNT),
               occurrences=spec.get("occurrences", 0), preempt_us=spec.get("preempt_us"),
               irq_us=spec.get("irq_us", IRQ_US), generic=spec.get("generic", ()),
               picks=spec.get("picks"))
    s.start_at(spec.get("execution", 0))
    return s


REGISTRY: dict[str, StrategyInfo] = {i.name: i for i in (
    StrategyInfo("timed", "the timed model: costs drive time, ties broken by the seed",
                 lambda spec: Timed()),
    StrategyInfo("seeds", "seeds of the timed model, one per execution (hunt)",
                 lambda spec: Timed(), hunt=True),
    StrategyInfo("delays", "the timed model with preemptions and interrupts injected at "
                 "race candidates", _delays, hunt=True),
    StrategyInfo("random", "a random walk over choice points", _seeded(RandomWalk),
                 hunt=True, controlled=True),
    StrategyInfo("pct", "probabilistic concurrency testing", _seeded(
        PCT, ("depth", PCT_DEPTH), ("steps", 0)), hunt=True, controlled=True),
    StrategyInfo("dfs", "bounded exhaustive search (sleep sets)", lambda spec: DFS(
        spec.get("max_preemptions", 2), spec.get("reduction", True)), hunt=True,
        controlled=True),
    StrategyInfo("replay", "recorded choices, strictly or as a prefix", lambda spec: Replay(
        list(spec.get("choices", [])), bool(spec.get("prefix", False)),
        {int(k): v for k, v in spec.get("overrides", {}).items()}), controlled=True),
)}
STRATEGIES = tuple(REGISTRY)
HUNT_STRATEGIES = tuple(n for n, i in REGISTRY.items() if i.hunt)


def make_strategy(spec: dict[str, Any]) -> Strategy:
    """A strategy from its spec (plain data), e.g. {"name": "timed"},
    {"name": "pct", "seed": 3, "depth": 3, "steps": 2000, "execution": 17},
    {"name": "replay", "choices": [...], "prefix": false},
    {"name": "delays", "picks": [[occurrence, kind, us], ...]}."""
    if not isinstance(spec, dict):
        raise InputError(f"a strategy spec is a table with a name, got {spec!r}")
    name = spec.get("name")
    info = REGISTRY.get(name) if isinstance(name, str) else None
    if info is None:
        raise InputError(f"unknown strategy {name!r}; valid: " + ", ".join(STRATEGIES))
    try:
        return info.factory(spec)
    except (TypeError, ValueError, IndexError) as e:
        raise InputError(f"bad {name} strategy spec: {e}") from None
