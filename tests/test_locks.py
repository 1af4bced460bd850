"""Lock semantics as structured logs: who held what, when."""

from conftest import make_kernel
from sim.engine import locks
from sim.engine.rcu import call_rcu, rcu_read_lock, rcu_read_unlock, synchronize_rcu


def run_script(k, scripts, delay="sleep"):
    """scripts: {name: (start_us, generator function (k, task, log))} -> log.

    Each task first waits start_us: asleep (CPU free) or, with delay="spend", on its CPU.
    """
    log = []

    def wrap(start, fn):
        def body(k, task):
            if delay == "sleep":
                yield from k.sleep(task, start)
            else:
                yield from k.spend(task, start)
            yield from fn(k, task, log)
        return body

    for name, (start, fn) in scripts.items():
        k.spawn(name, wrap(start, fn))
    k.run()
    return log


def test_spinlock_ticket_order_and_waiter_keeps_cpu():
    k = make_kernel(cpus=3)
    L = k.spinlock("test_lock", "L")

    def locker(hold):
        def fn(k, t, log):
            yield from locks.spin_lock(k, t, L)
            log.append((k.env.now, t.name, "got"))
            yield from k.spend(t, hold)
            locks.spin_unlock(k, t, L)
            log.append((k.env.now, t.name, "released"))
        return fn

    def bystander(k, t, log):
        log.append((k.env.now, t.name, "running"))
        yield from k.spend(t, 1)

    log = run_script(k, {"A": (0, locker(10)), "B": (1, locker(5)), "C": (2, locker(5)),
                         "D": (3, bystander)})
    # FIFO tickets: B (queued at 1) before C (queued at 2). B and C spin on their CPUs, so the
    # bystander D cannot run until a CPU frees: A releases at 10, then sleeps to its end.
    assert log == [
        (0, "A", "got"),
        (10, "A", "released"),
        (10, "B", "got"),
        (10, "D", "running"),
        (15, "B", "released"),
        (15, "C", "got"),
        (20, "C", "released"),
    ]
    st = L.cls.stat
    assert (st.acquisitions, st.contentions) == (3, 2)
    assert st.wait_total == (10 - 1) + (15 - 2)
    assert st.hold_total == 10 + 5 + 5


def test_page_lock_sleeps_trylock_never_waits_and_wait_on_page_locked():
    k = make_kernel(cpus=1)

    class Page:
        lock = k.page_lock("pfn 1")

    page = Page()

    def holder(k, t, log):
        yield from locks.lock_page(k, t, page)
        log.append((k.env.now, t.name, "locked"))
        yield from k.sleep(t, 10)            # sleeps holding PG_locked: allowed
        locks.unlock_page(k, t, page)
        log.append((k.env.now, t.name, "unlocked"))

    def trier(k, t, log):
        log.append((k.env.now, t.name, f"trylock={locks.trylock_page(k, t, page)}"))
        yield from locks.lock_page(k, t, page)   # sleeps: the single CPU goes to the waiter
        log.append((k.env.now, t.name, "locked"))
        locks.unlock_page(k, t, page)

    def waiter(k, t, log):
        yield from locks.wait_on_page_locked(k, t, page)
        log.append((k.env.now, t.name, f"saw unlocked, owner={page.lock.owner}"))

    log = run_script(k, {"H": (0, holder), "T": (1, trier), "W": (2, waiter)})
    assert log == [
        (0, "H", "locked"),
        (1, "T", "trylock=False"),
        (10, "H", "unlocked"),
        (10, "T", "locked"),
        (10, "W", "saw unlocked, owner=None"),
    ] or log == [
        (0, "H", "locked"),
        (1, "T", "trylock=False"),
        (10, "H", "unlocked"),
        (10, "W", "saw unlocked, owner=None"),
        (10, "T", "locked"),
    ]
    assert page.lock.cls.stat.contentions == 1


def test_page_lock_can_be_stolen_by_trylock_while_waiter_wakes():
    # wake-up latency: the woken locker needs 3 us before it runs; a trylock in between wins.
    k = make_kernel(cpus=3, costs__context_switch=3.0, cost_shape=1e6)

    class Page:
        lock = k.page_lock("pfn 2")

    page = Page()

    def holder(k, t, log):
        yield from locks.lock_page(k, t, page)
        yield from k.spend(t, 10)
        locks.unlock_page(k, t, page)
        log.append((k.env.now, t.name, "unlocked"))

    def locker(k, t, log):
        yield from locks.lock_page(k, t, page)
        log.append((round(k.env.now, 2), t.name, "locked"))
        locks.unlock_page(k, t, page)

    def thief(k, t, log):
        got = locks.trylock_page(k, t, page)
        log.append((k.env.now, t.name, f"trylock={got}"))
        yield from k.spend(t, 5)
        locks.unlock_page(k, t, page)
        log.append((k.env.now, t.name, "unlocked"))

    log = run_script(k, {"H": (0, holder), "L": (1, locker), "S": (11, thief)}, delay="spend")
    assert log == [
        (10, "H", "unlocked"),
        (11, "S", "trylock=True"),
        (16, "S", "unlocked"),
        (19.0, "L", "locked"),      # woke at 10, lost the race, woke again at 16, +3 us
    ]


def test_rwsem_readers_share_and_queued_writer_blocks_new_readers():
    k = make_kernel(cpus=8)
    sem = k.rwsem("&mm->mmap_sem", "mm1")

    def reader(hold):
        def fn(k, t, log):
            yield from locks.down_read(k, t, sem)
            log.append((k.env.now, t.name, "read"))
            yield from k.spend(t, hold)
            locks.up_read(k, t, sem)
        return fn

    def writer(hold):
        def fn(k, t, log):
            yield from locks.down_write(k, t, sem)
            log.append((k.env.now, t.name, "write"))
            yield from k.spend(t, hold)
            locks.up_write(k, t, sem)
            log.append((k.env.now, t.name, "write done"))
        return fn

    log = run_script(k, {
        "R1": (0, reader(10)), "R2": (1, reader(10)),     # share
        "W1": (2, writer(5)),                             # queues behind the readers
        "R3": (3, reader(4)), "R4": (4, reader(4)),       # blocked by the queued writer
        "W2": (5, writer(1)),                             # behind R3, R4
        "R5": (6, reader(1)),                             # behind W2
    })
    assert log == [
        (0, "R1", "read"), (1, "R2", "read"),
        (11, "W1", "write"), (16, "W1", "write done"),
        (16, "R3", "read"), (16, "R4", "read"),           # leading readers granted together
        (20, "W2", "write"), (21, "W2", "write done"),
        (21, "R5", "read"),
    ] or log[:4] == [(0, "R1", "read"), (1, "R2", "read"), (11, "W1", "write"),
                     (16, "W1", "write done")] and sorted(log[4:6]) == [
        (16, "R3", "read"), (16, "R4", "read")] and log[6:] == [
        (20, "W2", "write"), (21, "W2", "write done"), (21, "R5", "read")]
    assert sem.cls.stat.contentions == 2 and sem.cls.rstat.contentions == 3


def test_mutex_sleeps_and_its_waiters_get_it_in_order():
    k = make_kernel(cpus=1)
    m = k.mutex("ksm_thread_mutex", "ksm")

    def locker(hold):
        def fn(k, t, log):
            yield from locks.mutex_lock(k, t, m)
            log.append((k.env.now, t.name, "locked"))
            yield from k.sleep(t, hold)
            locks.mutex_unlock(k, t, m)
        return fn

    def other(k, t, log):
        log.append((k.env.now, t.name, "ran"))
        yield from k.spend(t, 1)

    log = run_script(k, {"A": (0, locker(10)), "B": (1, locker(1)), "C": (2, locker(1)),
                         "X": (3, other)})
    assert log == [(0, "A", "locked"), (3, "X", "ran"), (10, "B", "locked"),
                   (11, "C", "locked")]


def test_rcu_grace_period_waits_for_preexisting_readers_only():
    k = make_kernel(cpus=4, rcu_gp_us=5.0)
    log = []

    def reader(start, length):
        def body(k, t):
            yield from k.sleep(t, start)
            rcu_read_lock(k, t)
            log.append((k.env.now, t.name, "enter"))
            yield from k.spend(t, length)
            rcu_read_unlock(k, t)
            log.append((k.env.now, t.name, "exit"))
        return body

    def updater(k, t):
        yield from k.sleep(t, 2)
        call_rcu(k, lambda: log.append((k.env.now, "cb", "grace period over")))
        yield from synchronize_rcu(k, t)
        log.append((k.env.now, t.name, "synchronize_rcu returned"))

    k.spawn("old", reader(1, 20))     # inside when the grace period starts at 2
    k.spawn("new", reader(3, 100))    # enters after: not waited for
    k.spawn("upd", updater)
    k.run()
    assert (21, "old", "exit") in log
    gp_end = [e for e in log if e[1] == "cb"]
    assert gp_end == [(21, "cb", "grace period over")]       # waits for "old", not for "new"
    # synchronize_rcu queued its callback after grace period 1 had started, so it needs the
    # next one, which starts at 21 while "new" is inside: it returns when "new" leaves.
    sync = [e for e in log if e[2] == "synchronize_rcu returned"]
    assert sync == [(103, "upd", "synchronize_rcu returned")]
    # A grace period never ends before its minimum length, even with no readers.
    k2 = make_kernel(rcu_gp_us=7.0)
    seen = []
    call_rcu(k2, lambda: seen.append(k2.env.now))
    k2.run()
    assert seen == [7.0]


def test_robbed_mutex_waiter_keeps_its_place_ahead_of_later_waiters():
    # A releases at 10 and wakes B, which needs 3 us to run again (context switch); C, already
    # running, takes the free mutex at 11 (steals it). D queues at 12. When C releases at 16,
    # B (woken again) must get the mutex before D: a robbed waiter keeps its queue place.
    k = make_kernel(cpus=4, costs__context_switch=3.0, cost_shape=1e6)
    m = k.mutex("ksm_thread_mutex", "ksm")

    def locker(hold):
        def fn(k, t, log):
            yield from locks.mutex_lock(k, t, m)
            log.append((round(k.now, 1), t.name, "locked"))
            yield from k.spend(t, hold)
            locks.mutex_unlock(k, t, m)
        return fn

    log = run_script(k, {"A": (0, locker(10)), "B": (1, locker(1)), "C": (11, locker(5)),
                         "D": (12, locker(1))}, delay="spend")
    assert log == [(0, "A", "locked"), (11, "C", "locked"), (19, "B", "locked"),
                   (23, "D", "locked")]
    assert m.cls.stat.contentions == 2          # B (twice woken, one contention) and D
