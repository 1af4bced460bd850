"""Scheduling strategies on toy programs, where the right answer can be counted by hand:
seeded tie order (timed), exact replay and its refusals, DFS schedule counts per preemption
bound and its sleep-set reduction, yields that cost nothing only when fair, and PCT against a
random walk on bugs of known depth."""

import json
import math

import pytest

import sim
from sim.engine.kernel import Kernel
from sim.params import KERNEL_PARAMS
from sim.engine.locks import spin_lock, spin_unlock
from sim.engine.sched import DFS, PCT, RandomWalk, Replay, ReplayDivergence
from conftest import make_kernel


def controlled_kernel(strategy, seed=0, cpus=None):
    p = {prm.name: prm.default for prm in KERNEL_PARAMS}
    if cpus is not None:
        p["cpus"] = cpus
    return Kernel(p, seed=seed, strategy=strategy)


def run_toy(strategy, program, seed=0, cpus=None):
    """One execution of `program(k, log)`, which spawns tasks; returns the log."""
    k = controlled_kernel(strategy, seed, cpus)
    log = []
    program(k, log)
    k.run(until=1e6)
    strategy.finished()
    return k, log


def all_schedules(dfs, program, cap=10_000, cpus=None):
    """Every execution a DFS runs: [(log, pruned)]."""
    out = []
    for _ in range(cap):
        _, log = run_toy(dfs, program, cpus=cpus)
        out.append((tuple(log), dfs.blocked))
        if not dfs.backtrack():
            return out
        dfs.new_execution()
    raise AssertionError(f"DFS did not finish within {cap} executions")


def two_by_two(objs=(None, None)):
    """Tasks A and B, two steps each, touching objs[0] and objs[1]."""
    def program(k, log):
        for name, obj in zip("AB", objs):
            def body(k, t, name=name, obj=obj):
                for i in range(2):
                    yield from k.step(t, 1.0, obj)
                    log.append(f"{name}{i}")
            k.spawn(name, body)
    return program


# --- timed ----------------------------------------------------------------------------------
def test_simultaneous_events_are_ordered_by_the_seed_not_fifo():
    def order(seed):
        k = make_kernel(seed=seed)
        seen = []
        for i in range(5):
            def body(k, t, i=i):
                yield from k.sleep(t, 10)     # all five wake at the same instant
                seen.append(i)
            k.spawn(f"t{i}", body)
        k.run()
        return tuple(seen)
    orders = {order(s) for s in range(12)}
    assert all(order(s) == order(s) for s in (0, 5))    # same seed, same order
    assert len(orders) > 3                                # different seeds, different orders


# --- DFS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bound,expected", [(0, 2), (1, 4), (2, 6), (3, 6)])
def test_dfs_runs_each_interleaving_within_the_preemption_bound_once(bound, expected):
    """Two tasks of two dependent steps: C(4,2) = 6 interleavings; AABB and BBAA need no
    preemption, ABBA and BAAB one, ABAB and BABA two."""
    runs = all_schedules(DFS(bound, reduction=False), two_by_two())
    logs = [log for log, _ in runs]
    assert len(logs) == expected == len(set(logs))
    if bound == 0:
        assert set(logs) == {("A0", "A1", "B0", "B1"), ("B0", "B1", "A0", "A1")}


def spin_section(k, log):
    """A: takes a spinlock and makes two steps under it; B: two steps of its own."""
    lock = k.spinlock("toy_lock", "toy")

    def a(k, t):
        yield from spin_lock(k, t, lock)
        for i in range(2):
            yield from k.step(t, 1.0, lock)
            log.append(f"A{i}")
        spin_unlock(k, t, lock)

    def b(k, t):
        for i in range(2):
            yield from k.step(t, 1.0)
            log.append(f"B{i}")
    k.spawn("A", a)
    k.spawn("B", b)


def test_a_task_with_preemption_off_keeps_its_cpu():
    """On one CPU, B never runs while A holds the spinlock (A0 and A1 stay together); on two
    CPUs (A on CPU 0, B on CPU 1) it may."""
    def split(logs):
        return {log for log in logs if abs(log.index("A0") - log.index("A1")) > 1}
    one = {log for log, _ in all_schedules(DFS(3, reduction=False), spin_section, cpus=1)}
    two = {log for log, _ in all_schedules(DFS(3, reduction=False), spin_section, cpus=2)}
    assert not split(one) and ("A0", "B0", "A1", "B1") in split(two)
    assert ("B0", "A0", "A1", "B1") in one and ("A0", "A1", "B0", "B1") in one


def test_dfs_reduction_runs_one_schedule_of_independent_steps():
    """Steps on different objects commute: every interleaving is equivalent to the first, and
    sleep sets stop the others as soon as only asleep actors are left."""
    full = all_schedules(DFS(2, reduction=False), two_by_two((object(), object())))
    reduced = all_schedules(DFS(2, reduction=True), two_by_two((object(), object())))
    assert len(full) == 6 and not any(p for _, p in full)
    complete = [log for log, pruned in reduced if not pruned]
    assert len(complete) == 1
    assert len(reduced) < len(full)


def test_dfs_reduction_keeps_every_order_of_dependent_steps():
    shared = object()
    reduced = all_schedules(DFS(2, reduction=True), two_by_two((shared, shared)))
    assert len({log for log, pruned in reduced if not pruned}) == 6


def check_then_act(obj_a, obj_b):
    """A reads x then writes x+1; B writes x = 10 in between: a lost update, one preemption."""
    def program(k, log):
        x = {"v": 0}

        def a(k, t):
            yield from k.step(t, 1.0, obj_a)
            seen = x["v"]
            yield from k.step(t, 1.0, obj_a)
            x["v"] = seen + 1
            log.append(("x", x["v"]))

        def b(k, t):
            yield from k.step(t, 1.0, obj_b)
            x["v"] = 10
            log.append(("x", 10))
        k.spawn("A", a)
        k.spawn("B", b)
    return program


def finals(runs):
    """The final values of x over the complete executions."""
    return {log[-1][1] for log, pruned in runs if not pruned}


@pytest.mark.parametrize("reduction", [False, True])
def test_dfs_finds_a_one_preemption_bug_at_bound_one_not_zero(reduction):
    x = object()
    zero = all_schedules(DFS(0, reduction), check_then_act(x, x))
    one = all_schedules(DFS(1, reduction), check_then_act(x, x))
    # x = 11 (A then B... A wrote last: B first) or 10 (B last); 1 = B's write lost
    assert finals(zero) == {10, 11}
    assert finals(one) == {1, 10, 11}


def test_wrong_independence_hides_the_bug():
    """The reduction is only as sound as the objects the model names: steps that really
    conflict but claim different objects lose the buggy order. (Why a step that touches
    shared state without a known object passes None, which conflicts with everything.)"""
    runs = all_schedules(DFS(1, True), check_then_act(object(), object()))
    assert 1 not in finals(runs)
    runs = all_schedules(DFS(1, True), check_then_act(None, object()))
    assert 1 in finals(runs)


def poller(k, log):
    """W polls a flag in a cond_resched loop; S sets it after two steps."""
    flag = {"set": False}

    def waiter(k, t):
        while not flag["set"]:
            yield from k.yield_cpu(t)
            log.append("poll")
        log.append("seen")

    def setter(k, t):
        yield from k.step(t, 1.0)
        yield from k.step(t, 1.0)
        flag["set"] = True
    k.spawn("W", waiter)
    k.spawn("S", setter)


def test_a_polling_loop_has_a_finite_tree_only_fair_yields_are_free():
    """At a yield the fair successor is free; staying on (or any other choice) costs a
    preemption, so a bound of 1 allows a bounded number of extra polls, not any number."""
    for bound in (0, 1, 2):
        runs = all_schedules(DFS(bound, reduction=False), poller, cap=500)
        assert all(log[-1] == "seen" for log, _ in runs)
        assert max(log.count("poll") for log, _ in runs) <= 2 + bound


def test_pct_demotes_a_yielding_task_so_a_poller_cannot_starve_the_setter():
    for i in range(20):
        pct = PCT(seed=1, depth=1, steps=10)
        pct.start_at(i)
        k, log = run_toy(pct, poller)
        assert log[-1] == "seen" and log.count("poll") <= 3 and k.truncated is None


# --- PCT against a random walk --------------------------------------------------------------
def binom_tail_ge(n, p, k):
    """P[X >= k] for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def t2_after_t1_step(m, at):
    """T1 takes m steps, T2 one; the bug shows when T2's step comes right after T1's step
    `at` (before T1's next one, if any)."""
    def program(k, log):
        done = {"t1": 0}

        def t1(k, t):
            for _ in range(m):
                yield from k.step(t, 1.0)
                done["t1"] += 1

        def t2(k, t):
            yield from k.step(t, 1.0)
            if done["t1"] == at:
                log.append("bug")
        k.spawn("T1", t1)
        k.spawn("T2", t2)
    return program


def ordering_bug(m):
    """The bug shows when T2's step comes after all of T1's (one ordering constraint: depth
    1). A random walk finds it with probability 2**-m; PCT with probability 1/2 (T1 drawn the
    higher priority)."""
    return t2_after_t1_step(m, m)


def hits(make, program, n):
    found = 0
    for i in range(n):
        s = make()
        s.start_at(i)
        _, log = run_toy(s, program)
        found += "bug" in log
    return found


def test_pct_finds_a_depth_one_bug_where_a_random_walk_almost_never_does():
    n, m = 200, 12
    pct = hits(lambda: PCT(seed=0, depth=1, steps=20), ordering_bug(m), n)
    rnd = hits(lambda: RandomWalk(seed=0), ordering_bug(m), n)
    # PCT: X ~ Bin(200, 1/2); P[X < 70] < 1e-5. Random: p = 2**-12, P[X >= 3] < 2e-4.
    assert pct >= 70 and binom_tail_ge(n, 0.5, 70) > 1 - 1e-5
    assert rnd <= 2 and binom_tail_ge(n, 2 ** -m, 3) < 2e-4


def window_bug(m, at):
    """T2's one step must fall exactly after T1's step `at` and before its next (depth 2:
    two ordering constraints). PCT's guarantee: at least 1/(n k) per execution."""
    return t2_after_t1_step(m, at)


def test_pct_meets_its_depth_two_guarantee():
    n, m = 300, 10
    k_steps = m + 2
    bound = PCT.bound(2, k_steps, 2)                 # 1/24
    found = hits(lambda: PCT(seed=0, depth=2, steps=k_steps), window_bug(m, 6), n)
    # at the guaranteed rate, P[X <= 2] for X ~ Bin(300, 1/24) is below 1e-3
    assert 1 - binom_tail_ge(n, bound, 3) < 1e-3
    assert found >= 3, found


# --- replay ---------------------------------------------------------------------------------
def test_controlled_random_walk_replays_exactly():
    strat = RandomWalk(seed=3)
    a = sim.simulate("lock-calibration", seed=5, acquisitions=300, strategy=strat)
    choices = a.schedule["choices"]
    assert a.schedule["strategy"] == "random" and len(choices) > 300
    b = sim.simulate("lock-calibration", seed=5, acquisitions=300, strategy=Replay(choices))
    assert json.dumps(b.lock_stat) == json.dumps(a.lock_stat)
    assert b.schedule["choices"] == choices


def test_strict_replay_names_the_first_choice_that_does_not_fit():
    a = sim.simulate("lock-calibration", seed=5, acquisitions=50, strategy=RandomWalk(1))
    choices = a.schedule["choices"]
    bad = list(choices)
    bad[7] = 99                                       # no such actor
    with pytest.raises(ReplayDivergence, match=r"^choice 7: the recording chose actor 99"):
        sim.simulate("lock-calibration", seed=5, acquisitions=50, strategy=Replay(bad))
    with pytest.raises(ReplayDivergence, match=rf"^choice {len(choices)}: the run ended"):
        sim.simulate("lock-calibration", seed=5, acquisitions=50,
                     strategy=Replay(choices + [0]))
    with pytest.raises(ReplayDivergence, match=r"needs more than the 3 recorded"):
        sim.simulate("lock-calibration", seed=5, acquisitions=50,
                     strategy=Replay(choices[:3]))


def test_prefix_replay_follows_what_fits_then_runs_without_preemption():
    a = sim.simulate("lock-calibration", seed=5, acquisitions=50, strategy=RandomWalk(1))
    choices = a.schedule["choices"]
    b = sim.simulate("lock-calibration", seed=5, acquisitions=50,
                     strategy=Replay(choices[:10], prefix=True))
    assert b.schedule["choices"][:10] == choices[:10]
    c = sim.simulate("lock-calibration", seed=5, acquisitions=50,
                     strategy=Replay(choices[:10], prefix=True))
    assert c.schedule == b.schedule
