"""Violations: what oracles and validators report, and the log that keeps them.

Oracles observe kernel state and never change it. Every reporter (the engine's lockdep and
deadlock detector, the mm model's oracles) emits a Report on the kernel's hook bus
(`k.report(...)`); the ViolationLog subscribes. Every report carries the simulated time, the
actors involved, a detail dict, the history of the object involved (KASAN style: allocated
by whom and when, freed by whom and when, reused as what) and an interleaving diagram built
from the actors' recent steps.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel

# The kinds the engine's validators report (a model adds its own: ViolationLog.kinds).
# Names are contract (scripts and sweeps rely on them); extend, never rename.
ENGINE_KINDS: dict[str, str] = {
    "lock_order_inversion": "locks taken against the documented order, or in an order that "
                            "closes a cycle in lockdep's learned dependency graph",
    "deadlock": "a cycle of tasks each waiting for a lock another one holds",
    "lock_misuse": "lockdep-style misuse: bad unlock balance, recursive locking, sleeping "
                   "while atomic, exiting with locks held",
    "livelock": "steps kept running with no simulated time passing (all costs zero and a "
                "loop that never waits): the run stops; `actors` gives each task's steps and "
                "stack",
    "oops": "a kernel BUG() or bad pointer dereference (field `source`: the kernel line): "
            "the task dies, and what it held stays held",
}


@dataclass
class Violation:
    kind: str
    time_us: float
    actors: list[str]
    detail: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    diagram: str | None = None
    harm: str | None = None          # anon_vma accesses: benign, corrupting, use_after_free
    clock: str = "us"                # "step": a controlled run, times are decision indices

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind, "time_us": round(self.time_us, 3), "actors": self.actors,
            "detail": self.detail,
        }
        if self.harm is not None:
            d["harm"] = self.harm
        if self.clock != "us":
            d["clock"] = self.clock
        if self.history:
            d["history"] = self.history
        if self.diagram is not None:
            d["diagram"] = self.diagram
        return d


class Report(NamedTuple):
    """A violation found (ViolationLog.report says what each field means)."""

    kind: str
    actors: Sequence[Task]
    detail: dict[str, Any]
    history: Sequence[dict[str, Any]] = ()
    key: Hashable | None = None
    since: float | None = None
    mark: tuple[Task, str] | None = None
    harm: str | None = None
    verdict: str = "BUG"
    extra: dict[str, list[tuple[float, str]]] | None = None


class ViolationLog:
    """Collects reports: counts every one, keeps the first `keep` of each kind in full."""

    def __init__(self, k: "Kernel", keep: int = 20, stop_on: Iterable[str] = ()) -> None:
        self.k = k
        self.keep = keep
        self.stop_on = frozenset(stop_on)
        self.records: list[Violation] = []
        self.counts: dict[str, int] = {}
        self.harm_counts: dict[str, int] = {}
        self._seen: set[Hashable] = set()
        self.kinds = dict(ENGINE_KINDS)     # a model installing oracles adds its kinds
        k.hooks.subscribe(Report, lambda r: self.report(*r))

    def report(self, kind: str, actors: Sequence[Task], detail: dict[str, Any],
               history: Sequence[dict[str, Any]] = (), key: Hashable | None = None,
               since: float | None = None, mark: tuple[Task, str] | None = None,
               harm: str | None = None, verdict: str = "BUG",
               extra: dict[str, list[tuple[float, str]]] | None = None) -> bool:
        """Record a violation. `key` de-duplicates (same key = same bug, counted once).

        `since` starts the interleaving diagram at that time (default: recent steps only);
        `mark` names the actor and step to flag, `verdict` what the flag says ("<== BUG").
        `harm` (anon_vma accesses) is counted in harm_counts; `extra` adds diagram columns
        of (time, text) that are no task's steps. Returns True if new.
        """
        assert kind in self.kinds, kind
        if key is not None:
            if (kind, key) in self._seen:
                return False
            self._seen.add((kind, key))
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        if harm is not None:
            self.harm_counts[harm] = self.harm_counts.get(harm, 0) + 1
        if n < self.keep:
            diagram = (self.k.tracer.diagram(list(actors), since, mark, verdict=verdict,
                                             extra=extra) if actors else None)
            self.records.append(Violation(kind, self.k.clock(), [t.name for t in actors],
                                          detail, list(history), diagram, harm,
                                          self.k.clock_unit))
        if kind in self.stop_on:
            self.k.stop = True
        return True

    def of(self, kind: str) -> list[Violation]:
        return [v for v in self.records if v.kind == kind]
