"""Exact values on scripted mini scenarios, each derived by hand in its docstring: lock_stat
rows (read/write split, bounces, waits, holds), migration race windows by page type, and
PCT's choices on a toy program. Each test names the deliberate code change it kills."""

import pytest
from conftest import make_kernel, run_controlled
from mmkit import (HEAP_START, PageAnon, PageKsm, hotremove_block, ksm_scan, mm_kernel,
                   new_process, run)

from sim.engine import locks
from sim.engine.sched import PCT


# --- lock_stat ------------------------------------------------------------------------------
def _row(cls, con_b, con, wait, acq_b, acq, holds):
    """A lock_stat row from its counts, the contended waits and the hold times."""
    return {"class": cls, "con-bounces": con_b, "contentions": con,
            "waittime-min": min(wait, default=0.0), "waittime-max": max(wait, default=0.0),
            "waittime-total": float(sum(wait)),
            "waittime-avg": sum(wait) / len(wait) if wait else 0.0,
            "acq-bounces": acq_b, "acquisitions": acq,
            "holdtime-min": min(holds, default=0.0), "holdtime-max": max(holds, default=0.0),
            "holdtime-total": float(sum(holds)),
            "holdtime-avg": sum(holds) / len(holds) if holds else 0.0}


def test_lock_stat_rows_split_reads_from_writes_and_count_bounces_between_cpus():
    """Two CPUs, free lock ops: A runs on CPU 0, B on CPU 1.

    spin:  A 0-3 (first use: no bounce); B asks at 1 (contended, last on CPU 0: con-bounce),
           gets it at 3 (acq-bounce), holds 2; A again at 17-18 (last on CPU 1: acq-bounce).
    sem:   A reads 3-7 (first use: no bounce); B asks to write at 5 (contended, con-bounce),
           gets it at 7 (acq-bounce), holds 2; A reads again 18-19 (last on CPU 1: bounce).
    The reads are the -R row, the write the -W row.

    Kills: the first acquisition counted as a bounce (`bounce = lock.last_cpu != cpu`):
    toy_spin acq-bounces 3, toy_sem-R 2; read holds booked in the -W row: -W holdtime-total
    7 (holds 2, 4, 1), -R holdtime-total 0.
    """
    k = make_kernel(cpus=2)
    spin = k.spinlock("toy_spin", "s")
    sem = k.rwsem("toy_sem", "m")
    log = []

    def a(k, t):
        yield from locks.spin_lock(k, t, spin)
        log.append((k.now, "A", t.cpu, "spin"))
        yield from k.spend(t, 3)
        locks.spin_unlock(k, t, spin)
        yield from locks.down_read(k, t, sem)
        log.append((k.now, "A", t.cpu, "read"))
        yield from k.spend(t, 4)
        locks.up_read(k, t, sem)
        yield from k.sleep(t, 10)
        yield from locks.spin_lock(k, t, spin)
        log.append((k.now, "A", t.cpu, "spin"))
        yield from k.spend(t, 1)
        locks.spin_unlock(k, t, spin)
        yield from locks.down_read(k, t, sem)
        log.append((k.now, "A", t.cpu, "read"))
        yield from k.spend(t, 1)
        locks.up_read(k, t, sem)

    def b(k, t):
        yield from k.sleep(t, 1)
        yield from locks.spin_lock(k, t, spin)
        log.append((k.now, "B", t.cpu, "spin"))
        yield from k.spend(t, 2)
        locks.spin_unlock(k, t, spin)
        yield from locks.down_write(k, t, sem)
        log.append((k.now, "B", t.cpu, "write"))
        yield from k.spend(t, 2)
        locks.up_write(k, t, sem)

    k.spawn("A", a)
    k.spawn("B", b)
    k.run()
    assert log == [(0, "A", 0, "spin"), (3, "A", 0, "read"), (3, "B", 1, "spin"),
                   (7, "B", 1, "write"), (17, "A", 0, "spin"), (18, "A", 0, "read")]
    assert k.lock_stat() == [
        _row("toy_spin", 1, 1, [2], 2, 3, [3, 2, 1]),
        _row("toy_sem-W", 1, 1, [2], 1, 1, [2]),
        _row("toy_sem-R", 0, 0, [], 1, 2, [4, 1]),
    ]


def test_a_lock_used_on_one_cpu_never_bounces():
    """One task, one CPU, three uncontended acquisitions of each lock: no bounce at all.

    Kills: the first acquisition counted as a bounce (1 acq-bounce in the spin row and in
    each rwsem row); read holds booked in the -W row (-R holdtime-total 0)."""
    k = make_kernel(cpus=1)
    spin = k.spinlock("solo_spin", "s")
    sem = k.rwsem("solo_sem", "m")

    def body(k, t):
        for _ in range(3):
            yield from locks.spin_lock(k, t, spin)
            yield from k.spend(t, 1)
            locks.spin_unlock(k, t, spin)
        yield from locks.down_write(k, t, sem)
        yield from k.spend(t, 5)
        locks.up_write(k, t, sem)
        for _ in range(2):
            yield from locks.down_read(k, t, sem)
            yield from k.spend(t, 2)
            locks.up_read(k, t, sem)

    k.spawn("solo", body)
    k.run()
    assert k.lock_stat() == [
        _row("solo_spin", 0, 0, [], 0, 3, [1, 1, 1]),
        _row("solo_sem-R", 0, 0, [], 0, 2, [2, 2]),
        _row("solo_sem-W", 0, 0, [], 0, 1, [5]),
    ]


# --- race windows by page type --------------------------------------------------------------
def _hotremove(pages):
    """Processes A (and B) with mergeable heaps, ksmd merges equal contents, then the block
    holding them is migrated. pages: 'anon' (A's one page, content 8: unique), 'ksm' (A and B
    share content 7: one KSM page) or 'both'."""
    k = mm_kernel()

    def body(k, t):
        a = {"anon": [8], "ksm": [7], "both": [7, 8]}[pages]
        pa = yield from new_process(k, t, "A", len(a), mergeable=True, contents=a)
        if pages != "anon":
            yield from new_process(k, t, "B", 1, mergeable=True, contents=[7])
        yield from ksm_scan(k, t)
        old = [pa.mm.ptes[HEAP_START + i].page for i in range(len(a))]
        kinds = [("ksm" if PageKsm(p) else "anon") if PageAnon(p) else "?" for p in old]
        assert len({p.block for p in old}) == 1
        rc = yield from hotremove_block(k, t, k.machine.blocks[old[0].block])
        moved = [pa.mm.ptes[HEAP_START + i].page is not old[i] for i in range(len(a))]
        return kinds, rc, moved

    _, (kinds, rc, moved) = run(k, "hotremove", body)
    w = k.windows.to_dict()["migration_anon_vma"]
    return (kinds, rc, moved, k.counters.get("migrations", 0),
            {x: w[x] for x in ("count", "closed", "hits")}, k.violations.counts)


@pytest.mark.parametrize("pages, kinds, windows", [
    ("anon", ["anon"], {"count": 1, "closed": 1, "hits": 0}),
    ("ksm", ["ksm"], {"count": 0, "closed": 0, "hits": 0}),
    ("both", ["ksm", "anon"], {"count": 1, "closed": 1, "hits": 0}),
])
def test_migration_windows_open_for_anon_pages_only_not_ksm(pages, kinds, windows):
    """unmap_and_move of an anon page opens one migration_anon_vma window, closed when
    rmap_walk_anon locks the anon_vma; a KSM page (walked by rmap_walk_ksm, through its
    stable node) opens none, though it is migrated too.

    Kills: the window opened for KSM pages too (`if PageAnon(page):` without `and not
    PageKsm(page)` in the windows oracle): 'ksm' counts 1 window (closed 0), 'both' 2
    (closed 1): the KSM page's window is discarded, never closed, so only `count` moves."""
    got = _hotremove(pages)
    assert got == (kinds, 0, [True] * len(kinds), len(kinds), windows, {})


# --- PCT ------------------------------------------------------------------------------------
def two_tasks(steps=3):
    """Tasks A (tid 0) and B (tid 1), `steps` steps each, logging each step."""
    def program(k, log):
        for name in "AB":
            def body(k, t, name=name):
                for i in range(steps):
                    yield from k.step(t, 1.0)
                    log.append(f"{name}{i}")
            k.spawn(name, body)
    return program


def pct_with(priority, changes, depth):
    """A PCT execution with its random draws replaced: initial priorities by tid and change
    points {decision index: demoted priority}."""
    pct = PCT(seed=0, depth=depth, steps=6)
    pct.priority = dict(priority)
    pct.changes = dict(changes)
    return pct


@pytest.mark.parametrize("depth, priority, changes, choices, log", [
    # no change point: the highest priority (A) runs to its end, then B alone (forced)
    (1, {0: 3.0, 1: 2.5}, {}, [0, 0, 0], "A0 A1 A2 B0 B1 B2"),
    # decision 2 demotes A (chosen) to 1: B, now the highest, is chosen there
    (2, {0: 3.0, 1: 2.5}, {2: 1}, [0, 0, 1, 1, 1], "A0 A1 B0 B1 B2 A2"),
    # decision 1 demotes A to 2 (B runs), decision 3 demotes B to 1, below A (A runs)
    (3, {0: 4.0, 1: 3.5}, {1: 2, 3: 1}, [0, 1, 1, 0, 0], "A0 B0 B1 A1 A2 B2"),
])
def test_pct_chooses_the_highest_priority_after_a_change_point_demotes(
        depth, priority, changes, choices, log):
    """Kills: no re-pick after a change point (the demoted actor runs once more): depth 2
    gives choices [0, 0, 0], depth 3 [0, 0, 1, 1, 0]."""
    pct = pct_with(priority, changes, depth)
    _, got = run_controlled(pct, two_tasks())
    assert (pct.choices, " ".join(got)) == (choices, log)


@pytest.mark.parametrize("seed, changes, choices, log", [
    (3, {1: 1}, [0, 1, 1, 1], "A0 B0 B1 B2 A1 A2"),      # A drew the higher priority
    (4, {1: 1}, [1, 0, 0, 0], "B0 A0 A1 A2 B1 B2"),      # B did
])
def test_pct_seeded_choices_on_a_toy(seed, changes, choices, log):
    """PCT(depth=2, steps=6) with its own draws: the change point falls at decision 1 and
    demotes whoever ran first, so the other runs to its end.

    Kills: no re-pick after a change point ([0, 0, 1, 1, 1] and [1, 1, 0, 0, 0])."""
    pct = PCT(seed=seed, depth=2, steps=6)
    _, got = run_controlled(pct, two_tasks())
    assert (pct.changes, pct.choices, " ".join(got)) == (changes, choices, log)


# --- random draws ---------------------------------------------------------------------------
def test_a_stream_hands_out_each_block_last_first_and_draws_blocks_in_call_order():
    """Every result depends on this order: a stream's draws of one kind come from blocks of
    BLOCK, each handed out from its end, and a block is drawn from the stream's one numpy
    Generator on the call that needs it, so kinds interleave in the order they are called.
    Killed by handing a block out first-first, or by drawing a block before it is needed."""
    import numpy as np
    from sim.engine.rng import BLOCK, STREAMS, Rng

    costs = Rng(7, gamma_shape=4.0).costs
    got = [costs.jitter(), costs.uniform(), costs.exponential(2.0)]
    got += [costs.jitter() for _ in range(BLOCK)]
    g = np.random.default_rng(7).spawn(len(STREAMS))[STREAMS.index("costs")]
    gamma1 = (g.standard_gamma(4.0, BLOCK) / 4.0).tolist()
    uniform1 = g.random(BLOCK).tolist()
    exp1 = g.standard_exponential(BLOCK).tolist()
    gamma2 = (g.standard_gamma(4.0, BLOCK) / 4.0).tolist()
    assert got == [gamma1[-1], uniform1[-1], 2.0 * exp1[-1]] + gamma1[-2::-1] + gamma2[-1:]
