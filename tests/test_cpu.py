"""The CPU scheduler, pinned by small scripted cases: CFS slice length, its floor, wake-up
preemption, and that a spinning waiter keeps its CPU."""

from conftest import make_kernel
from sim.engine import locks


def _hogs(k, n, total_us, log):
    """n CPU-bound tasks, each running 1 us steps for total_us; log (when, who) each time a
    task is given a CPU (its slice starts)."""
    def hog(k, t):
        seen = None
        for _ in range(int(total_us)):
            yield from k.spend(t, 1.0)
            if t.slice_start != seen:
                seen = t.slice_start
                log.append((round(seen, 6), t.name))

    for i in range(n):
        k.spawn(f"h{i}", hog)
    k.run()


def test_cfs_slice_is_latency_over_nr_running():
    # 1 CPU: sched_latency 5 ms (scaled by 1+ilog2(1) = 1) over 2 runnable tasks = 2.5 ms
    k = make_kernel(cpus=1)
    log = []
    _hogs(k, 2, 6000, log)
    assert log[:4] == [(0, "h0"), (2500, "h1"), (5000, "h0"), (7500, "h1")]
    # 2 CPUs: the tunables scale by 1+ilog2(2) = 2 (10 ms); 3 tasks on 2 CPUs: 1.5 per CPU
    k = make_kernel(cpus=2)
    log = []
    _hogs(k, 3, 20000, log)
    first_switch = min(t for t, _ in log if t > 0)
    assert abs(first_switch - 10000 / 1.5) < 1.0


def test_cfs_slice_is_floored_at_the_min_granularity():
    # 8 tasks on 1 CPU: 5 ms / 8 = 0.625 ms is below the 1 ms minimum granularity
    k = make_kernel(cpus=1)
    log = []
    _hogs(k, 8, 3000, log)
    assert [t for t, _ in log[:3]] == [0, 1000, 2000]


def test_wakeup_preemption_marks_the_running_task():
    def run(prob):
        k = make_kernel(cpus=1, wakeup_preempt_prob=prob)
        seen = []

        def hog(k, t):
            for _ in range(4000):
                yield from k.spend(t, 1.0)

        def sleeper(k, t):
            yield from k.sleep(t, 10)
            seen.append(k.now)

        k.spawn("hog", hog)
        k.spawn("sleeper", sleeper)
        k.run()
        return seen[0]

    assert run(1.0) == 11          # woken at 10: the hog is preempted at its next step
    assert run(0.0) == 4000        # no wake-up preemption: only the hog's slice (5 ms)
                                   # would end it, and it finishes first


def test_a_spinning_waiter_keeps_its_cpu_and_a_sleeping_one_gives_it_up():
    def run(kind):
        k = make_kernel(cpus=2)
        lock = k.spinlock("L", "l") if kind == "spin" else k.mutex("M", "m")
        acq, rel = ((locks.spin_lock, locks.spin_unlock) if kind == "spin"
                    else (locks.mutex_lock, locks.mutex_unlock))
        ran = []

        def holder(k, t):
            yield from acq(k, t, lock)
            yield from k.spend(t, 20)
            rel(k, t, lock)

        def waiter(k, t):
            yield from k.spend(t, 1)
            yield from acq(k, t, lock)
            rel(k, t, lock)

        def bystander(k, t):
            yield from k.sleep(t, 2)
            ran.append(k.now)
            yield from k.spend(t, 1)

        k.spawn("holder", holder)
        k.spawn("waiter", waiter)
        k.spawn("bystander", bystander)
        k.run()
        return ran[0]

    assert run("spin") == 20       # both CPUs busy (one spinning) until the holder releases
    assert run("mutex") == 2       # the sleeping waiter's CPU is free at once
