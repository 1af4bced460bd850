"""Simulated kernel tasks (ksmd, hot-remove, faulting and exiting processes, lock-calibration CPUs).

A Task is plain data: the simulator's view of a task_struct plus what the checkers need
(held-lock stack, what it waits for, a short history of its recent steps).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False, slots=True)
class Task:
    tid: int
    name: str
    kind: str = "task"
    cpu: int | None = None          # CPU it runs on now, None while sleeping or queued
    last_cpu: int = -1
    slice_start: float = 0.0        # when it last got a CPU (timeslice accounting)
    need_resched: bool = False      # TIF_NEED_RESCHED: set by wakeup preemption
    preempt_count: int = 0          # spinlocks held + preempt_disable (+ rcu_read_lock
                                    # nesting under rcu_flavour "tree")
    rcu_nesting: int = 0
    rcu_since: float = -1.0         # start of the outermost RCU read-side section
    rcu_seq: int = -1               # its place in RCU's order of events (Rcu.seq)
    held: list[Any] = field(default_factory=list)    # lockdep held-lock stack (HeldLock)
    waiting_on: Any = None          # the lock it is blocked or spinning on
    stack: list[str] = field(default_factory=list)   # kernel functions it is inside
    ring: deque = field(default_factory=lambda: deque(maxlen=256))  # recent trace records
    state: str = "new"              # new, running, runnable, sleeping, dead
    main: Any = None                # the generator its SimPy Process drives (Kernel._task_main)
                                    # until it ends; closed by Kernel.close if it never does
    migration: Any = None           # the unmap_and_move it is in (sim.mm.objects.MigrationContext)

    def where(self) -> str:
        """The innermost kernel function it is in (lock_stat's call site)."""
        return self.stack[-1] if self.stack else self.name

    def __repr__(self) -> str:
        return f"<Task {self.name}>"
