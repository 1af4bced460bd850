"""Reproducing race windows: hunt for an interleaving that shows a violation (random walk,
PCT, bounded exhaustive search, or seeds of the timed model), save it as a small versioned
reproducer, replay it exactly, shrink it, and explore a small configuration exhaustively
within a preemption bound."""

from sim.race.explore import ExploreOutcome, explore
from sim.race.hunt import HuntOutcome, hunt
from sim.race.target import Target, signature
from sim.race.repro import FORMAT, Reproducer, replay
from sim.race.shrink import ShrinkOutcome, shrink

__all__ = ["FORMAT", "Reproducer", "replay", "Target", "signature", "hunt", "HuntOutcome",
           "shrink", "ShrinkOutcome", "explore", "ExploreOutcome"]
