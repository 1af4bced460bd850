"""Wait-for cycle detection.

Whenever a task starts waiting on a lock, follow "waits for" edges: a waiter waits for the
lock's holders and, on FIFO locks (ticket spinlocks, rwsems), for the waiters queued ahead of
it. Reaching the new waiter again is a deadlock; the report names the chain of tasks and locks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel
    from sim.engine.locks import Lock


def waits_for(task: Task) -> list[Task]:
    lock: Any = task.waiting_on
    if lock is None:
        return []
    out = list(lock.holders())
    for w in lock.waiters:
        if w.task is task:
            break
        out.append(w.task)
    else:
        out = list(lock.holders())   # not queued in order (a page-lock sleeper): holders only
    return out


class DeadlockDetector:
    def __init__(self, k: "Kernel") -> None:
        self.k = k

    def on_wait(self, task: Task, lock: "Lock") -> None:
        # A cycle needs someone waiting for the new waiter: a waiter of a lock it holds, or
        # one queued behind it. Holding nothing and last in its queue (or queued nowhere, a
        # page-lock sleeper), it closes no cycle. (A lock handed to a waiter is its own before
        # it runs again, but the new waiter is running: its held stack is complete.)
        if not task.held:
            w = lock.waiters
            if not w or w[-1].task is task or all(x.task is not task for x in w):
                return
        # Nearly always, no one the new waiter waits for is waiting itself: no cycle.
        if not any(u is task or u.waiting_on is not None for u in waits_for(task)):
            return
        # DFS from the new waiter; a path back to it is a cycle.
        path: list[Task] = [task]
        on_path = {task.tid}
        visited: set[int] = set()

        def dfs(t: Task) -> list[Task] | None:
            for u in waits_for(t):
                if u is task:
                    return list(path)
                if u.tid in visited or u.tid in on_path:
                    continue
                visited.add(u.tid)
                path.append(u)
                on_path.add(u.tid)
                found = dfs(u)
                if found is not None:
                    return found
                path.pop()
                on_path.discard(u.tid)
            return None

        cycle = dfs(task)
        if cycle is None:
            return
        chain = [{"task": t.name, "waits_for": t.waiting_on.cls.name,
                  "instance": t.waiting_on.label,
                  "held_by": [h.name for h in t.waiting_on.holders()],
                  "holds": [h.lock.cls.name for h in t.held]} for t in cycle]
        self.k.report(
            "deadlock", cycle, {"chain": chain},
            key=tuple(sorted(t.tid for t in cycle)))
