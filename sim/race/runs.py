"""One execution of a search (hunt, explore, shrink, replay)."""

from __future__ import annotations

from typing import Any

from sim.api import run_spec as _run_spec
from sim.result import Result
from sim.spec import RunSpec


def run_spec(spec: RunSpec, strategy: Any = None) -> Result:
    """sim.api.run_spec, except that Ctrl-C ends the whole search: the engine ends a run it
    interrupts with `truncated = "interrupted"` (a `run` prints it), but an interrupted
    execution is no execution of a search, so it is raised again here."""
    result = _run_spec(spec, strategy=strategy)
    if result.truncated == "interrupted":
        raise KeyboardInterrupt
    return result
