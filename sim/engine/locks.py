"""Instrumented kernel locks with the semantics of Linux 2.6.33, on one protocol.

Every lock kind shares one acquire/release skeleton (as SimPy's BaseResource shares one
put/get skeleton) and differs only in a few hooks:

- `can_grant(read)`: may this request be granted now?
- `grant` / `ungrant`: record or drop ownership;
- `wake()`: whom a release wakes;
- `SPINS`: a waiter spins on its CPU with preemption off (spinlock_t) or sleeps;
- `HANDOFF`: the releaser makes the woken waiter the owner (ticket spinlock, rwsem), or the
  woken waiter retries and can lose the lock to a newcomer (mutex, PG_locked);
- `KEEPS_PLACE`: a waiter that loses the retry keeps its queue place (mutex, the
  __mutex_lock_common loop) or queues again at the tail (PG_locked, __wait_on_bit_lock).

The kinds, with their 2.6.33 semantics:
- spinlock_t: ticket lock, so waiters get it in FIFO order; a waiter spins on its CPU
  (keeps it busy) with preemption disabled, and preemption stays disabled while it is held.
- PG_locked: lock_page sleeps; trylock_page never waits; unlock_page wakes the page's
  wait_on_page_locked sleepers and one locker; wait_on_page_locked waits for the bit to clear
  without taking it.
- struct mutex: sleeps; unlock frees the lock and wakes the first waiter.
- rw_semaphore (rwsem-xadd): FIFO wait queue; a queued writer blocks new readers (writer
  fairness); release grants the lock to the woken waiters (__rwsem_do_wake): a writer at the
  head alone, or every consecutive reader at the head.

Every acquisition is a choice point (k.step), is checked by lockdep (order, recursion) and
the deadlock detector (wait-for cycles), records lock_stat data for its class, and marks the
task's trace ring. The kernel-named functions (spin_lock, lock_page, mutex_lock, down_read,
...) are thin wrappers over the skeleton. Functions that can wait are generators: call them
with `yield from`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple

from simpy.events import Event

from sim.engine.env import succeed
from sim.engine.stats import LockStat
from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel

Wait = Generator[Event, Any, None]
UNCONTENDED = LockStat.UNCONTENDED     # the wait recorded for an acquisition that did not wait
_new = tuple.__new__                   # builds a HeldLock without its frame (see HeldLock)


class LockClass:
    """A lockdep class: every lock initialised at the same place shares one (and one row)."""

    __slots__ = ("name", "kind", "stat", "rstat")

    def __init__(self, name: str, kind: str, batch_size: int = 1000) -> None:
        self.name = name
        self.kind = kind
        if kind == "rwsem":
            self.stat = LockStat(name + "-W", batch_size)
            self.rstat: LockStat | None = LockStat(name + "-R", batch_size)
        else:
            self.stat = LockStat(name, batch_size)
            self.rstat = None

    def stats(self) -> list[LockStat]:
        return [self.stat] if self.rstat is None else [self.stat, self.rstat]

    def stat_for(self, read: bool) -> LockStat:
        return self.rstat if read and self.rstat is not None else self.stat


class HeldLock(NamedTuple):
    """One entry of a task's held-lock stack (lockdep's struct held_lock). Built with
    tuple.__new__ on the hot path (_got): a NamedTuple's __new__ is a Python frame."""

    lock: "Lock"
    read: bool
    since: float
    site: str
    trylock: bool
    subclass: int


class Waiter:
    """A task queued on a lock: what it waits with, and whether it wants it exclusively."""

    __slots__ = ("task", "event", "write")

    def __init__(self, task: Task, write: bool) -> None:
        self.task = task
        self.event: Event | None = None
        self.write = write


class Lock:
    """Exclusive lock state and the default hooks (one owner)."""

    __slots__ = ("cls", "label", "owner", "waiters", "last_cpu")
    SPINS = False
    HANDOFF = False
    KEEPS_PLACE = True

    def __init__(self, cls: LockClass, label: str) -> None:
        self.cls = cls
        self.label = label
        self.owner: Task | None = None
        self.waiters: deque[Waiter] = deque()
        self.last_cpu = -1

    def holders(self) -> list[Task]:
        return [self.owner] if self.owner is not None else []

    def held_by(self, task: Task, read: bool) -> bool:
        return self.owner is task

    def can_grant(self, read: bool) -> bool:
        return self.owner is None

    def grant(self, task: Task, read: bool) -> None:
        self.owner = task

    def ungrant(self, task: Task, read: bool) -> None:
        self.owner = None

    def wake(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cls.name} {self.label}>"


class SpinLock(Lock):
    """Ticket spinlock: FIFO, the next ticket owns the lock at release; waiters spin."""

    __slots__ = ()
    SPINS = True
    HANDOFF = True

    def wake(self) -> None:
        if self.waiters:
            w = self.waiters.popleft()
            self.owner = w.task
            succeed(w.event)  # type: ignore[arg-type]


class Mutex(Lock):
    """Sleeping lock; the woken first waiter retries and keeps its place if robbed."""

    __slots__ = ()

    def wake(self) -> None:
        if self.waiters:
            ev = self.waiters[0].event
            if ev is not None and not ev.triggered:
                ev.succeed()


class PageLock(Lock):
    """PG_locked of one page. `sleepers` wait for the bit to clear without taking it."""

    __slots__ = ("sleepers",)
    KEEPS_PLACE = False

    def __init__(self, cls: LockClass, label: str) -> None:
        super().__init__(cls, label)
        self.sleepers: list[Waiter] = []

    def wake(self) -> None:
        """wake_up_page: every wait_on_page_locked sleeper, and one exclusive locker."""
        if self.sleepers:
            sleepers, self.sleepers = self.sleepers, []
            for w in sleepers:
                succeed(w.event)  # type: ignore[arg-type]
        if self.waiters:
            succeed(self.waiters.popleft().event)  # type: ignore[arg-type]


class RwSemaphore(Lock):
    """rwsem-xadd: `owner` is the writer, `readers` the tasks holding it for read."""

    __slots__ = ("readers",)
    HANDOFF = True

    def __init__(self, cls: LockClass, label: str) -> None:
        super().__init__(cls, label)
        self.readers: list[Task] = []

    def holders(self) -> list[Task]:
        return [self.owner] if self.owner is not None else list(self.readers)

    def held_by(self, task: Task, read: bool) -> bool:
        return task in self.readers if read else self.owner is task

    def can_grant(self, read: bool) -> bool:
        # a queued waiter blocks everyone behind it, readers included (writer fairness)
        return self.owner is None and not self.waiters and (read or not self.readers)

    def grant(self, task: Task, read: bool) -> None:
        if read:
            self.readers.append(task)
        else:
            self.owner = task

    def ungrant(self, task: Task, read: bool) -> None:
        if read:
            self.readers.remove(task)
        else:
            self.owner = None

    def wake(self) -> None:
        """__rwsem_do_wake once the lock is free: one writer, or all leading readers."""
        w = self.waiters
        if self.owner is not None or self.readers or not w:
            return
        if w[0].write:
            head = w.popleft()
            self.owner = head.task
            succeed(head.event)  # type: ignore[arg-type]
            return
        while w and not w[0].write:
            head = w.popleft()
            self.readers.append(head.task)
            succeed(head.event)  # type: ignore[arg-type]


# --- the skeleton -------------------------------------------------------------------------

def _site_of(task: Task, lock: Lock) -> str | None:
    for h in task.held:
        if h.lock is lock:
            return h.site
    return None


def _got(k: "Kernel", task: Task, lock: Lock, read: bool, trylock: bool, subclass: int,
         t0: float | None, op: str) -> None:
    """Book an acquisition by `op`: lock_stat (its raw samples), the held-lock stack, the
    trace (its ring entry last, as the acquisition's mark)."""
    now = k.now
    cpu = task.cpu if task.cpu is not None else task.last_cpu
    last = lock.last_cpu
    lock.last_cpu = cpu
    cls = lock.cls
    st = cls.rstat if read and cls.rstat is not None else cls.stat
    n = st.acquisitions = st.acquisitions + 1
    if last != cpu and last >= 0:
        st.acq_bounces += 1
    st.waits.append(UNCONTENDED if t0 is None else now - t0)
    if n >= st.fold_at:
        st.fold()
    stack = task.stack
    task.held.append(_new(HeldLock, (lock, read, now, stack[-1] if stack else task.name,
                                     trylock, subclass)))
    if t0 is not None and k.tracer.full:
        k.tracer.lock_waited(task, lock, t0, now)
    k.tracer.mark(task, op, lock)


def acquire(k: "Kernel", task: Task, lock: Lock, op: str, read: bool = False,
            subclass: int = 0) -> Wait:
    """Take `lock` (a choice point), waiting as its kind waits. `op` names the kernel call.

    Returns what to `yield from`: `()` when the choice point did not wait and the lock was
    free (the common case, done here with no generator), else a generator that waits. The
    caller delegates at once, so the order of everything is that of one generator."""
    steps = k.step(task, k.costs.lock_op, lock)
    if steps:
        return _acquire(k, task, lock, op, read, subclass, steps)
    if lock.SPINS:
        task.preempt_count += 1
    if task.held:                           # lockdep checks against what is held: nothing
        k.lockdep.acquire(task, lock, read, False, subclass)
    if lock.can_grant(read):
        lock.grant(task, read)
        _got(k, task, lock, read, False, subclass, None, op)
        return ()
    return _contended(k, task, lock, op, read, subclass)


def _acquire(k: "Kernel", task: Task, lock: Lock, op: str, read: bool, subclass: int,
             steps: Any) -> Wait:
    """acquire after a choice point that waits."""
    yield from steps
    if lock.SPINS:
        task.preempt_count += 1
    if task.held:
        k.lockdep.acquire(task, lock, read, False, subclass)
    if lock.can_grant(read):
        lock.grant(task, read)
        _got(k, task, lock, read, False, subclass, None, op)
    else:
        yield from _contended(k, task, lock, op, read, subclass)


def _contended(k: "Kernel", task: Task, lock: Lock, op: str, read: bool, subclass: int
               ) -> Wait:
    """acquire of a lock that is not free: book the contention, queue and wait until the lock
    is ours (as its kind waits), book the acquisition. One generator, not two: every
    contended acquisition resumes through it."""
    cls = lock.cls
    st = cls.rstat if read and cls.rstat is not None else cls.stat
    st.contentions += 1
    if lock.last_cpu != task.cpu and lock.last_cpu >= 0:
        st.con_bounces += 1
    stack = task.stack
    site = stack[-1] if stack else task.name
    st.points[site] = st.points.get(site, 0) + 1
    holder = lock.owner                     # the one holder, or (rwsem) the first reader
    if holder is None:
        holders = lock.holders()
        holder = holders[0] if holders else None
    if holder is not None:
        hs = _site_of(holder, lock)
        if hs is not None:
            st.contending[hs] = st.contending.get(hs, 0) + 1
    k.tracer.wait_begin(task, lock)
    t0 = k.now
    w = Waiter(task, not read)
    task.waiting_on = lock
    if lock.HANDOFF:                        # the releaser grants it to us (wake())
        w.event = Event(k.env)
        lock.waiters.append(w)
        k.deadlock.on_wait(task, lock)
        if lock.SPINS:
            yield w.event                   # spinning: the CPU stays ours
            yield from k.strategy.resumed(task, lock, False)
        else:
            yield from k.block(task, w.event)
        task.waiting_on = None
    else:
        if lock.KEEPS_PLACE:
            lock.waiters.append(w)
        while True:                         # woken, we retry: a newcomer may have taken it
            w.event = Event(k.env)
            if not lock.KEEPS_PLACE:
                lock.waiters.append(w)      # exclusive waiter, at the tail again
            task.waiting_on = lock
            k.deadlock.on_wait(task, lock)
            yield from k.block(task, w.event)
            task.waiting_on = None
            if lock.can_grant(read):
                if lock.KEEPS_PLACE:
                    lock.waiters.remove(w)
                lock.grant(task, read)
                break
    _got(k, task, lock, read, False, subclass, t0, op)


def try_acquire(k: "Kernel", task: Task, lock: Lock, op: str, read: bool = False) -> bool:
    """Take `lock` only if that needs no wait (trylocks are not choice points)."""
    if not lock.can_grant(read):
        return False
    if lock.SPINS:
        task.preempt_count += 1
    if task.held:
        k.lockdep.acquire(task, lock, read, True, 0)
    lock.grant(task, read)
    _got(k, task, lock, read, True, 0, None, op)
    return True


def release(k: "Kernel", task: Task, lock: Lock, op: str, read: bool = False) -> None:
    """Drop `lock` (lockdep's "bad unlock balance" if the task does not hold it), account
    its hold time, and wake whom the kind wakes."""
    # held_by and ungrant, inline for the write side (every kind: the owner)
    if not (lock.owner is task if not read else lock.held_by(task, read)):
        k.lockdep.bad_unlock(task, lock, op)
        return
    held = task.held
    i = len(held) - 1
    while i >= 0:                           # nearly always the last one taken
        h = held[i]
        if h.lock is lock and h.read == read:
            del held[i]
            now = k.now
            cls = lock.cls
            (cls.rstat if read and cls.rstat is not None else cls.stat).hold_buf.append(
                now - h.since)
            if k.tracer.full:
                k.tracer.lock_held(task, lock, h.since, now, op)
            break
        i -= 1
    if read:
        lock.ungrant(task, read)
    else:
        lock.owner = None
    lock.wake()
    if lock.SPINS:
        task.preempt_count -= 1
    k.tracer.mark(task, op, lock)


# --- the kernel's names ------------------------------------------------------------------

def spin_lock(k: "Kernel", task: Task, lock: SpinLock, subclass: int = 0) -> Wait:
    """spin_lock / spin_lock_nested: preempt_disable, then take a ticket and spin."""
    return acquire(k, task, lock, "spin_lock", False, subclass)


def spin_trylock(k: "Kernel", task: Task, lock: SpinLock) -> bool:
    return try_acquire(k, task, lock, "spin_trylock")


def spin_unlock(k: "Kernel", task: Task, lock: SpinLock) -> None:
    release(k, task, lock, "spin_unlock")


def mutex_lock(k: "Kernel", task: Task, m: Mutex) -> Wait:
    return acquire(k, task, m, "mutex_lock")


def mutex_unlock(k: "Kernel", task: Task, m: Mutex) -> None:
    release(k, task, m, "mutex_unlock")


def lock_page(k: "Kernel", task: Task, page: Any) -> Wait:
    return acquire(k, task, page.lock, "lock_page")


def trylock_page(k: "Kernel", task: Task, page: Any) -> bool:
    return try_acquire(k, task, page.lock, "trylock_page")


def unlock_page(k: "Kernel", task: Task, page: Any) -> None:
    """VM_BUG_ON(!PageLocked(page)). PG_locked has no owner in the kernel (I/O completion
    unlocks pages it did not lock); no modelled path does that, so an unlock by another
    task is reported rather than guessed at."""
    release(k, task, page.lock, "unlock_page")


def wait_on_page_locked(k: "Kernel", task: Task, page: Any) -> Wait:
    """Sleep until PG_locked is clear, without taking it."""
    pl: PageLock = page.lock
    yield from k.step(task, k.costs.lock_op, pl)
    while pl.owner is not None:
        w = Waiter(task, False)
        w.event = Event(k.env)
        pl.sleepers.append(w)
        task.waiting_on = pl
        k.deadlock.on_wait(task, pl)
        yield from k.block(task, w.event)
        task.waiting_on = None
    k.tracer.mark(task, "wait_on_page_locked", pl)


def down_read(k: "Kernel", task: Task, sem: RwSemaphore, subclass: int = 0) -> Wait:
    return acquire(k, task, sem, "down_read", True, subclass)


def down_write(k: "Kernel", task: Task, sem: RwSemaphore, subclass: int = 0) -> Wait:
    """down_write / down_write_nested."""
    return acquire(k, task, sem, "down_write", False, subclass)


def down_read_trylock(k: "Kernel", task: Task, sem: RwSemaphore) -> bool:
    return try_acquire(k, task, sem, "down_read_trylock", True)


def up_read(k: "Kernel", task: Task, sem: RwSemaphore) -> None:
    release(k, task, sem, "up_read", True)


def up_write(k: "Kernel", task: Task, sem: RwSemaphore) -> None:
    release(k, task, sem, "up_write")
