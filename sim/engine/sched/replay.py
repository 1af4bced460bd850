"""Replay: re-run a recorded list of choices.

Strict (default): every real choice must find the recorded actor runnable, and the run must
make exactly as many choices as were recorded; otherwise ReplayDivergence names the first
choice that diverged. With `prefix=True` the recorded choices are followed while they fit,
and the run goes on without preemption (the actor that ran last, else the lowest id): what
shrinking uses to try shorter or altered lists. `overrides` ({decision index: actor}) are
deviations from that default, the other form shrinking works on.
"""

from __future__ import annotations

from sim.engine.sched.controlled import Controlled, Runnable, default_choice


class ReplayDivergence(Exception):
    """A recorded choice does not fit the run being replayed."""


class Replay(Controlled):
    name = "replay"

    def __init__(self, choices: list[int] | None = None, prefix: bool = False,
                 overrides: dict[int, int] | None = None) -> None:
        self.script = list(choices or [])
        self.prefix = prefix
        self.overrides = dict(overrides or {})
        super().__init__()

    def new_execution(self) -> None:
        super().new_execution()
        self.pos = 0
        self.followed = 0            # recorded choices followed (prefix mode)

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        ids = [r.tid for r in runnable]
        if self.pos < len(self.script):
            want = self.script[self.pos]
            if want in ids:
                self.pos += 1
                self.followed = self.pos
                return want
            if not self.prefix:
                names = ", ".join(f"{r.tid} ({r.name})" for r in runnable)
                raise ReplayDivergence(
                    f"choice {self.pos}: the recording chose actor {want}, which is not "
                    f"runnable here (runnable: {names})")
            self.pos = len(self.script)          # prefix mode: the rest is default
        elif not self.prefix and not self.overrides:
            raise ReplayDivergence(
                f"choice {self.pos}: the run needs more than the {len(self.script)} "
                "recorded choices")
        forced = self.overrides.get(self.count)
        if forced in ids:
            return forced
        tid = default_choice(runnable, current)
        assert tid is not None
        return tid

    def finished(self) -> None:
        """Strict replay: every recorded choice was used."""
        if not self.prefix and self.pos < len(self.script):
            raise ReplayDivergence(
                f"choice {self.pos}: the run ended after {self.pos} of the "
                f"{len(self.script)} recorded choices")
