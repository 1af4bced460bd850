"""Ctrl-C during a run, and while a finished kernel is torn down (sim.engine.interrupt):
acted on at a safe point, never raised inside a finalizer where Python would drop it."""

import gc
import signal
import sys

import pytest

from conftest import make_kernel
from sim.api import run_spec, spec_for
from sim.engine.interrupt import deferred_sigint
from sim.engine.kernel import DEAD_RINGS, Kernel
from sim.engine.limits import WALL_CHECK_EVENTS


@pytest.fixture(autouse=True)
def default_sigint():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back


def test_ctrl_c_during_a_run_ends_it_at_the_next_check_as_interrupted():
    k = make_kernel(cpus=1)

    def busy(k, t):
        for i in range(3 * WALL_CHECK_EVENTS):
            if i == 100:
                signal.raise_signal(signal.SIGINT)    # Ctrl-C, 100 steps in
            yield from k.spend(t, 1.0)

    k.spawn("busy", busy)
    k.run()                                           # no KeyboardInterrupt escapes
    assert (k.truncated, k.events) == ("interrupted", WALL_CHECK_EVENTS)


def _suspended_with_ctrl_c_in_finally() -> Kernel:
    """A kernel whose one task is asleep inside a try whose finally presses Ctrl-C."""
    k = make_kernel(cpus=1)

    def sleeper(k, t):
        try:
            yield from k.sleep(t, 1e9)
        finally:
            signal.raise_signal(signal.SIGINT)

    k.spawn("sleeper", sleeper)
    k.run(until=10.0)
    return k


def test_without_deferral_a_ctrl_c_in_a_collected_task_is_lost(monkeypatch):
    """Why Kernel.close exists: collected, the task's finally runs in a finalizer, and
    Python reports the KeyboardInterrupt as unraisable and goes on."""
    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u.exc_type))
    k = _suspended_with_ctrl_c_in_finally()
    del k
    gc.collect()
    assert lost == [KeyboardInterrupt]


def test_a_ctrl_c_while_a_kernel_closes_its_tasks_is_raised_after_the_block(monkeypatch):
    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u.exc_type))
    k = _suspended_with_ctrl_c_in_finally()
    with pytest.raises(KeyboardInterrupt):
        with deferred_sigint() as sigint:
            k.close()
            assert sigint.pending                     # noted, not raised, inside the block
    del k
    gc.collect()
    assert lost == []


def test_a_finished_run_leaves_no_kernel_code_to_run_when_it_is_collected(monkeypatch):
    """run_spec closes the tasks a truncated run left suspended, inside its deferral: once
    it returns, collecting the kernel runs no Python code of the simulator."""
    kept, suspended = [], []
    real_run = Kernel.run

    def run(self, *a, **kw):
        real_run(self, *a, **kw)
        kept.append(self)
        suspended.append(sum(t.main is not None for t in self.tasks))

    monkeypatch.setattr(Kernel, "run", run)
    r = run_spec(spec_for("hotremove-exit-mini", max_events=30))
    assert r.truncated == "max_events" and suspended == [2]
    ran = []

    def profile(frame, event, arg):
        if event == "call" and "/sim/" in frame.f_code.co_filename:
            ran.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        kept.clear()
        gc.collect()
    finally:
        sys.setprofile(None)
    assert ran == []


def test_a_ctrl_c_after_the_run_keeps_the_result_and_marks_it_interrupted(monkeypatch):
    real_close = Kernel.close

    def close(self):
        real_close(self)
        signal.raise_signal(signal.SIGINT)            # Ctrl-C as the tasks are closed

    whole = run_spec(spec_for("hotremove-exit-mini"))
    monkeypatch.setattr(Kernel, "close", close)
    r = run_spec(spec_for("hotremove-exit-mini"))
    assert (whole.truncated, whole.events) == (None, 55)
    assert (r.truncated, r.events) == ("interrupted", 55)    # the whole run, kept


def test_a_subtree_worker_stops_at_the_execution_after_a_ctrl_c(monkeypatch):
    """A pool worker ignores SIGINT outside its work; inside a subtree, Ctrl-C (passed on by
    the coordinator) stops the search before the next execution runs a step."""
    import sim.race.runs as runs
    from sim.engine.sched import DFS
    from sim.race.explore import _subtree

    spec = spec_for("hotremove-exit-mini")
    probe = DFS(3, True)
    run_spec(spec, strategy=probe)
    first = probe.stack[0].runnable[0].tid
    seen = []

    def counted(spec, strategy=None):
        if len(seen) == 4:
            signal.raise_signal(signal.SIGINT)       # Ctrl-C between executions 4 and 5
        r = run_spec(spec, strategy=strategy)
        seen.append((r.events, r.truncated))
        return r

    monkeypatch.setattr(runs, "_run_spec", counted)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # as the pool's initializer leaves it
    try:
        out = _subtree((spec.to_dict(), 3, True, first, set(), None, None))
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert (out.interrupted, out.complete, out.executions) == (True, False, 4)
    assert seen[4] == (0, "interrupted") and len(seen) == 5


def test_close_skips_the_tasks_long_dead_and_closes_the_suspended_ones():
    k = make_kernel(cpus=1)
    closed = []

    def brief(k, t):
        yield from k.spend(t, 1.0)

    def sleeper(k, t):
        try:
            yield from k.sleep(t, 1e9)
        finally:
            closed.append(t.name)

    for i in range(DEAD_RINGS + 1):                   # the first to die leaves a None
        k.spawn(f"brief{i}", brief)
    k.spawn("sleeper", sleeper)
    k.run(until=2.0 * DEAD_RINGS)
    assert k.tasks.count(None) == 1 and closed == []
    k.close()
    assert closed == ["sleeper"]


def test_ctrl_c_while_the_command_loads_is_one_line_and_130(monkeypatch, capsys):
    """sim.launch imports the CLI inside main(): a Ctrl-C during those imports (numpy,
    SimPy, the model; a few hundred ms) gets the same one line as a later one."""
    import importlib.abc
    from sim import launch

    class CtrlCOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "sim.cli":
                raise KeyboardInterrupt               # as if SIGINT came mid-import
            return None

    monkeypatch.delitem(sys.modules, "sim.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [CtrlCOnImport(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["run.py", "run", "hotremove-exit-mini"])
    assert launch.main() == 130
    assert capsys.readouterr().err == "run.py: interrupted\n"

