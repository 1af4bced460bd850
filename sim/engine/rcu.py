"""RCU: read-side sections and grace periods, in the two flavours 2.6.33 offers with
CONFIG_PREEMPT (parameter `rcu_flavour`):

- `tree` (CONFIG_TREE_RCU): rcu_read_lock disables preemption (include/linux/rcutree.h,
  __rcu_read_lock is preempt_disable), so a reader is never preempted.
- `tree_preempt` (CONFIG_TREE_PREEMPT_RCU): rcu_read_lock only counts the nesting
  (kernel/rcutree_plugin.h __rcu_read_lock); a reader can be preempted, and the grace period
  waits for it (a preempted reader is queued on its rcu_node's blocked-tasks list).

Either way a grace period that starts at time s ends only after every task that was inside a
read-side section at s has left it, and not before s + rcu_gp_us: real grace periods wait for
every CPU to pass a quiescent state, which takes milliseconds. As in the kernel, callbacks
queued during a grace period wait for the next one.

`seq` orders the events RCU's guarantee is about: the start of each outermost read-side
section and each call_rcu. A reader is guaranteed to hold up a callback only if its section
began before the call_rcu (its seq is smaller); the model's grace period may also wait for
readers that began later, but nothing in the kernel promises that, so oracles judge by seq.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from sim.engine.env import delay
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel


class Rcu:
    def __init__(self, k: "Kernel", gp_us: float, flavour: str = "tree") -> None:
        self.k = k
        self.gp_us = gp_us
        self.flavour = flavour
        # tree: rcu_read_lock is preempt_disable; tree_preempt: readers stay preemptible
        self.reader_preempt = 1 if flavour == "tree" else 0
        self.seq = 0                             # RCU's order of events (module docstring)
        self.readers: dict[int, Task] = {}       # tid -> task inside a read-side section
        self.gp_active = False
        self.gp_start = 0.0
        self.gp_min_done = False
        self.holdouts: set[int] = set()          # readers the current grace period waits for
        self.batch: list[Callable[[], None]] = []    # callbacks of the current grace period
        self.pending: list[Callable[[], None]] = []  # queued for the next one
        self.completed = 0
        # controlled mode: a grace period has no minimum length and ends when the strategy
        # chooses (once no reader holds it up), so its end is a choice point like any step
        self.controlled = False

    # grace-period machinery
    def _start(self) -> None:
        env = self.k.env
        self.gp_active = True
        self.gp_start = self.k.now
        self.gp_min_done = False
        self.holdouts = set(self.readers)
        self.batch, self.pending = self.pending, []
        if self.controlled:
            self.gp_min_done = True
            self.k.strategy.poke()
            return
        t = delay(env, self.gp_us)
        t.callbacks.append(self._min_elapsed)

    def _min_elapsed(self, _ev: Any) -> None:
        self.gp_min_done = True
        if not self.holdouts:
            self._complete()

    def _quiescent(self, tid: int) -> None:
        self.holdouts.discard(tid)
        if not self.holdouts and self.gp_min_done:
            if self.controlled:
                self.k.strategy.poke()
            else:
                self._complete()

    def completable(self) -> bool:
        """A grace period is under way and nothing holds it up any more."""
        return self.gp_active and self.gp_min_done and not self.holdouts

    def complete(self) -> None:
        """End the grace period now (controlled mode: the strategy chose to)."""
        self._complete()

    def _complete(self) -> None:
        self.gp_active = False
        self.completed += 1
        batch, self.batch = self.batch, []
        for cb in batch:
            cb()
        if self.pending:
            self._start()

    def task_dead(self, task: Task) -> None:
        """A task died inside a read-side section (an oops): with non-preemptible RCU its
        CPU's next context switch is a quiescent state; with preemptible RCU do_exit's
        exit_rcu ends the section. Either way it holds no grace period up."""
        if task.rcu_nesting:
            task.rcu_nesting = 0
            task.rcu_since = -1.0
            task.rcu_seq = -1
            self.readers.pop(task.tid, None)
            if self.gp_active:
                self._quiescent(task.tid)

    def call_rcu(self, cb: Callable[[], None]) -> int:
        """Run cb once a full grace period has elapsed after now. Returns the call's seq:
        readers whose section has a smaller seq are guaranteed to hold cb up."""
        self.seq += 1
        self.pending.append(cb)
        if not self.gp_active:
            self._start()
        return self.seq


def rcu_read_lock(k: "Kernel", task: Task) -> None:
    rcu = k.rcu
    if task.rcu_nesting == 0:
        task.rcu_since = k.clock()
        rcu.seq += 1
        task.rcu_seq = rcu.seq
        rcu.readers[task.tid] = task
    task.rcu_nesting += 1
    task.preempt_count += rcu.reader_preempt
    k.tracer.mark(task, "rcu_read_lock")


def rcu_read_unlock(k: "Kernel", task: Task) -> None:
    if task.rcu_nesting <= 0:
        k.lockdep.bad_unlock(task, None, "rcu_read_unlock")
        return
    task.rcu_nesting -= 1
    task.preempt_count -= k.rcu.reader_preempt
    if task.rcu_nesting == 0:
        task.rcu_since = -1.0
        task.rcu_seq = -1
        del k.rcu.readers[task.tid]
        if k.rcu.gp_active:
            k.rcu._quiescent(task.tid)
    k.tracer.mark(task, "rcu_read_unlock")


def call_rcu(k: "Kernel", cb: Callable[[], None]) -> None:
    k.rcu.call_rcu(cb)


def synchronize_rcu(k: "Kernel", task: Task) -> Generator[Event, Any, None]:
    ev = Event(k.env)
    k.rcu.call_rcu(lambda: ev.succeed())
    yield from k.block(task, ev)
