"""The kernel environment: SimPy + one seeded RNG + choice points + CPUs + tracer + checkers.

All simulation state hangs off one Kernel object, never off module globals, so any number of
runs can proceed in one process (or in parallel processes) without interfering.
"""

from __future__ import annotations

import functools
import gc
import inspect
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from simpy.events import Event

from sim.engine.env import KernelEnvironment, delay, env_now
from sim.engine.violations import Report, ViolationLog
from sim.engine.deadlock import DeadlockDetector
from sim.engine.lockdep import Lockdep
from sim.engine.cpu import CpuSet
from sim.engine.hooks import Hooks, RunEnd
from sim.engine.interrupt import Sigint, deferred_sigint
from sim.engine.limits import (GC_EVENTS, MEMORY_CHECK_EVENTS, WALL_CHECK_EVENTS, Limits,
                     resident_bytes)
from sim.engine.locks import LockClass, Mutex, PageLock, RwSemaphore, SpinLock
from sim.engine.rcu import Rcu
from sim.engine.rng import Rng
from sim.engine.sched import YIELD, Strategy, Timed
from sim.engine.stats import Windows
from sim.engine.task import Task
from sim.engine.trace import TRACE_LIMIT, Tracer

F = TypeVar("F", bound=Callable[..., Any])
DEAD_RINGS = 256          # trace rings of exited tasks kept for reports (see _retire_ring)


class Oops(Exception):
    """A kernel BUG() or bad pointer dereference in a task: reported as an `oops` violation
    (with the kernel source it stands for and the stack it was raised in); the task dies
    with what it held still held, as a task killed by an oops does.

    `source` names the kernel source line that faults, e.g. "mm/migrate.c (2.6.35)
    unmap_and_move: atomic_inc(&anon_vma->external_refcount)"."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.stack: list[str] | None = None     # the kernel functions it was raised in


class Costs:
    """Mean cost in simulated microseconds of each kernel step (params `costs.*`)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.__dict__.update(table)


class Kernel:
    def __init__(self, params: dict[str, Any], seed: int = 0, variant: Any = None,
                 strategy: Strategy | None = None, trace: bool = False,
                 stop_on: tuple[str, ...] = (), keep: int = 20,
                 trace_limit: int = TRACE_LIMIT) -> None:
        p = params
        self.params = p
        self.seed = seed
        self.variant = variant      # the mm model's kernel variant (sim.mm.variants); opaque here
        self.rng = Rng(seed, gamma_shape=p["cost_shape"])
        self.env = KernelEnvironment(self.rng.tie_keys())
        self.costs = Costs({key[6:]: v for key, v in p.items() if key.startswith("costs.")})
        self.tracer = Tracer(self, full=trace, limit=trace_limit)
        self.hooks = Hooks()
        self.violations = ViolationLog(self, keep=keep, stop_on=stop_on)
        self.lockdep = Lockdep(self, enabled=p["lockdep"])
        self.deadlock = DeadlockDetector(self)
        self.cpus = CpuSet(self, p["cpus"], p["sched_latency_us"], p["sched_min_granularity_us"],
                           p["wakeup_preempt_prob"])
        self.rcu = Rcu(self, p["rcu_gp_us"], p["rcu_flavour"])
        self.windows = Windows()
        self.lock_classes: dict[str, LockClass] = {}
        self.tasks: list[Task | None] = []   # by tid; None once long dead (_retire_ring)
        self.stop = False
        self.truncated: str | None = None   # why the run ended early (sim.engine.limits)
        self.events = 0
        self.instant_steps = 0              # steps taking no time since time last advanced
        # who took them, a tid per step (counted only for a livelock report: an append is
        # cheaper per step than a count; at most livelock_steps long)
        self.instant_steppers: list[int] = []
        self.counters: dict[str, int] = {}
        self._dead: deque[Task] = deque()   # tasks that died, whose rings are kept
        self._no_ring: deque[Any] = deque(maxlen=0)
        self.oracles: dict[str, Any] = {}   # name -> installed oracle (sim.engine.violations)
        self._observers: list[list[Any]] = []
        self.strategy = strategy if strategy is not None else Timed()
        self.strategy.attach(self)      # new_execution() is the caller's, once per run
        self.step = self.strategy.step      # hot path: no indirection per call
        self.spend = self.strategy.spend
        self.clock = self.strategy.clock    # when, for reports: us, or the step (controlled)
        self.tracer.bound()
        self.clock_unit = "step" if self.strategy.controlled else "us"

    now = property(env_now, doc="Simulated time in microseconds.")

    # --- locks -----------------------------------------------------------------------------
    def lock_class(self, name: str, kind: str) -> LockClass:
        cls = self.lock_classes.get(name)
        if cls is None:
            cls = self.lock_classes[name] = LockClass(name, kind, self.params["lockstat_batch"])
        return cls

    def spinlock(self, name: str, label: str) -> SpinLock:
        return SpinLock(self.lock_class(name, "spin"), label)

    def mutex(self, name: str, label: str) -> Mutex:
        return Mutex(self.lock_class(name, "mutex"), label)

    def rwsem(self, name: str, label: str) -> RwSemaphore:
        return RwSemaphore(self.lock_class(name, "rwsem"), label)

    def page_lock(self, label: str) -> PageLock:
        return PageLock(self.lock_class("PG_locked", "page"), label)

    def lock_stat(self) -> list[dict[str, Any]]:
        """Rows of /proc/lock_stat, most contended first (as lock_stat sorts)."""
        rows = [s.row() for c in self.lock_classes.values() for s in c.stats() if s.acquisitions]
        rows.sort(key=lambda r: (-r["contentions"], -r["acquisitions"], r["class"]))
        return rows

    def lock_percentiles(self) -> dict[str, Any]:
        """Per lock_stat row: p50 and p99 of contended waits and of holds (log buckets)."""
        return {s.name: s.percentiles() for c in self.lock_classes.values()
                for s in c.stats() if s.acquisitions}

    def contention_points(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.lock_classes.values():
            for s in c.stats():
                if s.points:
                    out[s.name] = {
                        "contentions": _top(s.points), "contending": _top(s.contending)}
        return out

    # --- tasks -----------------------------------------------------------------------------
    def spawn(self, name: str, body: Callable[..., Generator[Any, Any, Any]], *args: Any,
              kind: str = "task") -> Task:
        task = Task(tid=len(self.tasks), name=name, kind=kind)
        self.tasks.append(task)
        task.main = self._task_main(task, body, args)
        self.env.process(task.main)
        return task

    def _task_main(self, task: Task, body: Callable[..., Any], args: tuple[Any, ...]
                   ) -> Generator[Event, Any, None]:
        ev = self.cpus.acquire(task)
        if ev is not None:
            yield ev
        try:
            yield from body(self, task, *args)
        except Oops as e:
            self.oops(task, e)          # it dies holding its locks; lockdep stays quiet
            self.rcu.task_dead(task)    # its CPU's next context switch is a quiescent state
        else:
            self.lockdep.task_exit(task)
        task.state = "dead"
        self.cpus.release(task)
        self._retire_ring(task)
        task.main = None

    def _retire_ring(self, task: Task) -> None:
        """Keep the last DEAD_RINGS tasks to die, with their trace rings (a later report may
        draw one: an exited process that freed an anon_vma a migration still holds); forget
        older ones (their `tasks` slot becomes None unless a full trace needs their names),
        so that memory stays flat however long the run."""
        dead = self._dead
        dead.append(task)
        if len(dead) > DEAD_RINGS:
            old = dead.popleft()
            old.ring = self._no_ring
            if not self.tracer.full:
                self.tasks[old.tid] = None

    def report(self, kind: str, actors: Sequence[Task], detail: dict[str, Any],
               **kw: Any) -> None:
        """Report a violation on the hook bus (sim.engine.violations.Report)."""
        self.hooks.emit(Report(kind, actors, detail, **kw))

    def oops(self, task: Task, e: Oops) -> None:
        """Report an oops (a task that handles one itself, e.g. by do_exit, calls this)."""
        self.tracer.mark(task, "oops", e.message)
        self.count("oopses")
        self.report(
            "oops", [task], {"message": e.message, "source": e.source,
                             "stack": e.stack or [], "held": [h.lock.cls.name
                                                              for h in task.held]},
            key=("oops", task.tid), mark=(task, f"oops: {e.message}"))

    def block(self, task: Task, ev: Event) -> Generator[Event, Any, None]:
        """Sleep until `ev` fires: the CPU goes to someone else, and is re-acquired after."""
        if task.preempt_count:
            self.lockdep.sleeping_while_atomic(task)
        self.cpus.release(task)
        task.state = "sleeping"
        yield ev
        wait = self.cpus.acquire(task)
        if wait is not None:
            yield wait
        yield from self.strategy.resumed(task)

    def cond_resched(self, task: Task) -> Generator[Event, Any, None]:
        """cond_resched(): a free step, where the task may be preempted (in controlled mode a
        choice point like any other: going on is the default, switching a preemption)."""
        return self.step(task, 0.0)

    def yield_cpu(self, task: Task) -> Generator[Event, Any, None]:
        """yield(): a task polling for another's progress offers its CPU (in controlled mode
        the fair successor runs next by default, and that switch is no preemption)."""
        return self.step(task, 0.0, YIELD)

    def sleep(self, task: Task, us: float) -> Generator[Event, Any, None]:
        """schedule_timeout / msleep: give the CPU up for `us` microseconds."""
        yield from self.block(task, delay(self.env, us))

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # --- running ---------------------------------------------------------------------------
    def observe(self, every_events: int, fn: Callable[[], None]) -> None:
        """Call fn every `every_events` processed events (checkers; no SimPy events, no RNG)."""
        self._observers.append([every_events, every_events, fn])

    def run(self, until: float | None = None, limits: Limits | None = None) -> None:
        """Process events until `until` (simulated us), the queue empties, a stop_on
        violation, a limit or Ctrl-C (then `truncated` names it)."""
        lim = limits or Limits()
        end = math.inf if until is None else until
        self.instant_steps = 0              # a run starts with no free steps counted
        self.instant_steppers.clear()
        # No automatic collections during the run (3-4% of a run's time): the run collects
        # every GC_EVENTS events itself, and memory is checked every MEMORY_CHECK_EVENTS.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            with deferred_sigint() as sigint:
                self._run_events(lim, end, sigint)
                if sigint.take():           # came after the run's last check
                    self.truncated = "interrupted"
        except KeyboardInterrupt:           # raised by a handler other than ours
            self.truncated = "interrupted"
        finally:
            if gc_was_on:
                gc.enable()
        self.hooks.emit(RunEnd(self.now))

    def _run_events(self, lim: Limits, end: float, sigint: Sigint) -> None:
        env = self.env
        max_events, livelock = lim.max_events, lim.livelock_steps
        wall_end = time.monotonic() + lim.max_wall_s
        max_memory = lim.memory()
        observers = self._observers
        next_obs = min((o[1] for o in observers), default=math.inf)
        while not sigint.pending:           # Ctrl-C: run() marks the run interrupted
            # the next periodic check: the wall clock every WALL_CHECK_EVENTS events
            # (memory and GC at multiples of it), or the next observer
            check_at = min(next_obs,
                           (self.events // WALL_CHECK_EVENTS + 1) * WALL_CHECK_EVENTS)
            why = env.run_events(self, max_events, check_at, end, livelock)
            n = self.events
            if why != "check":
                if why == "max_events":
                    self.truncated = "max_events"
                elif why == "livelock":
                    self._livelock(env.next_time())   # type: ignore[arg-type]
                return
            if not n % WALL_CHECK_EVENTS:
                if time.monotonic() > wall_end:
                    self.truncated = "max_wall_s"
                    return
                if not n % MEMORY_CHECK_EVENTS:
                    if not n % GC_EVENTS:
                        gc.collect()        # exited processes leave reference cycles
                    rss = resident_bytes()
                    if rss is not None and rss > max_memory:
                        self.truncated = "max_memory"
                        return
            if n >= next_obs:
                for o in observers:
                    if n >= o[1]:
                        o[1] += o[0]
                        o[2]()
                next_obs = min(o[1] for o in observers)

    def close(self) -> None:
        """Close every task still suspended in a kernel function, here and now, so that
        their `finally` clauses run inside the caller's deferred_sigint() block rather than
        in a finalizer whenever the kernel is collected (where a Ctrl-C would be lost)."""
        for task in self.tasks:
            if task is not None and task.main is not None:     # None: long dead
                task.main.close()
                task.main = None

    def _livelock(self, t: float) -> None:
        top = sorted(Counter(self.instant_steppers).items(), key=lambda x: (-x[1], x[0]))[:6]
        actors = [self.tasks[tid] for tid, _ in top]
        self.report(
            "livelock", actors,
            {"instant_us": round(t, 3), "steps": self.instant_steps,
             "actors": [{"task": self.tasks[tid].name, "steps": n,
                         "stack": list(self.tasks[tid].stack)} for tid, n in top]},
            key=("livelock", round(t, 3)))
        self.truncated = "livelock"


def kfunc(fn: F) -> F:
    """Mark a function as a modelled kernel function: it shows in stacks, rings and traces.

    Works on plain functions and on generator functions (steps that can wait); the wrapper
    keeps the kernel's name, so a trace reads like the kernel source.
    """
    return _kfunc(fn, fn.__name__)


def kversion(name: str, version: str) -> Callable[[F], F]:
    """One version of kernel function `name` (a kernel variant's table picks it): it shows as
    `name` in stacks, rings and traces, as the kernel of that version would."""
    def mark(fn: F) -> F:
        w = _kfunc(fn, name)
        w.kernel_name = name                    # type: ignore[attr-defined]
        w.kernel_version = version              # type: ignore[attr-defined]
        return w
    return mark


def _kfunc(fn: F, name: str) -> F:
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(k: Kernel, task: Task, *args: Any, **kw: Any) -> Any:
            task.stack.append(name)
            tracer = k.tracer
            tracer.call(task, name)
            try:
                return (yield from fn(k, task, *args, **kw))
            except Oops as e:
                if e.stack is None:
                    e.stack = list(task.stack)
                raise
            finally:
                task.stack.pop()
                if tracer.full:
                    tracer.ret(task, name)
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(k: Kernel, task: Task, *args: Any, **kw: Any) -> Any:
        task.stack.append(name)
        tracer = k.tracer
        tracer.call(task, name)
        try:
            return fn(k, task, *args, **kw)
        except Oops as e:
            if e.stack is None:
                e.stack = list(task.stack)
            raise
        finally:
            task.stack.pop()
            if tracer.full:
                tracer.ret(task, name)
    return wrapper  # type: ignore[return-value]


def _top(d: dict[str, int], n: int = 4) -> list[dict[str, Any]]:
    return [{"site": s, "count": c}
            for s, c in sorted(d.items(), key=lambda x: (-x[1], x[0]))[:n]]
