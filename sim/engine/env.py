"""The SimPy environment of a run: seeded tie order, a frameless clock, and `delay`, the
Timeout of the hot path. The one module that touches SimPy's private fields."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import NORMAL
from simpy.events import Event, Timeout


class KernelEnvironment(simpy.Environment):
    """A SimPy environment whose simultaneous events run in seeded-random order, not FIFO.

    This module is the one place that touches SimPy's private fields (`_eid`, `_now`,
    `_queue`, an event's `_ok`/`_value`/`_delay`), all stable since SimPy 3 and pinned in
    pyproject.toml: the tie-breaking key, the hot-path clock read, a peek at the next event
    time, an event scheduled at a chosen priority, and `delay`.
    """

    def __init__(self, tie_keys: Iterator[int]) -> None:
        super().__init__()
        self._eid = tie_keys  # SimPy calls next(self._eid) for each scheduled event
        # `now` without a Python frame (attrgetter and partial are C): the hot-path clock
        self.clock: Callable[[], float] = functools.partial(operator.attrgetter("_now"), self)

    def next_time(self) -> float | None:
        """When the next queued event fires (None if nothing is queued)."""
        q = self._queue
        return q[0][0] if q else None

    def run_events(self, k: Any, max_events: int, check_at: int, until: float,
                   livelock: int) -> str:
        """Process events in time order until one of these, returned by name: `k.stop` is
        set ("stop"); the queue is empty ("empty"); the next event comes after `until`
        ("until": the clock moves to `until`); `max_events` have run ("max_events", checked
        before an event, as a limit); `livelock` free steps were taken at one instant
        ("livelock", checked when time does not advance); `check_at` events have run
        ("check": the caller's periodic checks). `k.events` counts the events processed,
        however this returns, an exception included.

        SimPy's Environment.step, inline: one Python frame per event fewer, on the loop that
        every event of every run goes through (the failed-event crash is SimPy's own)."""
        queue = self._queue
        n = k.events
        try:
            while not k.stop:
                if not queue:
                    return "empty"
                t = queue[0][0]
                if t > until:
                    self._now = until
                    return "until"
                if n >= max_events:
                    return "max_events"
                if t != self._now:          # time advances: no free steps at the new instant
                    k.instant_steps = 0
                    k.instant_steppers.clear()
                elif k.instant_steps >= livelock:
                    return "livelock"
                self._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
                n += 1
                if n >= check_at:
                    return "check"
            return "stop"
        finally:
            k.events = n

    def advance_to(self, t: float) -> None:
        """Move the clock forward to `t` with nothing happening (a run's time limit)."""
        self._now = t

    def call_at_priority(self, fn: Callable[[Event], None], priority: int,
                         delay: float = 0.0) -> None:
        """Run fn `delay` from now (default: at the current instant) once every event of a
        lower priority value has run (SimPy: URGENT=0, NORMAL=1); a triggered event with
        one callback."""
        ev = Event(self)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(fn)
        self.schedule(ev, priority, delay)


# the simulated time of anything with an `env` (Kernel.now), as a C-level getter: no Python
# frame for a read that every lock operation makes
env_now: Callable[[Any], float] = operator.attrgetter("env._now")


def delay(env: simpy.Environment, us: float) -> Timeout:
    """`Timeout(env, us)` for a non-negative delay, built and queued in one frame: SimPy's
    takes two (Timeout.__init__, then Environment.schedule), and every costed step of every
    task makes one. The same fields and the same single next(_eid) as SimPy's, so the queue
    order, hence every result, is unchanged."""
    ev = Timeout.__new__(Timeout)
    ev.env = env
    ev.callbacks = []
    ev._value = None
    ev._delay = us
    ev._ok = True
    heappush(env._queue, (env._now + us, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]
    return ev


def succeed(ev: Event) -> None:
    """`ev.succeed()` for an event that only its one waker triggers (a lock's queued
    waiter, popped as it is woken), in one frame: SimPy's checks that the event is pending
    and schedules it in a second call. The same fields and the same next(_eid)."""
    ev._ok = True
    ev._value = None
    env = ev.env
    heappush(env._queue, (env._now, NORMAL, next(env._eid), ev))  # type: ignore[attr-defined]
