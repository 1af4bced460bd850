"""A reproducer: a small versioned JSON file that replays one violation exactly.

    {"format": 1, "simulator_version": "0.2.0", "workload": ..., "scenario": ...,
     "params": {...resolved...}, "variant": ..., "seed": ..., "limits": {...},
     "strategy": {how it was found}, "choices": [actor ids], "events": N,
     "violation": {"kind", "harm", "via", "time_us"}}

A timed-model reproducer (found by seeds) has no choices: its seed is the whole schedule. A
controlled one is replayed strictly (sim.sched.Replay): the same seed and the same choices
give the same run, event for event; a choice that no longer fits is reported and refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from .. import __version__, variants
from ..checks import KINDS
from ..errors import InputError
from ..result import Result
from ..sched import Replay, ReplayDivergence
from ..spec import RunSpec
from .runs import run_spec
from .target import Target

FORMAT = 1
LIMIT_KEYS = ("max_events", "max_wall_s", "max_memory")


@dataclass
class Reproducer:
    spec: RunSpec
    strategy: dict[str, Any]
    choices: list[int] = field(default_factory=list)
    events: int = 0
    violation: dict[str, Any] = field(default_factory=dict)
    timed: bool = False

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        return {"format": FORMAT, "simulator_version": __version__, "workload": s.workload,
                "scenario": s.scenario, "params": s.params, "variant": s.variant,
                "seed": s.seed, "limits": {k: getattr(s, k) for k in LIMIT_KEYS
                                           if getattr(s, k) is not None},
                "strategy": self.strategy, "timed": self.timed, "choices": self.choices,
                "events": self.events, "violation": self.violation}

    def save(self, path: str | os.PathLike) -> None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, indent=1)
                f.write("\n")
        except OSError as e:
            raise InputError(f"cannot write the reproducer to '{path}': {e.strerror}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Reproducer":
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except OSError as e:
            raise InputError(f"cannot read '{path}': {e.strerror}") from None
        except ValueError as e:
            raise InputError(f"'{path}' is not a reproducer (not JSON: {e})") from None
        return cls.from_dict(d, str(path))

    @classmethod
    def from_dict(cls, d: Any, where: str = "reproducer") -> "Reproducer":
        if not isinstance(d, dict) or "format" not in d:
            raise InputError(f"'{where}' is not an rmapsim reproducer (no format field)")
        if d["format"] != FORMAT:
            raise InputError(f"'{where}' is reproducer format {d['format']!r}; this rmapsim "
                             f"({__version__}) reads format {FORMAT}")
        if d.get("simulator_version") != __version__:
            raise InputError(f"'{where}' was made by rmapsim {d.get('simulator_version')}; "
                             f"this is {__version__}, whose runs may differ: replay it with "
                             "that version")
        try:
            spec = RunSpec(d["scenario"], d["params"], d["variant"], d["seed"],
                           workload=d["workload"], **d.get("limits", {}))
            choices = d["choices"]
            if not isinstance(choices, list) or not all(isinstance(c, int) for c in choices):
                raise TypeError("choices must be a list of actor ids")
            v = d["violation"]
            if not isinstance(v, dict) or v.get("kind") not in KINDS or \
                    not isinstance(v.get("via"), str) or \
                    not isinstance(v.get("harm"), (str, type(None))):
                raise TypeError("violation must name a kind (one of " + ", ".join(KINDS)
                                + "), a harm (or null) and a kernel site (via)")
            if not isinstance(d["events"], int) or not isinstance(d["strategy"], dict):
                raise TypeError("events must be a count and strategy a table")
            return cls(spec, d["strategy"], choices, d["events"], d["violation"],
                       bool(d.get("timed", False)))
        except (KeyError, TypeError) as e:
            raise InputError(f"'{where}' is not a complete reproducer: {e}") from None


def matches(result: Result, want: dict[str, Any]) -> Any:
    """The first violation of `result` with the reproducer's kind, harm and site, or None."""
    target = Target.of(want)
    return next((v for v in result.violations if v.kind == want.get("kind") and
                 target.match(v)), None)


def replay(rep: Reproducer, variant: str | None = None) -> tuple[Result, Any]:
    """Run it again: (the result, its matching violation or None). A recorded choice that
    does not fit raises InputError naming it.

    With another `variant` (is a fix closing this interleaving?), the recorded choices are
    followed while they fit and the run goes on without preemption after the first that does
    not (the fixed code may take other steps); `result.schedule["followed"]` says how many
    were followed. A timed reproducer re-runs its seed on the other variant."""
    spec = rep.spec if variant is None or variant == rep.spec.variant else \
        replace(rep.spec, variant=variants.get(variant).name)
    if rep.timed:
        result = run_spec(spec)
    elif spec is not rep.spec:
        strat = Replay(rep.choices, prefix=True)
        result = run_spec(spec, strategy=strat)
        result.schedule["followed"] = strat.followed
    else:
        try:
            result = run_spec(spec, strategy=Replay(rep.choices))
        except ReplayDivergence as e:
            raise InputError(f"the reproducer does not replay: {e}") from None
    return result, matches(result, rep.violation)
