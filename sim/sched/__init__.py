"""How ties and choice points are decided.

Every kernel step passes through the strategy's `step` (a mean cost, jittered) or `spend` (an
exact cost). The timed strategy (default) lets costs drive simulated time and preempts at
preemptible points; controlled strategies serialise the run and let a policy pick which
waiting task takes its next step, recording each pick so the run replays exactly from
(seed, choices).
"""

from __future__ import annotations

from .base import Strategy
from .controlled import Controlled, RandomWalk, Replay, ReplayDivergence
from .timed import Timed

__all__ = ["Strategy", "Timed", "Controlled", "RandomWalk", "Replay", "ReplayDivergence"]
