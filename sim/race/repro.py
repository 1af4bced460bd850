"""A reproducer: a small versioned JSON file that replays one violation exactly.

    {"format": 1, "simulator_version": "0.2.0", "workload": ..., "scenario": ...,
     "params": {...resolved...}, "variant": ..., "seed": ..., "limits": {...},
     "strategy": {how it was found}, "choices": [actor ids], "events": N,
     "violation": {"kind", "harm", "via", "time_us"}, "digest": ...}

`digest` is a digest of the recipe (recipe_digest): a file edited since (another parameter,
seed, variant, pick or choice) still loads and runs, but says that it was edited.

A timed-model reproducer (found by seeds) has no choices: its seed is the whole schedule. A
controlled one is replayed strictly (sim.engine.sched.Replay): the same seed and the same choices
give the same run, event for event; a choice that no longer fits is reported and refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from sim import __version__
from sim.kinds import KINDS
from sim.mm import variants
from sim.errors import InputError
from sim.outputs import write_text
from sim.result import Result
from sim.scenarios import SCENARIOS
from sim.engine.sched import IRQ_US, Replay, ReplayDivergence, make_strategy
from sim.spec import LIMIT_KEYS, RunSpec
from sim.race.runs import run_spec
from sim.race.target import same_violation

FORMAT = 1


@dataclass
class Reproducer:
    spec: RunSpec
    strategy: dict[str, Any]
    choices: list[int] = field(default_factory=list)
    events: int = 0
    violation: dict[str, Any] = field(default_factory=dict)
    timed: bool = False
    edited: bool = False        # loaded from a file whose recipe no longer fits its digest

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        d = {"format": FORMAT, "simulator_version": __version__, "workload": s.workload,
             "scenario": s.scenario, "params": s.params, "variant": s.variant,
             "seed": s.seed, "limits": {k: getattr(s, k) for k in LIMIT_KEYS
                                        if getattr(s, k) is not None},
             "strategy": self.strategy, "timed": self.timed, "choices": self.choices,
             "events": self.events, "violation": self.violation}
        d["digest"] = recipe_digest(d)
        return d

    def save(self, path: str | os.PathLike) -> None:
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        write_text(path, text, "the reproducer")      # temporary file + rename

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Reproducer":
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except OSError as e:
            raise InputError(f"cannot read '{path}': {e.strerror}") from None
        except ValueError as e:
            raise InputError(f"'{path}' is not a reproducer (not JSON: {e})") from None
        except RecursionError:
            raise InputError(f"'{path}' is not a reproducer (JSON nested too deeply)") from None
        return cls.from_dict(d, str(path))

    @classmethod
    def from_dict(cls, d: Any, where: str = "reproducer") -> "Reproducer":
        if not isinstance(d, dict) or "format" not in d:
            raise InputError(f"'{where}' is not an rmapsim reproducer (no format field)")
        if type(d["format"]) is not int or d["format"] != FORMAT:
            raise InputError(f"'{where}' is reproducer format {d['format']!r}; this rmapsim "
                             f"({__version__}) reads format {FORMAT}")
        if d.get("simulator_version") != __version__:
            raise InputError(f"'{where}' was made by rmapsim {d.get('simulator_version')}; "
                             f"this is {__version__}, whose runs may differ: replay it with "
                             "that version")
        problem = _problem(d)
        if problem:
            raise InputError(f"'{where}' is not a complete reproducer: {problem}")
        spec = RunSpec(d["scenario"], d["params"], d["variant"], d["seed"],
                       workload=d["workload"], **d.get("limits", {}))
        return cls(spec, d["strategy"], d["choices"], d["events"], d["violation"],
                   d.get("timed", False),
                   edited="digest" in d and d["digest"] != recipe_digest(d))


RECIPE = ("workload", "scenario", "params", "variant", "seed", "limits", "strategy", "timed",
          "choices")


def recipe_digest(d: dict[str, Any]) -> str:
    """A digest of what makes the run (workload, parameters, variant, seed, limits, and the
    strategy with its picks or the choices): an edited reproducer no longer fits it."""
    recipe = {k: d.get(k) for k in RECIPE}
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


FIELDS = ("scenario", "params", "variant", "seed", "workload", "strategy", "choices",
          "events", "violation")


def _problem(d: dict[str, Any]) -> str | None:
    """What makes `d` no reproducer this version can replay exactly, or None."""
    missing = [k for k in FIELDS if k not in d]
    if missing:
        return "it lacks " + ", ".join(missing)
    if d["scenario"] not in SCENARIOS:
        return f"unknown scenario {d['scenario']!r}; valid: " + ", ".join(SCENARIOS)
    if not isinstance(d["params"], dict):
        return "params must be a table"
    lacking = sorted(set(SCENARIOS[d["scenario"]].schema()) - set(d["params"]))
    if lacking:
        return ("its params lack " + ", ".join(lacking[:5]) + ("..." if len(lacking) > 5
                else "") + " (a reproducer records every resolved parameter)")
    limits = d.get("limits", {})
    if not isinstance(limits, dict) or set(limits) - set(LIMIT_KEYS):
        return "limits may set only " + ", ".join(LIMIT_KEYS)
    if type(d["seed"]) is not int or type(d["events"]) is not int:
        return "seed and events must be integers"
    if not isinstance(d["strategy"], dict) or not isinstance(d["workload"], str):
        return "strategy must be a table and workload a name"
    timed = d.get("timed", False)
    choices = d["choices"]
    if type(timed) is not bool:
        return "timed must be true or false"
    if not isinstance(choices, list) or not all(type(c) is int for c in choices):
        return "choices must be a list of actor ids"
    if timed and choices:
        return "a timed reproducer (its seed is the schedule) records no choices"
    v = d["violation"]
    if not isinstance(v, dict) or v.get("kind") not in KINDS or \
            not isinstance(v.get("via"), str) or not isinstance(v.get("harm"), (str, type(None))):
        return ("violation must name a kind (one of " + ", ".join(KINDS) + "), a harm (or "
                "null) and a kernel site (via)")
    return None


def matches(result: Result, want: dict[str, Any]) -> Any:
    """The first violation of `result` with the reproducer's kind, harm and site, or None."""
    return next((v for v in result.violations if same_violation(v, want)), None)


def timed_strategy(rep: Reproducer) -> Any:
    """The timed model as the reproducer ran it: its injected delays (a delays reproducer,
    sim.engine.sched.delays: exactly its picks), or none (a seed)."""
    how = rep.strategy
    if how.get("name") == "delays" or "picks" in how:
        return make_strategy({"name": "delays", "picks": how.get("picks", []),
                              "generic": how.get("generic", []),
                              "preempt_us": how.get("preempt_us"),
                              "irq_us": how.get("irq_us", IRQ_US)})
    return None


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
        result = run_spec(spec, strategy=timed_strategy(rep))
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
