"""Ctrl-C while a run is in progress: noted, then acted on where it is safe.

Python's own SIGINT handler raises KeyboardInterrupt at whatever bytecode runs next. During
a run that is fine (Kernel.run catches it), but it can also land inside a generator's
finalizer: when a finished kernel is freed, each task still suspended in a kernel function is
closed and runs its `finally` clauses. An exception raised there cannot propagate; Python
prints "Exception ignored in: <generator ...>" with a traceback and drops it, so the
Ctrl-C is lost and the search goes on. (2 in 90 Ctrl-Cs of `explore --jobs 2`:
benchmarks/stress_ctrl_c.py.)

So while `run_spec` runs (deferred_sigint), SIGINT only sets a flag. `Kernel.run` reads it
before each stretch of events (at most WALL_CHECK_EVENTS long) and ends the run
`truncated = "interrupted"`; run_spec then closes the tasks left suspended, here rather than
in the collector, and a Ctrl-C that came meanwhile marks the kept result interrupted. The
handler is replaced only where Python's default one is installed, in the main thread: a
process that ignores SIGINT (a sweep worker) or has its own handler keeps it.

An explore's subtree worker (sigint_flag) takes Ctrl-C as a flag for its whole search: the
search stops at the next execution, and no KeyboardInterrupt can reach the pool's code.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Sigint:
    """A SIGINT handler that only records the signal (`pending`) until someone acts on it."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True

    def take(self) -> bool:
        """Whether a Ctrl-C is pending; it is then the caller's to act on."""
        if self.pending:
            self.pending = False
            return True
        return False


@contextmanager
def deferred_sigint() -> Iterator[Sigint]:
    """SIGINT only sets the yielded flag inside the block; one left pending at the end is
    raised as KeyboardInterrupt. Nested blocks share the outermost flag, and leave it be."""
    current = _current()
    if isinstance(current, Sigint):         # an enclosing block owns the handler
        yield current
        return
    if current is not signal.default_int_handler:
        yield Sigint()                      # SIG_IGN, someone else's handler, or not the
        return                              # main thread: left alone
    with sigint_flag() as flag:
        yield flag
    if flag.take():
        raise KeyboardInterrupt


@contextmanager
def sigint_flag() -> Iterator[Sigint]:
    """SIGINT sets the yielded flag inside the block, whatever handler was there before (in
    the main thread: signals go to no other); nothing is raised, the block acts on it."""
    flag = Sigint()
    if _current() is None:
        yield flag
        return
    old = signal.signal(signal.SIGINT, flag)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


def _current() -> object:
    """The SIGINT handler, or None outside the main thread (where it cannot be changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signal.SIGINT)
