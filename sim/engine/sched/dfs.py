"""Bounded exhaustive search: depth-first over the choice points of a program, re-running it
from the start for each schedule (stateless model checking, as CHESS does).

- The default schedule never preempts: the actor that ran last goes on while it can, else the
  lowest id. After each execution the search goes back to the deepest decision with an
  untried alternative, and the next execution follows the path to it, then the alternative,
  then the default again.
- Preemption bound: choosing another actor while the one that ran last is still runnable is a
  preemption (choosing `rcu`, the grace period's end, counts too); no schedule has more than
  `max_preemptions`. Most concurrency bugs need few (Musuvathi and Qadeer, PLDI 2007).
- Reduction (sleep sets, Godefroid 1996): two steps are independent when they touch different
  known objects (the `obj` of their choice points); an alternative whose step is independent
  of everything run since it was explored leads to an equivalent schedule and is skipped. A
  step whose object is unknown (None), and the grace period's end, depend on everything.
  An execution in which every runnable actor is asleep is stopped ("pruned").

One DFS object persists across the executions of one search: `new_execution()` before each,
`backtrack()` after; `backtrack()` is False once the tree is exhausted.
"""

from __future__ import annotations

from typing import Any

from sim.engine.sched.controlled import RCU_TID, Controlled, Runnable, default_choice, yielding


class NonDeterminism(Exception):
    """Re-running a path found other runnable actors than the first time."""


def independent(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a is not b and \
        not isinstance(a, str) and not isinstance(b, str)


class Node:
    __slots__ = ("runnable", "current", "chosen", "done", "sleep", "preemptions", "fixed")

    def __init__(self, runnable: tuple[Runnable, ...], current: int | None, chosen: int,
                 sleep: dict[int, Any], preemptions: int, fixed: bool = False) -> None:
        self.runnable = runnable
        self.current = current
        self.chosen = chosen
        self.done: set[int] = set()
        self.sleep = sleep              # asleep here: tid -> the object of its pending step
        self.preemptions = preemptions  # on the path before this decision
        self.fixed = fixed              # part of a job's given prefix: never backtracked

    def preempts(self, tid: int) -> bool:
        """Choosing tid costs a preemption: it switches away from a runnable actor that did
        not yield, or, at a yield, it is not the fair (round-robin) successor. Without the
        second rule a task polling in a yield() loop could go on for free, and the tree
        would have no end."""
        if yielding(self.runnable, self.current):
            return tid != default_choice(self.runnable, self.current)
        return tid != self.current and any(r.tid == self.current for r in self.runnable)

    def obj(self, tid: int) -> Any:
        for r in self.runnable:
            if r.tid == tid:
                return "rcu" if tid == RCU_TID else r.obj
        return None


class DFS(Controlled):
    name = "dfs"

    def __init__(self, max_preemptions: int = 2, reduction: bool = True,
                 prefix: list[int] | None = None,
                 prefix_sleep: set[int] | None = None) -> None:
        self.bound = max_preemptions
        self.reduction = reduction
        self.prefix = list(prefix or [])            # a subtree's path, not backtracked
        self.prefix_sleep = set(prefix_sleep or ())   # asleep at the root (explored elsewhere)
        self.stack: list[Node] = []
        self.executions = 0
        self.pruned = 0
        super().__init__()

    def new_execution(self) -> None:
        super().new_execution()
        self.pos = 0
        self.blocked = False
        self.executions += 1
        self.asleep: dict[int, Any] = {}    # the sleep set now: tid -> its pending step's obj

    def _stop_redundant(self) -> None:
        """Every actor that can run is asleep: the rest of this execution is equivalent to one
        already explored."""
        self.blocked = True
        self.k.stop = True

    def forced(self, only: Runnable) -> None:
        if not self.reduction:
            return
        if only.tid in self.asleep:
            self._stop_redundant()
        taken = "rcu" if only.tid == RCU_TID else only.obj
        self.asleep = {s: o for s, o in self.asleep.items() if independent(o, taken)}

    def choose(self, runnable: tuple[Runnable, ...], current: int | None) -> int:
        i = self.pos
        self.pos += 1
        if i < len(self.stack):
            node = self.stack[i]
            if [r.tid for r in node.runnable] != [r.tid for r in runnable]:
                raise NonDeterminism(
                    f"decision {i}: runnable {[r.tid for r in runnable]}, first time "
                    f"{[r.tid for r in node.runnable]}")
        else:
            ids = {r.tid for r in runnable}
            if not self.stack:
                sleep = {r.tid: r.obj for r in runnable if r.tid in self.prefix_sleep} \
                    if self.reduction else {}
                pre = 0
            else:
                parent = self.stack[-1]
                sleep = {s: o for s, o in self.asleep.items() if s in ids}
                pre = parent.preemptions + (1 if parent.preempts(parent.chosen) else 0)
            if i < len(self.prefix):
                chosen, fixed = self.prefix[i], True
            else:
                fixed = False
                chosen = default_choice(runnable, current, frozenset(sleep))
                if chosen is None:
                    self._stop_redundant()
                    chosen = runnable[0].tid
            node = Node(runnable, current, chosen, sleep, pre, fixed)
            self.stack.append(node)
        if self.reduction:
            # the child's sleep set: what is asleep here (siblings explored before included),
            # less what the step taken now may conflict with
            taken = node.obj(node.chosen)
            self.asleep = {s: o for s, o in node.sleep.items()
                           if s != node.chosen and independent(o, taken)}
        return node.chosen

    def finished(self) -> None:
        if self.blocked:
            self.pruned += 1

    def backtrack(self) -> bool:
        """Go to the next untried schedule; False when there is none (within the bound)."""
        while self.stack:
            node = self.stack[-1]
            if node.fixed:
                self.stack.clear()
                return False
            node.done.add(node.chosen)
            if self.reduction:
                node.sleep[node.chosen] = node.obj(node.chosen)
            for r in node.runnable:
                if r.tid in node.done or r.tid in node.sleep:
                    continue
                if node.preemptions + (1 if node.preempts(r.tid) else 0) > self.bound:
                    continue
                node.chosen = r.tid
                return True
            self.stack.pop()
        return False

    def record(self) -> dict[str, Any]:
        return {**super().record(), "max_preemptions": self.bound}
