"""One execution of a search (hunt, explore, shrink, replay), and what a search refuses."""

from __future__ import annotations

from typing import Any

from sim.api import run_spec as _run_spec
from sim.errors import InputError
from sim.result import Result
from sim.scenarios import SCENARIOS
from sim.engine.sched import REGISTRY
from sim.spec import RunSpec


def run_spec(spec: RunSpec, strategy: Any = None) -> Result:
    """sim.api.run_spec, except that Ctrl-C ends the whole search: the engine ends a run it
    interrupts with `truncated = "interrupted"` (a `run` prints it), but an interrupted
    execution is no execution of a search, so it is raised again here."""
    result = _run_spec(spec, strategy=strategy)
    if result.truncated == "interrupted":
        raise KeyboardInterrupt
    return result


def refuse_controlled(spec: RunSpec, strategy: str) -> None:
    """A controlled strategy on a workload driven by timed sleeps cannot reach its windows:
    steps take no time there, so every other actor is asleep until a later instant whenever
    a task is inside one. Say so, and what works."""
    if REGISTRY[strategy].controlled and SCENARIOS[spec.scenario].sleeps(spec.params):
        raise InputError(
            f"the controlled strategy {strategy} cannot reach the race windows of workload "
            f"'{spec.workload or spec.scenario}': its actors are driven by timed sleeps, and "
            "in controlled mode steps take no time, so no other actor can run inside a "
            "window; use --strategy delays (or seeds) on it, or a mini workload")
