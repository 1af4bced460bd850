"""Soft offline and memory_failure (mm/memory-failure.c, 2.6.33): their paths lock by lock,
their refusals of KSM pages, and the races they take part in on scripted schedules."""

from mmkit import exiting_owner, lock_log, mm_kernel, new_process, next_seq, run
from test_mm_paths import UNMAP_AND_MOVE_ANON
from test_races import FreeInTheGap

from sim.engine.locks import mutex_lock, mutex_unlock
from sim.mm import EBUSY, EIO
from sim.mm.events import MigrationEnd
from sim.mm.exit import do_exit
from sim.mm.ksm import ksm_do_scan
from sim.mm.madvise import MADV_SOFT_OFFLINE, sys_madvise
from sim.mm.memory_failure import collect_procs_anon, memory_failure
from sim.mm.memory_sysfs import PAGE_SHIFT, store_hard_offline_page, store_soft_offline_page
from sim.mm.page_alloc import alloc_page
from sim.mm.objects import HWPOISON, PRESENT, PageKsm
from sim.mm.scenarios.mm import HEAP_START


def _ksm_scans(k, t, n):
    for _ in range(n):
        yield from mutex_lock(k, t, k.machine.ksm.thread_mutex)
        yield from ksm_do_scan(k, t, 100)
        mutex_unlock(k, t, k.machine.ksm.thread_mutex)


def _merged_pair(k, t):
    """A and B write the same contents; ksmd merges them into one KSM page."""
    a = yield from new_process(k, t, "A", 1, mergeable=True, contents=[7])
    b = yield from new_process(k, t, "B", 1, mergeable=True, contents=[7])
    yield from _ksm_scans(k, t, 4)
    return a, b


# --- soft offline -----------------------------------------------------------------------------

def test_soft_offline_by_address_migrates_an_anon_page_and_poisons_the_old_one():
    """sysfs takes a physical address; the page lock is taken and dropped for the PG_hwpoison
    test and invalidate_inode_page; then isolate_lru_page and unmap_and_move as hot-remove's,
    with no mmap_sem. The old page, freed by the migration, is poisoned after it, and the
    allocator drops it when it comes round."""
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 1)
        page = proc.mm.ptes[HEAP_START].page
        seq = next_seq(k)
        ret = yield from store_soft_offline_page(k, t, page.pfn << PAGE_SHIFT)
        again = alloc_page(k, t)
        return proc, page, ret, seq, again

    t, (proc, page, ret, seq, again) = run(k, "softoffline", body)
    assert ret == 0
    assert lock_log(t, seq) == ["lock_page PG_locked", "unlock_page PG_locked",
                                "spin_lock &zone->lru_lock", "spin_unlock &zone->lru_lock",
                                *UNMAP_AND_MOVE_ANON]
    new = proc.mm.ptes[HEAP_START]
    assert new.kind == PRESENT and new.page is not page and not new.page.hwpoison
    assert page.free and page.hwpoison
    assert again.pfn != page.pfn
    assert k.counters["hwpoisoned pages dropped by the allocator"] == 1
    assert k.counters["mce_bad_pages"] == 1 and k.violations.counts == {}


def test_soft_offline_of_a_ksm_page_is_refused_and_the_page_not_poisoned():
    """migrate_pages(..., offlining=0): unmap_and_move's PageKsm test gives -EBUSY (inside
    it), migrate_pages counts a permanent failure, soft_offline_page returns -EIO, and the
    KSM page stays mapped, on the LRU and unpoisoned."""
    k = mm_kernel()
    rcs = []
    k.hooks.subscribe(MigrationEnd, lambda ev: rcs.append(ev.rc))

    def body(k, t):
        a, b = yield from _merged_pair(k, t)
        kpage = a.mm.ptes[HEAP_START].page
        ret = yield from store_soft_offline_page(k, t, kpage.pfn << PAGE_SHIFT)
        return a, b, kpage, ret

    _, (a, b, kpage, ret) = run(k, "softoffline", body)
    assert PageKsm(kpage) and b.mm.ptes[HEAP_START].page is kpage
    assert ret == EIO and rcs == [EBUSY]
    assert a.mm.ptes[HEAP_START].page is kpage and kpage.mapcount == 1 and kpage.lru
    assert not kpage.hwpoison and "mce_bad_pages" not in k.counters
    assert k.violations.counts == {}


def test_madvise_soft_offline_takes_no_mmap_sem_and_hides_its_failure():
    """madvise(MADV_SOFT_OFFLINE) goes to madvise_hwpoison before sys_madvise's mmap_sem:
    get_user_pages_fast finds the present pte without it. On an anon page it migrates; on a
    KSM page soft_offline_page fails (-EIO) and, the loop's `ret` shadowing the function's,
    madvise returns 0."""
    k = mm_kernel()

    def body(k, t):
        a, b = yield from _merged_pair(k, t)
        c = yield from new_process(k, t, "C", 1)
        old = c.mm.ptes[HEAP_START].page
        seq = next_seq(k)
        anon_ret = yield from sys_madvise(k, t, c.mm, HEAP_START, 1, MADV_SOFT_OFFLINE)
        log = lock_log(t, seq)
        ksm_ret = yield from sys_madvise(k, t, a.mm, HEAP_START, 1, MADV_SOFT_OFFLINE)
        return a, c, old, anon_ret, log, ksm_ret

    _, (a, c, old, anon_ret, log, ksm_ret) = run(k, "madvise", body)
    assert anon_ret == 0 and c.mm.ptes[HEAP_START].page is not old and old.hwpoison
    assert not any("mmap_sem" in op for op in log)
    kpage = a.mm.ptes[HEAP_START].page
    assert PageKsm(kpage) and not kpage.hwpoison
    assert ksm_ret == 0
    assert k.counters["madvise soft offline failed -5, returned 0"] == 1


def in_prepare_migration(task, obj):
    """unmap_and_move between lock_page and rcu_read_lock (mem_cgroup_prepare_migration)."""
    return bool(task.stack) and task.stack[-1] == "mem_cgroup_prepare_migration"


def owner_exits_while_soft_offline_waits(variant):
    """X maps a page; Y then allocates an anon_vma on the same CPU (X's one-object slab page
    is no longer the CPU's); the daemon soft-offlines X's page by physical address, and X
    exits (and a grace period ends) while the migration is between lock_page and
    rcu_read_lock."""
    strat = FreeInTheGap("softoffline", in_prepare_migration)
    k = mm_kernel(variant=variant, strategy=strat, cpus=1, anon_vma_per_slab=1)
    box = {}

    def other(k, t):
        yield from k.sleep(t, 1)
        yield from new_process(k, t, "Y", 1)

    def daemon(k, t):
        yield from k.sleep(t, 5)
        box["rc"] = yield from store_soft_offline_page(k, t, box["page"].pfn << PAGE_SHIFT)

    k.spawn("X", exiting_owner(box))
    k.spawn("Y", other)
    k.spawn("softoffline", daemon)
    k.run(until=1_000)
    return k, strat, box


def test_soft_offline_by_address_reaches_the_use_after_free_in_v2633():
    k, strat, box = owner_exits_while_soft_offline_waits("v2.6.33")
    assert strat.hits >= 1 and box["rc"] == 0
    assert k.violations.counts == {"anon_vma_use_after_free": 1}
    (v,) = k.violations.of("anon_vma_use_after_free")
    assert v.actors[:2] == ["softoffline", "X"] and v.harm == "use_after_free"
    assert v.detail["via"] == "rmap_walk_anon" and v.detail["freed_in"] == "anon_vma_unlink"
    assert v.detail["race"] == ("slab page discarded before the accessor's RCU read-side "
                                "section began")
    assert box["page"].hwpoison                      # done: poisoned after the migration


def test_soft_offline_on_the_same_schedule_is_clean_with_the_2011_repair():
    k, strat, box = owner_exits_while_soft_offline_waits("anon-vma-lock-get")
    assert strat.hits >= 1 and box["rc"] == 0       # freed under us: nothing to migrate
    assert k.violations.counts == {}


# --- memory_failure ---------------------------------------------------------------------------

def test_memory_failure_unmaps_an_anon_page_and_kills_its_processes():
    """Early kill: under the page lock, tasklist_lock -> page_lock_anon_vma -> each vma's pte
    lock (page_mapped_in_vma) collects parent and child; try_to_unmap leaves hwpoison
    entries; both get SIGBUS; the page, recovered, keeps memory_failure's reference."""
    from sim.mm.fork import dup_mm
    from sim.mm.scenarios.mm import Proc
    k = mm_kernel(memory_failure_early_kill=True)

    def body(k, t):
        parent = yield from new_process(k, t, "P", 1)
        child = Proc(99, "P-child", 0, True)
        child.mm = yield from dup_mm(k, t, parent.mm, "P-child", child)
        k.machine.tasklist[child.pid] = child
        page = parent.mm.ptes[HEAP_START].page
        seq = next_seq(k)
        ret = yield from store_hard_offline_page(k, t, page.pfn << PAGE_SHIFT)
        return parent, child, page, ret, seq

    t, (parent, child, page, ret, seq) = run(k, "hwpoison", body)
    assert ret == 0
    log = lock_log(t, seq)
    assert log[:5] == ["lock_page PG_locked", "spin_lock tasklist_lock", "rcu_read_lock",
                       "spin_lock &anon_vma->lock", "spin_lock &page->ptl"]
    assert log[-3:] == ["spin_lock &zone->lru_lock", "spin_unlock &zone->lru_lock",
                        "unlock_page PG_locked"]           # delete_from_lru_cache, out:
    for mm in (parent.mm, child.mm):
        assert mm.ptes[HEAP_START].kind == HWPOISON and mm.ptes[HEAP_START].page is page
    assert parent.sigpending == "SIGBUS" and child.sigpending == "SIGBUS"
    assert page.hwpoison and page.mapcount == -1 and page.count == 1 and not page.lru
    assert k.violations.counts == {}


def test_memory_failure_refuses_a_mapped_ksm_page_under_the_page_lock():
    """hwpoison_user_mappings' PageKsm test (under the page lock): SWAP_FAIL before any
    process is collected or any pte touched: "cannot unmap page, give up", -EBUSY; the page
    stays mapped, poisoned, with memory_failure's reference."""
    k = mm_kernel(memory_failure_early_kill=True)

    def body(k, t):
        a, b = yield from _merged_pair(k, t)
        kpage = a.mm.ptes[HEAP_START].page
        count = kpage.count
        seq = next_seq(k)
        ret = yield from store_hard_offline_page(k, t, kpage.pfn << PAGE_SHIFT)
        return a, b, kpage, count, ret, seq

    t, (a, b, kpage, count, ret, seq) = run(k, "hwpoison", body)
    assert PageKsm(kpage) and ret == EBUSY
    assert lock_log(t, seq) == ["lock_page PG_locked", "unlock_page PG_locked"]
    assert a.mm.ptes[HEAP_START].page is kpage and b.mm.ptes[HEAP_START].page is kpage
    assert kpage.hwpoison and kpage.count == count + 1 and kpage.mapcount == 1
    assert a.sigpending is None and b.sigpending is None
    assert k.counters["memory_failure: cannot unmap page, give up"] == 1
    assert k.violations.counts == {}


def in_memory_failure_before_its_reference(task, obj):
    """__memory_failure's first step: before TestSetPageHWPoison and get_page_unless_zero."""
    return bool(task.stack) and task.stack[-1] == "__memory_failure" and \
        getattr(obj, "hwpoison", True) is False


def test_a_page_upgraded_to_ksm_before_memory_failure_locks_it_fails_safely():
    """Scripted: the injector is about to poison B's anon page when ksmd upgrades it to a
    KSM page in place (try_to_merge_one_page, under its trylock_page). In 2.6.33 the PageKsm
    test is under the page lock, so it sees the upgrade: -EBUSY, nothing collected or
    unmapped, no violation."""
    strat = FreeInTheGap("hwpoison", in_memory_failure_before_its_reference)
    k = mm_kernel(strategy=strat, memory_failure_early_kill=True, cpus=1)
    box = {}

    def setup(k, t):
        box["a"] = yield from new_process(k, t, "A", 1, mergeable=True, contents=[7])
        box["b"] = yield from new_process(k, t, "B", 1, mergeable=True, contents=[7])
        box["page"] = box["b"].mm.ptes[HEAP_START].page
        yield from _ksm_scans(k, t, 1)                   # checksums only: no merge yet
        yield from k.sleep(t, 5)                         # wakes with the injector
        yield from _ksm_scans(k, t, 3)                   # the merge: B's page is upgraded

    def injector(k, t):
        yield from k.sleep(t, 5)
        box["anon_then"] = not PageKsm(box["page"])
        box["rc"] = yield from memory_failure(k, t, box["page"].pfn, 18)

    k.spawn("ksmd", setup)
    k.spawn("hwpoison", injector)
    k.run(until=1_000)
    page, a, b = box["page"], box["a"], box["b"]
    assert strat.hits >= 1 and box["anon_then"]
    assert PageKsm(page) and box["rc"] == EBUSY and page.hwpoison
    assert a.mm.ptes[HEAP_START].page is page and b.mm.ptes[HEAP_START].page is page
    assert a.sigpending is None and b.sigpending is None
    assert "collect_procs_anon: page_lock_anon_vma NULL" not in k.counters
    assert k.violations.counts == {}


def test_page_lock_anon_vma_fails_safely_for_a_ksm_page_and_an_unmapped_one():
    """collect_procs_anon on a page whose mapping is KSM (the commit's "if an anon gets
    upgraded") or which is no longer mapped: page_lock_anon_vma returns NULL, only
    tasklist_lock and RCU are taken, nobody is collected."""
    k = mm_kernel(memory_failure_early_kill=True)

    def body(k, t):
        a, b = yield from _merged_pair(k, t)
        kpage = a.mm.ptes[HEAP_START].page
        x = yield from new_process(k, t, "X", 1)
        xpage = x.mm.ptes[HEAP_START].page
        xpage.count += 1                                 # memory_failure's reference
        yield from do_exit(k, t, x)
        logs, kills = [], []
        for page in (kpage, xpage):
            seq = next_seq(k)
            tokill = []
            yield from collect_procs_anon(k, t, page, tokill)
            logs.append(lock_log(t, seq))
            kills.append(tokill)
        return logs, kills

    _, (logs, kills) = run(k, "hwpoison", body)
    assert logs == [["spin_lock tasklist_lock", "rcu_read_lock", "rcu_read_unlock",
                     "spin_unlock tasklist_lock"]] * 2
    assert kills == [[], []]
    assert k.counters["collect_procs_anon: page_lock_anon_vma NULL"] == 2
    assert k.violations.counts == {}


def test_without_early_kill_the_process_dies_when_it_touches_the_poisoned_page():
    """vm.memory_failure_early_kill=0 (2.6.33's default): collect_procs_anon still takes
    tasklist_lock and the anon_vma but collects nobody; the pte becomes a hwpoison entry, and
    the owner's next touch faults VM_FAULT_HWPOISON and gets SIGBUS (late kill)."""
    from sim.mm.fault import do_page_fault
    from sim.mm.memory import VM_FAULT_HWPOISON
    k = mm_kernel()

    def body(k, t):
        proc = yield from new_process(k, t, "P", 1)
        page = proc.mm.ptes[HEAP_START].page
        seq = next_seq(k)
        ret = yield from store_hard_offline_page(k, t, page.pfn << PAGE_SHIFT)
        log = lock_log(t, seq)
        signalled = proc.sigpending
        fault = yield from do_page_fault(k, t, proc.mm, HEAP_START, False)
        return proc, ret, log, signalled, fault

    _, (proc, ret, log, signalled, fault) = run(k, "P", body)
    assert ret == 0 and signalled is None
    assert log[:6] == ["lock_page PG_locked", "spin_lock tasklist_lock", "rcu_read_lock",
                       "spin_lock &anon_vma->lock", "spin_unlock &anon_vma->lock",
                       "rcu_read_unlock"]
    assert proc.mm.ptes[HEAP_START].kind == HWPOISON
    assert fault == VM_FAULT_HWPOISON and proc.sigpending == "SIGBUS"
    assert k.violations.counts == {}


def test_hwpoison_ksm_workload_refuses_ksm_pages_kills_anon_owners_and_reports_nothing():
    """50 ms of hwpoison-ksm (seed 1): poison lands on KSM pages (refused, -EBUSY) and on
    anon pages (unmapped, their processes killed early); the oracles see no violation."""
    from sim.api import simulate
    d = simulate("hwpoison-ksm", "v2.6.33", 1, duration_ms=50.0).to_dict()
    c = d["counters"]
    assert d["violation_counts"] == {}
    assert c["memory_failure: cannot unmap page, give up"] == 4
    assert c["memory_failure: LRU: Recovered"] == 22
    assert c["memory_failure: SIGBUS sent"] == 24 and c["processes killed by SIGBUS"] == 23
