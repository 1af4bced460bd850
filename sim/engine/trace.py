"""Event records: per-task rings for interleaving diagrams, and a full Chrome/Perfetto trace.

Every task keeps a short ring of its recent steps (kernel function entries, lock operations,
notable state changes), always on and cheap, so a violation can show the interleaving that led
to it. With `full=True` the tracer also keeps Chrome trace-event JSON that ui.perfetto.dev
opens: one process group per actor (its kernel-function slices, and async slices for each
lock wait and hold), one track per simulated CPU showing which task ran, and a counter per
lock class with its number of waiters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sim.engine.task import Task

if TYPE_CHECKING:
    from sim.engine.kernel import Kernel

CPU_PID = 1_000_000          # the CPUs' process group in the trace
COUNTER_PID = 1_000_001
TRACE_LIMIT = 2_000_000      # trace events kept by default (about 200 MB of JSON)


def label(obj: Any) -> str:
    if obj is None:
        return ""
    lab = getattr(obj, "label", None)
    if lab is not None:
        cls = getattr(obj, "cls", None)
        return f"{cls.name} {lab}" if cls is not None else str(lab)
    return str(obj)


# The obj of a ring entry that records a kernel-function call (marks carry None or an object).
CALL = object()


def entry_text(op: str, obj: Any) -> str:
    return f"{op}({label(obj)})" if obj is not None and obj is not CALL else op


class Tracer:
    def __init__(self, k: "Kernel", full: bool = False, limit: int = TRACE_LIMIT) -> None:
        self.k = k
        self.full = full
        self.limit = limit
        self.events: list[dict[str, Any]] = []
        self.cut_at: float | None = None     # when the trace reached its limit
        self.names: dict[int, str] = {}      # at the cut: the tasks the trace can name
        self._async_id = 0
        self._waiting: dict[str, int] = {}
        self._seq = itertools.count()   # global order of ring entries, for diagrams
        self._next = self._seq.__next__     # a ring entry's number
        self.clock: Callable[[], float] = k.env.clock   # until bound(): the strategy's clock

    def bound(self) -> None:
        """Take the kernel's clock (us, or the step in controlled mode) once the strategy has
        attached: read per ring entry, it is bound here rather than looked up each time."""
        self.clock = self.k.clock

    # --- always-on ring ------------------------------------------------------------------------
    def mark(self, task: Task, op: str, obj: Any = None) -> None:
        task.ring.append((self._next(), self.clock(), len(task.stack), op, obj))
        if self.full:
            self._emit({"ph": "i", "s": "t", "name": entry_text(op, obj), "pid": task.tid,
                        "tid": task.tid, "ts": self.clock()})

    def call(self, task: Task, name: str) -> None:
        task.ring.append((self._next(), self.clock(), len(task.stack) - 1, name, CALL))
        if self.full:
            self._emit({"ph": "B", "name": name, "pid": task.tid, "tid": task.tid,
                        "ts": self.clock()})

    def ret(self, task: Task, name: str) -> None:
        if self.full:
            self._emit({"ph": "E", "name": name, "pid": task.tid, "tid": task.tid,
                        "ts": self.k.clock()})

    # --- locks -------------------------------------------------------------------------------
    def wait_begin(self, task: Task, lock: Any) -> None:
        task.ring.append((self._next(), self.clock(), len(task.stack), "wait", lock))
        if self.full:
            n = self._waiting.get(lock.cls.name, 0) + 1
            self._waiting[lock.cls.name] = n
            self._counter(lock.cls.name, n)

    def lock_waited(self, task: Task, lock: Any, t0: float, t1: float) -> None:
        if self.full:
            n = self._waiting.get(lock.cls.name, 1) - 1
            self._waiting[lock.cls.name] = n
            self._counter(lock.cls.name, n)
            self._async(task, f"wait {lock.cls.name}", "lock-wait", t0, t1,
                        {"instance": lock.label})

    def lock_held(self, task: Task, lock: Any, t0: float, t1: float, op: str) -> None:
        if self.full:
            self._async(task, f"hold {lock.cls.name}", "lock-hold", t0, t1,
                        {"instance": lock.label, "released_by": op})

    def cpu_run(self, cpu: int, task: Task, t0: float, t1: float) -> None:
        if self.full and t1 > t0:
            self._emit({"ph": "X", "name": task.name, "pid": CPU_PID, "tid": cpu, "ts": t0,
                        "dur": t1 - t0})

    # --- output ------------------------------------------------------------------------------
    def _emit(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        if len(self.events) >= self.limit:
            self._cut()

    def _cut(self) -> None:
        """The trace is full: close every function slice open now, and stop recording, so
        the file is well formed up to the cut."""
        now = self.k.clock()
        self.events.extend({"ph": "E", "name": name, "pid": t.tid, "tid": t.tid, "ts": now}
                           for t in self.k.tasks for name in reversed(t.stack))
        self.cut_at = now
        self.full = False
        # Once not full, the kernel forgets long-dead tasks (their slot becomes None); the
        # trace names every task that existed up to the cut, so keep their names now.
        self.names = {t.tid: t.name for t in self.k.tasks if t is not None}

    def _counter(self, cls: str, n: int) -> None:
        self._emit({"ph": "C", "name": f"waiters {cls}", "pid": COUNTER_PID, "tid": 0,
                    "ts": self.k.clock(), "args": {"waiters": n}})

    def _async(self, task: Task, name: str, cat: str, t0: float, t1: float,
               args: dict[str, Any]) -> None:
        self._async_id += 1
        common = {"name": name, "cat": cat, "pid": task.tid, "tid": task.tid,
                  "id": self._async_id}
        self.events.append({**common, "ph": "b", "ts": t0, "args": args})   # a pair, or none
        self._emit({**common, "ph": "e", "ts": t1})

    def chrome_trace(self, tasks: Sequence[Task], ncpus: int) -> dict[str, Any]:
        meta: list[dict[str, Any]] = []
        names = self.names if self.cut_at is not None else \
            {t.tid: t.name for t in tasks if t is not None}
        for tid, name in names.items():
            meta.append({"ph": "M", "name": "process_name", "pid": tid,
                         "args": {"name": name}})
            meta.append({"ph": "M", "name": "thread_name", "pid": tid, "tid": tid,
                         "args": {"name": name}})
        meta.append({"ph": "M", "name": "process_name", "pid": CPU_PID, "args": {"name": "CPUs"}})
        for c in range(ncpus):
            meta.append({"ph": "M", "name": "thread_name", "pid": CPU_PID, "tid": c,
                         "args": {"name": f"CPU {c}"}})
        meta.append({"ph": "M", "name": "process_name", "pid": COUNTER_PID,
                     "args": {"name": "lock waiters"}})
        # Close function slices still open at the end so every B has its E (at the cut, the
        # cut closed them).
        end = self.k.clock()
        closers = [{"ph": "E", "name": name, "pid": t.tid, "tid": t.tid, "ts": end}
                   for t in tasks if t is not None
                   for name in reversed(t.stack)] if self.full else []
        other: dict[str, Any] = {"clock": "simulated microseconds",
                                 "truncated": self.cut_at is not None}
        if self.cut_at is not None:
            other.update({"cut_at_us": round(self.cut_at, 3), "limit_events": self.limit})
        return {"traceEvents": meta + self.events + closers, "displayTimeUnit": "ns",
                "otherData": other}

    # --- interleaving diagram ----------------------------------------------------------------
    def diagram(self, actors: list[Task], since: float | None = None,
                mark: tuple[Task, str] | None = None, width: int = 50,
                max_rows: int = 80, verdict: str = "BUG",
                extra: dict[str, list[tuple[float, str]]] | None = None) -> str:
        """The actors' recent steps side by side, one column each, in time order.

        The way kernel commit messages draw races. `mark` adds a final step, flagged
        "<== {verdict}"; `extra` adds columns of (time, text) that are no task's steps (e.g.
        an RCU callback).
        """
        rows: list[tuple[float, float, int, str]] = []
        for col, t in enumerate(actors):
            ring = list(t.ring)
            if since is not None:
                earlier = [e for e in ring if e[1] < since]
                ring = [e for e in ring if e[1] >= since]
                # the calls the actor was already inside when the diagram starts
                # frames open now that nothing re-entered since were open then, too
                first_call = min((e[2] for e in ring if e[4] is CALL), default=len(t.stack))
                ctx = dict(_open_calls(earlier))
                for d in range(min(first_call, len(t.stack))):
                    ctx.setdefault(d, t.stack[d])
                for depth, name in sorted(ctx.items()):
                    rows.append((-100_000 + col * 1000 + depth, -1.0, col, " " * depth + name))
            else:
                ring = ring[-16:]
            for seq, ts, depth, op, obj in ring:
                rows.append((seq, ts, col, " " * depth + entry_text(op, obj)))
        names = [t.name for t in actors] + list(extra or ())
        stamped = sorted((r[1], r[0]) for r in rows if r[1] >= 0)
        for col, events in enumerate((extra or {}).values(), len(actors)):
            for ts, text in events:
                if since is not None and ts < since:
                    continue
                # after every ring entry at or before ts (ring seqs grow with time)
                prior = [seq for t, seq in stamped if t <= ts]
                rows.append(((max(prior) if prior else -1) + 0.5, ts, col, text))
        rows.sort()
        if mark is not None and mark[0] in actors:
            rows.append((1 << 62, self.k.clock(), actors.index(mark[0]),
                         " " * len(mark[0].stack) + mark[1] + f"   <== {verdict}"))
        if len(rows) > max_rows:
            head = max_rows // 3
            rows = rows[:head] + [(-1, -1.0, -1, "")] + rows[-(max_rows - head - 1):]
        w = width
        steps = self.k.clock_unit == "step"
        prec = 0 if steps else 3
        header = f"{'step' if steps else 'time_us':>12} | " + " | ".join(f"{n[:w]:<{w}}" for n in names)
        lines = [header, "-" * len(header)]
        for _, ts, col, text in rows:
            if col < 0:
                lines.append(f"{'...':>12} | " + " | ".join(f"{'...':<{w}}" for _ in names))
                continue
            cells = [" " * w] * len(names)
            flagged = "   <== " in text
            txt = text if len(text) <= w or flagged else text[: w - 1] + "~"
            cells[col] = f"{txt:<{w}}"
            stamp = f"{ts:12.{prec}f}" if ts >= 0 else f"{'(earlier)':>12}"
            line = f"{stamp} | " + " | ".join(cells)
            if flagged:             # a long flagged step runs over: no empty columns after it
                line = f"{stamp} | " + " | ".join(cells[:col + 1])
            lines.append(line)
        return "\n".join(line.rstrip() for line in lines)


def _open_calls(ring: list[tuple]) -> list[tuple[int, str]]:
    """(depth, name) of the kernel functions still open at the end of a ring prefix. Each
    entry's depth says how deep the stack was; a call entry names the frame at its depth. The
    ring may start mid-stack, so shallower frames can be unknown (left out)."""
    stack: dict[int, str] = {}
    for _seq, _ts, depth, op, obj in ring:
        for d in [d for d in stack if d >= depth]:
            del stack[d]
        if obj is CALL:
            stack[depth] = op
    return sorted(stack.items())
