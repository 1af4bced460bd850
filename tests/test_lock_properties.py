"""Properties of every lock kind over random scripts (Hypothesis): whatever the arrival
times, hold times and CPU count, no two tasks hold an exclusive lock at once, readers never
overlap a writer, every request is granted, spinlock tickets are served in arrival order,
and lock_stat accounts for every acquisition and hold."""

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_kernel
from sim.engine import locks

request = st.tuples(st.integers(0, 30), st.integers(1, 20), st.booleans())   # start, hold, read
scripts = st.lists(request, min_size=1, max_size=8)


def run(kind, script, cpus):
    k = make_kernel(cpus=cpus)
    lock = {"spin": k.spinlock, "mutex": k.mutex, "rwsem": k.rwsem}[kind]("L", "l")
    events = []          # (time, +1/-1, task, read)
    order = []           # (queued at, granted at, name) for FIFO checks

    def body(start, hold, read):
        def fn(k, t):
            yield from k.sleep(t, start)
            asked = k.now
            if kind == "spin":
                yield from locks.spin_lock(k, t, lock)
            elif kind == "mutex":
                yield from locks.mutex_lock(k, t, lock)
            elif read:
                yield from locks.down_read(k, t, lock)
            else:
                yield from locks.down_write(k, t, lock)
            order.append((asked, k.now, t.name))
            events.append((k.now, 1, t.name, read and kind == "rwsem"))
            yield from k.spend(t, hold)
            events.append((k.now, -1, t.name, read and kind == "rwsem"))
            if kind == "spin":
                locks.spin_unlock(k, t, lock)
            elif kind == "mutex":
                locks.mutex_unlock(k, t, lock)
            elif read:
                locks.up_read(k, t, lock)
            else:
                locks.up_write(k, t, lock)
        return fn

    for i, (start, hold, read) in enumerate(script):
        k.spawn(f"t{i}", body(start, hold, read))
    k.run()
    return k, lock, events, order


def check_exclusion(events):
    readers, writers = set(), set()
    # at one instant, releases happen before the grants they cause
    for _, d, name, read in sorted(events, key=lambda e: (e[0], e[1])):
        if d < 0:
            (readers if read else writers).discard(name)
            continue
        if read:
            assert not writers
            readers.add(name)
        else:
            assert not writers and not readers
            writers.add(name)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["spin", "mutex", "rwsem"]), script=scripts,
       cpus=st.integers(1, 4))
def test_every_lock_kind_excludes_grants_and_accounts(kind, script, cpus):
    k, lock, events, order = run(kind, script, cpus)
    assert len(order) == len(script)                      # everyone got it
    check_exclusion(events)
    stats = lock.cls.stats()
    assert sum(s.acquisitions for s in stats) == len(script)
    assert sum(s.holds for s in stats) == len(script)
    assert abs(sum(s.hold_total for s in stats) - sum(h for _, h, _ in script)) < 1e-6
    assert lock.owner is None and not lock.waiters
    assert k.violations.counts == {}


@settings(max_examples=40, deadline=None)
@given(script=scripts, cpus=st.integers(1, 4))
def test_spinlock_tickets_are_served_in_arrival_order(script, cpus):
    k, lock, events, order = run("spin", script, cpus)
    contended = [o for o in order if o[1] > o[0]]
    # among waiters, the earlier request is granted no later
    for a in contended:
        for b in contended:
            if a[0] < b[0]:
                assert a[1] <= b[1]
