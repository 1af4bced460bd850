"""Simulated CPUs: who runs where, and when a task is preempted.

A simplified CFS on one global FIFO runqueue (no per-CPU runqueues, no load balancing, no
nice levels). A task needs a CPU to execute steps; it gives its CPU up when it sleeps (sleeping
locks, waits, timed sleeps) and keeps it while it spins on a spinlock. Kernel code is preemptible
(CONFIG_PREEMPT) except while preempt_count > 0 (spinlock held, inside rcu_read_lock with
CONFIG_TREE_RCU, explicit preempt_disable). At a preemptible step a task yields its CPU when
others are queued and either its timeslice is used up or a wakeup marked it need_resched (CFS
wakeup preemption, drawn with a documented probability).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING

from simpy.events import Event

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel


# Locks the kernel takes with spin_lock_irq / spin_lock_irqsave on the modelled paths: while
# one is held, interrupts are off on that CPU (isolate_lru_page and putback take lru_lock
# with irqs off; the page cache's tree_lock is irq-safe).
IRQ_OFF_LOCKS = frozenset(("&zone->lru_lock", "&mapping->tree_lock"))


def may_preempt(task: Task) -> bool:
    """May the kernel preempt `task` here, or may it sleep? The one place that says so, from
    the task's state alone: not while preempt_count > 0 (a spinlock held or spun for, an
    mmu_gather, preempt_disable, and an RCU read-side section when rcu_read_lock raises it,
    i.e. with non-preemptible RCU), nor with interrupts off."""
    return task.preempt_count == 0 and irqs_enabled(task)


def irqs_enabled(task: Task) -> bool:
    """Are interrupts on for `task` (may an interrupt handler run on its CPU now)? Off only
    while it holds an irq-safe lock (IRQ_OFF_LOCKS); no modelled path disables them
    otherwise."""
    for h in task.held:
        if h.lock.cls.name in IRQ_OFF_LOCKS:
            return False
    return True


class CpuSet:
    def __init__(self, k: "Kernel", n: int, sched_latency_us: float,
                 min_granularity_us: float, wakeup_preempt_prob: float) -> None:
        self.k = k
        self.n = n
        # CFS scales both tunables by 1 + ilog2(ncpus) (sched_init_granularity).
        factor = 1 + int(math.log2(n))
        self.latency = sched_latency_us * factor
        self.min_gran = min_granularity_us * factor
        self.wakeup_preempt_prob = wakeup_preempt_prob
        self.current: list[Task | None] = [None] * n
        self.free: list[int] = list(range(n))
        self.runqueue: deque[tuple[Task, Event]] = deque()
        self.preemptions = 0
        self.pinned = False      # controlled mode: the strategy schedules, task i on CPU i mod n

    def timeslice(self) -> float:
        """CFS's sched_slice for equal-weight tasks: latency / nr_running, floored."""
        per_cpu = (self.n - len(self.free) + len(self.runqueue)) / self.n
        return max(self.latency / per_cpu, self.min_gran) if per_cpu > 1 else self.latency

    def _run(self, task: Task, cpu: int) -> None:
        self.current[cpu] = task
        task.cpu = cpu
        task.last_cpu = cpu
        task.slice_start = self.k.now
        task.need_resched = False
        task.state = "running"

    def acquire(self, task: Task, wakeup: bool = True) -> Event | None:
        """Ask for a CPU: None if one was free (task runs now), else an event fired on dispatch.

        A waking task that finds every CPU busy may mark a running task need_resched (CFS
        check_preempt_wakeup), with probability wakeup_preempt_prob.
        """
        if self.pinned:
            task.cpu = task.last_cpu = task.tid % self.n
            task.state = "running"
            return None
        free = self.free
        if free:
            cpu = task.last_cpu if task.last_cpu in free else min(free)
            free.remove(cpu)
            self._run(task, cpu)
            return None
        ev = Event(self.k.env)
        self.runqueue.append((task, ev))
        task.state = "runnable"
        p = self.wakeup_preempt_prob
        if wakeup and p and self.k.rng.sched.chance(p):
            victim = self.current[self.k.rng.sched.below(self.n)]
            if victim is not None:
                victim.need_resched = True
        return ev

    def release(self, task: Task) -> None:
        """Task stops running (sleeps, is preempted, or exits): hand its CPU on."""
        cpu = task.cpu
        if cpu is None:
            return
        task.cpu = None
        if self.pinned:
            return
        self.k.tracer.cpu_run(cpu, task, task.slice_start, self.k.now)
        self.current[cpu] = None
        if self.runqueue:
            nxt, ev = self.runqueue.popleft()
            self._run(nxt, cpu)
            ev.succeed()
        else:
            self.free.append(cpu)

    def should_preempt(self, task: Task) -> bool:
        if not self.runqueue or not may_preempt(task):
            return False
        if task.need_resched:
            return True
        ran = self.k.now - task.slice_start
        return ran >= self.timeslice()

    def preempt(self, task: Task) -> Generator[Event, None, None]:
        """Give the CPU to the head of the runqueue and queue behind it."""
        self.preemptions += 1
        self.k.tracer.mark(task, "preempted")
        self.release(task)
        ev = self.acquire(task, wakeup=False)
        if ev is not None:
            yield ev
        self.k.tracer.mark(task, f"runs again (CPU {task.cpu})")
