"""Ownership checks, lockdep order inversion, wait-for deadlocks."""

from conftest import make_kernel
from sim.engine import locks


def spawn_at(k, name, start, fn):
    def body(k, t):
        if start:
            yield from k.sleep(t, start)
        yield from fn(k, t)
    return k.spawn(name, body)


def test_unlock_not_held_is_reported_not_accepted():
    k = make_kernel()
    L = k.spinlock("test_lock", "L")
    sem = k.rwsem("&mm->mmap_sem", "mm")

    def a(k, t):
        yield from locks.spin_lock(k, t, L)
        yield from k.spend(t, 10)
        locks.spin_unlock(k, t, L)

    def b(k, t):
        locks.spin_unlock(k, t, L)         # A holds it, not B
        locks.up_read(k, t, sem)           # nobody holds it
        yield from k.spend(t, 1)

    spawn_at(k, "A", 0, a)
    spawn_at(k, "B", 1, b)
    k.run()
    misuse = k.violations.of("lock_misuse")
    assert [(v.actors, v.detail["what"], v.detail["op"]) for v in misuse] == [
        (["B"], "bad unlock balance", "spin_unlock"),
        (["B"], "bad unlock balance", "up_read"),
    ]
    assert misuse[0].detail["owner"] == "A"
    assert L.owner is None and L.cls.stat.holds == 1   # A's own unlock still worked


def test_recursive_spin_lock_is_reported_and_self_deadlocks():
    k = make_kernel()
    L = k.spinlock("test_lock", "L")

    def a(k, t):
        yield from locks.spin_lock(k, t, L)
        yield from locks.spin_lock(k, t, L)

    spawn_at(k, "A", 0, a)
    k.run()
    assert k.violations.counts == {"lock_misuse": 1, "deadlock": 1}
    assert k.violations.of("lock_misuse")[0].detail["what"] == "recursive locking"
    chain = k.violations.of("deadlock")[0].detail["chain"]
    assert chain == [{"task": "A", "waits_for": "test_lock", "instance": "L",
                      "held_by": ["A"], "holds": ["test_lock"]}]


def test_lockdep_reports_inversion_without_any_deadlock():
    k = make_kernel()
    X = k.spinlock("lock_x", "x")
    Y = k.spinlock("lock_y", "y")

    def xy(k, t):
        yield from locks.spin_lock(k, t, X)
        yield from locks.spin_lock(k, t, Y)
        locks.spin_unlock(k, t, Y)
        locks.spin_unlock(k, t, X)

    def yx(k, t):
        yield from locks.spin_lock(k, t, Y)
        yield from locks.spin_lock(k, t, X)
        locks.spin_unlock(k, t, X)
        locks.spin_unlock(k, t, Y)

    spawn_at(k, "first", 0, xy)
    spawn_at(k, "second", 100, yx)      # never overlaps: no deadlock can happen here
    k.run()
    assert set(k.violations.counts) == {"lock_order_inversion"}
    v = k.violations.of("lock_order_inversion")[0]
    assert v.actors == ["second"]
    assert v.detail["source"] == "lockdep"
    assert v.detail["new"]["from"] == "lock_y" and v.detail["new"]["to"] == "lock_x"
    assert v.detail["existing_chain"][0]["first_seen"]["task"] == "first"


def test_consistent_order_and_trylock_are_not_inversions():
    k = make_kernel()
    X = k.spinlock("lock_x", "x")
    Y = k.spinlock("lock_y", "y")

    def xy(k, t):
        yield from locks.spin_lock(k, t, X)
        yield from locks.spin_lock(k, t, Y)
        locks.spin_unlock(k, t, Y)
        locks.spin_unlock(k, t, X)

    def y_then_try_x(k, t):
        yield from locks.spin_lock(k, t, Y)
        assert locks.spin_trylock(k, t, X)      # trylocks cannot deadlock
        locks.spin_unlock(k, t, X)
        locks.spin_unlock(k, t, Y)

    spawn_at(k, "a", 0, xy)
    spawn_at(k, "b", 10, xy)
    spawn_at(k, "c", 20, y_then_try_x)
    k.run()
    assert k.violations.counts == {}


def test_documented_mm_order_is_enforced():
    from sim.mm.lockorder import RANK
    k = make_kernel()
    k.lockdep.order = RANK
    av = k.spinlock("&anon_vma->lock", "anon_vma#1")
    sem = k.rwsem("&mm->mmap_sem", "mm1")

    def wrong(k, t):
        yield from locks.spin_lock(k, t, av)
        locks.spin_unlock(k, t, av)
        yield from locks.down_read(k, t, sem)      # fine: not nested
        locks.up_read(k, t, sem)
        # anon_vma->lock (rank 7) then mmap_sem (rank 3): against mm/rmap.c's order
        yield from locks.spin_lock(k, t, av)
        ok = locks.down_read_trylock(k, t, sem)    # trylock: exempt
        assert ok
        locks.up_read(k, t, sem)
        locks.spin_unlock(k, t, av)

    def right(k, t):
        yield from locks.down_read(k, t, sem)
        yield from locks.spin_lock(k, t, av)
        locks.spin_unlock(k, t, av)
        locks.up_read(k, t, sem)

    spawn_at(k, "right", 0, right)
    spawn_at(k, "wrong", 10, wrong)
    k.run()
    assert k.violations.counts == {}
    k2 = make_kernel()
    k2.lockdep.order = RANK
    av2 = k2.spinlock("&anon_vma->lock", "anon_vma#1")
    pl = k2.page_lock("pfn 7")

    class P:
        lock = pl

    def inverted(k, t):
        yield from locks.spin_lock(k, t, av2)
        t.preempt_count -= 1          # pretend it may sleep, to isolate the order check
        yield from locks.lock_page(k, t, P)
        locks.unlock_page(k, t, P)
        t.preempt_count += 1
        locks.spin_unlock(k, t, av2)

    spawn_at(k2, "bad", 0, inverted)
    k2.run()
    v = k2.violations.of("lock_order_inversion")
    assert [(x.detail["source"], x.detail["held"], x.detail["acquired"]) for x in v] == [
        ("documented-order", "&anon_vma->lock", "PG_locked")]


def test_abba_deadlock_reports_the_chain():
    k = make_kernel(cpus=2)
    A = k.mutex("mutex_a", "a")
    B = k.mutex("mutex_b", "b")

    def ab(k, t):
        yield from locks.mutex_lock(k, t, A)
        yield from k.sleep(t, 5)
        yield from locks.mutex_lock(k, t, B)

    def ba(k, t):
        yield from locks.mutex_lock(k, t, B)
        yield from k.sleep(t, 5)
        yield from locks.mutex_lock(k, t, A)

    spawn_at(k, "T1", 0, ab)
    spawn_at(k, "T2", 1, ba)
    k.run()
    assert k.violations.counts == {"lock_order_inversion": 1, "deadlock": 1}
    d = k.violations.of("deadlock")[0]
    assert sorted(d.actors) == ["T1", "T2"]
    chain = {c["task"]: (c["waits_for"], c["held_by"]) for c in d.detail["chain"]}
    assert chain == {"T1": ("mutex_b", ["T2"]), "T2": ("mutex_a", ["T1"])}
    assert d.diagram is not None and "mutex_lock" in d.diagram


def test_rwsem_recursive_read_deadlocks_behind_a_queued_writer():
    k = make_kernel(cpus=2)
    sem = k.rwsem("&mm->mmap_sem", "mm")

    def reader(k, t):
        yield from locks.down_read(k, t, sem)
        yield from k.sleep(t, 10)
        yield from locks.down_read(k, t, sem)    # writer queued meanwhile: blocks forever

    def writer(k, t):
        yield from locks.down_write(k, t, sem)

    spawn_at(k, "R", 0, reader)
    spawn_at(k, "W", 5, writer)
    k.run()
    assert k.violations.counts.get("deadlock") == 1
    assert k.violations.of("lock_misuse")[0].detail["what"] == "recursive locking"


def test_sleeping_while_atomic_and_exiting_with_locks_held():
    k = make_kernel()
    L = k.spinlock("test_lock", "L")

    def bad(k, t):
        yield from locks.spin_lock(k, t, L)
        yield from k.sleep(t, 1)                 # sleeping with a spinlock held

    spawn_at(k, "A", 0, bad)
    k.run()
    whats = [v.detail["what"] for v in k.violations.of("lock_misuse")]
    assert whats == ["BUG: sleeping function called from invalid context",
                     "task exited with locks held"]
