"""The profile run of a delays hunt (sim.engine.sched.delays): one run of the workload at its seed,
without delays, that counts the candidate occurrences of the declared windows (the scheme
`uniform` draws among that many) and finds the *generic* candidate sites: kernel functions
whose choice points touched an anon_vma (its lock) that another task freed later in the run.
"""

from __future__ import annotations

from typing import Any

from sim.mm.events import AnonVmaFreed
from sim.engine.sched import Delays
from sim.spec import RunSpec
from sim.engine.task import Task
from sim.race.runs import run_spec


class _Profile(Delays):
    """No delays; remembers who stepped on which object, and where."""

    def __init__(self, **options: Any) -> None:
        super().__init__(rate=0.0, **options)
        self.found: set[str] = set()

    def attach(self, k: Any) -> None:
        super().attach(k)
        self.touched: dict[int, set[tuple[int, str]]] = {}
        k.hooks.subscribe(AnonVmaFreed, self._freed)

    def _touch(self, task: Task, obj: Any) -> None:
        if obj is not None and task.stack:
            self.touched.setdefault(id(obj), set()).add((task.tid, task.stack[-1]))

    def _freed(self, ev: AnonVmaFreed) -> None:
        av = ev.ptr.av
        for o in (av, av.lock, ev.ptr):
            for tid, site in self.touched.pop(id(o), ()):
                if tid != ev.task.tid:
                    self.found.add(site)

    def spend(self, task: Task, cost: float, obj: Any = None) -> Any:
        self._touch(task, obj)
        return super().spend(task, cost, obj)

    def step(self, task: Task, mean: float, obj: Any = None) -> Any:
        self._touch(task, obj)
        return super().step(task, mean, obj)


def delay_profile(spec: RunSpec, options: dict[str, Any]) -> dict[str, Any]:
    """What a delays hunt needs from one undisturbed run: {"occurrences", "generic",
    "options"}. Generic sites are added only with options["generic"] (default on)."""
    opts = {k: v for k, v in options.items() if k != "generic"}
    prof = _Profile(**{k: v for k, v in opts.items() if k in ("preempt_us", "irq_us")})
    run_spec(spec, strategy=prof)
    generic = sorted(prof.found) if options.get("generic", True) else []
    return {"occurrences": prof.n, "generic": generic, "options": opts,
            "sites": dict(sorted(prof.site_counts.items()))}
