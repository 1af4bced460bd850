"""Interleaving diagrams: the frames an actor was already inside are its open calls only."""

from conftest import make_kernel
from sim.engine.kernel import kfunc


@kfunc
def outer(k, t):
    yield from inner(k, t)


@kfunc
def inner(k, t):
    k.tracer.mark(t, "rcu_read_lock")
    k.tracer.mark(t, "runs again (CPU 1)")      # marks are not frames, with or without obj
    yield from k.spend(t, 10)
    k.tracer.mark(t, "the step")


def test_diagram_context_lists_open_calls_not_marks():
    k = make_kernel()
    t = k.spawn("A", outer)
    k.run(until=5)
    k.run()
    lines = k.tracer.diagram([t], since=5.0).splitlines()
    earlier = [ln.split("|")[1].strip() for ln in lines if "(earlier)" in ln]
    assert earlier == ["outer", "inner"]
    assert any("the step" in ln for ln in lines)
