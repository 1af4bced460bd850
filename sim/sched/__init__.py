"""How ties and choice points are decided.

Every kernel step passes through the strategy's `step` (a mean cost, jittered) or `spend` (an
exact cost). The timed strategy (default) lets costs drive simulated time and preempts at
preemptible points; controlled strategies serialise the run and let a policy pick which
waiting task takes its next step, recording each pick so the run replays exactly from
(seed, choices).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import Strategy
from .controlled import Controlled, RandomWalk, Replay, ReplayDivergence
from .timed import Timed

__all__ = ["Strategy", "Timed", "Controlled", "RandomWalk", "Replay", "ReplayDivergence",
           "make_strategy"]


def make_strategy(spec: dict[str, Any]) -> Strategy:
    """A strategy from its spec (plain data): {"name": "timed"}, {"name": "random"},
    {"name": "replay", "choices": [...]}."""
    name = spec.get("name") if isinstance(spec, dict) else None
    if name == "timed":
        return Timed()
    if name == "random":
        return RandomWalk()
    if name == "replay":
        return Replay(list(spec.get("choices", [])))
    raise InputError(f"unknown strategy {name!r}; valid: timed, random, replay")
