"""A lockdep-style validator.

It learns the order in which lock classes are taken (an edge A -> B whenever B is acquired
while A is held) and reports a `lock_order_inversion` as soon as a new edge closes a cycle,
whether or not the tasks involved ever deadlock; it also checks each acquisition against the
documented order a model gives it (`order`: class name -> rank; the mm model's is
sim.mm.lockorder). Classes are (name, subclass), so spin_lock_nested and
down_write_nested annotate legitimate same-class nesting, as in the kernel. Trylocks never
wait, so no dependency is recorded *into* them (they still count as held). It reports
`lock_misuse` for recursive locking, bad unlock balance, sleeping while atomic, and exiting
with locks held.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel
    from sim.engine.locks import Lock

Key = tuple[str, int]


class Lockdep:
    def __init__(self, k: "Kernel", enabled: bool = True) -> None:
        self.k = k
        self.enabled = enabled
        # the model's documented order (class name -> rank): a class may be taken while
        # holding classes of lower or equal rank only; classes it does not list are not checked
        self.order: dict[str, int] = {}
        # edge -> first observation (task, call site, time), like lockdep's lock_list trace
        self.edges: dict[tuple[Key, Key], tuple[str, str, float]] = {}
        self.after: dict[Key, list[Key]] = {}

    def _path(self, src: Key, dst: Key) -> list[Key] | None:
        """A path src -> ... -> dst in the learned graph (BFS, deterministic order)."""
        prev: dict[Key, Key | None] = {src: None}
        q = deque([src])
        while q:
            n = q.popleft()
            if n == dst:
                path = [n]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            for m in self.after.get(n, ()):
                if m not in prev:
                    prev[m] = n
                    q.append(m)
        return None

    def acquire(self, task: Task, lock: "Lock", read: bool, trylock: bool, subclass: int) -> None:
        if not self.enabled:
            return
        name = lock.cls.name
        key = (name, subclass)
        for h in task.held:
            hl = h.lock
            if hl is lock:
                self.k.report(
                    "lock_misuse", [task],
                    {"what": "recursive locking", "lock": name, "instance": lock.label,
                     "site": task.where(), "first_taken_at": h.site},
                    key=("recursive", name, task.where()))
                continue
            hkey = (hl.cls.name, h.subclass)
            if trylock:
                continue
            if hkey == key:
                self.k.report(
                    "lock_misuse", [task],
                    {"what": "possible recursive locking (same class, no nesting annotation)",
                     "lock": name, "held": hl.label, "acquiring": lock.label,
                     "site": task.where()},
                    key=("recursive-class", name, task.where()))
                continue
            edge = (hkey, key)
            if edge not in self.edges:
                self._new_edge(task, h, lock, edge)

    def _new_edge(self, task: Task, held: Any, lock: "Lock", edge: tuple[Key, Key]) -> None:
        a, b = edge
        back = self._path(b, a)
        self.edges[edge] = (task.name, task.where(), self.k.clock())
        self.after.setdefault(a, []).append(b)
        if back is not None:
            chain = [{"from": _fmt(x), "to": _fmt(y), "first_seen": _obs(self.edges[(x, y)])}
                     for x, y in zip(back, back[1:])]
            self.k.report(
                "lock_order_inversion", [task],
                {"source": "lockdep", "new": {"from": _fmt(a), "to": _fmt(b),
                                               "task": task.name, "site": task.where()},
                 "existing_chain": chain},
                key=("lockdep", frozenset((edge,) + tuple(zip(back, back[1:])))))
        ra, rb = self.order.get(a[0]), self.order.get(b[0])
        if ra is not None and rb is not None and ra > rb:
            self.k.report(
                "lock_order_inversion", [task],
                {"source": "documented-order", "held": a[0], "acquired": b[0],
                 "task": task.name, "site": task.where(), "held_since_site": held.site},
                key=("order", a[0], b[0]))

    def bad_unlock(self, task: Task, lock: "Lock | None", op: str) -> None:
        self.k.report(
            "lock_misuse", [task],
            {"what": "bad unlock balance", "op": op,
             "lock": lock.cls.name if lock is not None else "rcu_read_lock",
             "instance": lock.label if lock is not None else "", "site": task.where(),
             "owner": (lock.owner.name if lock is not None and lock.owner is not None
                       else None)},
            key=("unlock", op, task.where()))

    def sleeping_while_atomic(self, task: Task) -> None:
        self.k.report(
            "lock_misuse", [task],
            {"what": "BUG: sleeping function called from invalid context",
             "preempt_count": task.preempt_count, "rcu_nesting": task.rcu_nesting,
             "held": [h.lock.cls.name for h in task.held], "site": task.where()},
            key=("atomic-sleep", task.where()))

    def task_exit(self, task: Task) -> None:
        if task.held or task.rcu_nesting:
            self.k.report(
                "lock_misuse", [task],
                {"what": "task exited with locks held",
                 "held": [h.lock.cls.name for h in task.held],
                 "rcu_nesting": task.rcu_nesting},
                key=("exit-held", task.name))


def _fmt(key: Key) -> str:
    name, sub = key
    return name if sub == 0 else f"{name}/{sub}"


def _obs(o: tuple[str, str, float]) -> dict[str, Any]:
    return {"task": o[0], "site": o[1], "time_us": round(o[2], 3)}
