"""Instrumented kernel locks with the semantics of Linux 2.6.33.

- spinlock_t: ticket lock, so waiters get it in FIFO order; a waiter spins on its CPU
  (keeps it busy) with preemption disabled, and preemption stays disabled while it is held.
- PG_locked: lock_page sleeps; trylock_page never waits; unlock_page wakes the page's
  waiters; wait_on_page_locked waits for the bit to clear without taking it. Waking does not
  hand the lock over: a woken locker retries and can lose to a trylock or a newcomer, and then
  queues again at the tail (__wait_on_bit_lock with autoremove wake functions).
- struct mutex: sleeps; unlock frees the lock and wakes the first waiter, which keeps its
  place in the queue if the lock is stolen before it runs (__mutex_lock_common).
- rw_semaphore (rwsem-xadd): FIFO wait queue; a queued writer blocks new readers (writer
  fairness); release grants the lock to the woken waiters (__rwsem_do_wake): a writer at the
  head alone, or every consecutive reader at the head.
All sleeping waits give the CPU up (Kernel.block); spinning keeps it.

Every lock records lock_stat data for its class (stats.LockStat), is checked by lockdep
(checks.lockdep: order, recursion, bad unlock) and by the deadlock detector (checks.deadlock:
wait-for cycles), and marks the task's trace ring so violations can show the interleaving.
Each function here that can wait is a generator: call it with `yield from`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from simpy.events import Event

from .stats import LockStat
from .task import Task

if TYPE_CHECKING:
    from .engine import Kernel

Wait = Generator[Event, Any, None]


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


class HeldLock:
    """One entry of a task's held-lock stack (lockdep's struct held_lock)."""

    __slots__ = ("lock", "read", "since", "site", "trylock", "subclass")

    def __init__(self, lock: "Lock", read: bool, since: float, site: str, trylock: bool,
                 subclass: int) -> None:
        self.lock = lock
        self.read = read
        self.since = since
        self.site = site
        self.trylock = trylock
        self.subclass = subclass


class Lock:
    __slots__ = ("cls", "label", "owner", "waiters", "last_cpu")

    def __init__(self, cls: LockClass, label: str) -> None:
        self.cls = cls
        self.label = label
        self.owner: Task | None = None
        self.waiters: deque = deque()
        self.last_cpu = -1

    def holders(self) -> list[Task]:
        return [self.owner] if self.owner is not None else []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.cls.name} {self.label}>"


class SpinLock(Lock):
    __slots__ = ()


class Mutex(Lock):
    __slots__ = ()


class PageLock(Lock):
    """PG_locked of one page. `sleepers` wait for the bit to clear without taking it."""

    __slots__ = ("sleepers",)

    def __init__(self, cls: LockClass, label: str) -> None:
        super().__init__(cls, label)
        self.sleepers: list[tuple[Task, Event]] = []


class RwSemaphore(Lock):
    __slots__ = ("readers",)

    def __init__(self, cls: LockClass, label: str) -> None:
        super().__init__(cls, label)
        self.readers: list[Task] = []    # owner is the writer

    def holders(self) -> list[Task]:
        return [self.owner] if self.owner is not None else list(self.readers)


# --- shared bookkeeping ---------------------------------------------------------------------

def _site_of(task: Task, lock: Lock) -> str | None:
    for h in task.held:
        if h.lock is lock:
            return h.site
    return None


def _contend(k: "Kernel", task: Task, lock: Lock, stat: LockStat) -> float:
    holders = lock.holders()
    holder_site = _site_of(holders[0], lock) if holders else None
    stat.contended(task.where(), holder_site, lock.last_cpu != task.cpu and lock.last_cpu >= 0)
    k.tracer.wait_begin(task, lock)
    return k.env._now


def _got(k: "Kernel", task: Task, lock: Lock, stat: LockStat, read: bool, trylock: bool,
         subclass: int, t0: float | None) -> None:
    now = k.env._now
    cpu = task.cpu if task.cpu is not None else task.last_cpu
    bounce = lock.last_cpu != cpu and lock.last_cpu >= 0
    lock.last_cpu = cpu
    stat.acquired(None if t0 is None else now - t0, bounce)
    task.held.append(HeldLock(lock, read, now, task.where(), trylock, subclass))
    if t0 is not None:
        k.tracer.lock_waited(task, lock, t0, now)


def _drop(k: "Kernel", task: Task, lock: Lock, read: bool, op: str) -> bool:
    """Pop `lock` from the task's held stack and account its hold time.

    Returns False (and reports, as lockdep's "bad unlock balance") if the task does not hold it.
    """
    held = task.held
    for i in range(len(held) - 1, -1, -1):
        h = held[i]
        if h.lock is lock and h.read == read:
            del held[i]
            now = k.env._now
            (lock.cls.rstat if read and lock.cls.rstat is not None else lock.cls.stat).released(
                now - h.since)
            k.tracer.lock_held(task, lock, h.since, now, op)
            return True
    k.lockdep.bad_unlock(task, lock, op)
    return False


def _wait_on(k: "Kernel", task: Task, lock: Lock) -> None:
    task.waiting_on = lock
    k.deadlock.on_wait(task, lock)


# --- spinlock_t ------------------------------------------------------------------------------

def spin_lock(k: "Kernel", task: Task, lock: SpinLock, subclass: int = 0) -> Wait:
    """spin_lock / spin_lock_nested: preempt_disable, then take a ticket and spin."""
    yield from k.step(task, k.costs.lock_op, lock)
    task.preempt_count += 1
    k.lockdep.acquire(task, lock, False, False, subclass)
    stat = lock.cls.stat
    if lock.owner is None:
        lock.owner = task
        _got(k, task, lock, stat, False, False, subclass, None)
    else:
        t0 = _contend(k, task, lock, stat)
        ev = Event(k.env)
        lock.waiters.append((task, ev))
        _wait_on(k, task, lock)
        yield ev                      # spinning: the CPU stays ours
        task.waiting_on = None
        _got(k, task, lock, stat, False, False, subclass, t0)
    k.tracer.mark(task, "spin_lock", lock)


def spin_trylock(k: "Kernel", task: Task, lock: SpinLock) -> bool:
    if lock.owner is not None:
        return False
    task.preempt_count += 1
    k.lockdep.acquire(task, lock, False, True, 0)
    lock.owner = task
    _got(k, task, lock, lock.cls.stat, False, True, 0, None)
    k.tracer.mark(task, "spin_trylock", lock)
    return True


def spin_unlock(k: "Kernel", task: Task, lock: SpinLock) -> None:
    if lock.owner is not task:
        k.lockdep.bad_unlock(task, lock, "spin_unlock")
        return
    _drop(k, task, lock, False, "spin_unlock")
    if lock.waiters:
        nxt, ev = lock.waiters.popleft()
        lock.owner = nxt              # ticket order: the next ticket owns it
        ev.succeed()
    else:
        lock.owner = None
    task.preempt_count -= 1
    k.tracer.mark(task, "spin_unlock", lock)


# --- struct mutex ------------------------------------------------------------------------------

def mutex_lock(k: "Kernel", task: Task, m: Mutex) -> Wait:
    yield from k.step(task, k.costs.lock_op, m)
    k.lockdep.acquire(task, m, False, False, 0)
    stat = m.cls.stat
    if m.owner is None:
        m.owner = task
        _got(k, task, m, stat, False, False, 0, None)
    else:
        t0 = _contend(k, task, m, stat)
        entry = [task, None]
        m.waiters.append(entry)
        while True:
            entry[1] = ev = Event(k.env)
            _wait_on(k, task, m)
            yield from k.block(task, ev)
            task.waiting_on = None
            if m.owner is None:       # not stolen while we were waking
                m.owner = task
                m.waiters.remove(entry)
                break
        _got(k, task, m, stat, False, False, 0, t0)
    k.tracer.mark(task, "mutex_lock", m)


def mutex_trylock(k: "Kernel", task: Task, m: Mutex) -> bool:
    if m.owner is not None:
        return False
    k.lockdep.acquire(task, m, False, True, 0)
    m.owner = task
    _got(k, task, m, m.cls.stat, False, True, 0, None)
    k.tracer.mark(task, "mutex_trylock", m)
    return True


def mutex_unlock(k: "Kernel", task: Task, m: Mutex) -> None:
    if m.owner is not task:
        k.lockdep.bad_unlock(task, m, "mutex_unlock")
        return
    _drop(k, task, m, False, "mutex_unlock")
    m.owner = None
    if m.waiters:
        ev = m.waiters[0][1]
        if ev is not None and not ev.triggered:
            ev.succeed()
    k.tracer.mark(task, "mutex_unlock", m)


# --- PG_locked ----------------------------------------------------------------------------------

def trylock_page(k: "Kernel", task: Task, page: Any) -> bool:
    pl: PageLock = page.lock
    if pl.owner is not None:
        return False
    k.lockdep.acquire(task, pl, False, True, 0)
    pl.owner = task
    _got(k, task, pl, pl.cls.stat, False, True, 0, None)
    k.tracer.mark(task, "trylock_page", pl)
    return True


def lock_page(k: "Kernel", task: Task, page: Any) -> Wait:
    pl: PageLock = page.lock
    yield from k.step(task, k.costs.lock_op, pl)
    k.lockdep.acquire(task, pl, False, False, 0)
    stat = pl.cls.stat
    if pl.owner is None:
        pl.owner = task
        _got(k, task, pl, stat, False, False, 0, None)
    else:
        t0 = _contend(k, task, pl, stat)
        while True:
            ev = Event(k.env)
            pl.waiters.append((task, ev))      # exclusive waiter, at the tail
            _wait_on(k, task, pl)
            yield from k.block(task, ev)
            task.waiting_on = None
            if pl.owner is None:
                break
        pl.owner = task
        _got(k, task, pl, stat, False, False, 0, t0)
    k.tracer.mark(task, "lock_page", pl)


def unlock_page(k: "Kernel", task: Task, page: Any) -> None:
    pl: PageLock = page.lock
    if pl.owner is None:
        # VM_BUG_ON(!PageLocked(page)) in unlock_page
        k.lockdep.bad_unlock(task, pl, "unlock_page")
        return
    if pl.owner is task:
        _drop(k, task, pl, False, "unlock_page")
    else:
        # PG_locked has no owner in the kernel (I/O completion unlocks pages it did not lock);
        # no modelled path does that, so report it rather than guess.
        k.lockdep.bad_unlock(task, pl, "unlock_page")
        return
    pl.owner = None
    # wake_up_page: every wait_on_page_locked sleeper, and one exclusive locker.
    if pl.sleepers:
        sleepers, pl.sleepers = pl.sleepers, []
        for _, ev in sleepers:
            ev.succeed()
    if pl.waiters:
        _, ev = pl.waiters.popleft()
        ev.succeed()
    k.tracer.mark(task, "unlock_page", pl)


def wait_on_page_locked(k: "Kernel", task: Task, page: Any) -> Wait:
    pl: PageLock = page.lock
    yield from k.step(task, k.costs.lock_op, pl)
    while pl.owner is not None:
        ev = Event(k.env)
        pl.sleepers.append((task, ev))
        _wait_on(k, task, pl)
        yield from k.block(task, ev)
        task.waiting_on = None
    k.tracer.mark(task, "wait_on_page_locked", pl)


# --- rw_semaphore --------------------------------------------------------------------------------

def down_read(k: "Kernel", task: Task, sem: RwSemaphore, subclass: int = 0) -> Wait:
    yield from k.step(task, k.costs.lock_op, sem)
    k.lockdep.acquire(task, sem, True, False, subclass)
    stat = sem.cls.rstat
    assert stat is not None
    if sem.owner is None and not sem.waiters:
        sem.readers.append(task)
        _got(k, task, sem, stat, True, False, subclass, None)
    else:
        t0 = _contend(k, task, sem, stat)
        ev = Event(k.env)
        sem.waiters.append((task, ev, False))
        _wait_on(k, task, sem)
        yield from k.block(task, ev)        # granted by the waker (__rwsem_do_wake)
        task.waiting_on = None
        _got(k, task, sem, stat, True, False, subclass, t0)
    k.tracer.mark(task, "down_read", sem)


def down_write(k: "Kernel", task: Task, sem: RwSemaphore, subclass: int = 0) -> Wait:
    """down_write / down_write_nested."""
    yield from k.step(task, k.costs.lock_op, sem)
    k.lockdep.acquire(task, sem, False, False, subclass)
    stat = sem.cls.stat
    if sem.owner is None and not sem.readers and not sem.waiters:
        sem.owner = task
        _got(k, task, sem, stat, False, False, subclass, None)
    else:
        t0 = _contend(k, task, sem, stat)
        ev = Event(k.env)
        sem.waiters.append((task, ev, True))
        _wait_on(k, task, sem)
        yield from k.block(task, ev)
        task.waiting_on = None
        _got(k, task, sem, stat, False, False, subclass, t0)
    k.tracer.mark(task, "down_write", sem)


def down_read_trylock(k: "Kernel", task: Task, sem: RwSemaphore) -> bool:
    if sem.owner is not None or sem.waiters:
        return False
    k.lockdep.acquire(task, sem, True, True, 0)
    sem.readers.append(task)
    assert sem.cls.rstat is not None
    _got(k, task, sem, sem.cls.rstat, True, True, 0, None)
    return True


def down_write_trylock(k: "Kernel", task: Task, sem: RwSemaphore) -> bool:
    if sem.owner is not None or sem.readers or sem.waiters:
        return False
    k.lockdep.acquire(task, sem, False, True, 0)
    sem.owner = task
    _got(k, task, sem, sem.cls.stat, False, True, 0, None)
    return True


def _rwsem_do_wake(k: "Kernel", sem: RwSemaphore) -> None:
    """Grant the lock to the head of the queue: one writer, or all leading readers."""
    w = sem.waiters
    if w[0][2]:
        task, ev, _ = w.popleft()
        sem.owner = task
        ev.succeed()
    else:
        while w and not w[0][2]:
            task, ev, _ = w.popleft()
            sem.readers.append(task)
            ev.succeed()


def up_read(k: "Kernel", task: Task, sem: RwSemaphore) -> None:
    if task not in sem.readers:
        k.lockdep.bad_unlock(task, sem, "up_read")
        return
    _drop(k, task, sem, True, "up_read")
    sem.readers.remove(task)
    if not sem.readers and sem.waiters:
        _rwsem_do_wake(k, sem)
    k.tracer.mark(task, "up_read", sem)


def up_write(k: "Kernel", task: Task, sem: RwSemaphore) -> None:
    if sem.owner is not task:
        k.lockdep.bad_unlock(task, sem, "up_write")
        return
    _drop(k, task, sem, False, "up_write")
    sem.owner = None
    if sem.waiters:
        _rwsem_do_wake(k, sem)
    k.tracer.mark(task, "up_write", sem)
